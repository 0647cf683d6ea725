"""Damaged dumps: never a made-up value, never all for one.  A byte the dump does not hold is
never read as zero; a module that cannot be read whole is named (exit 9) and the others are
printed; a broken link of the module list is walked around; a truncated file is said; and
whatever a header claims, memory and time stay bounded (sparse files of any size).  Dumps
built by memdump.py and archives.py, then damaged byte by byte."""

import struct
import zlib

import pytest

import extract_symvers
from archives import kdump
from memdump import (MMUS, STRUCT_MODULE, aliased_module_tables, bitmap_beyond,
                     kernel_with_modules, module_btf, paged_memory, phnum_beyond, virtual_dump)
from kernelimage import PLAIN

SHAPE = STRUCT_MODULE[("6.1", 8)]
SYMS, CRCS, COUNT = SHAPE["tables"][PLAIN]
LIST = 8        # struct module's list_head


def word(memory, address, offset, value=None, fmt="<Q"):
    """The word at `offset` of the region at `address`; with `value`, written there."""
    data = bytearray(memory.regions[address])
    if value is not None:
        struct.pack_into(fmt, data, offset, value)
        memory.regions[address] = bytes(data)
    return struct.unpack_from(fmt, data, offset)[0]


def lines_of(memory, *names):
    """The true lines of the modules `names`."""
    return [line for line in memory.symvers("6.14") if line.split("\t")[2] in names]


def check(result, memory, missing=(), status=None, named=()):
    """Every line printed is a true one, each once; all but those of the `missing` modules
    are printed; each of `named` (a module's name or address) is on stderr; exit 9 when
    anything is missing (or `status`)."""
    truth = memory.symvers("6.14")
    assert len(result.lines) == len(set(result.lines)), "duplicate lines"
    assert set(result.lines) <= set(truth), set(result.lines) - set(truth)
    assert sorted(result.lines) == sorted(set(truth) - set(lines_of(memory, *missing)))
    expected = status if status is not None else 9 if missing else 0
    assert result.status == expected, result.err
    for name in named:
        assert name in result.err, name
    assert "0x00000000\t" not in result.out


def dump(tmp_path, memory, btf=True):
    path = tmp_path / "dump.elf"
    virtual_dump(path, memory, module_btf("6.1", 8) if btf else None)
    return path


# --- A byte the dump does not hold ---------------------------------------------------------

def test_a_crc_table_not_in_the_dump(tmp_path, run):
    """mod_1's CRCs are a hole of its tables' segment: mod_1 named, the others printed."""
    memory = kernel_with_modules()
    m = memory.modules[1]
    crcs = word(memory, m.address, CRCS)
    data = memory.regions.pop(m.table)
    low, high = crcs - m.table, crcs - m.table + 4 * len(m.exports)
    memory.regions[m.table] = data[:low]
    memory.regions[m.table + high] = data[high:]
    result = run(dump(tmp_path, memory))
    check(result, memory, ["mod_1"], named=["mod_1", "CRC table", "not in the dump"])


@pytest.mark.parametrize("btf", [True, False], ids=["btf", "vote"])
def test_crcs_at_an_unmapped_page(btf, tmp_path, run):
    """mod_3's crcs points at a guard page: no CRC 0x00000000, mod_3 named."""
    memory = kernel_with_modules()
    word(memory, memory.modules[3].address, CRCS, memory.modules[3].table + 0xF000)
    result = run(dump(tmp_path, memory, btf))
    check(result, memory, ["mod_3"], named=["mod_3 cannot be read whole"])


def test_struct_module_cut_by_a_truncated_file(tmp_path, run):
    """The file ends inside mod_4's struct module, after its head: the truncation said,
    mod_4 named, the others printed."""
    memory = kernel_with_modules(stale=False)
    path = dump(tmp_path, memory)
    data = path.read_bytes()
    count, = struct.unpack_from("<H", data, 56)
    for i in range(count):
        kind, _, offset, vaddr = struct.unpack_from("<IIQQ", data, 64 + 56 * i)
        if kind == 1 and vaddr == memory.modules[4].address:
            break
    with open(path, "r+b") as f:
        f.truncate(offset + 0x80)
    result = run(path)
    check(result, memory, ["mod_4"], named=["the ELF core dump is truncated", "mod_4"])


# --- One bad module costs only itself ------------------------------------------------------

def test_a_table_not_valid(tmp_path, run):
    """mod_1's symbol table pointer one byte off: its names are not names; mod_1 named (once
    exit 6 for the whole run)."""
    memory = kernel_with_modules()
    address = memory.modules[1].address
    word(memory, address, SYMS, word(memory, address, SYMS) + 1)
    result = run(dump(tmp_path, memory))
    check(result, memory, ["mod_1"], named=["mod_1 cannot be read whole: its EXPORT_SYMBOL"
                                            .replace(" whole:", " whole, left out:")])


@pytest.mark.parametrize("fields", [(SYMS, CRCS, COUNT), (CRCS,)], ids=["tables", "crcs"])
def test_exports_from_another_modules_tables(fields, tmp_path, run):
    """mod_4's EXPORT_SYMBOL fields (or its CRC pointer alone) point at mod_3's: the overlap
    said, naming both, and neither's lines printed twice or with the other's CRCs (nor at
    all: which is right is not known)."""
    memory = kernel_with_modules()
    one, other = memory.modules[3].address, memory.modules[4].address
    for offset in fields:
        fmt = "<I" if offset == COUNT else "<Q"
        word(memory, other, offset, word(memory, one, offset, fmt=fmt), fmt=fmt)
    result = run(dump(tmp_path, memory))
    check(result, memory, ["mod_3", "mod_4"], named=["overlaps", "mod_3", "mod_4"])


# --- The module list: each link checked on its own -----------------------------------------

def node(memory, i):
    return memory.modules[i].address + LIST


@pytest.mark.parametrize("damage", ["next to itself", "next unmapped", "two-node cycle",
                                    "two-node cycle, both ways"])
def test_a_broken_link_is_walked_around(damage, tmp_path, run):
    """mod_2's next pointer broken (to itself, to unmapped memory, back to mod_1; and mod_1's
    prev to mod_2: a ring of two, every link agreeing): the list is walked from the other
    direction; every module printed, the break said."""
    memory = kernel_with_modules()
    target = {"next to itself": node(memory, 2), "next unmapped": 0xFFFFFFFFC0F00000}.get(
        damage, node(memory, 1))
    word(memory, memory.modules[2].address, LIST, target)
    if damage.endswith("both ways"):
        word(memory, memory.modules[1].address, LIST + 8, node(memory, 2))
    result = run(dump(tmp_path, memory))
    check(result, memory, named=["the module list is broken"])
    assert "5 modules on the module list" in result.err


def test_a_cycle_not_through_the_list_head(tmp_path, run):
    """mod_3's next is mod_1 and mod_1's prev mod_3: a ring of three modules, every link
    agreeing, through no list head: not the list, but the stretch of it that mod_0's next
    and mod_4's prev lead to; every module printed, the breaks said."""
    memory = kernel_with_modules(stale=False)
    word(memory, memory.modules[3].address, LIST, node(memory, 1))
    word(memory, memory.modules[1].address, LIST + 8, node(memory, 3))
    result = run(dump(tmp_path, memory))
    check(result, memory, named=["the module list is broken: the link from %#x (mod_0) to "
                                 "%#x (mod_1) is broken one way" % (node(memory, 0),
                                                                    node(memory, 1))])


def test_a_name_without_its_nul(tmp_path, run):
    """mod_1's name fills its field: named by its address, the others printed."""
    memory = kernel_with_modules()
    address = memory.modules[1].address
    data = bytearray(memory.regions[address])
    data[24:24 + 56] = b"x" * 56
    memory.regions[address] = bytes(data)
    result = run(dump(tmp_path, memory))
    check(result, memory, ["mod_1"], named=["the module at %#x cannot be read whole" % address])


def test_a_module_not_in_the_dump(tmp_path, run):
    """mod_1's struct module is not in the dump: the node between mod_0 and mod_2 (whose
    links lead to it) is walked around, named by its address, exit 9."""
    memory = kernel_with_modules(stale=False)
    del memory.regions[memory.modules[1].address]
    result = run(dump(tmp_path, memory))
    check(result, memory, ["mod_1"], named=[
        "the module at %#x cannot be read whole, left out: its struct module's head (state, "
        "list, a name with its NUL) is not in the dump" % memory.modules[1].address])


def test_two_modules_not_in_the_dump_are_a_gap(tmp_path, run):
    """mod_1's and mod_2's struct modules are not in the dump: the list is read up to them
    and from after them; the gap said, exit 9."""
    memory = kernel_with_modules(stale=False)
    for i in (1, 2):
        del memory.regions[memory.modules[i].address]
    result = run(dump(tmp_path, memory))
    check(result, memory, ["mod_1", "mod_2"], named=[
        "the module list cannot be read whole", "before the node at %#x" % node(memory, 3)])


def test_a_module_list_not_recovered_is_a_warning(tmp_path, run):
    """The list head not in the dump: the modules are seen but no list; a warning, exit 9,
    vmlinux's lines printed."""
    memory = kernel_with_modules(stale=False)
    del memory.regions[memory.head]
    result = run(dump(tmp_path, memory))
    check(result, memory, ["mod_%d" % i for i in range(5)],
          named=["warning: the module list cannot be read whole: ",
                 "struct module heads in module memory, but no module list"])


# --- Truncated files ----------------------------------------------------------------------

KDUMP_INFO = b"OSRELEASE=6.14.0-test\nPAGESIZE=4096\n"


def kdump_file(tmp_path, flattened=False):
    from kernelimage import build
    kernel = build("6.14", base=0xFFFFFFFF81000000)
    memory = bytearray(24 << 20)
    memory[16 << 20:(16 << 20) + len(kernel.data)] = kernel.data
    memory[-4096:-4000] = (b"the last page" * 7).ljust(96, b".")
    path = tmp_path / "dump.kdump"
    path.write_bytes(kdump(bytes(memory), lambda p: (zlib.compress(p), 1), KDUMP_INFO,
                           flattened=flattened))
    return path, kernel


def test_a_dump_truncated_before_its_modules(tmp_path, run):
    """The file ends before module memory: no module list in what it holds, said as a
    warning, exit 9 (not "no module list", exit 0)."""
    memory = kernel_with_modules(stale=False)
    path = dump(tmp_path, memory)
    data = path.read_bytes()
    count, = struct.unpack_from("<H", data, 56)
    offsets = [struct.unpack_from("<IIQQ", data, 64 + 56 * i) for i in range(count)]
    first = min(offset for kind, _, offset, vaddr in offsets
                if kind == 1 and vaddr >= 0xFFFFFFFFC0000000)
    with open(path, "r+b") as f:
        f.truncate(first)
    result = run(path)
    check(result, memory, ["mod_%d" % i for i in range(5)], named=[
        "the ELF core dump is truncated",
        "warning: the module list cannot be read whole: no module list in what the truncated "
        "dump holds"])


def test_a_truncated_kdump_is_said(tmp_path, run):
    """A kdump file cut in its last page: said; no module list in what it holds, exit 9."""
    path, kernel = kdump_file(tmp_path)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 20)
    result = run(path)
    assert (result.status, sorted(result.lines)) == (9, sorted(kernel.symvers())), result.err
    assert "warning: the kdump-compressed dump is truncated: " in result.err
    assert "no module list in what the truncated dump holds" in result.err
    assert "corrupt" not in result.err      # its last page not in the file, not corrupt


def test_a_flattened_file_without_its_end_grown_sparse(tmp_path, run):
    """makedumpfile -F's records without the end record, the file grown to 8 GiB of
    zeros (sparse): the records stop at the zeros, said (exit 9: what the records after
    would say is not known); read in a moment."""
    path, kernel = kdump_file(tmp_path, flattened=True)
    size = path.stat().st_size - 16
    with open(path, "r+b") as f:
        f.truncate(size)
        f.truncate(8 << 30)
    result = run(path)
    assert (result.status, sorted(result.lines)) == (9, sorted(kernel.symvers())), result.err
    assert "flattened file without its end record" in result.err


# --- Headers: whatever they claim --------------------------------------------------------

@pytest.mark.parametrize("ones", [0, 1 << 20], ids=["as-it-was", "ones"])
def test_a_kdump_bitmap_of_8192_blocks(ones, tmp_path, run):
    """A kdump header claiming 8192 bitmap blocks of a 2^40-page machine, the file sparse to
    8 GiB to hold them (with `ones`, that many bytes of the bitmap all ones: 8 million
    pages): no memory in proportion (an index over the bitmap; no more descriptors than the
    file holds on disk), one line."""
    path, kernel = kdump_file(tmp_path)
    bitmap_beyond(path, ones)
    result = run(path)
    assert result.status in (0, 4), result.err
    assert set(result.lines) <= set(kernel.symvers())


@pytest.mark.parametrize("phnum,shinfo", [(0xFFFF, 9000000), (0xFFFE, None), (0xFFFF, 70000)])
def test_program_header_counts(phnum, shinfo, tmp_path, run):
    """e_phnum PN_XNUM with 9 million in section header 0's sh_info: more headers than the
    file holds, exit 4, one line; 65534 or 70 000 (the file holds their bytes: the headers
    after the real ones are its data): what is printed is true, the segments that claim
    more than the file holds said (once an internal error)."""
    memory = kernel_with_modules(count=1, stale=False)
    path = dump(tmp_path, memory)
    phnum_beyond(path, phnum, shinfo)
    result = run(path)
    if shinfo == 9000000:
        assert result.status == extract_symvers.EXIT_FORMAT, result.err
        assert "9000000 program headers" in result.errors[0]
    else:
        assert result.status == 0, result.err
        assert set(result.lines) <= set(memory.symvers("6.14"))
        assert "warning: the ELF core dump is truncated" in result.err


@pytest.mark.parametrize("field,value", [(32, 1 << 62), (32, 0xFFFFFFFFFFFFFFFF), (54, 0),
                                         (54, 0xFFFF), (54, 1)])
def test_any_program_header_table_place(field, value, tmp_path, run):
    """Any e_phoff, any e_phentsize: no internal error."""
    memory = kernel_with_modules(count=1, stale=False)
    path = dump(tmp_path, memory)
    with open(path, "r+b") as f:
        f.seek(field)
        f.write(struct.pack("<Q" if field == 32 else "<H", value))
    result = run(path)
    assert result.status in (0, extract_symvers.EXIT_FORMAT, 9), result.err


def test_page_tables_that_alias_one_table(tmp_path, run):
    """Every entry of the tables of module memory leads to one table: each table is walked
    once (else 512^3 entries); what is printed is true."""
    memory = kernel_with_modules(stale=False)
    aliased_module_tables(tmp_path / "dump.elf", memory)
    result = run(tmp_path / "dump.elf")
    assert result.status in (0, 9), result.err
    assert set(result.lines) <= set(memory.symvers("6.14"))


def test_a_corrupt_kdump_page_costs_only_its_module(tmp_path, run):
    """makedumpfile -c of a kernel with modules, the compressed data of the page holding
    mod_1's tables corrupt: that page is not in the dump (said once), mod_1 named, the
    others printed (once exit 4 for all)."""
    memory = kernel_with_modules(stale=False)
    physical, root, offset = paged_memory(memory, MMUS["x86-64"], large=21, start=50 << 20)
    info = ("OSRELEASE=6.14.0-test\nPAGESIZE=4096\nSYMBOL(init_top_pgt)=%x\n"
            "NUMBER(phys_base)=%#x\n" % ((root + offset) % (1 << 64),
                                         (0xFFFFFFFF80000000 - offset) % (1 << 64))).encode()
    start, image = physical.image()
    ram = bytes(start) + image
    table = memory.regions[memory.modules[1].table]
    pfn = ram.index(table[:256]) // 4096
    data = bytearray(kdump(ram, lambda p: (zlib.compress(p), 1), info, machine=b"x86_64"))
    # the page's descriptor: the n-th of the table after the header, sub-header and bitmaps
    bitmap_blocks, = struct.unpack_from("<I", data, 436)
    dumped = [p for p in range(len(ram) // 4096)
              if ram[p * 4096:(p + 1) * 4096] != bytes(4096)]
    at = 4096 * (2 + bitmap_blocks) + 24 * dumped.index(pfn)
    page_at, size = struct.unpack_from("<qI", data, at)
    data[page_at:page_at + size] = b"\xff" * size
    (tmp_path / "dump").write_bytes(bytes(data))
    result = run(tmp_path / "dump")
    check(result, memory, ["mod_1"], named=["kdump-compressed page at %#x is corrupt" % page_at,
                                            "mod_1 cannot be read whole"])
