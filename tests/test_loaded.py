"""The exports of the modules loaded in a memory dump (python extract_symvers.py DUMP): dumps
built by memdump.py with virtual addresses (QEMU's -p, /proc/kcore) and with physical ones
only (page tables: x86-64 from QEMU's CPU state, arm64 with 39-bit VA from VMCOREINFO),
struct module's export tables from BTF and by the vote, the eras of struct module, a stale
copy beside the ring, a corrupt BTF copy, truncated and zero-filled dumps."""

from functools import partial

import pytest

from kernelimage import ERAS, make_exports
from kobuild import build_module
from memdump import (arm64_tables, kernel_with_modules, module_btf, physical_dump,
                     qemu_cpu_state, stale_loop, virtual_dump, x86_64_tables)


def module_lines(result):
    return sorted(line for line in result.lines if "\tvmlinux\t" not in line)


@pytest.mark.parametrize("with_btf", [True, False], ids=["btf", "vote"])
def test_virtual_dump(with_btf, tmp_path, run, assert_symvers):
    """python extract_symvers.py dump.elf: vmlinux's lines, then every loaded module's."""
    memory = kernel_with_modules()
    virtual_dump(tmp_path / "dump.elf", memory, module_btf("6.1", 8) if with_btf else None)
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers("6.14"))
    assert "5 modules on the module list (page tables: the dump's virtual addresses; struct " \
           "module's export tables from %s)" % ("BTF" if with_btf else "a vote of the 5 modules") \
        in result.err


def test_a_ksymtab_above_its_names(tmp_path, run, assert_symvers):
    """Modules whose names, values and CRCs lie below their ksymtab, of about 100 absolute
    entries a table (2400 bytes: more than the 1 KiB read past the last name and the CRC
    table's size): the window read holds the whole table (Debian's s390x 6.1 modules nfs,
    sunrpc, snd_pcm... were left out as "runs past the end of the image")."""
    memory = kernel_with_modules(prel32=False, exports_each=200, names_first=True)
    virtual_dump(tmp_path / "dump.elf", memory, module_btf("6.1", 8))
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers("6.14"))
    assert "5 modules on the module list" in result.err


def test_a_stale_copy_is_not_listed(tmp_path, run, assert_symvers):
    """The copy of mod_0 beside the ring (an unloaded module, a .ko in the page cache)."""
    memory = kernel_with_modules(stale=True)
    virtual_dump(tmp_path / "dump.elf", memory, module_btf("6.1", 8))
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers("6.14"))
    assert sum(line.split("\t")[2] == "mod_0" for line in result.lines) == \
        len(memory.modules[0].exports)


@pytest.mark.parametrize("heads", [1, 2])
def test_a_stale_module_ahead_of_the_ring(heads, tmp_path, run, assert_symvers):
    """A stale copy of mod_0 below the modules, whose list leads back to itself through a
    stale list head by next pointers alone (its prev elsewhere), or through two list heads
    (a ring, but with two nodes that are no module): not the module list; the ring after
    it is."""
    memory = kernel_with_modules(stale=False)
    stale_loop(memory, 0xFFFFFFFFBFFF0000, heads=heads)
    virtual_dump(tmp_path / "dump.elf", memory, module_btf("6.1", 8))
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers("6.14"))
    assert "5 modules on the module list" in result.err


def test_a_corrupt_btf_copy_first(tmp_path, run, assert_symvers):
    """7.2 with KASLR leaves a second, corrupt copy of the BTF in memory: the valid one (a
    struct module whose member's name is no identifier is not believed)."""
    good = module_btf("6.1", 8)
    corrupt = bytearray(good)
    corrupt[corrupt.find(b"\0list\0") + 2] = 0xFF
    memory = kernel_with_modules()
    virtual_dump(tmp_path / "dump.elf", memory, bytes(corrupt) + bytes(64) + good)
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers("6.14"))
    assert "export tables from BTF" in result.err


@pytest.mark.parametrize("era,layout", [("7.2", "7.2"), ("2.6.25", "2.6.24"), ("2.6.27", "6.1"),
                                        ("5.10", "6.1"), ("4.10", "6.1")])
@pytest.mark.parametrize("with_btf", [True, False], ids=["btf", "vote"])
def test_struct_module_eras(era, layout, with_btf, tmp_path, run, assert_symvers):
    """7.1+ (one table, GPL-only a flag), 2.6.24 ({syms, num_syms, crcs}), from 2.6.27 to 7.0
    ({syms, crcs, num_syms}, {num_gpl_syms, gpl_syms, gpl_crcs})."""
    memory = kernel_with_modules(era=era, layout=layout)
    virtual_dump(tmp_path / "dump.elf", memory, module_btf(layout, 8) if with_btf else None)
    assert_symvers(run(tmp_path / "dump.elf"), memory.symvers(era))


def test_unused_and_gpl_future_exports(tmp_path, run, assert_symvers):
    """A 2.6.32 kernel with CONFIG_UNUSED_SYMBOLS: its modules' five export tables, each
    shaped in struct module as that release has it, found by the vote."""
    memory = kernel_with_modules(era="2.6.32", layout="2.6.32", unused=True)
    virtual_dump(tmp_path / "dump.elf", memory)
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers("2.6.32"))
    assert {line.split("\t")[3] for line in module_lines(result)} == {
        "EXPORT_SYMBOL", "EXPORT_SYMBOL_GPL", "EXPORT_UNUSED_SYMBOL", "EXPORT_UNUSED_SYMBOL_GPL",
        "EXPORT_SYMBOL_GPL_FUTURE"}


def test_32_bit_virtual_dump(tmp_path, run, assert_symvers):
    """An i386-like kernel (absolute pointers, 32-bit), its dump as QEMU writes it: 64-bit
    ELF with the virtual segments of the module area."""
    memory = kernel_with_modules(era="6.14", bits=32, kernel_base=0xC1000000,
                                 module_base=0xF8000000, head=0xC2000000)
    virtual_dump(tmp_path / "dump.elf", memory)
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers("6.14"))
    assert "a vote of the 5 modules" in result.err


def test_physical_dump_through_cr3(tmp_path, run, assert_symvers):
    """dump-guest-memory without -p: the page tables from CR3 of QEMU's CPU state."""
    memory = kernel_with_modules()
    physical_dump(tmp_path / "dump.elf", memory, x86_64_tables, module_btf("6.1", 8),
                  notes=[(b"QEMU", qemu_cpu_state)])
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers("6.14"))
    assert "page tables: x86-64 4-level from CR3 of QEMU's CPU state" in result.err


def test_cr3_of_a_task_in_user_mode_with_pti(tmp_path, run, assert_symvers):
    """With page-table isolation a task in user mode has the user half of its 8 KiB PGD in
    CR3 (bit 12 set), which maps no module: the kernel half is tried first."""
    memory = kernel_with_modules()
    physical_dump(tmp_path / "dump.elf", memory, partial(x86_64_tables, pti=True),
                  module_btf("6.1", 8), notes=[(b"QEMU", lambda root: qemu_cpu_state(
                      root | 0x1000))])
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers("6.14"))
    assert "CR3 of QEMU's CPU state (PTI's kernel half)" in result.err


def test_arm64_39_bit_va(tmp_path, run, assert_symvers):
    """An Android-like arm64 kernel with 39-bit VA (three levels of 4 KiB tables), its root
    from VMCOREINFO's swapper_pg_dir and kimage_voffset."""
    kernel_base, modules = 0xFFFFFFC010000000, 0xFFFFFFC008000000
    memory = kernel_with_modules(era="6.14", kernel_base=kernel_base, module_base=modules,
                                 head=0xFFFFFFC011000000)

    def vmcoreinfo(root):
        voffset = 0xFFFFFFC020000000 - root
        return ("OSRELEASE=6.14.0-test\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffc020000000\n"
                "NUMBER(kimage_voffset)=%#x\nNUMBER(VA_BITS)=39\nNUMBER(MODULES_VADDR)=%#x\n"
                "NUMBER(MODULES_END)=%#x\n" % (voffset, modules, modules + (128 << 20))).encode()

    physical_dump(tmp_path / "dump.elf", memory, arm64_tables, module_btf("6.1", 8),
                  notes=[(b"VMCOREINFO", vmcoreinfo)], machine=183)
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers("6.14"))
    assert "page tables: arm64 4 KiB pages, 39-bit VA from VMCOREINFO SYMBOL(swapper_pg_dir)" \
        in result.err


def test_arm64_big_endian(tmp_path, run, assert_symvers):
    """A big-endian arm64 kernel (SCTLR_EL1.EE) walks big-endian tables."""
    kernel_base, modules = 0xFFFFFFC010000000, 0xFFFFFFC008000000
    memory = kernel_with_modules(era="6.14", big=True, kernel_base=kernel_base,
                                 module_base=modules, head=0xFFFFFFC011000000)

    def vmcoreinfo(root):
        return ("SYMBOL(swapper_pg_dir)=ffffffc020000000\nNUMBER(kimage_voffset)=%#x\n"
                "NUMBER(VA_BITS)=39\n" % (0xFFFFFFC020000000 - root)).encode()

    physical_dump(tmp_path / "dump.elf", memory, arm64_tables,
                  notes=[(b"VMCOREINFO", vmcoreinfo)], machine=183, big=True)
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers("6.14"))
    assert "page tables: arm64 4 KiB pages, 39-bit VA from VMCOREINFO" in result.err


def test_no_module_list(tmp_path, run, assert_symvers):
    """A dump of the kernel alone (a memsave window): vmlinux's lines, and it says so."""
    memory = kernel_with_modules(count=0, stale=False)
    virtual_dump(tmp_path / "dump.elf", memory)
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.kernel)
    assert "no module list found in the dump" in result.err


@pytest.mark.parametrize("damage", ["truncated", "zeroed"])
def test_damaged_module_memory(damage, tmp_path, run, assert_symvers):
    """Module memory cut off or zero-filled: vmlinux's lines, no module list, no hang."""
    memory = kernel_with_modules()
    for address in list(memory.regions):
        if address >= 0xFFFFFFFFC0000000:
            if damage == "truncated":
                del memory.regions[address]
            else:
                memory.regions[address] = bytes(len(memory.regions[address]))
    virtual_dump(tmp_path / "dump.elf", memory)
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.kernel)
    assert "no module list found in the dump" in result.err


def test_check_against_a_dump(tmp_path, run):
    """--check resolves the loaded modules' exports as it does --modules'."""
    memory = kernel_with_modules()
    virtual_dump(tmp_path / "dump.elf", memory, module_btf("6.1", 8))
    used = memory.modules[1].exports[0]
    probe = build_module("6.14", [], imports=[used.name], versions={used.name: used.crc},
                         modinfo=["license=GPL", "vermagic=6.14.0-test SMP mod_unload "
                                                 "modversions "])
    (tmp_path / "probe.ko").write_bytes(probe)
    result = run("--check", tmp_path / "probe.ko", tmp_path / "dump.elf")
    assert (result.status, result.out) == (0, "%s: loads after mod_1\n"
                                           % (tmp_path / "probe.ko"))


VERMAGIC_6_14 = ["license=GPL", "vermagic=6.14.0-test SMP mod_unload modversions "]


def test_modules_tree_names_the_loaded_ones(tmp_path, run, assert_symvers):
    """--modules TREE: a loaded module the tree holds is listed once, with its path there."""
    memory = kernel_with_modules()
    virtual_dump(tmp_path / "dump.elf", memory, module_btf("6.1", 8))
    tree = tmp_path / "lib/modules/6.14.0-test/kernel/drivers/misc"
    tree.mkdir(parents=True)
    (tree / "mod_1.ko").write_bytes(build_module("6.14", memory.modules[1].exports,
                                                 modinfo=VERMAGIC_6_14))
    result = run("--modules", tmp_path / "lib/modules/6.14.0-test", tmp_path / "dump.elf")
    expected = [line.replace("\tmod_1\t", "\tdrivers/misc/mod_1\t")
                for line in memory.symvers("6.14")]
    assert_symvers(result, expected)


def test_modules_tree_of_another_build(tmp_path, run):
    """A tree whose mod_1 exports other CRCs than the loaded mod_1: of another build, exit 6
    naming both."""
    memory = kernel_with_modules()
    virtual_dump(tmp_path / "dump.elf", memory, module_btf("6.1", 8))
    other = make_exports(ERAS["6.14"], count=4, seed=99)
    (tmp_path / "mod_1.ko").write_bytes(build_module("6.14", other, modinfo=VERMAGIC_6_14))
    result = run("--modules", tmp_path / "mod_1.ko", tmp_path / "dump.elf")
    assert (result.status, result.out) == (6, "")
    assert "mod_1.ko and the module mod_1 loaded in the dump export other symbols or CRCs: " \
        "of another build?" in result.err
