"""Every export-table layout x 32/64-bit x little/big endian x absolute/PREL32, on images
built by kernelimage.py, through the command line as a user runs it."""

import dataclasses

import pytest

from kernelimage import ERAS, GPL, GPL_FUTURE, ROW_STARTS, Export, build, make_exports

MATRIX = [(era, bits, big, prel32)
          for era in ERAS if era not in ROW_STARTS for bits in (32, 64) for big in (False, True)
          for prel32 in ((False, True) if ERAS[era].prel32 else (False,))]


def ident(case):
    era, bits, big, prel32 = case
    return "%s-%d-%s-%s" % (era, bits, "be" if big else "le", "prel32" if prel32 else "abs")


@pytest.mark.parametrize("case", MATRIX, ids=[ident(c) for c in MATRIX])
def test_layout(case, run, assert_symvers, kernels, kernel_file):
    """python extract_symvers.py -b BITS -B BASE -k VERSION -e ENDIAN [-p y|n] vmlinux"""
    era, bits, big, prel32 = case
    kernel = kernels(era, bits=bits, big=big, prel32=prel32)
    assert_symvers(run(*kernel.options, kernel_file(kernel.data)), kernel)


@pytest.mark.parametrize("case", MATRIX, ids=[ident(c) for c in MATRIX])
def test_layout_detected(case, run, assert_symvers, kernels, kernel_file):
    """python extract_symvers.py vmlinux: every option detected from the image."""
    era, bits, big, prel32 = case
    kernel = kernels(era, bits=bits, big=big, prel32=prel32)
    assert_symvers(run(kernel_file(kernel.data)), kernel)


@pytest.mark.parametrize("era", ROW_STARTS)
@pytest.mark.parametrize("detected", [False, True], ids=["given", "detected"])
def test_the_release_a_row_starts_at(era, detected, run, assert_symvers, kernels, kernel_file):
    """A kernel of the first (or last) release of a row of the layout history, its release
    given with -k 5.5.12 or read from its banner: the columns, the lines modpost adds and the
    tables of that release (5.5.0-5.5.12 namespace in the middle, from 5.5.13 last)."""
    kernel = kernels(era, bits=64)
    options = kernel.options if not detected else []
    assert_symvers(run(*options, kernel_file(kernel.data)), kernel)


def test_crcs_that_read_as_offsets_from_5_19(run, assert_symvers, kernel_file):
    """From 5.19 a CRC slot holds the CRC (CONFIG_MODULE_REL_CRCS is gone), even where
    every value, taken as an offset from its slot, would land on a word of the image."""
    exports = [dataclasses.replace(x, crc=4 * (i + 1))
               for i, x in enumerate(make_exports(ERAS["5.19"], seed=3))]
    kernel = build("5.19", exports=exports)
    assert_symvers(run(*kernel.options, kernel_file(kernel.data)), kernel)


def test_bookworm_like_kernel(run, assert_symvers, kernels, kernel_file):
    """python extract_symvers.py -b 64 -B ffffffff81000000 -k 6.1 vmlinux > Module.symvers"""
    kernel = kernels("5.19", bits=64)
    result = run("-b", "64", "-B", "ffffffff81000000", "-k", "6.1", kernel_file(kernel.data))
    assert_symvers(result, kernel)
    assert all(line.count("\t") == 4 for line in result.lines)    # modpost 5.6+: 5 columns


def test_pre_5_6_columns(run, assert_symvers, kernels, kernel_file):
    kernel = kernels("5.4.20", bits=64)
    result = run(*kernel.options, kernel_file(kernel.data))
    assert_symvers(result, kernel)
    namespaced = [line for line in result.lines if "\tUSB_STORAGE\t" in line]
    assert namespaced and all(line.split("\t")[3] == "vmlinux" for line in namespaced)


@pytest.mark.parametrize("era", ["2.6.18", "2.6.25", "2.6.32", "3.10", "4.10", "4.19", "5.10"])
@pytest.mark.parametrize("bits", [32, 64])
def test_unused_symbols(era, bits, run, assert_symvers, kernels, kernel_file):
    """CONFIG_UNUSED_SYMBOLS: two more symsearch entries and export types."""
    kernel = kernels(era, bits=bits, unused=True)
    result = run(*kernel.options, kernel_file(kernel.data))
    assert_symvers(result, kernel)
    assert {line.split("\t")[3] for line in result.lines} >= {
        "EXPORT_UNUSED_SYMBOL", "EXPORT_UNUSED_SYMBOL_GPL", "EXPORT_SYMBOL_GPL_FUTURE"}


@pytest.mark.parametrize("era", ["2.6.12", "2.6.18", "2.6.32", "4.10", "5.4", "5.12", "6.14",
                                 "7.2"])
@pytest.mark.parametrize("big", [False, True])
def test_without_modversions(era, big, run, assert_symvers, kernels, kernel_file):
    """CONFIG_MODVERSIONS=n: empty kcrctab sections, every CRC 0x00000000."""
    kernel = kernels(era, bits=64, big=big, modversions=False)
    result = run(*kernel.options, kernel_file(kernel.data))
    assert_symvers(result, kernel)
    assert all(line.startswith("0x00000000\t") for line in result.lines)


@pytest.mark.parametrize("era", ["4.10", "4.19", "5.10", "5.12"])
@pytest.mark.parametrize("bits,big", [(64, True), (64, False), (32, True)])
def test_relative_crcs(era, bits, big, run, assert_symvers, kernels, kernel_file):
    """CONFIG_MODULE_REL_CRCS (relocatable powerpc, s390): slots hold offsets to the CRC."""
    kernel = kernels(era, bits=bits, big=big, prel32=False, rel_crcs=True)
    assert kernel.layout["rel_crcs"]
    assert_symvers(run(*kernel.options, kernel_file(kernel.data)), kernel)


@pytest.mark.parametrize("era", ["3.10", "5.10", "5.12", "5.19", "6.14"])
@pytest.mark.parametrize("bits,big,prel32", [(64, False, True), (64, True, False),
                                             (32, False, False)])
def test_direct_search_without_symsearch(era, bits, big, prel32, run, assert_symvers, kernels,
                                         kernel_file):
    """When the symsearch array is not there, the tables are located directly."""
    kernel = kernels(era, bits=bits, big=big, prel32=prel32)
    data = bytearray(kernel.data)
    at = kernel.symsearch_offset
    data[at:at + 5 * 32] = bytes(5 * 32)
    assert_symvers(run(*kernel.options, kernel_file(bytes(data))), kernel)


@pytest.mark.parametrize("version", ["7.1", "7.2", "7.2.13+deb14-amd64", "8.0"])
def test_kflagstab_kernels(version, run, assert_symvers, kernels, kernel_file):
    """7.1+: one sorted __ksymtab, GPL-only from __kflagstab, CRCs in __kcrctab."""
    kernel = kernels("7.2", bits=64)
    result = run("-b", "64", "-B", "ffffffff81000000", "-k", version, kernel_file(kernel.data))
    assert_symvers(result, kernel)
    assert any("\tEXPORT_SYMBOL_GPL\t" in line for line in result.lines)
    assert not any(line.startswith("0x00000000") for line in result.lines)


@pytest.mark.parametrize("version", ["5.15", "5.15.0-1-amd64", "5.15+", "5.15.12"])
def test_version_spellings(version, run, assert_symvers, kernels, kernel_file):
    kernel = kernels("5.12", bits=64)
    assert_symvers(run("-b", "64", "-B", "ffffffff81000000", "-k", version,
                       kernel_file(kernel.data)), kernel)


def test_old_is_the_default_version(run, assert_symvers, kernels, kernel_file):
    kernel = kernels("2.6.32", bits=32)
    assert_symvers(run("-B", "c0008000", kernel_file(kernel.data)), kernel)


def test_base_address_with_0x(run, assert_symvers, kernels, kernel_file):
    kernel = kernels("4.19", bits=32, big=True, prel32=False)
    assert_symvers(run("-b", "32", "-e", "big", "-B", "0xC0008000", "-k", "4.19+", "-p", "n",
                       kernel_file(kernel.data)), kernel)


@pytest.mark.parametrize("era", ["5.10", "6.14", "7.2"])
def test_duplicate_export_is_listed_once(era, run, assert_symvers, kernel_file):
    """arm64 5.10 exports __memcpy, memcpy, __memset... twice; modpost lists them once."""
    exports = make_exports(ERAS[era])
    exports.append(exports[5])
    kernel = build(era, bits=64, exports=exports)
    assert len(kernel.symvers()) == len(exports)
    assert_symvers(run(kernel_file(kernel.data)), sorted(set(kernel.symvers())))


def test_differing_duplicates_are_an_error(run, kernel_file):
    exports = make_exports(ERAS["6.14"])
    exports.append(dataclasses.replace(exports[5], crc=exports[5].crc ^ 1))
    kernel = build("6.14", bits=64, exports=exports)
    result = run(*kernel.options, kernel_file(kernel.data))
    assert result.status == 6
    assert "exported twice, differently" in result.errors[0]


# --- Before 2.6.27: no symsearch array, tables in link order ---------------------------------

@pytest.mark.parametrize("era,columns", [("2.6.0", 3), ("2.6.12", 3), ("2.6.18", 4)])
def test_old_columns(era, columns, run, assert_symvers, kernels, kernel_file):
    """modpost wrote `crc symbol module` until 2.6.17, the export type from 2.6.18."""
    kernel = kernels(era, bits=32)
    result = run(kernel_file(kernel.data))
    assert_symvers(result, kernel)
    assert {line.count("\t") + 1 for line in result.lines} == {columns}


@pytest.mark.parametrize("era,added", [("2.6.0", ["cleanup_module", "struct_module"]),
                                       ("2.6.12", ["struct_module"]), ("2.6.18", [])])
def test_modpost_adds_its_own_vmlinux_lines(era, added, run, assert_symvers, kernels,
                                            kernel_file):
    """2.6.0-2.6.16 modpost lists struct_module (and before 2.6.9 cleanup_module) for vmlinux
    with CRC 0 whether the kernel exports it or not (novanta's 2.6.12 Module.symvers has it)."""
    kernel = kernels(era, bits=32, modversions=False)
    result = run(kernel_file(kernel.data))
    assert_symvers(result, kernel)
    assert sorted(line.split("\t")[1] for line in result.lines
                  if line.split("\t")[1] in ("cleanup_module", "struct_module")) == added


def test_exported_struct_module_keeps_its_crc(run, assert_symvers, kernel_file):
    """With CONFIG_MODVERSIONS kernel/module.c exports struct_module: its real CRC, once."""
    exports = make_exports(ERAS["2.6.12"]) + [Export("struct_module", 0x1234abcd,
                                                     "EXPORT_SYMBOL")]
    kernel = build("2.6.12", bits=32, exports=exports)
    result = run(*kernel.options, kernel_file(kernel.data))
    assert_symvers(result, kernel)
    assert "0x1234abcd\tstruct_module\tvmlinux" in result.lines


@pytest.mark.parametrize("bits,big", [(32, False), (32, True), (64, False), (64, True)])
@pytest.mark.parametrize("modversions", [True, False])
def test_old_tables_split_by_their_bounds(bits, big, modversions, run, assert_symvers,
                                          kernel_file):
    """2.6.18-2.6.26: the export types come from the bounds find_symbol() refers to (a
    literal pool), not from the kallsyms-like table that points at every entry; a table of
    one entry has its two bounds side by side."""
    exports = make_exports(ERAS["2.6.18"], count=90, unused=True)
    future = [e for e in exports if e.export == GPL_FUTURE]
    exports = [e for e in exports if e.export != GPL_FUTURE] + future[:1]
    kernel = build("2.6.18", bits=bits, big=big, exports=exports, modversions=modversions)
    result = run(kernel_file(kernel.data))
    assert_symvers(result, kernel)
    assert sum("\tEXPORT_SYMBOL_GPL_FUTURE" in line for line in result.lines) == 1
    assert sum(line.endswith("\t" + GPL) for line in result.lines) > 10


def test_old_tables_without_their_bounds_are_an_error(run, kernels, kernel_file):
    """No word refers to the bounds (e.g. MIPS, which builds addresses from two halves):
    the export types cannot be known, and a guess would be wrong lines."""
    kernel = kernels("2.6.18", bits=32)
    data = bytearray(kernel.data)
    for offset, value in kernel.pointers:
        if kernel.layout["pool"] <= offset < kernel.layout["pool"] + 4 * 20:
            data[offset:offset + 4] = bytes(4)
    result = run(*kernel.options, kernel_file(bytes(data)))
    assert result.status == 5
    assert "no word of the kernel's code refers to the bounds" in result.errors[0]
