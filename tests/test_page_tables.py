"""The loaded modules of a dump of physical memory, through each MMU's translation tables
(x86-64 4- and 5-level, i386 with and without PAE, arm64 4/16/64 KiB granules, ARMv7 short
descriptors, RISC-V Sv39/Sv48/Sv57, s390x DAT, Book3S-64 radix and hash with 64 and 4 KiB
pages, MIPS, LoongArch): modules spread over the whole module area, so that every index bit
of every level is used, and the kernel mapped as it maps itself (large pages, sections,
blocks, megapages, segments; Book3S-64's linear map); and a kdump-compressed dump
(makedumpfile) with modules."""

import re
import struct
import zlib

import pytest

import extract_symvers
from archives import elf_core, kdump
from memdump import (MMUS, PPC64_PAGE_OFFSET, book3s_memory, kernel_with_modules, napot_64k,
                     paged_dump, paged_memory, qemu_cpu_state, segment_dump)

EM_MIPS, EM_PPC64, EM_S390, EM_ARM, EM_AARCH64, EM_RISCV = 8, 21, 22, 40, 183, 243
EM_LOONGARCH = 258
LA57, PAE = 1 << 12, 1 << 5

# module regions of 64 KiB at the bottom, the top and in between of each module area, the
# struct module 32 KiB in: every index of every level has its high bits set somewhere
X86_64 = dict(module_bases=[0xFFFFFFFFA0000000, 0xFFFFFFFFA5A50000, 0xFFFFFFFFBFFE0000,
                            0xFFFFFFFFF7FE0000])
I386 = dict(era="5.10", bits=32, kernel_base=0xC1000000, head=0xC2000000,
            module_bases=[0xF8000000, 0xFBFE0000, 0xFFBE0000])


# riscv64's last 4 GiB: 2 GiB of modules below the kernel at its link address; absolute
# pointers in the tables (riscv has no HAVE_ARCH_PREL32_RELOCATIONS)
RISCV = dict(prel32=False, kernel_base=0xFFFFFFFF80000000, head=0xFFFFFFFF81000000,
             module_bases=[0xFFFFFFFF00000000, 0xFFFFFFFF3FFE0000, 0xFFFFFFFF5A5A0000,
                           0xFFFFFFFF7FFE0000])


UTS = RISCV["kernel_base"] + (1 << 20) + 0x40     # init_uts_ns: after the fixture's kernel


def riscv_info(va_bits, satp=True):
    """VMCOREINFO of a riscv64 kernel (arch_crash_save_vmcoreinfo()): va_kernel_pa_offset,
    and the root as 7.x says it, satp (MODE 8, 9 or 10 for Sv39, Sv48, Sv57, in bits 63:60;
    the root's PPN), or as 6.12 does, swapper_pg_dir with VA_BITS."""
    modes = {39: 8, 48: 9, 57: 10}

    def info(root, offset):
        text = "OSRELEASE=6.14.0-test\nPAGESIZE=4096\nNUMBER(va_kernel_pa_offset)=%#x\n" % offset
        text += "SYMBOL(init_uts_ns)=%x\n" % UTS     # .data, past RO_DATA
        text += "NUMBER(satp)=%#x\n" % (modes[va_bits] << 60 | root >> 12) if satp else \
            "SYMBOL(swapper_pg_dir)=%x\nNUMBER(VA_BITS)=%d\n" % ((root + offset) % (1 << 64),
                                                               va_bits)
        return text.encode()
    return info


def arm64(modules, **kwargs):
    """A 6.5+ arm64 layout: 2 GiB of modules at the end of the linear map, the kernel
    after them."""
    return dict(kernel_base=modules + (0x81 << 24), head=modules + (0x82 << 24),
                module_bases=[modules, modules + 0x3FFE0000, modules + 0x55550000,
                              modules + 0x7FFE0000], **kwargs)


def arm64_info(page, va_bits, modules, t1sz=False):
    """VMCOREINFO of an arm64 kernel; with `t1sz`, the VA bits as TCR_EL1.T1SZ (64 - VA
    bits, 5.12+) beside a VA_BITS that is not the kernel's (52-bit user space, 48-bit
    kernel)."""
    def info(root, offset):
        return ("OSRELEASE=6.14.0-test\nPAGESIZE=%d\nSYMBOL(swapper_pg_dir)=%x\n"
                "NUMBER(kimage_voffset)=%#x\nNUMBER(VA_BITS)=%d\nNUMBER(MODULES_VADDR)=%#x\n"
                "NUMBER(MODULES_END)=%#x\n%s" % (
                    page, (root + offset) % (1 << 64), offset, 52 if t1sz else va_bits, modules,
                    modules + (2 << 30), "NUMBER(TCR_EL1_T1SZ)=%d\n" % (64 - va_bits)
                    if t1sz else "")).encode()
    return info


def arm_info(root, offset):
    return b"OSRELEASE=5.10.0-test\nSYMBOL(swapper_pg_dir)=%x\n" % ((root + offset) % (1 << 32))


CASES = {
    "x86-64": (X86_64, dict(large=21, notes=[(b"QEMU", qemu_cpu_state)]),
               "x86-64 4-level from CR3 of QEMU's CPU state"),
    "x86-64 la57": (X86_64, dict(large=21, notes=[(b"QEMU", lambda root: qemu_cpu_state(
        root, LA57))]), "x86-64 5-level from CR3 of QEMU's CPU state"),
    "i386 pae": (I386, dict(large=21, notes=[(b"QEMU", lambda root: qemu_cpu_state(
        root, PAE))]), "i386 PAE from CR3 of QEMU's CPU state"),
    "i386": (I386, dict(large=22, notes=[(b"QEMU", qemu_cpu_state)]),
             "i386 2-level from CR3 of QEMU's CPU state"),
    "arm": (dict(era="5.10", bits=32, prel32=False, kernel_base=0xC0008000, head=0xC0A00000,
                 module_bases=[0x7F000000, 0xBF000000, 0xBFEF0000, 0xF0FF0000]),
            dict(large=20, info=arm_info, machine=EM_ARM),
            "ARMv7 short descriptors from VMCOREINFO SYMBOL(swapper_pg_dir)"),
    "arm64 4k 48": (arm64(0xFFFF800000000000), dict(large=21, machine=EM_AARCH64, info=arm64_info(
        4096, 48, 0xFFFF800000000000)), "arm64 4 KiB pages, 48-bit VA from VMCOREINFO"),
    "arm64 16k 47": (arm64(0xFFFFC00000000000), dict(machine=EM_AARCH64, info=arm64_info(
        16384, 47, 0xFFFFC00000000000)), "arm64 16 KiB pages, 47-bit VA from VMCOREINFO"),
    "arm64 64k 42": (arm64(0xFFFFFE0000000000), dict(machine=EM_AARCH64, info=arm64_info(
        65536, 42, 0xFFFFFE0000000000)), "arm64 64 KiB pages, 42-bit VA from VMCOREINFO"),
    "arm64 64k 48": (arm64(0xFFFF800000000000), dict(machine=EM_AARCH64, info=arm64_info(
        65536, 48, 0xFFFF800000000000, t1sz=True)), "arm64 64 KiB pages, 48-bit VA from "
                                                    "VMCOREINFO"),
    # the kernel in megapages (2 MiB leaves a level up), modules in 4 KiB pages
    "riscv sv39": (RISCV, dict(large=21, machine=EM_RISCV, info=riscv_info(39)),
                   "RISC-V Sv39 from VMCOREINFO's satp"),
    "riscv sv48": (RISCV, dict(large=21, machine=EM_RISCV, info=riscv_info(48, satp=False)),
                   "RISC-V Sv48 from VMCOREINFO SYMBOL(swapper_pg_dir)"),
    "riscv sv57": (RISCV, dict(large=21, machine=EM_RISCV, info=riscv_info(57)),
                   "RISC-V Sv57 from VMCOREINFO's satp"),
}


@pytest.mark.parametrize("mmu", CASES)
def test_modules_over_the_whole_module_area(mmu, tmp_path, run, assert_symvers):
    """python extract_symvers.py dump.elf (dump-guest-memory without -p): vmlinux's lines,
    then every loaded module's, through the MMU's tables from the dump's root."""
    layout, dump, said = CASES[mmu]
    memory = kernel_with_modules(**layout)
    paged_dump(tmp_path / "dump.elf", memory, MMUS[mmu], **dump)
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers(layout.get("era", "6.14")))
    assert "4 modules" in result.err or "3 modules" in result.err
    assert "page tables: %s" % said in result.err


@pytest.mark.parametrize("mmu", ["riscv sv39", "riscv sv48", "riscv sv57"])
def test_riscv_root_found_by_a_scan(mmu, tmp_path, run, assert_symvers):
    """A riscv64 dump with no VMCOREINFO, neither a note nor the kernel's own copy (a kernel
    without CONFIG_VMCORE_INFO): the root is the page of the kernel's window whose walk,
    in each mode from the largest, takes the kernel's banner where it is."""
    memory = kernel_with_modules(**RISCV)
    paged_dump(tmp_path / "dump.elf", memory, MMUS[mmu], large=21, machine=EM_RISCV)
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers("6.14"))
    assert "4 modules on the module list (page tables: RISC-V Sv%s from a first-level table " \
        "found at" % mmu[-2:] in result.err


def test_riscv_napot_pages(tmp_path, run, assert_symvers):
    """Svnapot: each module's 64 KiB mapped by one 64 KiB NAPOT page (16 last-level entries
    alike, N set, the PPN's low 4 bits 1000: bits 15:12 of the address are the VA's own)."""
    memory = kernel_with_modules(**RISCV)
    mmu = MMUS["riscv sv48"]
    physical, root, offset = paged_memory(memory, mmu, large=21)
    for base in RISCV["module_bases"]:
        data = bytearray(0x10000)
        for address, region in memory.regions.items():
            if base <= address < base + len(data):
                data[address - base:address - base + len(region)] = region
        napot_64k(physical, mmu, root, base, bytes(data))
    start, image = physical.image()
    elf_core(tmp_path / "dump.elf", [(start, start, len(image), image)],
             notes=[(b"VMCOREINFO", 0, riscv_info(48)(root, offset))], machine=EM_RISCV)
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers("6.14"))
    assert "4 modules on the module list (page tables: RISC-V Sv48" in result.err


KDUMPS = {
    "riscv sv39": (RISCV, 4096, b"riscv64", 21, riscv_info(39)),
    "x86-64": (X86_64, 4096, b"x86_64", 21, lambda root, offset: (
        "OSRELEASE=6.14.0-test\nPAGESIZE=4096\nSYMBOL(init_top_pgt)=%x\nNUMBER(phys_base)=%#x\n"
        % ((root + offset) % (1 << 64), (0xFFFFFFFF80000000 - offset) % (1 << 64))).encode()),
    "arm64 16k 47": (arm64(0xFFFFC00000000000), 16384, b"aarch64", None,
                     arm64_info(16384, 47, 0xFFFFC00000000000)),
}


# (riscv64 takes a physical window's base from the VMCOREINFO in the window: not "far")
@pytest.mark.parametrize("machine, in_memory", [
    (machine, in_memory) for machine in KDUMPS for in_memory in (False, True)] + [
    ("x86-64", "far"), ("arm64 16k 47", "far")])
def test_kdump_with_modules(machine, in_memory, tmp_path, run, assert_symvers):
    """makedumpfile -c of a kernel with modules loaded (kdump-tools' default): its pages
    looked up by address (blocks of the machine's page size) through the page tables
    VMCOREINFO names; without a VMCOREINFO in the file (QEMU's -z without -device
    vmcoreinfo), the kernel's own copy found in a page of its memory: in the window read
    around the kernel, or ("far") in a page beyond it, looked for page by page."""
    layout, page, uname, large, info = KDUMPS[machine]
    memory = kernel_with_modules(**layout)
    physical, root, offset = paged_memory(memory, MMUS[machine], large=large,
                                          start=50 << 20)       # x86-64: phys_base 32 MiB
    text = info(root, offset)
    if in_memory:
        physical.page(page, text, align=256 << 20 if in_memory == "far" else 1)
    start, image = physical.image()
    (tmp_path / "dump").write_bytes(kdump(bytes(start) + image,
                                          lambda p: (zlib.compress(p), 1),
                                          b"" if in_memory else text, page=page,
                                          machine=uname))
    result = run(tmp_path / "dump")
    assert_symvers(result, memory.symvers("6.14"))
    assert "4 modules on the module list" in result.err
    assert ("no VMCOREINFO note: the kernel's own copy found at physical %#x"
            % (start + len(image) - page) in result.err) == bool(in_memory)
    if machine.startswith("riscv"):     # its names do not vote for it in a real dump
        assert "the window's base from VMCOREINFO" in result.err
        # the window ends at init_uts_ns, the kernel's own copy found before it is read
        assert "-%#x (" % (UTS + 0x1000 - 0x40 - offset) in result.err


# kcore's segments (fs/proc/kcore.c) beside the kernel text: the linear map of RAM (p_paddr
# its physical address), vmalloc and module space (p_paddr -1: reading a page no table maps
# gives zeros, as this file's holes do, module pages included)
KCORES = {
    "x86-64": (X86_64, 21, KDUMPS["x86-64"][4], 0xFFFF888000000000,
               [(0xFFFFC90000000000, 4 << 40), (0xFFFFFFFFA0000000, 0x5F000000)]),
    "arm64 16k 47": (arm64(0xFFFFC00000000000), None, arm64_info(16384, 47, 0xFFFFC00000000000),
                     0xFFFF800000000000, [(0xFFFFC00000000000, 4 << 40)]),
}


@pytest.mark.parametrize("machine, ram", [(machine, "below") for machine in KCORES]
                         + [("x86-64", "from 0")])
def test_kcore_module_space(machine, ram, tmp_path, run, assert_symvers):
    """/proc/kcore: its TiB of vmalloc and module space read only where the kernel's page
    tables (VMCOREINFO's, walked in the linear map's RAM) map pages, never scanned.  RAM
    from physical 0 (ppc64's, s390x's): the linear map's p_paddr 0 is where it is."""
    layout, large, info, linear, sparse = KCORES[machine]
    memory = kernel_with_modules(**layout)
    physical, root, offset = paged_memory(memory, MMUS[machine], large=large,
                                          start=(50 if ram == "below" else 4) << 20)
    start, image = physical.image()
    kernel = memory.kernel
    loads = [(kernel.base, (kernel.base - offset) % (1 << 64), len(kernel.data), kernel.data)]
    loads += [(address, (1 << 64) - 1, size, b"") for address, size in sparse]
    low = start - (1 << 20) if ram == "below" else 0        # RAM from below the kernel
    ram = bytes(start - low) + image
    loads.append((linear + low, low, len(ram), ram))
    elf_core(tmp_path / "kcore", loads, notes=[(b"VMCOREINFO", 0, info(root, offset))],
             machine=EM_AARCH64 if machine.startswith("arm64") else None)
    result = run(tmp_path / "kcore")
    assert_symvers(result, memory.symvers("6.14"))
    assert "4 modules on the module list (page tables: %s from VMCOREINFO" \
        % ("x86-64 4-level" if machine == "x86-64" else "arm64 16 KiB pages, 47-bit VA") \
        in result.err


# s390x from 6.10 (Documentation/arch/s390/mm.rst): the kernel at KERNELOFFSET, apart from
# its physical address, 2 GiB of modules below its start rounded down to 1 MiB; before,
# the kernel where it is in physical memory and the modules at the top of the address
# space the ASCE spans (5.10's MODULES_END = vmax, 4 TiB with a region-third table).
# Big-endian, absolute pointers (no PREL32 relocations), 7.2's struct module


def s390_layout(kernel_base):
    """A 7.x kernel at `kernel_base` (Debian's 7.2 under QEMU: 0x3fffe3a8000), modules at
    the bottom, the middle and the top of the 2 GiB below it."""
    end = kernel_base & ~0xFFFFF
    return dict(era="7.2", layout="7.2", big=True, prel32=False, kernel_base=kernel_base,
                head=kernel_base + (16 << 20), module_bases=[end - (2 << 30), end - 0x5A5A0000,
                                                             end - 0x10000])


S390 = s390_layout(0x3FFFE3A8000)
S390_KASLR = s390_layout(0x2F3C5A54000)     # randomized: 16 KiB aligned, anywhere below
S390_OLD = dict(era="5.10", big=True, prel32=False, kernel_base=0x100000, head=0x1100000,
                module_bases=[(4 << 40) - (2 << 30), (4 << 40) - 0x10000])
S390_TYPES = {"s390x region-first": 0xC, "s390x region-second": 0x8, "s390x region-third": 0x4}


def s390_ctrs(asce):
    """The "LINUX" NT_S390_CTRS note's 16 control registers (QEMU's arch_dump.c, the
    kernel's crash_dump.c): CR13 the kernel's ASCE, CR1 and CR7 a user process's (a table
    the dump does not hold)."""
    crs = [0] * 16
    crs[1] = crs[7] = 0x58981C7
    crs[13] = asce
    return struct.pack(">16Q", *crs)


def s390_info(kernel_base):
    """s390's VMCOREINFO (arch_crash_save_vmcoreinfo(), 6.10+, and the generic
    SYMBOL(swapper_pg_dir)): KERNELOFFSET the kernel's virtual start, KERNELOFFPHYS its
    physical one."""
    def info(root, offset):
        return ("OSRELEASE=7.2.0-test\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=%x\n"
                "KERNELOFFSET=%x\nKERNELOFFPHYS=%x\n" % (root + offset, kernel_base,
                                                        kernel_base - offset)).encode()
    return info


def s390_dump(path, layout, mmu, note=True, info=True, start=0x40000000):
    """A big-endian ELF core (dump-guest-memory of s390x) of `layout`'s kernel in 1 MiB
    segments and modules in 4 KiB pages through `mmu`'s tables; with `note`, the control
    registers; with `info`, the VMCOREINFO note.  The Memory."""
    memory = kernel_with_modules(**layout)
    physical, root, offset = paged_memory(memory, MMUS[mmu], large=20, big=True, start=start)
    image_start, image = physical.image()
    notes = [(b"LINUX", 0x304, s390_ctrs(root | S390_TYPES[mmu] | 3))] if note else []
    if info:
        notes.append((b"VMCOREINFO", 0, s390_info(layout["kernel_base"])(root, offset)))
    elf_core(path, [(image_start, image_start, len(image), image)], notes=notes,
             machine=EM_S390, big=True)
    return memory


@pytest.mark.parametrize("layout, mmu, note, said", [
    (S390, "s390x region-third", True, "region-third table from CR13 of the dump's CPU note"),
    (S390, "s390x region-first", True, "region-first table from CR13 of the dump's CPU note"),
    (S390, "s390x region-second", False, "region-second table from VMCOREINFO "
                                         "SYMBOL(swapper_pg_dir)"),
    (S390_KASLR, "s390x region-second", True, "region-second table from CR13")],
    ids=["region-third", "region-first", "region-second-swapper_pg_dir", "region-second-kaslr"])
def test_s390x_dat(layout, mmu, note, said, tmp_path, run, assert_symvers):
    """s390x 7.x: the kernel's ASCE from CR13 of the CPU note (not CR1, a user process's),
    else VMCOREINFO's swapper_pg_dir, its table type from its entries; modules over the
    2 GiB below the kernel, where KASLR put it."""
    memory = s390_dump(tmp_path / "dump.elf", layout, mmu, note=note)
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers("7.2"))
    assert "3 modules on the module list (page tables: s390x DAT %s" % said in result.err


def test_s390x_before_6_10(tmp_path, run, assert_symvers):
    """s390x 5.10: the kernel at its physical address, modules at the top of the 4 TiB a
    region-third table spans."""
    memory = s390_dump(tmp_path / "dump.elf", S390_OLD, "s390x region-third", info=False,
                       start=0x100000)
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers("5.10"))
    assert "2 modules on the module list (page tables: s390x DAT region-third table from " \
        "CR13" in result.err


def test_s390x_root_found_by_a_scan(tmp_path, run, assert_symvers):
    """No CPU note, no VMCOREINFO: the page of the kernel's window whose entry for the
    banner is a valid region-third entry, walked to the banner where it is."""
    memory = s390_dump(tmp_path / "dump.elf", S390, "s390x region-third", note=False,
                       info=False)
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers("7.2"))
    assert "3 modules on the module list (page tables: s390x DAT region-third table from a " \
        "first table found at" in result.err


@pytest.mark.parametrize("flattened", [False, True])
def test_s390x_kdump(flattened, tmp_path, run, assert_symvers):
    """dump-guest-memory -z of s390x (flattened) and makedumpfile's: header, sub-header and
    page descriptors big-endian, the CPU notes after the VMCOREINFO."""
    memory = kernel_with_modules(**S390)
    physical, root, offset = paged_memory(memory, MMUS["s390x region-third"], large=20,
                                          big=True, start=50 << 20)
    start, image = physical.image()
    notes = s390_ctrs(root | 0x7)
    notes = struct.pack(">III", 6, len(notes), 0x304) + b"LINUX\0\0\0" + notes
    (tmp_path / "dump").write_bytes(kdump(bytes(start) + image, lambda p: (zlib.compress(p), 1),
                                          s390_info(S390["kernel_base"])(root, offset),
                                          flattened=flattened,
                                          machine=b"S390X" if flattened else b"s390x",
                                          big=True, notes=notes))
    result = run(tmp_path / "dump")
    assert_symvers(result, memory.symvers("7.2"))
    assert "3 modules on the module list (page tables: s390x DAT region-third table from " \
        "CR13" in result.err


class Entries:
    """Physical memory holding entries {address: value} (big-endian 8-byte ones, or of the
    struct format `word`) and nothing else, as _PageTables reads it."""

    def __init__(self, entries, word=">Q"):
        self.entries, self.word = entries, struct.Struct(word)

    def read(self, address, size, space):
        words = [self.entries.get(address + at) for at in range(0, size, self.word.size)]
        return None if None in words else b"".join(map(self.word.pack, words))


def test_s390x_entries():
    """Each rule of the Principles of Operation's DAT, on a region-third ASCE: the ASCE's
    table length, a region entry's table offset and length, invalid bits, table types, the
    page table's 2 KiB alignment, bit 52 of a page entry, format control (1 MiB segments,
    2 GiB regions), addresses beyond the ASCE's reach."""
    r3, sx, pt = 0x10000, 0x20000, 0x30800    # a page table in a page's second half
    va = 1 << 31 | 0x5 << 20 | 0x7 << 12 | 0x123   # region-third index 1, segment 5, page 7

    def translate(asce, entries, address=va):
        tables = extract_symvers._PageTables(Entries(entries), extract_symvers.S390_SCHEMES[
            asce >> 2 & 3], asce, "test")
        return tables.translate(address)

    walk = {r3 + 8: sx | 0x7, sx + 8 * 5: pt, pt + 8 * 7: 0x77000}
    assert translate(r3 | 0x7, walk) == 0x77123
    assert translate(r3 | 0x4, walk) == 0x77123                 # TL 0: entries 0-511
    assert translate(r3 | 0x4, {**walk, r3 + 8 * 513: sx | 0x7},
                     va | 512 << 31) is None                   # beyond the table's length
    assert translate(r3 | 0x7, walk, va | 1 << 42) is None     # beyond a region-third ASCE
    assert translate(r3 | 0x7, {**walk, r3 + 8: sx | 0x27}) is None      # invalid
    assert translate(r3 | 0x7, {**walk, r3 + 8: sx | 0x3}) is None       # type 0
    assert translate(r3 | 0x7, {**walk, sx + 40: pt | 0x20}) is None     # invalid
    assert translate(r3 | 0x7, {**walk, sx + 40: pt | 0x4}) is None      # type 1
    assert translate(r3 | 0x7, {**walk, pt + 56: 0x77400}) is None       # invalid
    assert translate(r3 | 0x7, {**walk, pt + 56: 0x77800}) is None       # bit 52
    assert translate(r3 | 0x7, {**walk, pt + 56: 0x77100}) == 0x77123    # no-execute
    # a segment table's offset and length in the region entry (TF 1, TL 1: entries 512-1023)
    offset = {r3 + 8: sx | 0x45, sx + 8 * 517: pt}
    assert translate(r3 | 0x7, {**walk, **offset}, va + (512 << 20)) == 0x77123
    assert translate(r3 | 0x7, {**walk, r3 + 8: sx | 0x45}) is None     # below TF
    assert translate(r3 | 0x7, {**offset, sx + 8 * 1029: pt, pt + 56: 0x77000},
                     va + (1024 << 20)) is None                                # above TL
    # format control: a 1 MiB segment frame, a 2 GiB region frame (their low bits the VA's)
    assert translate(r3 | 0x7, {**walk, sx + 40: 0x300000 | 0x400}) == 0x307123
    assert translate(r3 | 0x7, {r3 + 8: 0x180000000 | 0x404}) == 0x180507123
    assert translate(r3 | 0x7, {r3 + 8: 0x180000000 | 0x424}) is None
    # region-first and region-second ASCEs: their own types at each level
    r1 = {0x50000: 0x60000 | 0xF, 0x60000: r3 | 0xB}
    assert translate(0x50000 | 0xF, {**walk, **r1}) == 0x77123
    assert translate(0x50000 | 0xF, {**walk, **r1, 0x60000: r3 | 0x7}) is None
    assert translate(0x60000 | 0xB, {**walk, **r1}) == 0x77123


# Book3S-64 (ppc64, ppc64le): the kernel in the linear map at PAGE_OFFSET + physical, from
# physical 0, its list head in its .data; modules in the vmalloc space, 512 TiB from
# 0xc008000000000000 (radix.h, hash-64k.h; radix with 4 KiB pages too), 1 TiB from
# 0xc0003d0000000000 with the hash MMU's 4 KiB pages (hash-4k.h, 5.8 on); absolute pointers
def book3s(modules, size, **kwargs):
    return dict(prel32=False, kernel_base=PPC64_PAGE_OFFSET, head=PPC64_PAGE_OFFSET + 0x20000,
                module_bases=[modules, modules + (size >> 1) + 0x5A5A5A5A0000 % (size >> 1),
                              modules + size - 0x20000], **kwargs)


BOOK3S = {"book3s radix 64k": (0xC008000000000000, 1 << 49, 65536, True,
                               "Book3S-64 radix, 64 KiB pages"),
          "book3s hash 64k": (0xC008000000000000, 1 << 49, 65536, False,
                              "Book3S-64 hash MMU's Linux tables, 64 KiB pages"),
          "book3s radix 4k": (0xC008000000000000, 1 << 49, 4096, True,
                              "Book3S-64 radix, 4 KiB pages"),
          "book3s hash 4k": (0xC0003D0000000000, 1 << 40, 4096, False,
                             "Book3S-64 hash MMU's Linux tables, 4 KiB pages")}


def book3s_info(root):
    """The VMCOREINFO note of a ppc64 kernel with 64 KiB pages whose tables are at `root`."""
    return [(b"VMCOREINFO", 0, b"OSRELEASE=6.14.0-test\nPAGESIZE=65536\n"
             b"SYMBOL(swapper_pg_dir)=%x\n" % (root + PPC64_PAGE_OFFSET))]


def book3s_dump(path, mmu, big=False, info=True, elf_big=False):
    """(kernel_with_modules(), the ELF core at `path`) of a Book3S-64 kernel (big-endian
    with `big`: ppc64, else ppc64le), its VMCOREINFO (arch_crash_save_vmcoreinfo() and the
    generic lines: PAGESIZE, _stext, swapper_pg_dir) in a note unless `info` is False; the
    ELF itself big-endian with `elf_big` (QEMU 7.2's dumps of a ppc64le guest)."""
    modules, size, page, radix, _ = BOOK3S[mmu]
    memory = kernel_with_modules(**book3s(modules, size, big=big))
    physical, root = book3s_memory(memory, MMUS[mmu], modules, radix)
    start, image = physical.image()
    notes = [(b"VMCOREINFO", 0, b"OSRELEASE=6.14.0-test\nPAGESIZE=%d\nSYMBOL(_stext)=%x\n"
              b"SYMBOL(swapper_pg_dir)=%x\n" % (page, PPC64_PAGE_OFFSET,
                                                root + PPC64_PAGE_OFFSET))] if info else []
    elf_core(path, [(start, start, len(image), image)], notes=notes, machine=EM_PPC64,
             big=elf_big)
    return memory


@pytest.mark.parametrize("mmu,big,elf_big", [(mmu, False, mmu == "book3s radix 64k")
                                             for mmu in BOOK3S] + [
    ("book3s hash 64k", True, True), ("book3s radix 4k", True, True)])
def test_book3s_modules_over_the_vmalloc_space(mmu, big, elf_big, tmp_path, run,
                                               assert_symvers):
    """A ppc64le (and ppc64: `big`) dump: the kernel read in the linear map (the hash MMU's
    tables do not hold it) from PAGE_OFFSET, as VMCOREINFO's _stext there says (its name
    pointers need not vote for it), every loaded module through the tables VMCOREINFO's
    swapper_pg_dir roots (radix tried before the hash MMU's: only one takes the module
    list), from the bottom to the top of the vmalloc space."""
    memory = book3s_dump(tmp_path / "dump.elf", mmu, big=big, elf_big=elf_big)
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers("6.14"))
    assert "the window's base from VMCOREINFO: c000000000000000" in result.err
    assert "3 modules on the module list (page tables: %s from VMCOREINFO " \
        "SYMBOL(swapper_pg_dir)" % BOOK3S[mmu][4] in result.err


def test_book3s_names_before_their_table(tmp_path, run, assert_symvers):
    """ppc64's modules keep __ksymtab_strings and __kcrctab before __ksymtab: tables of some
    70 entries of 24 bytes end more than 1 KiB past their last name and CRC (jbd2, sunrpc
    and usbcore of Debian's 6.1), read to their end all the same."""
    mmu = "book3s radix 64k"
    modules, size, page, radix, said = BOOK3S[mmu]
    memory = kernel_with_modules(**book3s(modules, size, exports_each=150, names_first=True))
    physical, root = book3s_memory(memory, MMUS[mmu], modules, radix)
    start, image = physical.image()
    elf_core(tmp_path / "dump.elf", [(start, start, len(image), image)], machine=EM_PPC64,
             notes=book3s_info(root))
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers("6.14"))
    assert "3 modules on the module list" in result.err


@pytest.mark.parametrize("mmu", BOOK3S)
def test_book3s_root_found_by_a_scan(mmu, tmp_path, run, assert_symvers):
    """No VMCOREINFO (a kernel without CONFIG_CRASH_CORE): the root is a 64 KiB-aligned
    page of the kernel's window whose entry for the vmalloc space is a table entry as the
    scheme writes it (radix's with NLS), kept where the module list is through it."""
    memory = book3s_dump(tmp_path / "dump.elf", mmu, info=False)
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers("6.14"))
    assert "3 modules on the module list (page tables: %s from a first-level table found " \
        "at" % BOOK3S[mmu][4] in result.err


@pytest.mark.parametrize("flattened", [False, True])
def test_book3s_big_endian_kdump(flattened, tmp_path, run, assert_symvers):
    """QEMU 7.2's dump-guest-memory -z of a ppc64le guest: a kdump-compressed file whose
    header, sub-header and page descriptors are big-endian (cpu_to_dump32/64()), 64 KiB
    blocks, "Unknown" machine (vermagic's powerpc words name it), no VMCOREINFO in it: the
    kernel's own copy in a page of its memory."""
    mmu = "book3s radix 64k"
    modules, size, page, radix, said = BOOK3S[mmu]
    memory = kernel_with_modules(**book3s(modules, size))
    physical, root = book3s_memory(memory, MMUS[mmu], modules, radix)
    physical.page(page, b"OSRELEASE=6.14.0-test\nPAGESIZE=65536\nSYMBOL(_stext)=%x\n"
                  b"SYMBOL(swapper_pg_dir)=%x\n" % (PPC64_PAGE_OFFSET, root + PPC64_PAGE_OFFSET),
                  align=page)
    physical.page(page, b"\x006.14.0-test SMP mod_unload modversions mprofile-kernel "
                  b"relocatable \0", align=page)         # vermagic[]
    start, image = physical.image()
    (tmp_path / "dump").write_bytes(kdump(image, lambda p: (zlib.compress(p), 1), page=page,
                                          flattened=flattened, machine=b"Unknown", big=True))
    result = run(tmp_path / "dump")
    assert_symvers(result, memory.symvers("6.14"))
    assert "kdump-compressed dump (header version 6, big-endian)" in result.err
    assert "the window's base from VMCOREINFO: c000000000000000" in result.err
    assert "3 modules on the module list (page tables: %s from VMCOREINFO " \
        "SYMBOL(swapper_pg_dir)" % said in result.err


def test_book3s_another_quadrant_is_not_the_kernels(tmp_path, run, assert_symvers):
    """The list head's next pointer in quadrant 2 (0x8008... for mod_0's 0xc008...): the
    tables' index bits are the same, but the kernel's tables map quadrant 3 alone; the link
    is broken one way, walked around from the other direction, said."""
    mmu = "book3s hash 64k"
    modules, size, page, radix, said = BOOK3S[mmu]
    memory = kernel_with_modules(**book3s(modules, size, stale=False))
    nodes = struct.unpack("<QQ", memory.regions[memory.head])
    memory.regions[memory.head] = struct.pack("<QQ", nodes[0] ^ 0x4 << 60, nodes[1])
    physical, root = book3s_memory(memory, MMUS[mmu], modules, radix)
    start, image = physical.image()
    elf_core(tmp_path / "dump.elf", [(start, start, len(image), image)], machine=EM_PPC64,
             notes=book3s_info(root))
    result = run(tmp_path / "dump.elf")
    assert sorted(result.lines) == sorted(memory.symvers("6.14")), result.err
    assert "the module list is broken: the link from %#x" % memory.head in result.err


def test_book3s_kcore(tmp_path, run, assert_symvers):
    """ppc64's /proc/kcore (fs/proc/kcore.c): its RAM from physical 0 at PAGE_OFFSET (p_paddr
    0, a physical address here: the vmalloc space's is -1), the vmalloc space read only
    through the page tables in that RAM."""
    mmu = "book3s radix 64k"
    modules, _, page, radix, said = BOOK3S[mmu]
    size = 4 << 40          # of the 512 TiB: what a file can say
    memory = kernel_with_modules(**book3s(modules, size))
    physical, root = book3s_memory(memory, MMUS[mmu], modules, radix)
    start, image = physical.image()
    elf_core(tmp_path / "kcore", [(PPC64_PAGE_OFFSET, 0, len(image), image),
                                  (modules, (1 << 64) - 1, size, b"")], machine=EM_PPC64,
             notes=book3s_info(root))
    result = run(tmp_path / "kcore")
    assert_symvers(result, memory.symvers("6.14"))
    assert "3 modules on the module list (page tables: %s from VMCOREINFO" % said in result.err


# MIPS: the kernel and its `modules` list head in KSEG0 (unmapped: RAM from 0 at
# 0xffffffff80000000, 32-bit 0x80000000), swapper_pg_dir among them (VMCOREINFO says its KSEG0
# address); modules in the mapped segments, through its tables: 64-bit in CKSSEG (a -msym32
# kernel's MODULE_START, Debian's) from its start to the fixmap, and in XKSEG's vmalloc at
# both ends; 32-bit in KSEG2.  No PREL32 relocations on MIPS: absolute pointers
MIPS = {
    "mips64el": (dict(kernel_base=0xFFFFFFFF80100000, head=0xFFFFFFFF81100000, prel32=False,
                      module_bases=[0xFFFFFFFFC0000000, 0xFFFFFFFFD5A50000, 0xFFFFFFFFFFF00000,
                                    0xC000000000010000, 0xC00000FEFFF00000]),
                 "mips64 r2 huge", 0xFFFFFFFF80000000, False),
    "mips64": (dict(kernel_base=0xFFFFFFFF80100000, head=0xFFFFFFFF81100000, prel32=False,
                    big=True, module_bases=[0xFFFFFFFFC0000000, 0xC00000A5A5A50000]),
               "mips64 r2 huge", 0xFFFFFFFF80000000, True),
    "mipsel": (dict(era="5.10", bits=32, kernel_base=0x80100000, head=0x81100000, prel32=False,
                    module_bases=[0xC0000000, 0xD5A50000, 0xFFBE0000]),
               "mips32 r2", 0x80000000, False),
    # CONFIG_MIPS_VA_BITS_48 (vmalloc to 2^48 - 4 GiB), 16 and 64 KiB pages
    "mips64el va48": (dict(kernel_base=0xFFFFFFFF80100000, head=0xFFFFFFFF81100000, prel32=False,
                           module_bases=[0xFFFFFFFFC0000000, 0xC0000A5A5A5A0000,
                                         0xC000FFFEFFF00000]),
                      "mips64 r2 huge 48", 0xFFFFFFFF80000000, False),
    "mips64el 16k": (dict(kernel_base=0xFFFFFFFF80100000, head=0xFFFFFFFF81100000, prel32=False,
                          module_bases=[0xFFFFFFFFC0000000, 0xC00005A5A5A50000,
                                        0xC0007FFEFFF00000]),
                     "mips64 r2 huge 16k", 0xFFFFFFFF80000000, False),
    "mips64el 64k": (dict(kernel_base=0xFFFFFFFF80100000, head=0xFFFFFFFF81100000, prel32=False,
                          module_bases=[0xFFFFFFFFC0000000, 0xC0000005A5A50000,
                                        0xC00003FEFFF00000]),
                     "mips64 r2 huge 64k", 0xFFFFFFFF80000000, False),
}
# the scheme each is read through: its page size and VA, _PFN_SHIFT 14 on 4 KiB pages
MIPS_SCHEMES = {"mips64el": "MIPS64 4 KiB pages, _PFN_SHIFT 14",
                "mips64": "MIPS64 4 KiB pages, _PFN_SHIFT 14",
                "mipsel": "MIPS32 4 KiB pages, _PFN_SHIFT 12",
                "mips64el va48": "MIPS64 4 KiB pages, 48-bit VA, _PFN_SHIFT 14",
                "mips64el 16k": "MIPS64 16 KiB pages, _PFN_SHIFT 16",
                "mips64el 64k": "MIPS64 64 KiB pages, _PFN_SHIFT 18"}


@pytest.mark.parametrize("machine", MIPS)
def test_mips(machine, tmp_path, run, assert_symvers):
    """MIPS (no dump-guest-memory in QEMU: a memsave of RAM, a kdump): swapper_pg_dir from
    VMCOREINFO, in KSEG0, read without tables; modules over CKSSEG and XKSEG (64-bit) or KSEG2
    (32-bit) through it, its table pointers kernel virtual addresses (XKPHYS, KSEG0); 64-bit
    with 4, 16 and 64 KiB pages (VMCOREINFO's PAGESIZE), with and without VA_BITS_48."""
    layout, mmu, kseg0, big = MIPS[machine]
    memory = segment_dump(tmp_path / "dump.elf", layout, mmu, kseg0, big)
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers(layout.get("era", "6.14")))
    assert "%d modules on the module list (page tables: %s from VMCOREINFO SYMBOL(" \
        "swapper_pg_dir)" % (len(layout["module_bases"]), MIPS_SCHEMES[machine]) in result.err


def test_mips_entries():
    """Each rule of Linux's MIPS tables, 64-bit on an R2 core with huge pages (_PFN_SHIFT 14,
    _PAGE_HUGE bit 4): pgd and pmd entries the next table's address in XKPHYS or KSEG0, an
    empty one invalid_pmd_table's or invalid_pte_table's (tables of nothing: PTEs of 0, or
    _PAGE_GLOBAL alone, the buddy of a global page); a PTE without _PAGE_PRESENT; a huge pmd
    entry (2 MiB); XKSEG and CKSSEG through the one swapper_pg_dir (index 1023 for CKSSEG:
    small_pages() names each with its own address), user space (xuseg, whose indexes alias
    vmalloc's) not; KSEG0, KSEG1 and XKPHYS without tables.  32-bit: two levels of 1024
    4-byte entries, KSEG2 mapped, kuseg not."""
    kseg0, xkphys = 0xFFFFFFFF80000000, 0x9800000000000000
    pgd, invalid_pmd, invalid_pte = 0x100000, 0x102000, 0x103000
    pmd, pte, pmd2, pte2 = 0x104000, 0x105000, 0x106000, 0x107000
    entries = {pgd + 8 * i: kseg0 | invalid_pmd for i in range(1024)}
    entries.update({table + 8 * i: kseg0 | invalid_pte for i in range(512)
                    for table in (invalid_pmd, pmd, pmd2)})
    entries.update({table + 8 * i: 0 for i in range(512) for table in (invalid_pte, pte, pte2)})
    entries.update({pgd + 8 * 5: xkphys | pmd, pgd + 8 * 1023: kseg0 | pmd2,
                    pmd2 + 8 * 7: kseg0 | pte2, pte2 + 8 * 9: 0x79000 << 2 | 0x1F8F,
                    pmd + 8 * 7: xkphys | pte, pmd + 8 * 3: 0x400000 << 2 | 0x1F9F,
                    pte + 8 * 9: 0x77000 << 2 | 0x1F8F, pte + 8 * 8: 1 << 8,
                    pte + 8 * 10: 0x78000 << 2 | 0x1F8E})
    tables = extract_symvers._PageTables(Entries(entries, "<Q"), extract_symvers._mips_scheme(
        64, *extract_symvers.MIPS_PTES[8][0]), pgd, "test")     # the first tried: R2, huge
    va = 0xC000000000000000 | 5 << 30 | 7 << 21 | 9 << 12
    assert tables.translate(va | 0x123) == 0x77123
    assert tables.translate(va - 0x1000) is None                # _PAGE_GLOBAL alone
    assert tables.translate(va + 0x1000) is None                # not present
    assert tables.translate(va + (1 << 30)) is None             # invalid_pmd_table's
    assert tables.translate(va ^ 1 << 21) is None               # invalid_pte_table's
    assert tables.translate(va & (1 << 40) - 1) is None         # xuseg: another pgd's
    assert tables.translate(0xFFFFFFFFC0000000 | 7 << 21 | 9 << 12 | 0x45) == 0x79045
    assert tables.translate(0xC000000000000000 | 5 << 30 | 3 << 21 | 0x12345) == 0x412345
    assert tables.translate(0xFFFFFFFF80001234) == 0x1234       # KSEG0
    assert tables.translate(0xFFFFFFFFA0001234) == 0x1234       # KSEG1
    assert tables.translate(0x9000000000005678) == 0x5678       # XKPHYS, uncached
    assert list(tables.small_pages(0xC000000000000000, 1 << 64)) == [
        (va, 0x77000), (0xFFFFFFFFC0000000 | 7 << 21 | 9 << 12, 0x79000)]
    for pointer in (pte, 0xC000000000000000 | pte):      # a physical address, a mapped one
        entries[pmd + 8 * 7] = pointer
        tables = extract_symvers._PageTables(Entries(entries, "<Q"), tables.scheme, pgd, "test")
        assert tables.translate(va) is None
    pgd, pte = 0x10000, 0x11000
    entries = {pgd + 4 * i: 0x80000000 | invalid_pte for i in range(1024)}
    entries.update({pgd + 4 * 0x300: 0x80000000 | pte, pte + 4: 0x55000 | 0x7EF})
    tables = extract_symvers._PageTables(Entries(entries, ">I"), extract_symvers._mips_scheme(
        32, 12, 0, True), pgd, "test")
    assert tables.translate(0xC0001ABC) == 0x55ABC
    assert tables.translate(0x00001ABC) is None                 # kuseg
    assert tables.translate(0x80001234) == 0x1234
    # 64 KiB pages, two levels: a huge entry in the pgd (the pmd folded into it) maps 512 MiB;
    # a PTE's PFN from _PFN_SHIFT 18 (PAGE_SHIFT - 12 + 14)
    pgd, pte = 0x100000, 0x200000
    entries = {pgd + 8 * i: kseg0 | invalid_pte for i in range(8192)}
    entries.update({pte + 8 * i: 0 for i in range(8192)})
    entries.update({pgd + 8 * 2: 0x60000000 << 2 | 0x1F9F, pgd + 8 * 3: xkphys | pte,
                    pte + 8 * 5: 0x770000 << 2 | 0x1F8F})
    tables = extract_symvers._PageTables(Entries(entries, "<Q"), extract_symvers._mips_scheme(
        64, 14, 4, False, 16), pgd, "test")
    assert tables.translate(0xC000000000000000 | 2 << 29 | 0x1234567) == 0x61234567
    assert tables.translate(0xC000000000000000 | 3 << 29 | 5 << 16 | 0xABCD) == 0x77ABCD


# LoongArch: the kernel and its list head in DMW1 (0x9000000000000000 + physical: Linux's
# cached window), swapper_pg_dir among them; modules from the start of XKVRANGE (vm_map_base
# -2^47: MODULES_VADDR past PCI_IOSIZE) through its 16 KiB pages.  No PREL32 relocations
LOONGARCH = dict(kernel_base=0x9000000000200000, head=0x9000000001200000, prel32=False,
                 module_bases=[0xFFFF800002010000, 0xFFFF8000A5A50000, 0xFFFF8000FFFE0000])


@pytest.mark.parametrize("note", [True, False], ids=["note", "own copy"])
def test_loongarch(note, tmp_path, run, assert_symvers):
    """LoongArch (a dump of QEMU's virt machine): swapper_pg_dir from VMCOREINFO, in DMW1,
    read without tables; modules over XKVRANGE through it, 16 KiB pages, 3 levels, its table
    pointers DMW1 addresses.  Without the note (QEMU 10 gives none), the kernel's own copy
    found in the window's range bounds the window before it is read, as the note would."""
    memory = segment_dump(tmp_path / "dump.elf", LOONGARCH, "loongarch 16k", 0x9000000000000000,
                          False, machine=EM_LOONGARCH, note=note)
    result = run(tmp_path / "dump.elf")
    assert_symvers(result, memory.symvers("6.14"))
    assert ("no VMCOREINFO note: the kernel's own copy found" in result.err) != note
    assert re.search(r"reading 0x200000-0x20[4-9a-f]000 \(", result.err)    # not 80 MiB on
    assert "3 modules on the module list (page tables: LoongArch 16 KiB pages, 3 levels from " \
        "VMCOREINFO SYMBOL(swapper_pg_dir)" in result.err


def test_loongarch_kdump_of_unknown_machine(tmp_path, run, assert_symvers):
    """QEMU's dump-guest-memory -z of LoongArch without -device vmcoreinfo: a kdump whose
    utsname says "Unknown", the kernel's own VMCOREINFO in its memory.  Found in the
    window's range before that is read, which it then bounds at init_uts_ns: its offset, of
    no machine the dump says, is the one DMW1 and the segments of MIPS (XKPHYS) agree on;
    the machine, for the page tables, its vermagic's."""
    memory = segment_dump(tmp_path / "dump", LOONGARCH, "loongarch 16k", 0x9000000000000000,
                          False, machine=EM_LOONGARCH, uname=b"Unknown", words=b"LOONGARCH 64BIT")
    result = run(tmp_path / "dump")
    assert_symvers(result, memory.symvers("6.14"))
    assert "no VMCOREINFO note: the kernel's own copy found" in result.err
    assert re.search(r"reading 0x200000-0x20[4-9a-f]000 \(", result.err)    # not 80 MiB on
    assert "3 modules on the module list (page tables: LoongArch 16 KiB pages" in result.err


def test_loongarch_entries():
    """Each rule of Linux's LoongArch tables, 16 KiB pages, 3 levels: pgd and pmd entries
    the next table's DMW address (cached or not), an empty one invalid_pmd_table's or
    invalid_pte_table's (tables of nothing: PTEs of 0, or _PAGE_GLOBAL alone, the buddy
    of a global page); a PTE without _PAGE_PRESENT (valid alone); a huge pmd entry (32
    MiB, _PAGE_HGLOBAL not in its address); XKVRANGE indexed by bits 14-46, the lower half
    (another pgd: CSR.PGDL's) not; DMW0-2 without tables; 4 levels where 16 KiB pages
    have them (VA_BITS 58, the top at bit 47's)."""
    dmw1, dmw0 = 0x9000000000000000, 0x8000000000000000
    pgd, invalid_pmd, invalid_pte = 0x100000, 0x104000, 0x108000
    pmd, pte = 0x10C000, 0x110000
    entries = {pgd + 8 * i: dmw1 | invalid_pmd for i in range(2048)}
    entries.update({table + 8 * i: dmw1 | invalid_pte for i in range(2048)
                    for table in (invalid_pmd, pmd)})
    entries.update({table + 8 * i: 0 for i in range(2048) for table in (invalid_pte, pte)})
    entries.update({pgd + 8 * 5: dmw0 | pmd, pmd + 8 * 7: dmw1 | pte,
                    pmd + 8 * 3: 0x6000000 | 0x10D3, pte + 8 * 9: 0x77C000 | 0x3D3,
                    pte + 8 * 8: 0x40, pte + 8 * 10: 0x778000 | 0x1})
    tables = extract_symvers._PageTables(Entries(entries, "<Q"), extract_symvers.
                                         _loongarch_scheme(14, 3), pgd, "test")
    va = (1 << 64) - (1 << 47) | 5 << 36 | 7 << 25 | 9 << 14
    assert tables.translate(va | 0x1234) == 0x77D234
    assert tables.translate(va - 0x4000) is None                # _PAGE_GLOBAL alone
    assert tables.translate(va + 0x4000) is None                # valid, not present
    assert tables.translate(va + (1 << 36)) is None             # invalid_pmd_table's
    assert tables.translate(va ^ 1 << 25) is None               # invalid_pte_table's
    assert tables.translate(va & (1 << 47) - 1) is None         # user space: another pgd's
    assert tables.translate(va & ~(0x7F << 25) | 3 << 25 | 0x1ABCDEF) == 0x7ABCDEF
    assert tables.translate(0x9000000000201234) == 0x201234     # DMW1
    assert tables.translate(0x8000000000005678) == 0x5678       # DMW0
    assert tables.translate(0xA000000000005678) == 0x5678       # DMW2
    assert list(tables.small_pages((1 << 64) - (1 << 47), 1 << 64)) == [(va, 0x77C000)]
    entries[pmd + 8 * 7] = pte      # a physical address: no kernel virtual one
    tables = extract_symvers._PageTables(Entries(entries, "<Q"), tables.scheme, pgd, "test")
    assert tables.translate(va) is None
    scheme = extract_symvers._loongarch_scheme(14, 4)
    assert (scheme.levels[0], scheme.va_bits) == ((47, 11), 58)


def test_mips_kcore(tmp_path, run, assert_symvers):
    """/proc/kcore of a 64-bit MIPS kernel: RAM from physical 0 (a p_paddr of 0 is one in
    kcore, which says -1 for none) holds swapper_pg_dir and the module pages, those of
    CKSSEG (past the KSEG0 segment, here as long as RAM; the kernel's is 2 GiB - 4, which it
    reads as the kernel sees it) and of its vmalloc read through the tables."""
    layout, mmu, kseg0, big = MIPS["mips64el"]
    memory = segment_dump(tmp_path / "kcore", layout, mmu, kseg0, big, kcore=True)
    result = run(tmp_path / "kcore")
    assert_symvers(result, memory.symvers("6.14"))
    assert "5 modules on the module list (page tables: MIPS64 4 KiB pages, _PFN_SHIFT 14" \
        in result.err
