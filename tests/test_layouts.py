"""Every export-table layout x 32/64-bit x little/big endian x absolute/PREL32, on images
built by kernelimage.py, through the command line as a user runs it."""

import pytest

from kernelimage import ERAS, build

MATRIX = [(era, bits, big, prel32)
          for era in ERAS for bits in (32, 64) for big in (False, True)
          for prel32 in ((False, True) if ERAS[era].prel32 else (False,))]


def ident(case):
    era, bits, big, prel32 = case
    return "%s-%d-%s-%s" % (era, bits, "be" if big else "le", "prel32" if prel32 else "abs")


@pytest.mark.parametrize("case", MATRIX, ids=[ident(c) for c in MATRIX])
def test_layout(case, run, kernel_file):
    era, bits, big, prel32 = case
    kernel = build(era, bits=bits, big=big, prel32=prel32)
    out = run(*kernel.options, kernel_file(kernel.data))
    assert sorted(out) == sorted(kernel.symvers())
    assert len(out) == len(kernel.symvers())


def test_bookworm_like_kernel(run, kernel_file):
    # python extract_symvers.py -b 64 -B ffffffff81000000 -k 6.1 vmlinux > Module.symvers
    kernel = build("5.19", bits=64, exports=None)
    out = run("-b", "64", "-B", "ffffffff81000000", "-k", "6.1", kernel_file(kernel.data))
    assert sorted(out) == sorted(kernel.symvers())
    assert all(line.count("\t") == 4 for line in out)        # modpost 5.6+ needs 5 columns


def test_pre_5_6_columns(run, kernel_file):
    kernel = build("5.4.20", bits=64)
    out = run(*kernel.options, kernel_file(kernel.data))
    namespaced = [line for line in out if "\tUSB_STORAGE\t" in line]
    assert namespaced and all(line.split("\t")[3] == "vmlinux" for line in namespaced)
    assert sorted(out) == sorted(kernel.symvers())


@pytest.mark.parametrize("era", ["2.6.18", "2.6.25", "2.6.32", "3.10", "4.10", "4.19", "5.10"])
@pytest.mark.parametrize("bits", [32, 64])
def test_unused_symbols(era, bits, run, kernel_file):
    """CONFIG_UNUSED_SYMBOLS: two more symsearch entries and export types."""
    kernel = build(era, bits=bits, unused=True)
    out = run(*kernel.options, kernel_file(kernel.data))
    assert sorted(out) == sorted(kernel.symvers())
    assert {line.split("\t")[3] for line in out} >= {
        "EXPORT_UNUSED_SYMBOL", "EXPORT_UNUSED_SYMBOL_GPL", "EXPORT_SYMBOL_GPL_FUTURE"}


@pytest.mark.parametrize("era", ["2.6.12", "2.6.18", "2.6.32", "4.10", "5.4", "5.12", "6.14",
                                 "7.2"])
@pytest.mark.parametrize("big", [False, True])
def test_without_modversions(era, big, run, kernel_file):
    """CONFIG_MODVERSIONS=n: empty kcrctab sections, every CRC 0x00000000."""
    kernel = build(era, bits=64, big=big, modversions=False)
    out = run(*kernel.options, kernel_file(kernel.data))
    assert sorted(out) == sorted(kernel.symvers())
    assert all(line.startswith("0x00000000\t") for line in out)


@pytest.mark.parametrize("era", ["4.10", "4.19", "5.10", "5.12"])
@pytest.mark.parametrize("bits,big", [(64, True), (64, False), (32, True)])
def test_relative_crcs(era, bits, big, run, kernel_file):
    """CONFIG_MODULE_REL_CRCS (relocatable powerpc, s390): slots hold offsets to the CRC."""
    kernel = build(era, bits=bits, big=big, prel32=False, rel_crcs=True)
    assert kernel.layout["rel_crcs"]
    out = run(*kernel.options, kernel_file(kernel.data))
    assert sorted(out) == sorted(kernel.symvers())


@pytest.mark.parametrize("era", ["3.10", "5.10", "5.12", "5.19", "6.14"])
@pytest.mark.parametrize("bits,big,prel32", [(64, False, True), (64, True, False),
                                             (32, False, False)])
def test_direct_search_without_symsearch(era, bits, big, prel32, run, kernel_file):
    """When the symsearch array is not there, the tables are located directly."""
    kernel = build(era, bits=bits, big=big, prel32=prel32, unused=False)
    data = bytearray(kernel.data)
    at = kernel.symsearch_offset
    data[at:at + 5 * 32] = bytes(5 * 32)
    out = run(*kernel.options, kernel_file(bytes(data)))
    assert sorted(out) == sorted(kernel.symvers())


@pytest.mark.parametrize("version", ["7.1", "7.2", "7.2.13+deb14-amd64", "8.0"])
def test_kflagstab_kernels(version, run, kernel_file):
    """7.1+: one sorted __ksymtab, GPL-only from __kflagstab, CRCs in __kcrctab."""
    kernel = build("7.2", bits=64)
    out = run("-b", "64", "-B", "ffffffff81000000", "-k", version, kernel_file(kernel.data))
    assert sorted(out) == sorted(kernel.symvers())
    assert any("\tEXPORT_SYMBOL_GPL\t" in line for line in out)
    assert not any(line.startswith("0x00000000") for line in out)


@pytest.mark.parametrize("version", ["5.15", "5.15.0-1-amd64", "5.15+", "5.15.12"])
def test_version_spellings(version, run, kernel_file):
    kernel = build("5.12", bits=64)
    out = run("-b", "64", "-B", "ffffffff81000000", "-k", version, kernel_file(kernel.data))
    assert sorted(out) == sorted(kernel.symvers())


def test_old_is_the_default_version(run, kernel_file):
    kernel = build("2.6.32", bits=32)
    out = run("-B", "c0008000", kernel_file(kernel.data))
    assert sorted(out) == sorted(kernel.symvers())


def test_base_address_with_0x(run, kernel_file):
    kernel = build("4.19", bits=32, big=True, prel32=False)
    out = run("-b", "32", "-e", "big", "-B", "0xC0008000", "-k", "4.19+", "-p", "n",
              kernel_file(kernel.data))
    assert sorted(out) == sorted(kernel.symvers())


@pytest.mark.parametrize("case", MATRIX, ids=[ident(c) for c in MATRIX])
def test_layout_detected(case, run, kernel_file):
    """python extract_symvers.py vmlinux: every option detected from the image."""
    era, bits, big, prel32 = case
    kernel = build(era, bits=bits, big=big, prel32=prel32)
    out = run(kernel_file(kernel.data))
    assert sorted(out) == sorted(kernel.symvers())


@pytest.mark.parametrize("era", ["5.10", "6.14", "7.2"])
def test_duplicate_export_is_listed_once(era, run, kernel_file):
    """arm64 5.10 exports __memcpy, memcpy, __memset... twice; modpost lists them once."""
    from kernelimage import ERAS, make_exports
    exports = make_exports(ERAS[era])
    exports.append(exports[5])
    kernel = build(era, bits=64, exports=exports)
    out = run(kernel_file(kernel.data))
    assert sorted(out) == sorted(set(kernel.symvers()))
    assert len(out) == len(exports) - 1


def test_differing_duplicates_are_an_error(fail, kernel_file):
    import dataclasses
    from kernelimage import ERAS, make_exports
    exports = make_exports(ERAS["6.14"])
    exports.append(dataclasses.replace(exports[5], crc=exports[5].crc ^ 1))
    kernel = build("6.14", bits=64, exports=exports)
    status, err = fail(*kernel.options, kernel_file(kernel.data))
    assert status == 6
    assert "exported twice, differently" in err


# --- Before 2.6.27: no symsearch array, tables in link order ---------------------------------

@pytest.mark.parametrize("era,columns", [("2.6.0", 3), ("2.6.12", 3), ("2.6.18", 4)])
def test_old_columns(era, columns, run, kernel_file):
    """modpost wrote `crc symbol module` until 2.6.17, the export type from 2.6.18."""
    kernel = build(era, bits=32)
    out = run(kernel_file(kernel.data))
    assert sorted(out) == sorted(kernel.symvers())
    assert {line.count("\t") + 1 for line in out} == {columns}


@pytest.mark.parametrize("era,added", [("2.6.0", ["cleanup_module", "struct_module"]),
                                       ("2.6.12", ["struct_module"]), ("2.6.18", [])])
def test_modpost_adds_its_own_vmlinux_lines(era, added, run, kernel_file):
    """2.6.0-2.6.16 modpost lists struct_module (and before 2.6.9 cleanup_module) for vmlinux
    with CRC 0 whether the kernel exports it or not (novanta's 2.6.12 Module.symvers has it)."""
    kernel = build(era, bits=32, modversions=False)
    out = run(kernel_file(kernel.data))
    assert sorted(out) == sorted(kernel.symvers())
    assert sorted(line.split("\t")[1] for line in out
                  if line.split("\t")[1] in ("cleanup_module", "struct_module")) == added


def test_exported_struct_module_keeps_its_crc(run, kernel_file):
    """With CONFIG_MODVERSIONS kernel/module.c exports struct_module: its real CRC, once."""
    from kernelimage import ERAS, Export, make_exports
    exports = make_exports(ERAS["2.6.12"]) + [Export("struct_module", 0x1234abcd,
                                                     "EXPORT_SYMBOL")]
    kernel = build("2.6.12", bits=32, exports=exports)
    out = run(*kernel.options, kernel_file(kernel.data))
    assert "0x1234abcd\tstruct_module\tvmlinux" in out
    assert sorted(out) == sorted(kernel.symvers())


@pytest.mark.parametrize("bits,big", [(32, False), (32, True), (64, False), (64, True)])
@pytest.mark.parametrize("modversions", [True, False])
def test_old_tables_split_by_their_bounds(bits, big, modversions, run, kernel_file):
    """2.6.18-2.6.26: the export types come from the bounds find_symbol() refers to (a
    literal pool), not from the kallsyms-like table that points at every entry; a table of
    one entry has its two bounds side by side."""
    from kernelimage import ERAS, GPL, GPL_FUTURE, make_exports
    exports = make_exports(ERAS["2.6.18"], count=90, unused=True)
    future = [e for e in exports if e.export == GPL_FUTURE]
    exports = [e for e in exports if e.export != GPL_FUTURE] + future[:1]
    kernel = build("2.6.18", bits=bits, big=big, exports=exports, modversions=modversions)
    out = run(kernel_file(kernel.data))
    assert sorted(out) == sorted(kernel.symvers())
    assert sum("\tEXPORT_SYMBOL_GPL_FUTURE" in line for line in out) == 1
    assert sum(line.endswith("\t" + GPL) for line in out) > 10


def test_old_tables_without_their_bounds_are_an_error(fail, kernel_file):
    """No word refers to the bounds (e.g. MIPS, which builds addresses from two halves):
    the export types cannot be known, and a guess would be wrong lines."""
    kernel = build("2.6.18", bits=32)
    data = bytearray(kernel.data)
    for offset, value in kernel.pointers:
        if kernel.layout["pool"] <= offset < kernel.layout["pool"] + 4 * 20:
            data[offset:offset + 4] = bytes(4)
    status, err = fail(*kernel.options, kernel_file(bytes(data)))
    assert status == 5
