"""Kernels in memory dumps and flash images: ELF core dumps (QEMU's dump-guest-memory with
and without paging, a saved /proc/vmcore, /proc/kcore) read sparsely around the kernel, and
a kernel deep inside a flash dump."""

import gzip
import os
import struct
import zlib

import pytest
import zstandard

import extract_symvers
from archives import elf_core, kdump
from kernelimage import build

KASLR = 0xFFFFFFFF9A200000
VMCOREINFO = (b"OSRELEASE=6.14.0-test\nPAGESIZE=4096\nKERNELOFFSET=19200000\n"
              b"SYMBOL(_stext)=ffffffff9a200000\n")


def test_kcore(tmp_path, run, assert_symvers):
    """kcore: KCORE_TEXT at a KASLR address, then vmalloc, the direct map of 16 GiB of RAM
    (holding the kernel again) and modules, in a file 'larger' than any disk; only the text
    segment is read."""
    kernel = build("6.14", base=KASLR)
    path = tmp_path / "kcore"
    ram = bytearray(64 << 20)
    ram[16 << 20:(16 << 20) + len(kernel.data)] = kernel.data
    no_paddr = (1 << 64) - 1        # fs/proc/kcore.c: vmalloc and modules have none
    elf_core(path, [(KASLR, 0, len(kernel.data), kernel.data),
                    (0xFFFFC90000000000, no_paddr, 32 << 30, b""),
                    (0xFFFF888000000000, 0, 16 << 30, bytes(ram)),
                    (0xFFFFFFFFC0000000, no_paddr, 1 << 30, b"")],
             notes=[(b"CORE", 1, bytes(336)), (b"VMCOREINFO", 0, VMCOREINFO)])
    assert os.path.getsize(path) > 48 << 30
    result = run("-v", path)      # -v: the bases tried too
    assert_symvers(result, kernel)
    assert "VMCOREINFO: OSRELEASE=6.14.0-test, KERNELOFFSET=19200000, " \
           "SYMBOL(_stext)=ffffffff9a200000, PAGESIZE=4096\n" in result.err
    assert "kernel banner at virtual %#x" % (KASLR + kernel.data.index(b"Linux version")) \
        in result.err
    assert "trying base %x" % KASLR in result.err


def test_memory_is_not_searched_for_payloads(tmp_path, run, assert_symvers):
    """The text segment of a kcore holding, before the running kernel, a gzip stream of
    another kernel (a vmlinuz in the page cache, a module's blob): memory is what runs, never
    searched for compressed payloads."""
    kernel, other = build("6.14", base=KASLR), build("5.4", seed=9)
    blob = gzip.compress(other.data)
    blob += bytes(-len(blob) % 4096)
    path = tmp_path / "kcore"
    elf_core(path, [(KASLR - len(blob), 0x1000000 - len(blob), len(blob) + len(kernel.data),
                     blob + kernel.data)],
             notes=[(b"VMCOREINFO", 0, VMCOREINFO)])
    result = run("-v", path)
    assert_symvers(result, kernel)
    assert "gzip" not in result.err


def test_qemu_paging_dump(tmp_path, run, assert_symvers):
    """dump-guest-memory -p: the kernel mapping and the direct map, virtual addresses."""
    kernel = build("5.19", base=KASLR)
    path = tmp_path / "dump.elf"
    half = len(kernel.data) // 2 & ~0xFFF          # the mapping split in two segments
    elf_core(path, [(0xFFFF888000000000, 0, 256 << 20, b"\0" * 4096),
                    (KASLR, 0x1000000, half, kernel.data[:half]),
                    (KASLR + half, 0x1000000 + half, len(kernel.data) - half,
                     kernel.data[half:])])
    assert_symvers(run(path), kernel)


def test_qemu_physical_dump(tmp_path, run, assert_symvers):
    """dump-guest-memory without -p: physical addresses only; the base is found as in a
    memsave dump."""
    kernel = build("6.14", base=0xFFFFFFFF81000000)
    low = bytes(640 << 10)
    ram = bytearray(128 << 20)
    ram[15 << 20:(15 << 20) + len(kernel.data)] = kernel.data
    path = tmp_path / "dump.elf"
    elf_core(path, [(0, 0, len(low), low), (0, 1 << 20, len(ram), bytes(ram))],
             notes=[(b"VMCOREINFO", 0, VMCOREINFO)])
    assert_symvers(run(path), kernel)


def test_window_from_the_text(tmp_path, run, assert_symvers):
    """A physical dump whose VMCOREINFO says _stext and phys_base (x86-64's): the window read
    starts at the kernel text's physical address, not 48 MiB before the banner."""
    kernel = build("6.14", base=KASLR)
    ram = bytearray(128 << 20)
    ram[39 << 20:(39 << 20) + len(kernel.data)] = kernel.data
    text = (1 << 20) + (39 << 20)           # RAM from 1 MiB
    info = VMCOREINFO + b"NUMBER(phys_base)=%#x\nSYMBOL(init_top_pgt)=ffffffff9b000000\n" % (
        text - (KASLR - 0xFFFFFFFF80000000))
    path = tmp_path / "dump.elf"
    elf_core(path, [(0, 1 << 20, len(ram), bytes(ram))], notes=[(b"VMCOREINFO", 0, info)])
    result = run("-v", path)
    assert_symvers(result, kernel)
    assert "reading %#x-" % text in result.err


def test_window_to_the_data(tmp_path, run, assert_symvers):
    """A dump whose VMCOREINFO says where init_uts_ns is (.data, after all of RO_DATA: the
    banner, the export tables, BTF): the window read ends there, not 80 MiB after the
    banner."""
    kernel = build("6.14", base=KASLR)
    ram = bytearray(128 << 20)
    ram[39 << 20:(39 << 20) + len(kernel.data)] = kernel.data
    text = (1 << 20) + (39 << 20)
    uts = KASLR + len(kernel.data) + 0x123
    info = VMCOREINFO + (b"NUMBER(phys_base)=%#x\nSYMBOL(init_top_pgt)=ffffffff9b000000\n"
                         b"SYMBOL(init_uts_ns)=%x\n") % (text - (KASLR - 0xFFFFFFFF80000000), uts)
    path = tmp_path / "dump.elf"
    elf_core(path, [(0, 1 << 20, len(ram), bytes(ram))], notes=[(b"VMCOREINFO", 0, info)])
    result = run("-v", path)
    assert_symvers(result, kernel)
    end = text + len(kernel.data) + 0x123 + 0xFFF & ~0xFFF
    assert "reading %#x-%#x (%d MiB)" % (text, end, (end - text) >> 20) in result.err


def test_core_without_kernel(tmp_path, run):
    path = tmp_path / "core"
    elf_core(path, [(0x400000, 0, 1 << 20, b"\x90" * 4096)])
    result = run(path)
    assert result.status == 4 and "none holding a kernel banner" in result.errors[0]


def test_probe_out_of_memory_is_a_failed_probe(tmp_path, run, assert_symvers, kernel_file,
                                              monkeypatch):
    """An LZMA header met by chance asking for a 1.5 GiB dictionary, before a plain kernel, on
    a machine where liblzma cannot allocate it (its LZMA_MEM_ERROR is Python's MemoryError):
    that magic is not a payload, the kernel after it is read."""
    def no_memory():
        raise MemoryError
    monkeypatch.setitem(extract_symvers.STREAMS, "lzma", no_memory)
    kernel = build("6.14", bits=32, base=0xC0008000)
    header = b"\x5d" + struct.pack("<IQ", 3 << 29, (1 << 64) - 1) + b"\0"
    data = os.urandom(100) + header + os.urandom(8192 - 100 - len(header)) + kernel.data
    assert_symvers(run(kernel_file(data)), kernel)


def test_kernel_deep_in_a_flash_dump(tmp_path, run, assert_symvers, kernel_file):
    """A 96 MiB flash dump, the gzip kernel at 40 MiB between other gzip streams."""
    kernel = build("6.14", bits=32, base=0xC0008000)
    noise = gzip.compress(os.urandom(1 << 16))
    dump = bytearray(os.urandom(96 << 20))
    dump[8 << 20:(8 << 20) + len(noise)] = noise
    payload = gzip.compress(kernel.data)
    dump[40 << 20:(40 << 20) + len(payload)] = payload
    assert_symvers(run(kernel_file(bytes(dump))), kernel)


COMPRESS = {"zlib": lambda page: (zlib.compress(page), 1),
            "zstd": lambda page: (zstandard.compress(page), 0x20),
            "raw": lambda page: (page, 0)}


@pytest.mark.parametrize("flattened", [False, True], ids=["kdump", "flattened"])
@pytest.mark.parametrize("method", COMPRESS)
def test_kdump_compressed(method, flattened, tmp_path, run, assert_symvers):
    """makedumpfile -c/-z (kdump-tools' default), and -F: the physical pages rebuilt."""
    kernel = build("6.14", base=0xFFFFFFFF81000000)
    memory = bytearray(48 << 20)
    memory[0x1000:0x1010] = b"low memory bytes"
    memory[16 << 20:(16 << 20) + len(kernel.data)] = kernel.data
    path = tmp_path / "dump.kdump"
    path.write_bytes(kdump(bytes(memory), COMPRESS[method], VMCOREINFO, flattened=flattened))
    result = run(path)
    assert_symvers(result, kernel)
    assert "VMCOREINFO: OSRELEASE=6.14.0-test" in result.err
    assert "kernel banner at physical %#x" % ((16 << 20) + kernel.data.index(b"Linux version")) \
        in result.err


def test_kdump_snappy_is_named(tmp_path, run):
    memory = bytearray(1 << 20)
    memory[0:9] = b"some data"
    (tmp_path / "dump").write_bytes(kdump(bytes(memory), lambda p: (p, 0x4)))
    result = run(tmp_path / "dump")
    assert result.status == 4 and "snappy" in result.errors[0]


def test_vmcoreinfo_says_where_the_text_is(tmp_path, run, assert_symvers):
    """A paging dump mapping the kernel twice (the direct map in small pieces first): the
    segment holding VMCOREINFO's SYMBOL(_stext) is read, at the kernel's own address."""
    kernel = build("4.10", bits=64, prel32=False, base=KASLR)     # needs the right base
    pieces = [(0xFFFF888001000000 + at, 0x1000000 + at, 4096, kernel.data[at:at + 4096])
              for at in range(0, len(kernel.data), 4096)]
    path = tmp_path / "dump.elf"
    elf_core(path, pieces + [(KASLR, 0x1000000, len(kernel.data), kernel.data)],
             notes=[(b"VMCOREINFO", 0, VMCOREINFO)])
    result = run(path)
    assert_symvers(result, kernel)
    assert "kernel banner at virtual %#x" % (KASLR + kernel.data.index(b"Linux version")) \
        in result.err
