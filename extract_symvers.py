#!/usr/bin/env python3
"""Recover a kernel's Module.symvers from the binary kernel alone.

    python extract_symvers.py [--modules /lib/modules/RELEASE] vmlinuz > Module.symvers

The kernel keeps every export in ``__ksymtab*`` tables of ``struct kernel_symbol``, with the
CRCs in parallel ``__kcrctab*`` tables.  From 2.6.27 to 7.0, kernel/module.c (later
kernel/module/main.c) has a ``symsearch`` array holding the start, stop and CRC pointers of
each table and its licence; this module finds that array, walks the tables with the layout of
the kernel version (the LAYOUTS table) and prints one Module.symvers line per export.  Before
2.6.27 and from 7.1 on there is no such array: the tables are located directly, and the same
direct search is the fallback whenever the array is not found.

The steps are separate functions: unpack() (file -> decompressed image), extract() (image ->
lines; options not given are detected, relative relocations applied when the pointers are
left to the boot code), find_symsearch()/find_tables_direct() (locate), walk() (read),
format_symvers() (write); module_symvers() does the same for the exports of .ko files
(read_modules() -> Module), and check_modules() says whether the kernel would load them.
Every failure raises ``SymversError``, whose ``status`` is the CLI's exit code.
"""

import argparse
import array
import bisect
import bz2
import collections
import itertools
import lzma
import operator
import os
import re
import struct
import sys
import tempfile
import zlib
from typing import NamedTuple, Optional

__version__ = "0.3.0"
__all__ = ["SymversError", "Layout", "LAYOUTS", "layout_for", "parse_version", "Payload",
           "unpack", "decompress_payload", "Image", "TableRef", "Symbol", "find_symsearch",
           "find_tables_direct", "walk", "format_symvers", "extract", "image_header",
           "relocate", "vermagic", "embedded_config", "Module", "read_module", "read_modules",
           "module_exports", "module_symvers", "modules_config", "Export", "parse_symvers",
           "parse_config", "Kernel", "same_magic", "check_module", "check_modules", "main"]

# Exit statuses, one per class of failure (argparse's usage errors are 2).
EXIT_INTERNAL = 1       # a bug in this program
EXIT_USAGE = 2
EXIT_INPUT = 3          # the input cannot be read
EXIT_FORMAT = 4         # not a kernel, unsupported or broken compression
EXIT_NOT_FOUND = 5      # the export tables were not found with these options
EXIT_INCONSISTENT = 6   # tables found, but what they hold is not a valid export list
EXIT_REFUSED = 7        # --check: the kernel would refuse a module

MAX_OUTPUT = 512 << 20  # a compressed payload expanding past this is refused as a bomb


class SymversError(Exception):
    """Every failure of this module; ``status`` is the exit code main() returns for it."""

    def __init__(self, message, status=EXIT_NOT_FOUND):
        super().__init__(message)
        self.status = status


# --- Kernel-version history --------------------------------------------------------------

class ExportTable(NamedTuple):
    export: str     # the export type Module.symvers names
    licence: int    # symsearch licence value (enum mod_license)
    unused: bool    # symsearch `unused` flag (CONFIG_UNUSED_SYMBOLS tables)
    suffix: str     # of its sections: __ksymtab<suffix>, __kcrctab<suffix>


PLAIN = ExportTable("EXPORT_SYMBOL", 0, False, "")
GPL = ExportTable("EXPORT_SYMBOL_GPL", 1, False, "_gpl")
GPL_FUTURE = ExportTable("EXPORT_SYMBOL_GPL_FUTURE", 2, False, "_gpl_future")
UNUSED = ExportTable("EXPORT_UNUSED_SYMBOL", 0, True, "_unused")
UNUSED_GPL = ExportTable("EXPORT_UNUSED_SYMBOL_GPL", 1, True, "_unused_gpl")

# Module.symvers columns, in the order modpost writes them.
COLS_PLAIN = ("crc", "name", "module")
COLS_EXPORT = ("crc", "name", "module", "export")
COLS_NS_MIDDLE = ("crc", "name", "namespace", "module", "export")
COLS_NS_LAST = ("crc", "name", "module", "export", "namespace")


class Layout(NamedTuple):
    since: tuple            # first kernel (major, minor, patch) with this layout
    symsearch: tuple        # ExportTables in symsearch array order; () = no static array
    unused_tables: tuple    # entries that follow with CONFIG_UNUSED_SYMBOLS
    unused_field: bool      # symsearch entries have `bool unused` after the licence
    section_order: tuple    # the ksymtab (and kcrctab) sections, in link order
    crc_width: int          # bytes per kcrctab slot; 0 = unsigned long (pointer size)
    rel_crcs: bool          # CONFIG_MODULE_REL_CRCS possible: slots may be self-relative
    prel32: bool            # kernel_symbol uses int offsets with -p y
    namespace: bool         # kernel_symbol has a namespace field
    sorted: bool            # each ksymtab is sorted by name
    flagstab: bool          # __kflagstab holds a byte per symbol, bit 0 = GPL-only
    columns: tuple          # Module.symvers columns
    modpost_adds: tuple     # vmlinux exports modpost lists (CRC 0) when the kernel lacks them


def _history(first, *changes):
    """The layout rows: the first in full, then each release as what it changed."""
    rows = [first]
    for since, change in changes:
        rows.append(rows[-1]._replace(since=since, **change))
    return tuple(rows)


LAYOUTS = _history(
    # 2.6.0: __find_symbol() walks __ksymtab and __ksymtab_gpl from their linker-script
    # bounds; tables in link order.  modpost (Module.symvers from 2.6.6) writes no export type
    # and lists cleanup_module and struct_module for vmlinux, CRC 0, unless the kernel has them
    Layout(since=(2, 6, 0), symsearch=(), unused_tables=(), unused_field=False,
           section_order=(PLAIN, GPL), crc_width=0, rel_crcs=False, prel32=False,
           namespace=False, sorted=False, flagstab=False, columns=COLS_PLAIN,
           modpost_adds=("cleanup_module", "struct_module")),
    # 2.6.9-rc2 "Remove in-kernel init_module/cleanup_module stubs": no cleanup_module stub
    ((2, 6, 9), dict(modpost_adds=("struct_module",))),
    # 040fcc819a2e (modpost fakes no struct_module), 9f28bb7e1d01 (EXPORT_SYMBOL_GPL_FUTURE)
    ((2, 6, 17), dict(section_order=(PLAIN, GPL, GPL_FUTURE), modpost_adds=())),
    # f71d20e96147 EXPORT_UNUSED_SYMBOL*, linked before gpl_future; bd5cbcedf446 export column
    ((2, 6, 18), dict(section_order=(PLAIN, GPL, UNUSED, UNUSED_GPL, GPL_FUTURE),
                      columns=COLS_EXPORT)),
    # each_symbol(): {start, stop, crcs, licence, unused}; crcs are unsigned long
    ((2, 6, 27), dict(symsearch=(PLAIN, GPL, GPL_FUTURE), unused_tables=(UNUSED, UNUSED_GPL),
                      unused_field=True)),
    ((3, 0, 0), dict(sorted=True)),                          # f02e8a6596b7: SORT() ksymtabs
    ((4, 10, 0), dict(crc_width=4, rel_crcs=True)),          # 71810db27c1c: 32-bit CRCs
    ((4, 19, 0), dict(prel32=True)),                         # 7290d5809571: PREL32 ksymtab
    ((5, 4, 0), dict(namespace=True, columns=COLS_NS_MIDDLE)),   # 8651ec01daed, cb9b55d21fe0
    ((5, 4, 28), dict(columns=COLS_NS_LAST)),                # stable backport of namespace last
    ((5, 5, 0), dict(columns=COLS_NS_MIDDLE)),
    ((5, 5, 13), dict(columns=COLS_NS_LAST)),
    ((5, 6, 0), dict(columns=COLS_NS_LAST)),                 # "move the namespace field last"
    # 367948220fce, f1c3d73e973c: no UNUSED or GPL_FUTURE exports, symsearch loses `unused`
    ((5, 12, 0), dict(symsearch=(PLAIN, GPL), unused_tables=(), unused_field=False,
                      section_order=(PLAIN, GPL))),
    ((5, 19, 0), dict(rel_crcs=False)),                      # 7b4537199a4a: CRCs at final link
    # 7.1 kflagstab series: one __ksymtab, GPL-only is a flag, symsearch built on the stack
    ((7, 1, 0), dict(symsearch=(), section_order=(PLAIN,), flagstab=True)),
)

LATEST_PATCH = 1 << 16      # "-k 5.4" means the newest 5.4.y


def parse_version(text):
    """'6.1', '5.15.0-1-amd64', '4.19+', '2.6.12' or 'old' (2.6.27+) -> (major, minor, patch)."""
    if text == "old":
        return (2, 6, LATEST_PATCH)
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    if not m:
        raise ValueError("kernel version must be major.minor (e.g. 6.1) or 'old', not %r" % text)
    return int(m[1]), int(m[2]), int(m[3]) if m[3] is not None else LATEST_PATCH


def layout_for(version):
    """The layout row in force for a (major, minor, patch) kernel version."""
    rows = [row for row in LAYOUTS if row.since <= tuple(version)]
    if not rows:
        raise SymversError("kernels before 2.6 are not supported", EXIT_USAGE)
    return rows[-1]


# --- ELF: one reader for modules, vmlinux and core dumps ------------------------------

SHN_UNDEF, SHN_ABS = 0, 0xFFF1
ET_CORE = 4
PT_LOAD, PT_NOTE = 1, 4
STB_WEAK = 2
SHT_RELA, SHT_REL, SHT_SYMTAB = 4, 9, 2


class Segment(NamedTuple):
    kind: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int


class ElfObject:
    """An ELF file: a module's sections, symbols and relocations, the program headers of a
    vmlinux or of a core dump (given its head: the headers, not the memory)."""

    # Elf_Phdr, and where its p_type, p_offset, p_vaddr, p_paddr, p_filesz are
    PHDR = {32: ("IIIIIIII", (0, 1, 2, 3, 4)), 64: ("IIQQQQQQ", (0, 2, 3, 4, 5))}

    def __init__(self, data, sections=True):
        if data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
            raise SymversError("not an ELF file", EXIT_FORMAT)
        self.data, self.bits = data, 32 * data[4]
        self.e = "<" if data[5] == 1 else ">"
        self.ptr_size = self.bits // 8
        wide = self.bits == 64
        self.type, self.machine = struct.unpack_from(self.e + "HH", data, 16)
        self.phoff, self.shoff = struct.unpack_from(self.e + ("QQ" if wide else "II"), data,
                                                    0x20 if wide else 0x1C)
        self.phentsize, self.phnum, size, count, names = struct.unpack_from(
            self.e + "HHHHH", data, 0x36 if wide else 0x2A)
        header = self.e + ("IIQQQQIIQQ" if wide else "IIIIIIIIII")
        self.sections, self.names, self.symtab = [], {}, None
        if not count or not sections:   # a core dump: program headers only
            return
        if self.shoff + count * size > len(data) or names >= count:
            raise SymversError("section headers outside the file", EXIT_INCONSISTENT)
        # (name, type, file offset, size, link, info)
        raw = [struct.unpack_from(header, data, self.shoff + i * size) for i in range(count)]
        self.sections = [(n, t, off, sz, link, info) for n, t, _, _, off, sz, link, info, _, _
                         in raw]
        table = self.sections[names][2]
        self.names = {self._cstring(table + s[0]): i for i, s in enumerate(self.sections)}
        self.symtab = next((s for s in self.sections if s[1] == SHT_SYMTAB), None)

    def segments(self):
        """The program headers within the data given."""
        record, fields = self.PHDR[self.bits]
        record = self.e + record
        end = min(len(self.data), self.phoff + self.phnum * self.phentsize)
        return [Segment(*(raw[i] for i in fields)) for raw in (
            struct.unpack_from(record, self.data, at)
            for at in range(self.phoff, end - struct.calcsize(record) + 1, self.phentsize or 1))]

    def _cstring(self, offset):
        end = self.data.find(b"\0", offset)
        return self.data[offset:end if end >= 0 else len(self.data)].decode("latin-1")

    def section(self, name):
        """(file offset, size) of a section, or None."""
        i = self.names.get(name)
        return None if i is None else (self.sections[i][2], self.sections[i][3])

    # Elf_Sym, and where its st_name, st_value, st_info, st_shndx are
    SYM = {32: ("IIIBBH", (0, 1, 3, 5)), 64: ("IBBHQQ", (0, 4, 1, 3))}

    def _sym(self, fields):
        return tuple(fields[i] for i in self.SYM[self.bits][1])

    def symbol(self, index):
        """(st_value, st_shndx) of a symbol."""
        if self.symtab is None or (index + 1) * (8 + 2 * self.ptr_size) > self.symtab[3]:
            raise SymversError("relocation to symbol %d outside .symtab" % index,
                               EXIT_INCONSISTENT)
        _, value, _, shndx = self._sym(struct.unpack_from(
            self.e + self.SYM[self.bits][0], self.data,
            self.symtab[2] + index * (8 + 2 * self.ptr_size)))
        return value, shndx

    def undefined(self):
        """(name, weak) of every undefined symbol: what the loader must resolve."""
        if self.symtab is None:
            return []
        _, _, offset, size, link, _ = self.symtab
        names = self.sections[link][2]
        record = self.e + self.SYM[self.bits][0]
        found = []
        for fields in struct.iter_unpack(record, self.data[offset:offset + size - size % (
                8 + 2 * self.ptr_size)]):
            name, _, info, shndx = self._sym(fields)
            if shndx == SHN_UNDEF and name:
                found.append((self._cstring(names + name), info >> 4 == STB_WEAK))
        return found

    def relocations(self, name, field):
        """{offset in the section: (symbol index, addend)} of the section's REL/RELA
        section; REL addends are the `field`-byte words in place."""
        target = self.names.get(name)
        out = {}
        for kind, offset, size, info in ((s[1], s[2], s[3], s[5]) for s in self.sections):
            if info != target or kind not in (SHT_RELA, SHT_REL):
                continue
            wide = self.bits == 64
            record = self.e + ("QQ" if wide else "II") + ("q" if wide else "i") * (kind == SHT_RELA)
            for r in struct.iter_unpack(record, self.data[offset:offset + size // struct.calcsize(
                    record) * struct.calcsize(record)]):
                where, info_ = r[0], r[1]
                if not wide:
                    symbol = info_ >> 8
                elif self.machine == EM_MIPS and self.e == "<":
                    symbol = info_ & 0xFFFFFFFF      # mips64el: r_sym, then the type bytes
                else:
                    symbol = info_ >> 32
                addend = r[2] if kind == SHT_RELA else None
                out[where] = (symbol, addend)
        return out

    def target(self, section, relocation, field):
        """File offset of what a relocation at section[offset] refers to, and the symbol's
        section index: symbol + addend (PC-relative or not, it names the same place)."""
        where, (symbol, addend) = relocation
        if addend is None:                          # REL: the addend is in place
            addend, = struct.unpack_from(self.e + ("i" if field == 4 else "q"), self.data,
                                         section[0] + where)
        value, shndx = self.symbol(symbol)
        if shndx == SHN_ABS:
            return None, value + addend
        if shndx >= len(self.sections):
            raise SymversError("symbol %d in section %d of %d" % (symbol, shndx,
                                                                   len(self.sections)),
                               EXIT_INCONSISTENT)
        return shndx, self.sections[shndx][2] + value + addend


# --- Input and decompression -------------------------------------------------------------

UBOOT_MAGIC = b"\x27\x05\x19\x56"
UBOOT_COMPRESSION = {0: "none", 1: "gzip", 2: "bzip2", 3: "lzma", 4: "lzo", 5: "lz4", 6: "zstd"}
UBOOT_KERNEL_TYPES = (2, 14)       # kernel, kernel_noload
UBOOT_MULTI = 4
UBOOT_ARCH = ("invalid", "alpha", "arm", "i386", "ia64", "mips", "mips64", "ppc", "s390", "sh",
              "sparc", "sparc64", "m68k", "nios", "microblaze", "nios2", "blackfin", "avr32",
              "st200", "sandbox", "nds32", "openrisc", "arm64", "arc", "x86_64", "xtensa", "riscv")

LZOP_MAGIC = b"\x89LZO\x00\r\n\x1a\n"
# An .lzma (LZMA-alone) header: properties (lc + lp <= 4, as liblzma requires; not 0, which
# zero-filled space would match everywhere), a dictionary of 2^n or 3 * 2^(n-1) bytes, the
# size (unknown, or below 512 MiB), then the range coder's first byte, always 0.  kbuild's
# `lzma -9` writes properties 0x5d; Broadcom's CFE vmlinux.lz has 0x6d (lc=1, lp=2, pb=2).
LZMA_PROPERTIES = bytes(p for p in range(1, 225) if p % 9 + p // 9 % 5 <= 4)
LZMA_DICTIONARIES = sorted({1 << n for n in range(12, 31)} | {3 << n for n in range(12, 30)})
LZMA_HEADER = (b"[" + re.escape(LZMA_PROPERTIES) + b"](?:"
               + b"|".join(re.escape(struct.pack("<I", d)) for d in LZMA_DICTIONARIES)
               + b")(?:\xff{8}|...[\x00-\x1f]\x00{4})\x00")
# Payload magics: (kind, literal prefix found by bytes.find, the whole magic: the prefix and
# what must follow it).  LZMA-alone has no literal prefix: its pattern is searched for by the
# regex engine, 7 ms per MiB, after the others.
PAYLOAD_MAGICS = [(kind, prefix, re.compile(b"(?s)" + (LZMA_HEADER if prefix is None else
                                                       re.escape(prefix) + tail)))
                  for kind, prefix, tail in (
                      ("gzip", b"\x1f\x8b\x08", b""), ("xz", b"\xfd7zXZ\x00", b""),
                      ("zstd", b"\x28\xb5\x2f\xfd", b""), ("bzip2", b"BZh", b"[1-9]1AY&SY"),
                      ("lzma", None, b""), ("lz4", b"\x02\x21\x4c\x18", b""),
                      ("lz4", b"\x04\x22\x4d\x18", b""), ("lzo", LZOP_MAGIC, b""))]
BANNER = re.compile(rb"Linux version \d+\.\d+")


def _compression(data):
    """The compression a buffer starts with, or None."""
    return next((kind for kind, _, magic in PAYLOAD_MAGICS if magic.match(data)), None)


def banner_at(data, start=0, end=None):
    """Offset of the kernel banner in data[start:end], or -1 (bytes.find first: 5x faster
    than the regex over a 128 MiB dump that has none)."""
    end = len(data) if end is None else end
    at = data.find(b"Linux version ", start, end)
    while at >= 0 and not BANNER.match(data, at):
        at = data.find(b"Linux version ", at + 1, end)
    return at


def has_banner(data):
    return banner_at(data) >= 0


DECOMPRESS_CHUNK = 1 << 20     # small: the chunk is a copy on top of the image


def _stream_decompress(decompressor, view, kind, limit):
    """Run a zlib/lzma/bz2-style decompressor to the end of its stream, into one bytearray,
    a bounded chunk at a time (a bomb is refused before it is allocated).  The input goes in
    bounded slices too: zlib's unconsumed_tail is a copy of what it was given, which for the
    whole rest of a 128 MiB dump made every chunk cost a copy of it."""
    out, at, tail = bytearray(), 0, b""
    while not decompressor.eof:
        if tail:
            data = tail
        elif getattr(decompressor, "needs_input", True):
            data = view[at:at + DECOMPRESS_CHUNK]
            at += len(data)
        else:
            data = b""
        chunk = decompressor.decompress(data, DECOMPRESS_CHUNK)
        tail = getattr(decompressor, "unconsumed_tail", b"")                # zlib
        if not chunk and not tail and at >= len(view) and \
                getattr(decompressor, "needs_input", True):
            raise SymversError("%s payload is truncated" % kind, EXIT_FORMAT)
        out += chunk
        if len(out) > limit:
            raise _bomb(kind, limit)
    return out


class MissingPackage(SymversError):
    """A payload this interpreter cannot decompress without an optional package."""


class DecompressionBomb(SymversError):
    """A payload expanding past the limit (for a probe: one that decodes that far)."""


def _bomb(kind, limit):
    return DecompressionBomb("%s payload expands past %d MiB: refused as a decompression "
                             "bomb (see --max-size)" % (kind, limit >> 20), EXIT_FORMAT)


def _zstd_decompress(view, limit):
    try:
        import zstandard
    except ImportError:         # Python 3.14's standard library has it (PEP 784)
        try:
            from compression import zstd
        except ImportError:
            raise MissingPackage("zstd payload needs the zstandard package (pip install "
                                 "zstandard) or Python 3.14+", EXIT_FORMAT) from None
        return _stream_decompress(zstd.ZstdDecompressor(), view, "zstd", limit)
    # one frame, trailing data ignored; a frame larger than the bound fails like a truncated one
    size = zstandard.frame_content_size(view)
    if size > limit:
        raise _bomb("zstd", limit)
    return zstandard.ZstdDecompressor().decompress(view, max_output_size=limit)


# ELF core dumps (QEMU's dump-guest-memory, a saved /proc/vmcore, /proc/kcore) map memory
# sparsely: only the part around the kernel banner is read, by seek and read.  The window is
# the kernel image's reach: .text before the banner (in .rodata), .rodata and the export
# tables after it.
CORE_HEAD = 1 << 20
CORE_BEFORE, CORE_AFTER, CORE_ALIGN = 48 << 20, 80 << 20, 2 << 20
FIND_CHUNK = 16 << 20


def _reach(banner):
    """(start, end) of the memory around a kernel banner that holds the kernel image."""
    return max(0, banner - CORE_BEFORE) & ~(CORE_ALIGN - 1), banner + CORE_AFTER


def _window(size, limit):
    """A zeroed buffer for the memory around the kernel in a dump, within --max-size."""
    if size > limit:
        raise SymversError("kernel window of %d MiB in the dump is larger than %d MiB (see "
                           "--max-size)" % (size >> 20, limit >> 20), EXIT_INPUT)
    return bytearray(size)


def _file_banner(f, offset, size):
    """File offset of the first kernel banner in [offset, offset + size), or None."""
    at, end = offset, offset + size
    while at < end:
        f.seek(at)
        chunk = f.read(min(FIND_CHUNK, end - at))
        found = banner_at(chunk)
        if found >= 0:
            return at + found
        if len(chunk) < FIND_CHUNK:
            return None
        at += len(chunk) - 64
    return None


def _notes(data, e):
    """(name, desc) of the ELF notes in `data`."""
    at = 0
    while at + 12 <= len(data):
        namesz, descsz, _ = struct.unpack_from(e + "III", data, at)
        desc = at + 12 + (namesz + 3 & ~3)
        yield data[at + 12:at + 12 + namesz].rstrip(b"\0"), data[desc:desc + descsz]
        at = desc + (descsz + 3 & ~3)


def _log_vmcoreinfo(text, log):
    """Print what the kernel's VMCOREINFO says of itself (its release, KASLR offset); the
    {key: value} it holds."""
    info = dict(line.partition("=")[::2] for line in text.decode("latin-1").splitlines())
    said = ["%s=%s" % (key, info[key]) for key in ("OSRELEASE", "KERNELOFFSET",
                                                   "SYMBOL(_stext)", "PAGESIZE") if key in info]
    if said:
        log("VMCOREINFO: %s" % ", ".join(said))
    return info


def _core_window(f, head, limit, log):
    """(bytes, base) of the kernel in an ELF core: the memory around the first kernel
    banner of the segment holding VMCOREINFO's _stext, else of the smallest segment holding
    one (kcore's KCORE_TEXT, before the direct map of all RAM), assembled from every PT_LOAD
    in that address space (p_vaddr; p_paddr when p_vaddr is 0 or the same, whose base is then
    unknown)."""
    elf = ElfObject(head, sections=False)
    if elf.phoff + elf.phnum * elf.phentsize > len(head):
        f.seek(0)
        elf = ElfObject(f.read(elf.phoff + elf.phnum * elf.phentsize), sections=False)
    segments = elf.segments()
    info = {}
    for note in (s for s in segments if s.kind == PT_NOTE):
        f.seek(note.offset)
        for name, desc in _notes(f.read(min(note.filesz, 1 << 20)), elf.e):
            if name == b"VMCOREINFO":
                info = _log_vmcoreinfo(desc, log)
    loads = [s for s in segments if s.kind == PT_LOAD and s.filesz]
    try:        # the kernel says where its text is: that segment first
        text = int(info.get("SYMBOL(_stext)", ""), 16)
    except ValueError:
        text = None

    def order(s):
        return (not (text is not None and s.vaddr <= text < s.vaddr + s.filesz), s.filesz)

    for segment in sorted(loads, key=order):
        found = _file_banner(f, segment.offset, segment.filesz)
        if found is not None:
            break
    else:
        raise SymversError("ELF core dump with %d memory segments, none holding a kernel "
                           "banner" % len(loads), EXIT_FORMAT)
    virtual = segment.vaddr not in (0, segment.paddr)     # QEMU's physical dumps: equal

    def address(s):
        return s.vaddr if virtual else s.paddr

    banner = address(segment) + found - segment.offset
    start, end = _reach(banner)
    pieces = []
    for s in loads:
        low, high = max(start, address(s)), min(end, address(s) + s.filesz)
        if low < high and (s.vaddr not in (0, s.paddr)) == virtual:
            pieces.append((low, high, s.offset + low - address(s)))
    low, high = min(p[0] for p in pieces), max(p[1] for p in pieces)
    window = _window(high - low, limit)
    for piece_low, piece_high, offset in pieces:
        f.seek(offset)
        window[piece_low - low:piece_high - low] = f.read(piece_high - piece_low).ljust(
            piece_high - piece_low, b"\0")
    log("ELF core dump, %d memory segments: kernel banner at %s %#x; reading %#x-%#x "
        "(%d MiB)" % (len(loads), "virtual" if virtual else "physical", banner, low, high,
                      (high - low) >> 20))
    return bytes(window), low if virtual else None


# makedumpfile's kdump-compressed format (diskdump_mod.h; what kdump-tools saves by default,
# QEMU's dump-guest-memory -z/-l/-s): a header block, sub-header blocks (VMCOREINFO), two
# page bitmaps, then one page_desc {off_t offset; u32 size, flags; u64 page_flags} per dumped
# page (the second bitmap's set bits, in pfn order), each page raw or compressed.
KDUMP_MAGIC = b"KDUMP   "
KDUMP_FLATTENED = b"makedumpfile\0"
KDUMP_ZLIB, KDUMP_LZO, KDUMP_SNAPPY, KDUMP_ZSTD = 0x1, 0x2, 0x4, 0x20
# disk_dump_header after the utsname: the timeval is 2 longs (16 bytes, or 8 when 32-bit);
# block_size, sub_hdr_size, bitmap_blocks, max_mapnr follow the status word
KDUMP_LAYOUTS = ((428, 8), (420, 4))        # (offset of block_size, size of a long)


def _kdump_pages(f, head, log):
    """(page size, {pfn: (offset, size, flags)}, VMCOREINFO) of a kdump-compressed file."""
    for at, long in KDUMP_LAYOUTS:
        block, sub_blocks, bitmap_blocks, mapnr = struct.unpack_from("<iIII", head, at)
        if block in (4096, 8192, 16384, 65536) and 0 < sub_blocks < 64:
            break
    else:
        raise SymversError("kdump-compressed file with a header this tool does not read",
                           EXIT_FORMAT)
    version, = struct.unpack_from("<i", head, 8)
    f.seek(block)
    sub = f.read(block * sub_blocks)
    word = "Q" if long == 8 else "I"
    fields = struct.unpack_from("<" + word + "ii" + word * 8, sub, 0)
    info_at, info_size = fields[5], fields[6]
    if version >= 6 and long == 8:
        mapnr, = struct.unpack_from("<Q", sub, 96)
    f.seek(info_at)
    info = f.read(min(info_size, 1 << 20))
    half = bitmap_blocks * block // 2
    if half > mapnr // 8 + block:
        raise SymversError("kdump-compressed header: %d bitmap blocks for %d pages"
                           % (bitmap_blocks, mapnr), EXIT_FORMAT)
    f.seek(block * (1 + sub_blocks) + half)             # the second bitmap: pages dumped
    bitmap = f.read(half)
    pfns = [i * 8 + bit for i, byte in enumerate(bitmap) if byte
            for bit in range(8) if byte >> bit & 1 and i * 8 + bit < mapnr]
    f.seek(block * (1 + sub_blocks + bitmap_blocks))
    table = f.read(24 * len(pfns))
    descs = struct.iter_unpack("<qIIQ", table[:len(table) // 24 * 24])
    log("kdump-compressed dump (header version %d): %d of %d pages of %d bytes"
        % (version, len(pfns), mapnr, block))
    return block, {pfn: d[:3] for pfn, d in zip(pfns, descs)}, info


def _kdump_page(f, desc, page):
    offset, size, flags = desc
    if flags & KDUMP_SNAPPY:
        raise SymversError("kdump-compressed dump with snappy pages: not read here; rewrite "
                           "it with makedumpfile -c (zlib) or -z (zstd)", EXIT_FORMAT)
    if size > 2 * page or offset < 0:   # makedumpfile stores a page raw when it does not shrink
        raise SymversError("kdump-compressed page descriptor of %d bytes at %#x: not a page"
                           % (size, offset), EXIT_FORMAT)
    f.seek(offset)
    data = f.read(size)
    try:
        if flags & KDUMP_ZLIB:
            return zlib.decompress(data, bufsize=page)
        if flags & KDUMP_ZSTD:
            return bytes(_zstd_decompress(memoryview(data), page))
        if flags & KDUMP_LZO:
            return bytes(lzo1x_block(data, page))
    except SymversError:
        raise
    except Exception as e:      # zlib.error, zstandard.ZstdError, a short LZO block
        raise SymversError("kdump-compressed page at %#x is corrupt: %s" % (offset, e),
                           EXIT_FORMAT) from None
    return data


def _kdump_window(f, head, limit, log):
    """(bytes, None) of physical memory around the kernel banner of a kdump-compressed
    file: pages decompressed in pfn order until the banner, then the window around it."""
    page, pages, info = _kdump_pages(f, head, log)
    _log_vmcoreinfo(info, log)
    tail = b""          # the end of the page before: a banner may straddle two pages
    for pfn in sorted(pages):
        data = tail + _kdump_page(f, pages[pfn], page)
        at = banner_at(data)
        if at >= 0:
            banner = pfn * page + at - len(tail)
            break
        tail = data[-64:]
    else:
        raise SymversError("kdump-compressed dump: no kernel banner in its %d pages"
                           % len(pages), EXIT_FORMAT)
    start, end = _reach(banner)
    end = min(end, (max(pages) + 1) * page)
    window = _window(end - start, limit)
    for pfn in range(start // page, -(-end // page)):
        if pfn in pages:
            data = _kdump_page(f, pages[pfn], page)
            window[pfn * page - start:pfn * page - start + len(data)] = data
    del window[end - start:]
    log("kdump-compressed dump: kernel banner at physical %#x; reading %#x-%#x (%d MiB)"
        % (banner, start, end, (end - start) >> 20))
    return bytes(window), None


class _Flattened:
    """makedumpfile -F's flattened format (QEMU's dump-guest-memory -z writes it unless given
    -R) as the file it stands for: after a 4096-byte header, big-endian (offset, size)
    records, each followed by the bytes to be written at offset; offset -1 ends them."""

    def __init__(self, f):
        self.f, self.pos, pieces, at = f, 0, [], 4096
        while True:
            f.seek(at)
            header = f.read(16)
            if len(header) < 16:
                break
            offset, size = struct.unpack(">qq", header)
            if offset < 0 or size < 0:
                break
            pieces.append((offset, size, at + 16))
            at += 16 + size
        self.pieces = sorted(pieces)
        self.starts = [piece[0] for piece in self.pieces]
        self.size = max((offset + length for offset, length, _ in pieces), default=0)

    def seek(self, pos):
        self.pos = pos

    def read(self, size):
        out, pos, end = bytearray(), self.pos, min(self.pos + size, self.size)
        i = max(0, bisect.bisect_right(self.starts, pos) - 1)
        while pos < end and i < len(self.pieces):
            offset, length, at = self.pieces[i]
            if offset + length <= pos:
                i += 1
                continue
            if offset > pos:                # a hole: never written
                out += bytes(min(offset, end) - pos)
                pos = min(offset, end)
                continue
            self.f.seek(at + pos - offset)
            chunk = self.f.read(min(end, offset + length) - pos)
            out += chunk
            pos += len(chunk)
            i += 1
        self.pos = pos
        return bytes(out)


def read_kernel(path, limit, log=lambda message: None):
    """(bytes to unpack, base address or None): what a core dump maps around the kernel
    (never the whole file: /proc/kcore says it is 128 TiB), else the whole input.  Only a
    regular file is looked into first: a pipe cannot be read twice."""
    if path != "-" and os.path.isfile(path):
        try:
            with open(path, "rb") as f:
                head = f.read(CORE_HEAD)
                if head[:4] == b"\x7fELF" and len(head) >= 64 and head[4] in (1, 2) and \
                        head[5] in (1, 2) and ElfObject(head, sections=False).type == ET_CORE:
                    return _core_window(f, head, limit, log)
                if head[:8] == KDUMP_MAGIC:
                    return _kdump_window(f, head, limit, log)
                if head[:13] == KDUMP_FLATTENED:
                    flat = _Flattened(f)
                    head = flat.read(CORE_HEAD)
                    if head[:8] == KDUMP_MAGIC:
                        log("makedumpfile flattened format: %d records" % len(flat.pieces))
                        return _kdump_window(flat, head, limit, log)
                    raise SymversError("makedumpfile flattened file without a kdump header",
                                       EXIT_FORMAT)
        except (struct.error, ValueError, OverflowError):   # seeks past what a file can be
            raise SymversError("%s: the dump's headers are truncated or corrupt" % path,
                               EXIT_FORMAT) from None
        except OSError:
            pass            # said by _read_input()
    return _read_input(path, limit), None


# --- LZ4 and LZO, which the standard library lacks -------------------------------------
# LZ4 blocks go through the optional `lz4` package when it is installed (C speed), else
# through lz4_block() below; the frame formats around them are read here either way.

LZ4_LEGACY_BLOCK = 8 << 20      # every block of a legacy frame but the last expands to this


def lz4_block(src, limit):
    """Decompress one LZ4 block (the format of lz4_Block_format.md), at most `limit` bytes."""
    out, ip, end = bytearray(), 0, len(src)
    while ip < end:
        token = src[ip]
        ip += 1
        length = token >> 4
        if length == 15:
            length, ip = _lz4_length(src, ip, length)
        out += src[ip:ip + length]
        ip += length
        if ip >= end:
            break
        distance = src[ip] | src[ip + 1] << 8
        ip += 2
        length = token & 15
        if length == 15:
            length, ip = _lz4_length(src, ip, length)
        _copy_match(out, distance, length + 4)
        if len(out) > limit:
            raise ValueError("block expands past its size")
    return out


def _lz4_length(src, ip, length):
    """(length, next input offset): a 4-bit length of 15 goes on in the following bytes,
    each adding up to 255."""
    while True:
        byte = src[ip]
        ip += 1
        length += byte
        if byte != 255:
            return length, ip


def _lzo_length(src, ip, length):
    """(length, next input offset): a zero length field goes on in the following bytes,
    each zero byte adding 255, the first non-zero one ending it."""
    while src[ip] == 0:
        length += 255
        ip += 1
    return length + src[ip], ip + 1


def _copy_match(out, distance, length):
    """Append `length` bytes starting `distance` back, overlapping like a byte-wise copy."""
    if not 0 < distance <= len(out):
        raise ValueError("match distance %d outside the output" % distance)
    start = len(out) - distance
    if distance >= length:
        out += out[start:start + length]
    else:
        out += (out[start:] * (length // distance + 1))[:length]


def _lz4_blocks():
    """lz4.block.decompress when the package is there, else lz4_block()."""
    try:
        import lz4.block
    except ImportError:
        return lz4_block
    return lambda src, size: lz4.block.decompress(bytes(src), uncompressed_size=size)


def _lz4_decompress(view, limit):
    """An LZ4 legacy frame (kbuild's `lz4 -l`, magic 0x184C2102: sized blocks of 8 MiB, no
    end mark) or an LZ4 frame (magic 0x184D2204)."""
    block = _lz4_blocks()
    out = bytearray()
    if view[:4] not in (b"\x02\x21\x4c\x18", b"\x04\x22\x4d\x18"):
        raise ValueError("no LZ4 magic")
    if view[:4] == b"\x02\x21\x4c\x18":
        at = 4
        while at + 4 <= len(view):
            size = int.from_bytes(view[at:at + 4], "little")
            if size == 0x184C2102:              # concatenated legacy frames
                at += 4
                continue
            if not 0 < size <= LZ4_LEGACY_BLOCK + LZ4_LEGACY_BLOCK // 255 + 16 \
                    or at + 4 + size > len(view):
                break                           # the appended size, or what follows
            try:
                chunk = block(view[at + 4:at + 4 + size], LZ4_LEGACY_BLOCK)
            except Exception:
                if not out:
                    raise
                break
            out += chunk
            if len(out) > limit:
                raise _bomb("lz4", limit)
            at += 4 + size
            if len(chunk) < LZ4_LEGACY_BLOCK:
                break                           # only the last block is short
        if not out:
            raise SymversError("lz4 payload is truncated", EXIT_FORMAT)
        return out
    flags, descriptor = view[4], view[5]
    if flags >> 6 != 1:
        raise ValueError("unknown LZ4 frame version")
    at = 6 + 8 * bool(flags & 0x08) + 4 * bool(flags & 0x01) + 1
    block_max = 1 << (8 + 2 * ((descriptor >> 4) & 7))
    while True:
        if at + 4 > len(view):
            raise SymversError("lz4 payload is truncated", EXIT_FORMAT)
        size = int.from_bytes(view[at:at + 4], "little")
        at += 4
        if size == 0:
            return out
        stored, size = size >> 31, size & 0x7FFFFFFF
        if at + size > len(view):
            raise SymversError("lz4 payload is truncated", EXIT_FORMAT)
        out += view[at:at + size] if stored else block(view[at:at + size], block_max)
        if len(out) > limit:
            raise _bomb("lz4", limit)
        at += size + 4 * bool(flags & 0x10)     # block checksum


def _lzop_decompress(view, limit):
    """An lzop file (kbuild's `lzop -9`): header, then blocks of LZO1X data, as
    lib/decompress_unlzo.c reads them."""
    if view[:len(LZOP_MAGIC)] != LZOP_MAGIC:
        raise ValueError("no lzop magic")
    at = len(LZOP_MAGIC)
    version = int.from_bytes(view[at:at + 2], "big")
    at += 4 + 2 * (version >= 0x0940)                       # version, lib version[, needed]
    at += 1 + (version >= 0x0940)                           # method[, level]
    flags = int.from_bytes(view[at:at + 4], "big")
    at += 4 + 4 * bool(flags & 0x800)                       # flags[, filter]
    at += 8 + 4 * (version >= 0x0940)                       # mode, mtime[, mtime high]
    at += 1 + view[at] + 4                                  # name, header checksum
    if flags & 0x40:                                        # extra field
        at += 4 + int.from_bytes(view[at:at + 4], "big") + 4
    out = bytearray()
    while True:
        if at + 4 > len(view):
            raise SymversError("lzo payload is truncated", EXIT_FORMAT)
        size = int.from_bytes(view[at:at + 4], "big")
        if size == 0:
            return out
        packed = int.from_bytes(view[at + 4:at + 8], "big")
        at += 8 + 4 * bool(flags & 0x1) + 4 * bool(flags & 0x100)
        if packed < size:
            at += 4 * bool(flags & 0x2) + 4 * bool(flags & 0x200)
        if packed > size or at + packed > len(view):
            raise SymversError("lzo payload is truncated", EXIT_FORMAT)
        chunk = view[at:at + packed] if packed == size else lzo1x_block(view[at:at + packed], size)
        if len(chunk) != size:
            raise ValueError("block of %d bytes expands to %d" % (size, len(chunk)))
        out += chunk
        if len(out) > limit:
            raise _bomb("lzo", limit)
        at += packed


def lzo1x_block(src, limit):
    """Decompress one LZO1X block, at most `limit` bytes (the instruction set of the
    kernel's Documentation/staging/lzo.rst; `state` is how many literals the previous
    instruction copied, 4 standing for "4 or more")."""
    out, ip, state = bytearray(), 0, 0
    first = src[0]
    if first > 17:
        ip, count = 1, first - 17
        out += src[1:1 + count]
        ip += count
        state = count if count < 4 else 4
    elif first == 17:
        raise ValueError("LZO-RLE bitstream")
    while True:
        t = src[ip]
        ip += 1
        if t < 16:
            if state == 0:                      # a run of 4 or more literals
                length = t
                if length == 0:
                    length, ip = _lzo_length(src, ip, 15)
                out += src[ip:ip + length + 3]
                ip += length + 3
                state = 4
                continue
            if state < 4:                       # 2 bytes from within 1 kB
                distance, length = (t >> 2) + (src[ip] << 2) + 1, 2
            else:                               # 3 bytes from 2..3 kB
                distance, length = (t >> 2) + (src[ip] << 2) + 2049, 3
            ip += 1
            state = t & 3
        elif t >= 64:                           # 3..8 bytes from within 2 kB
            distance = ((t >> 2) & 7) + (src[ip] << 3) + 1
            length = (t >> 5) + 1
            ip += 1
            state = t & 3
        else:
            if t >= 32:                         # from within 16 kB
                length, mask, distance = t & 31, 31, 1
            else:                               # from 16..48 kB; distance 16384 ends
                length, mask, distance = t & 7, 7, 16384 + ((t & 8) << 11)
            if length == 0:
                length, ip = _lzo_length(src, ip, mask)
            length += 2
            word = src[ip] | src[ip + 1] << 8
            ip += 2
            distance += word >> 2
            if t < 32 and distance == 16384:
                return out
            state = word & 3
        _copy_match(out, distance, length)
        out += src[ip:ip + state]
        ip += state
        if len(out) > limit:
            raise ValueError("block expands past its size")


def decompress_payload(kind, view, limit=MAX_OUTPUT):
    """Decompress one payload of a known kind, refusing more than `limit` bytes of output
    and an empty one; errors are SymversError(EXIT_FORMAT)."""
    out = _decompress_payload(kind, view, limit)
    if not out:
        raise SymversError("%s payload decompresses to nothing" % kind, EXIT_FORMAT)
    return out


STREAMS = {"gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
           "xz": lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ),
           "lzma": lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE),
           "bzip2": bz2.BZ2Decompressor}
PROBE_INPUT, PROBE_OUTPUT = 1 << 18, 1 << 16
SEARCH_WINDOW = 4 << 20         # payload magics are searched for this much at a time


def _implausible(kind, view):
    """Why a stream found by its magic does not decode its first 64 KiB, or None: a magic met
    by chance (a flash dump holds a few) fails within its first KiB, so only real candidates
    are decompressed to their end.  LZ4 and LZO are block formats, checked as they are
    read."""
    try:
        if kind in STREAMS:
            STREAMS[kind]().decompress(view[:PROBE_INPUT], PROBE_OUTPUT)
        elif kind == "zstd":
            import zstandard
            zstandard.ZstdDecompressor().stream_reader(view[:PROBE_INPUT]).read(PROBE_OUTPUT)
    except ImportError:
        return None
    except Exception as e:      # zlib.error, lzma.LZMAError, OSError, zstandard.ZstdError
        return "%s payload is corrupt: %s" % (kind, e)
    return None


def _decompress_payload(kind, view, limit):
    try:
        if kind in STREAMS:
            return _stream_decompress(STREAMS[kind](), view, kind, limit)
        if kind == "zstd":
            return _zstd_decompress(view, limit)
        if kind == "lz4":
            return _lz4_decompress(view, limit)
        if kind == "lzo":
            return _lzop_decompress(view, limit)
    except SymversError:
        raise
    except Exception as e:  # zlib.error, lzma.LZMAError, OSError, zstandard.ZstdError ...
        raise SymversError("%s payload is corrupt: %s" % (kind, e), EXIT_FORMAT) from None
    raise SymversError("%s compression is not supported" % kind, EXIT_FORMAT)


def _uboot(data, log, limit):
    """The payload of a u-boot legacy image, decompressed by its compression byte."""
    if len(data) < 64:
        raise SymversError("u-boot header is truncated", EXIT_FORMAT)
    size, load, entry = struct.unpack_from(">III", data, 12)
    arch, image_type, comp = data[29], data[30], data[31]
    name = data[32:64].split(b"\0")[0].decode("latin-1")
    log("u-boot image: compression %d (%s) arch %d (%s) type %d load_address %#x "
        "entry_point %#x name %r" % (comp, UBOOT_COMPRESSION.get(comp, "unknown"), arch,
                                      UBOOT_ARCH[arch] if arch < len(UBOOT_ARCH) else "unknown",
                                      image_type, load, entry, name))
    if image_type not in UBOOT_KERNEL_TYPES + (UBOOT_MULTI,):
        raise SymversError("u-boot image type %d is not a kernel" % image_type, EXIT_FORMAT)
    payload = memoryview(data)[64:64 + size]
    if len(payload) < size:
        raise SymversError("u-boot payload is truncated: %d of %d bytes"
                           % (len(payload), size), EXIT_FORMAT)
    if image_type == UBOOT_MULTI:   # -T multi: sizes up to a 0, then the images, the kernel
        sizes = []                  # first
        while 4 * len(sizes) + 4 <= len(payload):
            length, = struct.unpack_from(">I", payload, 4 * len(sizes))
            if not length:
                break
            sizes.append(length)
        if not sizes:
            raise SymversError("u-boot multi-file image without images", EXIT_FORMAT)
        start = 4 * len(sizes) + 4
        log("u-boot multi-file image: %d images, the kernel first (%d bytes)"
            % (len(sizes), sizes[0]))
        payload = payload[start:start + sizes[0]]
        if comp == 0:
            return "none", bytes(payload)
    if comp == 0:
        return None     # uncompressed: the whole file is the image (offset 0 = header)
    kind = UBOOT_COMPRESSION.get(comp, "unknown (%d)" % comp)
    return kind, decompress_payload(kind, payload, limit)


# Containers read by their headers: what they hold is unpacked in turn.
# AOSP's bootimg.h: little-endian u32 fields say where the kernel and ramdisks are
ANDROID_BOOT = b"ANDROID!"      # boot.img v0-v2: page_size @36; v3/v4: 4096-byte pages
ANDROID_PAGES = (2048, 4096, 8192, 16384)
VENDOR_BOOT = b"VNDRBOOT"       # vendor_boot.img v3/v4
FDT_MAGIC = b"\xd0\x0d\xfe\xed"
SPARSE_MAGIC = b"\x3a\xff\x26\xed"
SPARSE_RAW, SPARSE_FILL, SPARSE_DONT_CARE, SPARSE_CRC = 0xCAC1, 0xCAC2, 0xCAC3, 0xCAC4


def _u32s(data, *offsets):
    return [struct.unpack_from("<I", data, at)[0] for at in offsets]


def _pages(size, page):
    if page not in ANDROID_PAGES:
        raise SymversError("Android boot image with a page size of %d" % page, EXIT_FORMAT)
    return -(-size // page) * page


def _boot_img(data):
    """(header version, page size, kernel size, ramdisk size) of an Android boot.img: v0-v2
    give page_size; from v3 the pages are 4096 bytes and the ramdisk size moves up."""
    version, = _u32s(data, 40)
    if version >= 3:
        return (version, 4096) + tuple(_u32s(data, 8, 12))
    kernel, ramdisk, page = _u32s(data, 8, 16, 36)
    return version, page, kernel, ramdisk


def _android_ramdisks(data):
    """The ramdisks of an Android boot.img (v0-v4: after the header page and the kernel) or
    vendor_boot.img (v3; v4 with its vendor ramdisk table of fragments)."""
    if data[:8] == ANDROID_BOOT:
        _, page, kernel, size = _boot_img(data)
        return [data[_pages(page, page) + _pages(kernel, page):][:size]]
    version, = _u32s(data, 8)
    page, total, header, dtb = _u32s(data, 12, 24, 2096, 2100)
    count, entry = _u32s(data, 2116, 2120) if version >= 4 else (0, 0)
    start = _pages(header, page)
    if not count:       # v3, or a v4 header without a table (mkbootimg 29 writes those)
        return [data[start:start + total]]
    table = start + _pages(total, page) + _pages(dtb, page)
    fragments = []
    for i in range(count):
        size, offset = _u32s(data, table + i * entry, table + i * entry + 4)
        fragments.append(data[start + offset:start + offset + size])
    return fragments


def _android_kernel(data, log):
    """The kernel of an Android boot.img: after the header page, kernel_size bytes."""
    version, page, size, _ = _boot_img(data)
    start = _pages(page, page)
    kernel = data[start:start + size]
    if len(kernel) < size or not size:
        raise SymversError("Android boot image v%d: kernel of %d bytes at %#x is truncated or "
                           "empty" % (version, size, start), EXIT_FORMAT)
    log("Android boot image v%d, page %d: kernel at %#x, %.1f MB, %s"
        % (version, page, start, size / 1e6, _compression(kernel) or "not compressed"))
    return kernel


def _fdt_nodes(data):
    """{path: {property: bytes}} of a flattened device tree (a FIT image)."""
    total, structs, strings = struct.unpack_from(">III", data, 4)[:3]
    at, path, nodes = structs, [], {}
    while at + 4 <= len(data):
        token, = struct.unpack_from(">I", data, at)
        at += 4
        if token == 1:                      # FDT_BEGIN_NODE, name, 4-aligned
            end = data.index(b"\0", at)
            path.append(data[at:end].decode("latin-1"))
            nodes["/".join(path)] = {}
            at = (end + 4) & ~3
        elif token == 2:                    # FDT_END_NODE
            path.pop()
        elif token == 3:                    # FDT_PROP: len, name offset, value
            length, name = struct.unpack_from(">II", data, at)
            key = data[strings + name:data.index(b"\0", strings + name)].decode("latin-1")
            nodes["/".join(path)][key] = data[at + 8:at + 8 + length]
            at = (at + 8 + length + 3) & ~3
        elif token == 9:                    # FDT_END
            break
        elif token != 4:                    # FDT_NOP
            raise SymversError("corrupt device tree token %#x" % token, EXIT_FORMAT)
    return nodes


def _fit_kernel(data, log, limit):
    """The kernel of a FIT image (.itb): the /images node whose type is kernel, its data
    (inside, or external: data-offset after the tree), by its compression property; None
    for a device tree without one (a plain .dtb)."""
    try:
        nodes = _fdt_nodes(data)
    except (struct.error, ValueError, IndexError):
        return None
    for path, props in nodes.items():
        if path.count("/") == 2 and path.split("/")[1] == "images" and \
                props.get("type", b"").rstrip(b"\0") in (b"kernel", b"kernel_noload"):
            break
    else:
        return None
    if "data" in props:
        payload = props["data"]
    elif "data-offset" in props and "data-size" in props:
        total, = struct.unpack_from(">I", data, 4)
        offset, = struct.unpack(">I", props["data-offset"])
        size, = struct.unpack(">I", props["data-size"])
        payload = data[(total + 3 & ~3) + offset:][:size]
    else:
        raise SymversError("FIT image: kernel node %s has no data" % path, EXIT_FORMAT)
    kind = props.get("compression", b"none").rstrip(b"\0").decode("latin-1")
    log("FIT image: kernel in %s, %d bytes, compression %s" % (path, len(payload), kind))
    if kind == "none":
        return payload
    return bytes(decompress_payload(kind, memoryview(payload), limit))


def _unsparse(data, log, limit):
    """The raw image of an Android sparse image (raw, fill, don't-care chunks)."""
    header_size, chunk_header, block, blocks, chunks = struct.unpack_from("<HHIII", data, 8)
    if blocks * block > limit:
        raise SymversError("Android sparse image expands to %d MiB (see --max-size)"
                           % (blocks * block >> 20), EXIT_FORMAT)
    out, at = bytearray(), header_size
    for _ in range(chunks):
        kind, _, count, total = struct.unpack_from("<HHII", data, at)
        body = data[at + chunk_header:at + total]
        if kind == SPARSE_RAW:
            out += body
        elif kind == SPARSE_FILL:
            out += body[:4] * (count * block // 4)
        elif kind == SPARSE_DONT_CARE:
            out += bytes(count * block)
        elif kind != SPARSE_CRC:
            raise SymversError("Android sparse image: chunk type %#x" % kind, EXIT_FORMAT)
        at += total
    log("Android sparse image: %d blocks of %d bytes" % (blocks, block))
    return bytes(out)


def _container(data, log, limit):
    """What a container read by its header holds, or None."""
    try:
        if data[:8] == ANDROID_BOOT:
            return _android_kernel(data, log)
        if data[:8] == VENDOR_BOOT:
            raise SymversError("a vendor_boot image holds no kernel (the kernel is in "
                               "boot.img); its vendor ramdisk holds modules: give it to "
                               "--modules", EXIT_FORMAT)
        if data[:4] == SPARSE_MAGIC:
            return _unsparse(data, log, limit)
        if data[:4] == FDT_MAGIC:
            return _fit_kernel(data, log, limit)
    except struct.error:
        raise SymversError("container header is truncated", EXIT_FORMAT) from None
    return None


IMAGE_MAGICS = ((b"ARM\x64", "arm64 Image header"), (b"RSC\x05", "riscv Image header"))


def _image_at(data, start):
    """(image_size, what) when an arm64/riscv Image header (magic at 0x38, image_size at
    0x10) at `start` begins an image holding the kernel banner (a raw Image in a boot.img
    page, an uncompressed FIT node, a flash dump), else None."""
    if start < 0 or start % 8 or start + 0x40 > len(data):
        return None
    size, = struct.unpack_from("<Q", data, start + 0x10)
    how = next((how for magic, how in IMAGE_MAGICS if data[start + 0x38:start + 0x3C] == magic),
               None)
    if how and 0 < size <= 256 << 20 and banner_at(data, start, start + size) >= 0:
        return size, how
    return None


class Payload(NamedTuple):
    kind: str               # none, gzip, xz, lzma, bzip2, zstd
    offset: Optional[int]   # where the compressed stream starts in the file (None: none)
    load: Optional[int] = None  # where a loader header says the image goes: a -B to try


CFE_LZMA = re.compile(b"(?s)[\x80-\x9f]...[\x80-\x9f].......(?=" + LZMA_HEADER + b")")


def _boot_header(data, log):
    """Log what a boot header says; (payload offset, load address) as far as it says them.
    x86 bzImage: the real-mode setup header ("HdrS" at 0x202; boot protocol 2.08+ has
    payload_offset/length); arm zImage: magic 0x016f2818 at 0x24; Broadcom CFE vmlinux.lz:
    big-endian load address, entry point (both MIPS kseg0) and length, then an .lzma."""
    if data[0x202:0x206] == b"HdrS" and len(data) > 0x250:
        version, = struct.unpack_from("<H", data, 0x206)
        setup = ((data[0x1F1] or 4) + 1) * 512
        string, = struct.unpack_from("<H", data, 0x20E)
        release = data[0x200 + string:0x200 + string + 120].split(b"\0")[0] if string else b""
        log("x86 bzImage, boot protocol %d.%02d%s" % (version >> 8, version & 0xFF,
                                                     ": " + release.decode("latin-1")
                                                     if release else ""))
        if version >= 0x208:
            offset, length = struct.unpack_from("<II", data, 0x248)
            if setup + offset + length <= len(data):
                return setup + offset, None
    elif data[0x24:0x28] in (b"\x18\x28\x6f\x01", b"\x01\x6f\x28\x18"):
        log("arm zImage")
    elif CFE_LZMA.match(data):
        load, entry, length = struct.unpack_from(">III", data)
        if 12 + length <= len(data):
            log("Broadcom CFE header: load address %#x, entry point %#x, %d bytes of lzma: "
                "trying -B %x first" % (load, entry, length, load))
            return 12, load
    return None, None


def _payload_candidates(data, payload):
    """(offset, kind) of the compressed streams to try: at `payload`, where a boot header
    says the payload is, then at every magic in the file (a flash dump may hold the kernel
    anywhere), in file order, a window at a time, so that the search goes no further than
    the kernel: first the magics with a literal prefix (and arm64/riscv Image headers,
    "image"), then LZMA-alone headers."""
    first = [(payload, kind) for kind, _, magic in PAYLOAD_MAGICS
             if payload is not None and magic.match(data, payload)]
    yield from first
    for literal in (True, False):
        for start in range(0, len(data), SEARCH_WINDOW):
            end = start + SEARCH_WINDOW
            found = []
            if literal:     # uncompressed arm64/riscv Images, by their header's magic
                for magic, _ in IMAGE_MAGICS:
                    at = data.find(magic, start, end)
                    while at >= 0:
                        found.append((at - 0x38, "image"))
                        at = data.find(magic, at + 1, end)
            for kind, prefix, magic in PAYLOAD_MAGICS:
                if (prefix is None) == literal:
                    continue
                if prefix is None:
                    found += [(m.start(), kind) for m in magic.finditer(data, start, end + 64)
                              if m.start() < end]
                    continue
                at = data.find(prefix, start, end)
                while at >= 0:
                    if magic.match(data, at):
                        found.append((at, kind))
                    at = data.find(prefix, at + 1, end)
            yield from sorted(f for f in found if f not in first)


def unpack(data, log=lambda message: None, max_size=MAX_OUTPUT):
    """(image, Payload): the decompressed kernel image in a file's bytes, and where it was.

    A container is read by its header (see _container()), a u-boot image is decompressed by
    its header, and an ELF vmlinux or an arm64/riscv Image holding the kernel banner is used
    as it is, also from a header further in the file.  Otherwise the file is searched for
    compressed payloads and the first that decompresses to a kernel is used; failing that, a
    file holding the banner is a plain image (checked only now: LZ4 and LZO keep literal
    runs, so a compressed payload may hold the banner too), else the first payload that
    decompressed at all."""
    if not data:
        raise SymversError("input is empty", EXIT_INPUT)
    inner = _container(data, log, max_size)
    if inner is not None:
        return unpack(inner, log, max_size)
    if data[:4] == UBOOT_MAGIC:
        found = _uboot(data, log, max_size)
        if found:
            kind, image = found
            if kind == "none":      # a multi-file image's uncompressed kernel: a zImage...
                return unpack(image, log, max_size)
            log("u-boot payload: %s, %d bytes decompressed" % (kind, len(image)))
            return image, Payload(kind, 64)
    header = image_header(data).how
    if header and has_banner(data):
        log("%s, not compressed (%d bytes)" % (header, len(data)))
        return bytes(data), Payload("none", None)
    view = memoryview(data)
    fallback, errors = None, []
    payload, load = _boot_header(data, log)
    for at, kind in _payload_candidates(data, payload):
        if kind == "image":
            inside = _image_at(data, at)
            if inside:      # image_size counts the bss: the file part may be shorter
                size, how = inside
                log("%s at offset %#x, not compressed" % (how, at))
                return bytes(data[at:at + size]), Payload("none", at)
            continue
        error = _implausible(kind, view[at:])
        if error:
            errors.append("%s at %#x: %s" % (kind, at, error))
            continue
        try:
            image = decompress_payload(kind, view[at:], max_size)
        except SymversError as e:
            if isinstance(e, MissingPackage):   # said now: a plain image may be tried next
                log("warning: %s at %#x: %s" % (kind, at, e))
            errors.append("%s at %#x: %s" % (kind, at, e))
            continue
        if has_banner(image):
            log("%s compressed at pos %d (%#x): %d bytes" % (kind, at, at, len(image)))
            if kind == "lz4" and _lz4_blocks() is lz4_block:
                log("lz4 decoded in Python: pip install lz4 makes it about 20 times faster")
            return image, Payload(kind, at, load)
        if fallback is None and len(image) >= 1 << 16:
            fallback = (image, kind, at)
    if has_banner(data):    # searched for only now: the whole of a dump
        log("image is not compressed (%d bytes)" % len(data))
        return bytes(data), Payload("none", None)
    if fallback:
        image, kind, at = fallback
        log("%s compressed at pos %d (%#x): %d bytes, no kernel banner in it"
            % (kind, at, at, len(image)))
        return image, Payload(kind, at)
    if errors:
        raise SymversError("no payload decompressed to a kernel (%s)" % "; ".join(errors[:3]),
                           EXIT_FORMAT)
    if not header:
        for offset, magic, what, how in FILESYSTEMS:
            if data[offset:offset + len(magic)] == magic:
                raise SymversError("this is %s, not a kernel: get the kernel out of it (%s)"
                                   % (what, how), EXIT_FORMAT)
        raise SymversError("not a kernel: found no kernel banner, no compressed kernel and no "
                           "kernel image header in %d bytes" % len(data), EXIT_FORMAT)
    log("no kernel banner: reading the %s as it is" % header)
    return bytes(data), Payload("none", None)


# --- Reading the image -------------------------------------------------------------------

class Image(NamedTuple):
    """A decompressed kernel: file offset 0 is at virtual address `base`."""
    data: bytes
    base: int
    ptr_size: int       # 4 or 8
    endian: str         # struct prefix: '<' or '>'

    @property
    def ptr(self):
        return "I" if self.ptr_size == 4 else "Q"

    def offset(self, address):
        """File offset of a virtual address, or None when it is outside the image."""
        off = address - self.base
        return off if 0 <= off < len(self.data) else None


_BYTEORDER = {"<": "little", ">": "big"}


class TableRef(NamedTuple):
    """One ksymtab: `count` kernel_symbols at file offset `start`; its CRCs at `crcs` (None
    without CONFIG_MODVERSIONS) and, from 7.1, its flags at `flags`."""
    table: ExportTable
    start: int
    count: int
    crcs: Optional[int]
    flags: Optional[int] = None


class Symbol(NamedTuple):
    crc: int
    name: str
    export: str
    namespace: str


NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_.$]{0,1023}(?=\x00)")
NAMESPACE = re.compile(rb"[\x21-\x7e]{0,1024}(?=\x00)")


def ksym_size(layout, image, prel32):
    fields = 3 if layout.namespace else 2
    return fields * (4 if prel32 else image.ptr_size)


def ksym_reader(layout, image, prel32):
    """(struct format of one kernel_symbol, resolve) where resolve(at, k, value) is the file
    offset that field k of the kernel_symbol at `at` refers to (None outside the image):
    PREL32 fields are offsets from the field itself, the others absolute pointers."""
    fields = 3 if layout.namespace else 2
    if prel32:
        return image.endian + "i" * fields, lambda at, k, value: at + 4 * k + value
    return image.endian + image.ptr * fields, lambda at, k, value: image.offset(value)


def _pointer_pattern(image):
    """A regex matching any pointer into the image (fixed width, for lookbehinds)."""
    size = image.ptr_size
    lo = image.base.to_bytes(size, "big")
    hi = min(image.base + len(image.data) - 1, (1 << 8 * size) - 1).to_bytes(size, "big")
    parts, i = [], 0
    while i < size and lo[i] == hi[i]:
        parts.append(re.escape(lo[i:i + 1]))
        i += 1
    if i < size:
        parts.append(b"[" + re.escape(lo[i:i + 1]) + b"-" + re.escape(hi[i:i + 1]) + b"]")
        parts += [b"."] * (size - i - 1)
    if image.endian == "<":
        parts.reverse()
    return b"".join(parts)


def _symsearch_entry(layout, image, table):
    """Size and tail bytes (licence, unused flag, zero padding) of one symsearch entry."""
    tail = struct.pack(image.endian + "I", table.licence)
    if layout.unused_field:
        tail += bytes([table.unused])
    size = -(-(3 * image.ptr_size + len(tail)) // image.ptr_size) * image.ptr_size
    return size, tail + bytes(size - 3 * image.ptr_size - len(tail))


def find_symsearch(image, layout, prel32):
    """Candidate symsearch arrays: lists of TableRef, most plausible first.

    An entry is {start, stop, crcs, licence[, unused]}; start/stop point into the image, crcs
    into it or NULL.  The regex anchors on the literal tail of the second entry and checks the
    first two entries in a lookbehind, so the 10-70 MB image is scanned at C speed."""
    if len(layout.symsearch) < 2:
        return []
    ptr = _pointer_pattern(image)
    crc_ptr = b"(?:" + ptr + b"|" + re.escape(bytes(image.ptr_size)) + b")"
    entries = [_symsearch_entry(layout, image, t) for t in layout.symsearch]
    size = entries[0][0]
    pattern = [ptr + ptr + crc_ptr + re.escape(tail) for _, tail in entries]
    # the regex engine skips ahead to its literal prefix: make it start with a rare byte
    tail = entries[1][1]
    anchor = tail.lstrip(b"\0") if len(tail.lstrip(b"\0")) >= 4 else tail
    regex = re.compile(b"(?s)" + re.escape(anchor) + b"(?<=" + pattern[0] + pattern[1] + b")"
                       + b"".join(pattern[2:]))
    optional = [re.compile(b"(?s)" + ptr + ptr + crc_ptr
                           + re.escape(_symsearch_entry(layout, image, t)[1]))
                for t in layout.unused_tables]
    entry_format = image.endian + 3 * image.ptr
    step = ksym_size(layout, image, prel32)
    found = []
    for m in regex.finditer(image.data):
        at = m.start() + len(anchor) - 2 * size
        if at % image.ptr_size:
            continue
        tables = list(layout.symsearch)
        end = at + len(tables) * size
        for table, extra in zip(layout.unused_tables, optional):
            if not extra.match(image.data, end):
                break
            tables.append(table)
            end += size
        refs = []
        for i, table in enumerate(tables):
            start, stop, crcs = struct.unpack_from(entry_format, image.data, at + i * size)
            if stop < start or (stop - start) % step:
                break
            refs.append(TableRef(table, image.offset(start), (stop - start) // step,
                                 image.offset(crcs) if crcs else None))
        else:
            if any(r.count for r in refs):      # every kernel exports something
                found.append((at, refs))
    return found


def _crc_tables(refs, width):
    """CRC offsets of the tables, or None for all when the kcrctab sections are empty.

    The kcrctab sections follow each other in the ksymtabs' link order, so with
    CONFIG_MODVERSIONS each starts `count * width` after the one before; without it every
    crcs pointer is the same (empty) address."""
    linked = sorted((r for r in refs if r.count), key=lambda r: r.start)
    crcs = [r.crcs for r in linked]
    if None in crcs or len(set(crcs)) == 1 and len(linked) > 1:
        return [r._replace(crcs=None) for r in refs]
    for a, b in zip(linked, linked[1:]):
        if b.crcs - a.crcs != a.count * width:
            raise SymversError("kcrctab pointers are not consecutive (%s at %#x, %s at %#x)"
                               % (a.table.export, a.crcs, b.table.export, b.crcs),
                               EXIT_INCONSISTENT)
    return refs


def _read_crcs(image, refs, width, rel_crcs):
    """([crcs of each table], relative): slots of `width` bytes, or self-relative s32
    offsets to the CRC (CONFIG_MODULE_REL_CRCS, detected: every slot + offset lands on a
    word inside the image, which a table of CRC values practically never does)."""
    fmt = image.endian + ("I" if width == 4 else "Q")
    slots = []
    for r in refs:
        if r.crcs is None:
            slots.append([0] * r.count)
            continue
        end = r.crcs + r.count * width
        if end > len(image.data):
            raise SymversError("%s CRC table runs past the end of the image" % r.table.export,
                               EXIT_INCONSISTENT)
        slots.append([v for (v,) in struct.iter_unpack(fmt, memoryview(image.data)[r.crcs:end])])
    targets = [[r.crcs + 4 * i + v - (v >> 31 << 32) for i, v in enumerate(values)]
               for r, values in zip(refs, slots) if r.crcs is not None] if rel_crcs else []
    limit = len(image.data) - 4
    if any(targets) and all(0 <= t <= limit and t % 4 == 0 for ts in targets for t in ts):
        read = struct.Struct(image.endian + "I").unpack_from
        targets = iter(targets)
        return [[read(image.data, t)[0] for t in next(targets)] if r.crcs is not None
                else values for r, values in zip(refs, slots)], True
    return [[v & 0xFFFFFFFF for v in values] for values in slots], False


def _string(image, offset, pattern, what, symbol_at):
    m = pattern.match(image.data, offset) if offset is not None else None
    if m is None:
        raise SymversError("%s of the kernel_symbol at %#x is not a valid string"
                           % (what, symbol_at), EXIT_INCONSISTENT)
    return m.group().decode("ascii")


MAX_SYMBOLS = 1 << 20      # real kernels export ~30 000; more is a misread table


def walk(image, layout, prel32, refs, log=lambda message: None):
    """The exported symbols of the tables: names, namespaces, CRCs and export types.

    Names are read and checked first, so a garbage candidate fails at its first entry,
    before anything in proportion to its claimed size is read."""
    step = ksym_size(layout, image, prel32)
    fmt, resolve = ksym_reader(layout, image, prel32)
    if sum(r.count for r in refs) > MAX_SYMBOLS:
        raise SymversError("tables claim %d symbols" % sum(r.count for r in refs),
                           EXIT_INCONSISTENT)
    namespaces = {None: ""}     # a few namespaces, each referred to by many symbols
    entries = []
    for t, r in enumerate(refs):
        end = r.start + r.count * step if r.start is not None else None
        if end is None or end > len(image.data) or (
                r.flags is not None and r.flags + r.count > len(image.data)):
            raise SymversError("%s table runs past the end of the image" % r.table.export,
                               EXIT_INCONSISTENT)
        flags = image.data[r.flags:r.flags + r.count] if r.flags is not None else None
        for i, fields in enumerate(struct.iter_unpack(fmt, memoryview(image.data)[r.start:end])):
            at = r.start + i * step
            name = _string(image, resolve(at, 1, fields[1]), NAME, "name", at)
            # 5.4 leaves the namespace NULL (0) when there is none; 5.5+ points at ""
            target = resolve(at, 2, fields[2]) if layout.namespace and fields[2] else None
            namespace = namespaces.get(target)
            if namespace is None:
                namespace = namespaces[target] = _string(image, target, NAMESPACE,
                                                         "namespace", at)
            export = r.table.export
            if flags is not None:
                if flags[i] > 1:
                    raise SymversError("flag byte %#x of %s is not a known kflagstab value"
                                       % (flags[i], name), EXIT_INCONSISTENT)
                export = GPL.export if flags[i] else PLAIN.export
            entries.append((t, i, name, export, namespace))
    width = layout.crc_width or image.ptr_size
    crcs, relative = _read_crcs(image, _crc_tables(refs, width), width, layout.rel_crcs)
    if relative:
        log("CRC tables hold self-relative offsets (CONFIG_MODULE_REL_CRCS)")
    return unique([Symbol(crcs[t][i], name, export, namespace)
                   for t, i, name, export, namespace in entries])


def unique(symbols):
    """The symbols, each once.  An export may stand twice in a table (arm64 5.10 exports
    __memcpy, memcpy, __memset, clear_page and copy_page from two objects); modpost lists it
    once.  Two entries of one name that differ are a misread table, not a kernel."""
    seen, out = {}, []
    for s in symbols:
        if s.name not in seen:
            seen[s.name] = s
            out.append(s)
        elif seen[s.name] != s:
            raise SymversError("symbol %s is exported twice, differently" % s.name,
                               EXIT_INCONSISTENT)
    if 2 * len(out) < len(symbols):     # a real kernel repeats a few (ARM 2.6.12: 14 of 1843)
        raise SymversError("%d of %d exports repeat others" % (len(symbols) - len(out),
                                                              len(symbols)), EXIT_INCONSISTENT)
    return out


# --- Direct table search (7.1+, and the fallback) -----------------------------------------

# identifiers, and namespaces such as "module:cxl_core,cxl-pmem"
_IDENT = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.$:,-"
# byte -> 1 where a string block ends: anything but an identifier character or NUL
_BREAK = bytes(0 if c in _IDENT or c == 0 else 1 for c in range(256))
SAMPLE_STRIDE = 16
SAMPLE_RUN = bytes(32)      # 32 samples, >= 512 bytes of identifier characters and NULs


def string_blocks(data):
    """(start, end) of the regions made only of NUL-terminated identifiers, largest first.

    Every SAMPLE_STRIDE-th byte is classified at C speed (translate, then find: a regex
    over the samples is 7 times slower); runs of identifier/NUL samples that are not mostly
    NUL are then widened to the exact byte boundaries."""
    samples = data[::SAMPLE_STRIDE]
    breaks = samples.translate(_BREAK)
    blocks = []
    run_end = 0
    while True:
        run_start = breaks.find(SAMPLE_RUN, run_end)
        if run_start < 0:
            break
        run_end = breaks.find(b"\1", run_start)
        if run_end < 0:
            run_end = len(breaks)
        if samples.count(b"\0", run_start, run_end) > (run_end - run_start + 1) // 2:
            continue
        start, end = run_start * SAMPLE_STRIDE, min(run_end * SAMPLE_STRIDE, len(data))
        while start > 0 and not _BREAK[data[start - 1]]:
            start -= 1
        while end < len(data) and not _BREAK[data[end]]:
            end += 1
        blocks.append((start, end))
    return sorted(blocks, key=lambda b: b[0] - b[1])


def _chains(positions, step):
    """Runs of positions spaced exactly `step` apart: [(first, count)], longest first."""
    length = {}
    for p in positions:
        length[p] = length.get(p - step, 0) + 1
    ends = [p for p in length if p + step not in length]
    return sorted(((p - (length[p] - 1) * step, length[p]) for p in ends), key=lambda c: -c[1])


def find_tables_direct(image, layout, prel32, blocks=None):
    """Candidate table sets located without symsearch (lists of TableRef), best first.

    __ksymtab_strings is a block of NUL-terminated identifiers right after the ksymtab,
    kcrctab and (7.1+) kflagstab sections.  For each such block, the words before it that
    refer into it are found; the ksymtab is the longest run of them spaced one
    kernel_symbol apart (before 3.0 widened over the few entries whose names live elsewhere),
    with the CRC table right after, split into its tables (_split_tables).
    `blocks` are the image's string_blocks(), when already known."""
    step = ksym_size(layout, image, prel32)
    field = 4 if prel32 else image.ptr_size
    width = layout.crc_width or image.ptr_size
    for block_start, block_end in (blocks or string_blocks(image.data))[:DIRECT_BLOCKS]:
        hits = _refs_before(image, prel32, field, step, block_start, block_end, width)
        chains = _chains(hits, step)[:3]
        if not chains:
            continue
        # a ksymtab has at least a few entries and refers to most strings of its block
        strings = len(image.data[block_start:block_end].translate(_NUL_TO_SPACE).split())
        least = max(MIN_DIRECT_SYMBOLS, strings // 2)
        for first, count in chains:
            if count < least:
                break
            runs = [(first - field, count)]
            if not layout.sorted:
                runs.insert(0, _widen_run(image, layout, prel32, first - field, count))
            for start, count in dict.fromkeys(runs):
                refs = _direct_tables(image, layout, prel32, start, count, width)
                if refs:
                    yield refs
                    break


REFS_CHUNK = 1 << 16
# __ksymtab_strings is among the three largest identifier blocks of every Debian kernel
# (5.10-7.2, ten architectures; .BTF strings may be larger); the 100-450 smaller ones cost
# a failed attempt (a wrong -p or -b) tens of milliseconds
DIRECT_BLOCKS = 8
MIN_DIRECT_SYMBOLS = 16
# the block's strings as whitespace-separated words, for bytes.split() to count at C speed
_NUL_TO_SPACE = bytes.maketrans(b"\0 \t\n\r\x0b\x0c", b" xxxxxx")


def _refs_before(image, prel32, field, step, block_start, block_end, width):
    """Offsets of the aligned words before the block that refer into it: self-relative
    offsets (PREL32; never 0) or absolute pointers.  Names may point into the middle of a
    string (the linker merges common suffixes).

    The scan starts a little inside the block, whose detected start may have swallowed
    NUL-like flag or CRC bytes, and goes backward a chunk at a time.  Until a reference is
    found it goes only as far as the CRC and flag tables of as many symbols as the block has
    strings could reach; then it goes on while the references reach a chunk's lower edge,
    as a ksymtab running on into the chunk before does."""
    strings = image.data.count(b"\0", block_start, block_end)
    reach = max(0, block_start - strings * (width + 1) - 4096) // field * field
    hi = min(block_end, block_start + 4096) // field * field
    hits = []
    while hi > 0:
        lo = max(0 if hits else reach, hi - REFS_CHUNK) // field * field
        words = array.array("i" if prel32 else image.ptr, image.data[lo:hi])
        if (image.endian == ">") != (sys.byteorder == "big"):
            words.byteswap()
        # the address each word refers to (p + v or v), inside the block: all in C
        if prel32:
            targets = map(operator.add, range(lo, hi, field), words)
            inside = _in_range(targets, block_start, block_end - block_start)
        else:
            inside = _in_range(words, image.base + block_start, block_end - block_start)
        found = [p for p in itertools.compress(range(lo, hi, field), inside)
                 if not prel32 or p < block_start or image.data[p:p + 4] != bytes(4)]
        hits[:0] = found
        if (hits and not (found and found[0] < lo + 2 * step)) or (not hits and lo <= reach):
            break
        hi = lo
    return hits


def _in_range(values, low, length):
    """For each value, whether low <= value < low + length, at C speed: the difference is
    taken as an unsigned number wider than any pointer, so one comparison does."""
    return map(length.__gt__, map(operator.and_, map(operator.sub, values, itertools.repeat(low)),
                                  itertools.repeat((1 << 80) - 1)))


def _string_refs(image, layout, prel32, start, count):
    """File offsets of the names and namespaces that `count` kernel_symbols refer to."""
    step = ksym_size(layout, image, prel32)
    fmt, resolve = ksym_reader(layout, image, prel32)
    table = memoryview(image.data)[start:start + count * step]
    for i, fields in enumerate(struct.iter_unpack(fmt, table)):
        for k in range(1, len(fields)):
            if fields[k]:
                yield resolve(start + i * step, k, fields[k])


def _names(image, layout, prel32, start, count):
    """The names of `count` kernel_symbols (bytes), or None at the first that is not one."""
    step = ksym_size(layout, image, prel32)
    fmt, resolve = ksym_reader(layout, image, prel32)
    names = []
    for i, fields in enumerate(struct.iter_unpack(fmt, image.data[start:start + count * step])):
        offset = resolve(start + i * step, 1, fields[1])
        m = NAME.match(image.data, offset) if offset is not None else None
        if m is None:
            return None
        names.append(m.group())
    return names


def _widen_run(image, layout, prel32, start, count):
    """(start, count) of the run widened over neighbouring entries whose names are valid
    anywhere in the image.  Before 3.0 a few exports may name strings outside
    __ksymtab_strings (ARM 2.6.12: nwfpe's kern_fp_enter, fp_printk, fp_send_sig), which cut
    the run of references into the block in two."""
    step = ksym_size(layout, image, prel32)
    while start >= step and _names(image, layout, prel32, start - step, 1):
        start -= step
        count += 1
    while _names(image, layout, prel32, start + count * step, 1):
        count += 1
    return start, count


def _direct_tables(image, layout, prel32, start, count, width):
    """The TableRefs of a run of kernel_symbols, with their CRC and flag offsets, or None
    when the tables do not add up.

    kcrctab follows the last ksymtab, kflagstab follows kcrctab, then __ksymtab_strings: the
    room before the first string the tables refer to must be exactly those tables (with
    CONFIG_MODVERSIONS or without), give or take alignment.  Anything else means the run
    found is not the whole ksymtab, and its CRCs would be read from the wrong slots."""
    step = ksym_size(layout, image, prel32)
    stop = start + count * step
    strings_start = min((r for r in _string_refs(image, layout, prel32, start, count)
                         if r is not None and r >= stop), default=None)
    if strings_start is None:
        return None
    flags = count if layout.flagstab else 0
    room = strings_start - stop
    if 0 <= room - count * width - flags < 16:
        crc_at = stop
    elif 0 <= room - flags < 16:
        crc_at = None
    else:
        return None
    tables = _split_tables(image, layout, prel32, start, count, crc_at, width)
    if tables is None:
        return None
    out, at = [], 0
    flag_at = stop + (count * width if crc_at is not None else 0)
    for table, size in tables:
        out.append(TableRef(table, start + at * step, size,
                            None if crc_at is None else crc_at + at * width,
                            flag_at + at if layout.flagstab else None))
        at += size
    return out


def _split_tables(image, layout, prel32, start, count, crc_at, width):
    """[(ExportTable, count)] of a run of kernel_symbols, or None.

    From 3.0 each table is sorted: a name smaller than the one before starts the next (a
    table may hold an export twice, see unique()).  Before, the tables are in link order and
    the kernel's code refers to their bounds (_referenced_entries), in the ksymtab and, with
    CRCs, in the kcrctab too.  Where the Module.symvers of
    the release has no export type (before 2.6.18) the split changes nothing: one table."""
    if layout.sorted:
        names = _names(image, layout, prel32, start, count)
        if names is None:
            return None
        breaks = [i + 1 for i in range(count - 1) if names[i] > names[i + 1]]
    elif "export" not in layout.columns:
        return [(layout.section_order[0], count)]
    else:
        step = ksym_size(layout, image, prel32)
        breaks = _referenced_entries(image, start, count, step)
        if crc_at is not None:
            breaks &= _referenced_entries(image, crc_at, count, width)
        if not breaks:
            raise SymversError("%d exports found, but no word of the kernel's code refers to "
                               "the bounds between __ksymtab and __ksymtab_gpl, which give "
                               "the export types before 2.6.27" % count, EXIT_NOT_FOUND)
        breaks = sorted(breaks)
    bounds = [0] + breaks + [count]
    runs = len(bounds) - 1
    tables = layout.section_order
    if runs != len(tables):     # empty tables: CONFIG_UNUSED_SYMBOLS=n, then no GPL_FUTURE
        tables = [t for t in tables if not t.unused][:runs]
    if len(tables) != runs:
        return None
    return [(table, bounds[i + 1] - bounds[i]) for i, table in enumerate(tables)]


POOL_REACH = 64     # bytes between the words one function's literal pool or code holds


def _referenced_entries(image, start, count, size):
    """The indexes 0 < k < count of the slots (of `size` bytes, from file offset `start`)
    that the code refers to next to the tables' outer bounds.

    find_symbol() refers to every table's bounds: __start___ksymtab (slot 0) and the last
    __stop (slot `count`), and between them those of the other tables, in one literal pool
    (ARM), one function's immediates (x86), or side by side in the symsearch template (2.6.27+
    on every architecture).  A word counts when it holds the slot's address in 4 bytes (a
    pointer, or the low half of a 64-bit one or of a sign-extended immediate), at any
    alignment, within POOL_REACH bytes of a word already counted, starting from those of slot
    0 and slot `count`.  kallsyms_addresses refers to every entry (each is a symbol,
    __ksymtab_NAME) in a sorted run, whose words refer to the same entry as their neighbours
    or the next: the inside of such a run, and its ends, never count.  (A pool may hold the
    two bounds of a one-entry table side by side: two words are no run.)"""
    low = (image.base + start) & 0xFFFFFFFF
    high = low + count * size
    refs = {}
    shift = 2 if image.endian == "<" else 0        # where the high half sits in the word
    for half in range(low >> 16, (high >> 16) + 1):
        tag = struct.pack(image.endian + "H", half & 0xFFFF)
        for m in re.finditer(re.escape(tag), image.data):
            at = m.start() - shift
            if 0 <= at <= len(image.data) - 4:
                k, rest = divmod(int.from_bytes(image.data[at:at + 4], _BYTEORDER[image.endian])
                                 - low, size)
                if not rest and 0 <= k <= count:
                    refs[at] = k

    def near(at, k, d):
        return refs.get(at + d, -2) - k in (0, 1 if d > 0 else -1)

    inside = {at for at, k in refs.items()
              if any(near(at, k, -d) and near(at, k, d) for d in (4, 8))}
    words = sorted(at for at, k in refs.items() if at not in inside and not any(
        at + d in inside and near(at, k, d) for d in (-8, -4, 4, 8)))
    counted = {at for at in words if refs[at] in (0, count)}
    pending = list(counted)
    while pending:
        at = pending.pop()
        first = bisect.bisect_left(words, at - POOL_REACH)
        for other in itertools.islice(words, first, None):
            if other > at + POOL_REACH:
                break
            if other not in counted:
                counted.add(other)
                pending.append(other)
    return {refs[at] for at in counted} - {0, count}


# --- Output -----------------------------------------------------------------------------

def format_symvers(symbols, columns, module="vmlinux"):
    """Module.symvers lines (without newlines) in the column order of a layout's modpost."""
    line = "\t".join("0x%08x" if c == "crc" else "%s" for c in columns)
    fields = operator.itemgetter(*[(Symbol._fields + ("module",)).index(c) for c in columns])
    return [line % fields(s + (module,)) for s in symbols]


def _vmlinux_lines(symbols, layout):
    """The vmlinux lines modpost writes: the kernel's exports, then the ones modpost of that
    release lists for vmlinux whatever the kernel holds (CRC 0 unless the kernel has them)."""
    names = {s.name for s in symbols}
    symbols = symbols + [Symbol(0, name, PLAIN.export, "") for name in layout.modpost_adds
                         if name not in names]
    return format_symvers(symbols, layout.columns)


def _describe(refs):
    return ", ".join("%s %d at %#x" % (r.table.export, r.count, r.start) for r in refs)


def _extract_with(image, layout, prel32, version, blocks, log):
    """(Module.symvers lines, whether the base and pointer size mattered) with every option
    known; a base of None is allowed with PREL32 (the symsearch array needs it, the direct
    search does not: its tables hold 32-bit offsets, whatever the pointer size)."""
    errors = []
    candidates = find_symsearch(image, layout, prel32) if image.base is not None else []
    for at, refs in candidates:
        try:
            symbols = walk(image, layout, prel32, refs, log)
        except SymversError as e:
            errors.append("symsearch candidate at %#x: %s" % (at, e))
            continue
        log("symsearch found at offset %#x: %s" % (at, _describe(refs)))
        return _vmlinux_lines(symbols, layout), True
    if layout.symsearch and image.base is not None:
        log("symsearch not found%s; locating the tables directly"
            % (" (%d candidates rejected)" % len(candidates) if candidates else ""))
    for refs in find_tables_direct(image, layout, prel32, blocks):
        try:
            symbols = walk(image, layout, prel32, refs, log)
        except SymversError as e:
            errors.append("tables at %#x: %s" % (refs[0].start, e))
            continue
        log("export tables found directly: %s" % _describe(refs))
        return _vmlinux_lines(symbols, layout), not prel32
    if errors:
        raise SymversError("export tables found but not valid with these options: %s"
                           % "; ".join(errors[:3]), EXIT_INCONSISTENT)
    raise SymversError("no export tables found with %s: check the base address, pointer "
                       "size, endianness, kernel version and PREL32 setting"
                       % _spell(image, layout, prel32, version), EXIT_NOT_FOUND)


def _spell(image, layout, prel32, version, placed=True):
    """The options of one attempt, as the user would write them (without -B and -b when
    they did not matter: not `placed`)."""
    where = ""
    if placed:
        where = ("-B %x " % image.base if image.base is not None else "") + \
            "-b %d " % (image.ptr_size * 8)
    return "%s-e %s -k %s -p %s" % (where, "be" if image.endian == ">" else "le",
                                    _release(version), "y" if prel32 else "n")


def _release(version):
    """A version as -k takes it: major.minor, with the patch level where the layout needs it
    (2.6 before 2.6.27, 5.4.0-27, 5.5.0-12)."""
    release = "%d.%d" % tuple(version[:2])
    if layout_for(version) != layout_for(tuple(version[:2]) + (LATEST_PATCH,)):
        release += ".%d" % version[2]
    return release


def extract(data, base=None, bits=None, big_endian=None, version=None, prel32=None,
            log=lambda message: None, hints=()):
    """Module.symvers lines of a decompressed kernel image.

    Every option left as None is detected from the image (see _attempts()); the ones given
    are used as they are.  Each combination is confirmed by a full walk of the tables.  When
    none finds them and the image carries relative relocations whose slots are empty (an
    arm64 Image), they are applied to a copy and the search runs again; on an arm64 Image
    with a symsearch array (before 7.1), whose pointers are all such slots, right away.
    `hints` are bases to try before voting (a loader header's load address)."""
    if len(data) < 256:
        raise SymversError("%d bytes are not a kernel image" % len(data), EXIT_FORMAT)
    version = version or _detect_version(data, log)
    if base is None and layout_for(version).symsearch and image_header(data).unrelocated:
        relocated = relocate(data, None, log)
        if relocated:
            data, base = relocated
    try:
        return _extract(data, base, bits, big_endian, version, prel32, log, hints)
    except SymversError as e:
        if e.status not in (EXIT_NOT_FOUND, EXIT_INCONSISTENT):
            raise
        relocated = relocate(data, base, log)
        if relocated is None:
            raise
    image, link = relocated
    return _extract(image, link, bits, big_endian, version, prel32, log)


def _extract(data, base, bits, big_endian, version, prel32, log, hints=()):
    if base is not None and bits is not None and base >> bits:
        raise SymversError("base address %#x does not fit in %d bits" % (base, bits), EXIT_USAGE)
    layout = layout_for(version)
    attempts = []
    blocks = string_blocks(data)     # asked for by every attempt: found once
    for image, use_prel32 in _attempts(data, blocks, layout, base, bits, big_endian, prel32,
                                       log, hints):
        try:
            lines, placed = _extract_with(image, layout, use_prel32, version, blocks, log)
        except SymversError as e:
            attempts.append(e)
            continue
        if None in (base, bits, big_endian, prel32):
            log("detected options: %s%s" % (_spell(image, layout, use_prel32, version, placed),
                                            "" if placed else " (-B and -b do not matter: "
                                            "PREL32 tables found directly)"))
        return lines
    hints = _hints(data, bits, big_endian, version)
    if len(attempts) == 1:
        raise SymversError("; ".join([str(attempts[0])] + hints), attempts[0].status)
    header = image_header(data)
    unknown = [option for option, value in (("-B", base if base is not None else
                                             (header.bases or None)),
                                            ("-b", bits or header.bits),
                                            ("-e", big_endian if big_endian is not None
                                             else header.big_endian),
                                            ("-p", prel32)) if value is None]
    inconsistent = [e for e in attempts if e.status == EXIT_INCONSISTENT]
    tried = "; ".join(str(e) for e in (inconsistent or attempts)[:2])
    raise SymversError("; ".join(["no export tables found with %d detected option sets%s: "
                                  "give %s" % (len(attempts), " (%s)" % tried if tried else "",
                                               " ".join(unknown) or "other options")] + hints),
                       inconsistent[0].status if inconsistent else EXIT_NOT_FOUND)


def _hints(data, bits, big_endian, version):
    """What the image itself says against the options given: the likely fix, cheaply."""
    hints = []
    m = BANNER_VERSION.search(data)
    if m:
        banner = (int(m[1]), int(m[2]), int(m[3]) if m[3] else LATEST_PATCH)
        if layout_for(banner) != layout_for(version):
            hints.append("the banner says Linux %s: try -k %s, or no -k"
                         % (_release(banner), _release(banner)))
    header = image_header(data)
    if bits and header.bits and bits != header.bits:
        hints.append("the %s says %d-bit: try -b %d" % (header.how, header.bits, header.bits))
    if big_endian is not None and header.big_endian is not None \
            and big_endian != header.big_endian:
        hints.append("the %s says %s endian: try -e %s"
                     % (header.how, "big" if header.big_endian else "little",
                        "be" if header.big_endian else "le"))
    return hints


# --- Detecting the options ----------------------------------------------------------------

BANNER_VERSION = re.compile(rb"Linux version (\d+)\.(\d+)(?:\.(\d+))?[^\0\n]{0,200}")
EM_X86 = (3, 62)            # e_machine of i386 and x86-64: PREL32 ksymtab from 4.19
EM_AARCH64 = 183
EM_PPC64, EM_S390, EM_RISCV = 21, 22, 243
# Relative relocation types -> (name, e_machine): the slot gets load offset + r_addend, the
# link-time value.  arm64 links with --no-apply-dynamic-relocs, leaving those slots zero.
R_AARCH64_RELATIVE, R_PPC64_RELATIVE, R_RISCV_RELATIVE, R_390_RELATIVE = 1027, 22, 3, 12
RELATIVE_TYPES = {R_AARCH64_RELATIVE: ("R_AARCH64_RELATIVE", EM_AARCH64),
                  R_PPC64_RELATIVE: ("R_PPC64_RELATIVE", EM_PPC64),
                  R_RISCV_RELATIVE: ("R_RISCV_RELATIVE", EM_RISCV),
                  R_390_RELATIVE: ("R_390_RELATIVE", EM_S390)}


BANNER_RELEASE = re.compile(rb"Linux version ([!-~]+) ")


def vermagic(data):
    """The string the module loader compares each module's vermagic with (kernel/module's
    vermagic[] = VERMAGIC_STRING: the release, then "SMP ", "preempt ", "mod_unload ",
    "modversions ", the architecture's words: arm64's "aarch64" has no space), or None: the
    release of the banner, a space and words, a string of its own."""
    m = BANNER_RELEASE.search(data)
    if m is None:
        return None
    words = re.compile(b"(?:[!-~]+ )*[!-~]*(?=\0)")
    head = b"\0" + m[1] + b" "         # found by bytes.find: a regex here costs 0.13 s / 66 MB
    at = data.find(head)
    while at >= 0:
        found = words.match(data, at + len(head))
        if found:
            return (m[1] + b" " + found.group()).decode("latin-1")
        at = data.find(head, at + 1)
    return None


IKCONFIG = re.compile(rb"IKCFG_ST(?=\x1f\x8b\x08)")


def embedded_config(data, limit=MAX_OUTPUT):
    """The .config of a CONFIG_IKCONFIG kernel: kernel/configs.c's gzip stream between the
    IKCFG_ST and IKCFG_ED marks (what scripts/extract-ikconfig reads), or None."""
    m = IKCONFIG.search(data)
    if m is None:
        return None
    return bytes(decompress_payload("gzip", memoryview(data)[m.end():], limit))


def _detect_version(data, log):
    m = BANNER_VERSION.search(data)
    if not m:
        raise SymversError("no 'Linux version' banner in the image: give -k", EXIT_NOT_FOUND)
    version = (int(m[1]), int(m[2]), int(m[3]) if m[3] else LATEST_PATCH)
    log("detected kernel version %d.%d%s from the banner %r"
        % (version[0], version[1], ".%d" % version[2] if m[3] else "",
           m.group().decode("latin-1")[:80]))
    return version


class Header(NamedTuple):
    """What an image's own header says: pointer size, byte order, bases, PREL32 likelihood."""
    bits: Optional[int]
    big_endian: Optional[bool]
    bases: tuple            # candidate -B values, most likely first
    prel32: Optional[bool]  # the architecture selects HAVE_ARCH_PREL32_RELOCATIONS
    how: str
    unrelocated: bool = False   # arm64: absolute pointers are left to the boot code
    relocations: tuple = tuple(RELATIVE_TYPES)   # the relative types its image may carry


def image_header(data):
    """The Header of an ELF vmlinux, an arm64 or riscv Image, or an empty one."""
    if data[:4] == b"\x7fELF" and data[4] in (1, 2) and data[5] in (1, 2) and len(data) >= 64:
        elf = ElfObject(data, sections=False)
        # the first segment holds _text and, after it, .rodata with the export tables
        bases = tuple(dict.fromkeys(s.vaddr - s.offset for s in elf.segments()
                                    if s.kind == PT_LOAD and s.filesz and s.vaddr >= s.offset))
        machine = elf.machine
        return Header(elf.bits, elf.e == ">", bases, machine in EM_X86 + (EM_AARCH64,),
                      "ELF header (machine %d)" % machine, machine == EM_AARCH64,
                      tuple(t for t, m in RELATIVE_TYPES.items() if m[1] == machine))
    if data[0x38:0x3C] == b"ARM\x64":                            # arm64 Image header
        flags, = struct.unpack_from("<Q", data, 0x18)             # bit 0: big endian
        return Header(64, bool(flags & 1), (), True, "arm64 Image header", True,
                      (R_AARCH64_RELATIVE,))
    if data[0x38:0x3C] == b"RSC\x05":                            # riscv Image header
        return Header(64, False, (), False, "riscv Image header", False, (R_RISCV_RELATIVE,))
    return Header(None, None, (), None, "")


def _lanes(data, blocks):
    """(big_endian, bits) guessed from the words before the largest identifier blocks:
    pointers and offsets there share their high bytes, so the byte lanes (offset mod 8) that
    hold one value most of the time are the high-order ones."""
    score = [0.0] * 8
    for start, end in blocks[:2]:
        strings = data.count(b"\0", start, end)
        lo, hi = max(0, start - 10 * strings - (16 << 10)) // 8 * 8, max(0, start - 5 * strings)
        region = data[lo:hi // 8 * 8]
        if len(region) < 512:
            continue
        for lane in range(8):
            column = region[lane::8]
            score[lane] += max(column.count(bytes([v])) for v in set(column[:64])) / len(column)
    big = score[0] + score[4] > score[3] + score[7]
    high = score[1:4] if big else score[4:7]          # the next pointer's low bytes at 32 bits
    return big, 64 if sum(high) > sum(score[5:8] if big else score[0:3]) + 0.3 else 32


def _attempts(data, blocks, layout, base, bits, big_endian, prel32, log, hints=()):
    """(Image, prel32) combinations to try, the given options fixed, the likeliest first."""
    header = image_header(data)
    guess_big, guess_bits = None, None
    if (big_endian is None and header.big_endian is None) or (bits is None and not header.bits):
        guess_big, guess_bits = _lanes(data, blocks)

    def order(given, from_header, guessed, values, what):
        if given is not None:
            return [given]
        if from_header is not None:
            log("detected %s from the %s" % (what(from_header), header.how))
            return [from_header]
        first = guessed if guessed is not None else values[0]
        return [first] + [v for v in values if v != first]

    endians = order(big_endian, header.big_endian, guess_big, [False, True],
                    lambda v: "big endian" if v else "little endian")
    widths = order(bits, header.bits, guess_bits, [64, 32], lambda v: "%d-bit pointers" % v)
    if prel32 is not None or not layout.prel32:
        prel32s = [bool(prel32) and layout.prel32]
    else:
        prel32s = [True, False] if header.prel32 is not False else [False, True]
    for big in endians:
        for width in widths:
            for use_prel32 in prel32s:
                for b in _bases(data, blocks, base, header, hints, width, big, layout,
                                use_prel32, log):
                    yield Image(data, b, width // 8, ">" if big else "<"), use_prel32


def _bases(data, blocks, base, header, hints, bits, big, layout, prel32, log):
    """Candidate -B values: the given one, the ELF segments', the hints (a loader header's),
    else (absolute pointers only: PREL32 tables are found without one) the ones the name
    pointers vote for."""
    if base is not None:
        if not base >> bits:
            yield base
        return
    for b, how in [(b, header.how) for b in header.bases] + [(b, "loader header")
                                                             for b in hints]:
        if not b >> bits:
            log("trying base %x from the %s" % (b, how))
            yield b
    if prel32:
        yield None
        return
    for b in vote_bases(data, blocks, bits, big, layout):
        log("trying base %x from the name pointers" % b)
        yield b


def vote_bases(data, blocks, bits, big, layout):
    """Bases that absolute name pointers point into a string block from.

    For each identifier block [start, end), every name pointer p before it satisfies
    base + start <= p < base + end: cells of the block's length vote for the base, and the
    winning cell gives the pointers - those of them one kernel_symbol away from another,
    as in a table.  The lowest, the section's first string, is matched against the heads
    of the block (its detected start may be off by the table bytes before it); a base is
    kept when nearly all the other pointers then land on a string in the block too: just
    after a NUL, or on the NUL of "" (5.5+ namespaces).  `blocks` are string_blocks(data)."""
    size = bits // 8
    fields = 3 if layout.namespace else 2
    found = []
    # the words read before a block are in proportion to its strings: fewest first (the
    # .BTF strings, larger than __ksymtab_strings, cost 0.1 s on s390x)
    for strings, start, end in sorted((data.count(b"\0", start, end), start, end)
                                      for start, end in blocks[:4]):
        length = end - start
        lo = max(0, start - strings * (fields * size + 5) - 4096) // size * size
        words = array.array("I" if size == 4 else "Q", data[lo:start // size * size])
        if big != (sys.byteorder == "big"):
            words.byteswap()
        # NULL (no namespace in 5.4) is no pointer
        votes = collections.Counter(map(operator.floordiv,
                                        map(operator.sub, filter(None, words),
                                            itertools.repeat(start)),
                                        itertools.repeat(length)))
        if not votes:
            continue
        cell, count = votes.most_common(1)[0]
        low = cell * length + start
        # the pointers straddle the winning cell and one of its neighbours
        near = set(itertools.compress(range(len(words)),
                                      _in_range(words, low - length, 3 * length)))
        pointers = sorted(words[i] for i in near if i - fields in near or i + fields in near)
        if len(pointers) < 16:
            continue
        heads = list(_string_starts(data, start, min(end, start + 4096)))
        # the lowest pointers may be other tables' (symsearch, exported .rodata objects):
        # try a few as the first string, judging each by the pointers from it up
        for lowest, first in enumerate(pointers[:16]):
            sample = pointers[lowest::max(1, (len(pointers) - lowest) // 64)]
            probes, share = sample[1::8], 7 / 8
            # the heads for which too few probes land anywhere are skipped at C speed
            lands = _landing(data, [heads[0] + p - first for p in probes],
                             heads[-1] - heads[0] + 1)
            for b in (first - head for head in heads
                      if lands[head - heads[0]] >= share * len(probes)):
                if b in found or b >> bits or b < 0:
                    continue
                if _lands_on_strings(data, b, probes, start, end, share) and \
                        _lands_on_strings(data, b, sample, start, end, 0.9):
                    found.append(b)
                    yield b
                    break


_NUL_MARK = bytes([1]) + bytes(255)     # translate: NUL -> 1, anything else -> 0


def _landing(data, offsets, count):
    """For each i < count, how many of the offsets (at most 255) moved by i land on a string
    - just after a NUL or on a NUL - as a bytes object, at C speed: one byte per i of a sum
    of integers, which never carries."""
    total = 0
    for at in offsets:
        window = data[at - 1:at + count].translate(_NUL_MARK) if at > 0 else b""
        marks = int.from_bytes(window, "little")
        total += marks | marks >> 8     # byte i: data[at + i - 1] or data[at + i] is NUL
    return total.to_bytes(count + 1, "little")[:count]


def _lands_on_strings(data, base, pointers, start, end, share):
    """Whether at least `share` of the pointers land on a string of the block - just after
    a NUL, or on the NUL of "" (5.5+ namespaces) - and enough of them on a string's first
    byte: one byte off, names land on the NUL before them."""
    starts = empties = 0
    for p in pointers:
        offset = p - base
        if start <= offset < end:
            if data[offset - 1] == 0:
                starts += 1
            elif data[offset] == 0:
                empties += 1
    return starts + empties >= share * len(pointers) and starts >= 0.4 * len(pointers)


def _string_starts(data, start, end):
    """Where the first string of a block may start: any of its first 256 bytes, then
    after each NUL."""
    yield from range(start, min(end, start + 256))
    for m in re.finditer(b"\x00", data[start + 256:end]):
        yield start + 256 + m.end()


# --- Relocations: images whose absolute pointers the boot code fills in -----------------

MIN_RELOCATIONS = 64


class Relocations(NamedTuple):
    name: str           # the relocation type
    endian: str         # struct prefix
    records: list       # (r_offset, r_addend): link-time slot address and value


def find_relocations(data, kinds=tuple(RELATIVE_TYPES), endians="<>"):
    """The runs of Elf64_Rela records {r_offset, r_info, r_addend} of one relative type in
    the image (an arm64 Image carries its .rela.dyn), or None.  A literal-prefixed regex
    finds runs of at least MIN_RELOCATIONS records, 24 bytes apart; each kind and byte order
    is a pass over the image, so only the architecture's are tried when it is known."""
    for kind in kinds:
        name = RELATIVE_TYPES[kind][0]
        for endian in endians:
            info = re.escape(struct.pack(endian + "Q", kind))
            run = re.compile(b"(?s)" + info + b"(?:.{16}" + info + b"){%d,}"
                             % (MIN_RELOCATIONS - 1))
            records = []
            for m in run.finditer(data):    # r_offset before the first r_info, r_addend after
                if m.start() >= 8 and m.end() + 8 <= len(data):
                    records += [(offset, addend) for offset, _, addend in struct.iter_unpack(
                        endian + "QQq", data[m.start() - 8:m.end() + 8])]
            if records:
                return Relocations(name, endian, records)
    return None


def relocate(data, base, log):
    """(relocated copy of the image, link base) when the image holds relative relocations
    whose slots are still empty, else None.  The base is the given one, or the page-aligned
    address that puts the relocated slots on zeros, as --no-apply-dynamic-relocs leaves them.
    The input is never modified."""
    header = image_header(data)
    endians = "<>" if header.big_endian is None else ">" if header.big_endian else "<"
    relocations = find_relocations(data, header.relocations, endians)
    if relocations is None:
        return None
    offsets = sorted(offset for offset, _ in relocations.records)
    sample = offsets[::max(1, len(offsets) // 1024)]

    def unfilled(b, slots):
        """The share of the slots that are zero with link base b."""
        return sum(data[o - b:o - b + 8] == bytes(8) for o in slots
                   if 0 <= o - b <= len(data) - 8) / len(slots)

    if base is not None:
        bases = [base]
    else:               # every page-aligned base that keeps all the slots in the image
        bases = range(offsets[0] & ~0xFFF, max(offsets[-1] - len(data), -1), -0x1000)
    # a neighbouring base still lands most slots on zeros (tables of pointers): the best
    # wins, measured on a large sample among those a small one finds likely
    likely = [b for b in bases if unfilled(b, sample[::16]) >= 0.9]
    share, link = max(((unfilled(b, sample), b) for b in likely), default=(0, None))
    if share < 0.95:
        log("%d %s relocations, but their slots are filled already"
            % (len(relocations.records), relocations.name))
        return None
    out = bytearray(data)
    pack = struct.Struct(relocations.endian + "Q").pack_into
    applied = 0
    for offset, addend in relocations.records:
        if 0 <= offset - link <= len(out) - 8:
            pack(out, offset - link, addend & 0xFFFFFFFFFFFFFFFF)
            applied += 1
    log("applied %d of %d %s relocations (link base %x)"
        % (applied, len(relocations.records), relocations.name, link))
    return out, link


# --- Modules: the exports of .ko files ----------------------------------------------------

MODULE_SUFFIXES = ((".ko", None), (".ko.xz", "xz"), (".ko.zst", "zstd"), (".ko.gz", "gzip"))
EM_MIPS = 8
VERMAGIC = re.compile(rb"(?:^|\0)vermagic=([^\0]*)")


def module_version(data):
    m = VERMAGIC.search(data)
    return parse_version(m.group(1).decode("latin-1")) if m else None


def module_exports(data, version=None):
    """The exported symbols of a kernel module's bytes (see _module_exports); a module too
    broken to read raises SymversError like any other."""
    return read_module(data, version).exports


def _module_exports(elf, version):
    """The exported symbols of a kernel module, as its loader would see them: the
    __ksymtab* entries through their relocations, names and namespaces in
    __ksymtab_strings, CRCs from __kcrctab* (a relocation to an absolute __crc_* symbol, or
    the value in place from 5.19), GPL-only from __kflagstab from 7.1.  The layout is the
    one of the module's vermagic version (else `version`)."""
    data = elf.data
    if not any(name.startswith("__ksymtab") for name in elf.names):
        return []
    version = module_version(data) or version
    if version is None:
        raise SymversError("no vermagic in the module: give -k", EXIT_NOT_FOUND)
    layout = layout_for(version)
    prel32 = layout.prel32 and elf.machine in EM_X86 + (EM_AARCH64,)
    field = 4 if prel32 else elf.ptr_size
    step = field * (3 if layout.namespace else 2)
    width = layout.crc_width or elf.ptr_size
    flags = elf.section("__kflagstab") if layout.flagstab else None
    symbols = []
    for table in layout.section_order:
        ksymtab = elf.section("__ksymtab" + table.suffix)
        if ksymtab is None:
            continue
        refs = elf.relocations("__ksymtab" + table.suffix, field)
        kcrctab = elf.section("__kcrctab" + table.suffix)
        crc_refs = elf.relocations("__kcrctab" + table.suffix, width) if kcrctab else {}
        for i in range(ksymtab[1] // step):
            at = i * step

            def string(k, pattern, what):
                where = at + k * field
                if where not in refs:
                    return None
                _, offset = elf.target(ksymtab, (where, refs[where]), field)
                m = pattern.match(data, offset) if 0 <= offset < len(data) else None
                if m is None:
                    raise SymversError("%s of export %d of %s is not a valid string"
                                       % (what, i, table.export), EXIT_INCONSISTENT)
                return m.group().decode("ascii")

            name = string(1, NAME, "name")
            if name is None:
                raise SymversError("export %d of %s has no name relocation" % (i, table.export),
                                   EXIT_INCONSISTENT)
            namespace = (string(2, NAMESPACE, "namespace") if layout.namespace else None) or ""
            crc = 0
            if kcrctab and (i + 1) * width <= kcrctab[1]:
                slot = i * width
                if slot in crc_refs:
                    shndx, value = elf.target(kcrctab, (slot, crc_refs[slot]), width)
                    crc = value if shndx is None else struct.unpack_from(
                        elf.e + "I", data, value)[0]
                else:
                    crc, = struct.unpack_from(elf.e + ("I" if width == 4 else "Q"), data,
                                              kcrctab[0] + slot)
            export = table.export
            if flags is not None and i < flags[1]:
                export = GPL.export if data[flags[0] + i] & 1 else PLAIN.export
            symbols.append(Symbol(crc & 0xFFFFFFFF, name, export, namespace))
    return unique(symbols)


# Where modules are: directories, module files, and archives read in memory (never unpacked
# to disk).  An archive member is a module by its suffix; a file given is read by its content.

MODULE_NAME = re.compile(r"[!-~]+")


def _module_suffix(path):
    """(suffix, compression) of a module file's name, or None."""
    return next((m for m in MODULE_SUFFIXES if path.endswith(m[0])), None)


def _module_name(path, suffix):
    """The module column modpost writes: the path below lib/modules/RELEASE/ (or below the
    directory or archive root) without kernel/ and the suffix; the base name for a flat
    lib/modules/ (an Android ramdisk)."""
    parts = [part for part in path.replace(os.sep, "/").split("/") if part not in ("", ".")]
    for i in range(len(parts) - 1):
        if parts[i:i + 2] == ["lib", "modules"]:
            parts = parts[i + 2:]
            parts = parts[1:] if len(parts) > 1 else parts
            break
    name = "/".join(parts)[:-len(suffix)]
    return name[7:] if name.startswith("kernel/") else name


FILESYSTEMS = (     # (offset, magic, what, how to get the files out)
    (1080, b"\x53\xef", "an ext2/3/4 filesystem image",
     "mount -o loop,ro IMAGE DIR, or debugfs -R 'rdump / DIR' IMAGE"),
    (1024, b"\xe2\xe1\xf5\xe0", "an EROFS image", "fsck.erofs --extract=DIR IMAGE"),
    (0, b"hsqs", "a squashfs image", "unsquashfs -d DIR IMAGE"),
    (0, b"\x3a\xff\x26\xed", "an Android sparse image",
     "simg2img IMAGE RAW, then mount or extract RAW"))
ARCHIVE_DEPTH = 4       # archives inside archives (a .deb's data.tar.xz, a boot image's ramdisk)
TAR_STREAMS = {"gzip": "gz", "xz": "xz", "bzip2": "bz2"}     # what tarfile decompresses itself


# cpio(5): magic -> (header size, alignment of name and data, base of the numbers, (offset,
# width) of c_mode, c_namesize, c_filesize): newc and its crc variant, then odc
CPIO_FORMATS = {b"070701": (110, 4, 16, ((14, 8), (94, 8), (54, 8))),
                b"070702": (110, 4, 16, ((14, 8), (94, 8), (54, 8))),
                b"070707": (76, 1, 8, ((18, 6), (59, 6), (65, 11)))}
NONZERO = re.compile(b"[^\0]")


def _cpio_modules(data, label, limit, depth):
    """The module files of cpio archives one after the other (NUL padding between) and, at
    the end, compressed ones (an initramfs: the microcode cpio, then the compressed main
    one)."""
    files, at = [], 0
    while at < len(data):
        form = CPIO_FORMATS.get(bytes(data[at:at + 6]))
        if form is None:
            nonzero = NONZERO.search(data, at)
            if nonzero is None:
                break
            if nonzero.start() == at:
                files += _archive_modules(data[at:], label, limit, depth + 1, False)
                break
            at = nonzero.start()
            continue
        header, align, base, fields = form
        try:
            mode, namesize, size = (int(data[at + i:at + i + width], base) for i, width in fields)
        except ValueError:
            mode = namesize = size = -1
        if min(mode, namesize, size) < 0:       # int() takes a sign: never go backwards
            raise SymversError("%s: corrupt cpio header at %#x" % (label, at), EXIT_FORMAT)
        name = data[at + header:at + header + namesize].rstrip(b"\0").decode("utf-8", "replace")
        body = -(-(at + header + namesize) // align) * align
        if body + size > len(data):
            raise SymversError("%s: cpio archive is truncated (%s)" % (label, name), EXIT_FORMAT)
        if mode & 0o170000 == 0o100000 and size and _module_suffix(name):
            files.append((name, data[body:body + size]))
        at = -(-(body + size) // align) * align
    return files


def _tar_modules(source, mode, label, limit):
    """The module files of a tar archive, decompressed by tarfile as it goes (`mode` r|gz,
    r|xz, r|bz2 or r|): the archive is never whole in memory, only its modules."""
    import io
    import tarfile
    files, total = [], 0
    try:
        with tarfile.open(fileobj=io.BytesIO(source), mode=mode) as tar:
            for member in tar:
                if member.isfile() and _module_suffix(member.name):
                    total += member.size
                    if total > limit:
                        raise _bomb("tar", limit)
                    files.append((member.name, tar.extractfile(member).read()))
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error, lzma.LZMAError) as e:
        raise SymversError("%s: broken tar archive: %s" % (label, e), EXIT_FORMAT) from None
    return files


def _ar_members(data, label):
    """{name: bytes} of an ar archive (a Debian package: debian-binary, control.tar.*,
    data.tar.*): 60-byte headers, name[16] ... size[10] at 48, members 2-aligned."""
    members, at = {}, 8
    while at + 60 <= len(data):
        name = data[at:at + 16].decode("latin-1").strip().rstrip("/")
        try:
            size = int(data[at + 48:at + 58])
        except ValueError:
            size = -1
        if size < 0:
            raise SymversError("%s: corrupt ar header at %#x" % (label, at), EXIT_FORMAT)
        if at + 60 + size > len(data):
            raise SymversError("%s: ar archive is truncated (%s)" % (label, name), EXIT_FORMAT)
        members[name] = data[at + 60:at + 60 + size]
        at += 60 + size + size % 2
    return members


def _archive_modules(data, label, limit, depth=0, whole=True):
    """(path inside, bytes) of every module file in an archive or container, through any
    compression the tool reads; ("", bytes) when the input itself (`whole`, decompressed)
    is a module; a filesystem image or anything else is an error."""
    if depth > ARCHIVE_DEPTH:
        raise SymversError("%s: archives nested too deep" % label, EXIT_FORMAT)
    kind = _compression(data)
    if kind in TAR_STREAMS:
        try:
            start = STREAMS[kind]().decompress(bytes(data[:1 << 16]), 512)
        except (zlib.error, lzma.LZMAError, OSError, EOFError) as e:
            raise SymversError("%s: %s data is corrupt: %s" % (label, kind, e),
                               EXIT_FORMAT) from None
        if start[257:262] == b"ustar":
            return _tar_modules(data, "r|" + TAR_STREAMS[kind], label, limit)
    if kind:
        return _archive_modules(bytes(decompress_payload(kind, memoryview(data), limit)),
                                label, limit, depth + 1, whole)
    if whole and data[:4] == b"\x7fELF":
        return [("", data)]
    if bytes(data[:6]) in CPIO_FORMATS:
        return _cpio_modules(data, label, limit, depth)
    if data[257:262] == b"ustar":
        return _tar_modules(data, "r|", label, limit)
    if data[:8] == b"!<arch>\n":
        members = _ar_members(data, label)
        inside = [name for name in members if name.startswith("data.tar")]
        if not inside:
            raise SymversError("%s: an ar archive without data.tar: not a Debian package"
                               % label, EXIT_FORMAT)
        return _archive_modules(members[inside[0]], label, limit, depth + 1, False)
    if data[:4] == b"PK\x03\x04":
        import io
        import zipfile
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return [(info.filename, archive.read(info)) for info in archive.infolist()
                        if _module_suffix(info.filename) and not info.is_dir()]
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
                NotImplementedError, RuntimeError) as e:     # unsupported method, encrypted
            raise SymversError("%s: broken zip archive: %s" % (label, e), EXIT_FORMAT) from None
    if data[:8] in (ANDROID_BOOT, VENDOR_BOOT):
        try:
            ramdisks = _android_ramdisks(data)
        except struct.error:
            raise SymversError("%s: Android boot image header is truncated" % label,
                               EXIT_FORMAT) from None
        except SymversError as e:
            raise SymversError("%s: %s" % (label, e), EXIT_FORMAT) from None
        return [f for ramdisk in ramdisks if ramdisk
                for f in _archive_modules(ramdisk, label, limit, depth + 1, False)]
    for offset, magic, what, how in FILESYSTEMS:
        if data[offset:offset + len(magic)] == magic:
            raise SymversError("%s is %s, whose files this tool does not read: get them out "
                               "(%s) and give --modules DIR" % (label, what, how), EXIT_FORMAT)
    raise SymversError("%s is not a kernel module, a directory or an archive of modules "
                       "(cpio, tar, .deb, zip, boot.img, vendor_boot.img, plain or compressed)"
                       % label, EXIT_FORMAT)


def module_sources(top, limit=MAX_OUTPUT):
    """(label, module name, compression, path or bytes) of every module file in `top`: a
    directory (read by the workers), a module file, plain or compressed, or an archive."""
    if os.path.isdir(top):
        found = []
        for directory, _, names in os.walk(top):
            for name in names:
                path = os.path.join(directory, name)
                suffix = _module_suffix(name)
                if suffix:
                    found.append((path, _module_name(os.path.relpath(path, top), suffix[0]),
                                  suffix[1], path))
        return sorted(found, key=lambda f: f[1])
    files = _archive_modules(_read_input(top, limit), top, limit)
    if files and not files[0][0]:       # a module file, plain or compressed: its base name
        base = os.path.basename(top)
        suffix = _module_suffix(base)
        return [(top, base[:-len(suffix[0])] if suffix else base.split(".")[0], None,
                 bytes(files[0][1]))]
    found = [(top + ":" + path, _module_name(path, _module_suffix(path)[0]),
              _module_suffix(path)[1], content) for path, content in files]
    for label, name, _, _ in found:
        if not MODULE_NAME.fullmatch(name):
            raise SymversError("%s: a module name that is not printable ASCII: a corrupt "
                               "archive" % label.encode("ascii", "replace").decode(), EXIT_FORMAT)
    return sorted(found, key=lambda f: f[1])


MODVERSION_SIZE = 64        # struct modversion_info: unsigned long crc; char name[...]
SIGNATURE_MARK = b"~Module signature appended~\n"


class Module(NamedTuple):
    """What a .ko holds for Module.symvers and for the loader's checks."""
    exports: list           # [Symbol]
    columns: tuple          # the Module.symvers columns of its release (with exports)
    modinfo: dict           # .modinfo: key -> [values]
    undefined: list         # [(name, weak)]: what the loader resolves among the exports
    versions: dict          # __versions (or 6.14+ __version_ext_*): name -> CRC; None: none
    signed: bool
    machine: int
    config: bytes           # kernel/configs.ko (CONFIG_IKCONFIG=m): the .config, else None


def read_module(data, version=None):
    """A Module from a kernel module's bytes; one too broken to read raises SymversError."""
    try:
        elf = ElfObject(data)
        info = elf.section(".modinfo")
        modinfo = {}
        for entry in data[info[0]:info[0] + info[1]].split(b"\0") if info else ():
            key, equal, value = entry.decode("latin-1").partition("=")
            if equal:
                modinfo.setdefault(key, []).append(value)
        exports = _module_exports(elf, version)
        return Module(exports, layout_for(module_version(data) or version).columns
                      if exports else None, modinfo, elf.undefined(), _versions(elf),
                      data.endswith(SIGNATURE_MARK), elf.machine,
                      embedded_config(data) if b"IKCFG_ST" in data else None)
    except (struct.error, IndexError, ValueError, OverflowError) as e:
        raise SymversError("corrupt module: %s" % e, EXIT_INCONSISTENT) from None


def _versions(elf):
    """The CRCs the module was built against: CONFIG_EXTENDED_MODVERSIONS's
    __version_ext_crcs and __version_ext_names (6.14, the loader then relies on them
    alone), else __versions (64-byte entries: an unsigned long, then the name)."""
    data, e = elf.data, elf.e
    crcs, names = elf.section("__version_ext_crcs"), elf.section("__version_ext_names")
    if crcs and names:
        values = struct.unpack_from(e + "%dI" % (crcs[1] // 4), data, crcs[0])
        strings = data[names[0]:names[0] + names[1]].split(b"\0")
        return {name.decode("latin-1"): crc for name, crc in zip(strings, values)}
    table = elf.section("__versions")
    if table is None:
        return None
    entry = e + ("Q" if elf.bits == 64 else "I") + "%ds" % (MODVERSION_SIZE - elf.ptr_size)
    return {name.partition(b"\0")[0].decode("latin-1"): crc & 0xFFFFFFFF
            for crc, name in struct.iter_unpack(entry, data[table[0]:table[0] + table[1]
                                                           // MODVERSION_SIZE * MODVERSION_SIZE])}


def _read_module(job):
    """(label, module name, Module or None, error) of one module: for a process pool."""
    label, name, compression, source, version = job
    try:
        if isinstance(source, str):
            with open(source, "rb") as f:
                source = f.read()
        if compression:
            source = decompress_payload(compression, memoryview(source))
        return label, name, read_module(source, version), None
    except SymversError as e:
        return label, name, None, "%s: %s" % (label, e)
    except OSError as e:
        return label, name, None, "%s: %s" % (label, e.strerror or e)


MODULE_CHUNK = 32       # modules a worker reads per task
ERRORS_SHOWN = 20       # unreadable modules listed one by one; then a count


def _read_modules(jobs):
    return [_read_module(job) for job in jobs]


def read_modules(paths, version=None, progress=None, log=None, limit=MAX_OUTPUT):
    """[(label, module name, Module)] of every module in `paths` (directories, module files,
    archives), in module order, read in parallel; `version` is the layout of modules without
    a vermagic.  Every module that cannot be read is reported at once, in one SymversError,
    or, given `log`, each in a warning and left out."""
    sources = [source for top in paths for source in module_sources(top, limit)]
    if not sources:
        raise SymversError("no *.ko, *.ko.xz, *.ko.zst or *.ko.gz in %s" % ", ".join(paths),
                           EXIT_INPUT)
    jobs = [source + (version,) for source in sources]
    chunks = [jobs[i:i + MODULE_CHUNK] for i in range(0, len(jobs), MODULE_CHUNK)]
    pool, pending = None, []
    if len(chunks) > 1 and (os.cpu_count() or 1) > 1:
        import concurrent.futures
        pool = concurrent.futures.ProcessPoolExecutor()
        pending = [pool.submit(_read_modules, chunk) for chunk in chunks]
        results = (result for future in pending for result in future.result())
    else:
        results = map(_read_module, jobs)
    modules, errors = [], []
    try:
        for done, (label, name, module, error) in enumerate(results, 1):
            if error:
                errors.append(error)
            else:
                modules.append((label, name, module))
            if progress:
                progress(done, len(jobs))
    finally:
        if pool:    # on an error, the chunks not started are dropped (cancel_futures is 3.9+)
            for future in pending:
                future.cancel()
            pool.shutdown()
    if errors and log is None:
        shown = errors[:ERRORS_SHOWN] + (["... and %d more" % (len(errors) - ERRORS_SHOWN)]
                                         if len(errors) > ERRORS_SHOWN else [])
        raise SymversError("%d of %d modules cannot be read (--skip-bad-modules leaves them "
                           "out):\n  %s" % (len(errors), len(jobs), "\n  ".join(shown)),
                           EXIT_INCONSISTENT)
    for error in errors:
        log("warning: left out: %s" % error)
    return modules


def module_symvers(paths, version=None, log=lambda message: None, progress=None,
                   modules=None):
    """Module.symvers lines of every module in `paths` (see read_modules(); or of `modules`
    read already), in module order.  A module met twice (Android's vendor ramdisk and
    vendor_dlkm) gives its lines once; a symbol two modules export keeps both lines, as
    modpost of an external module accepts them, and is said."""
    if modules is None:
        modules = read_modules(paths, version, progress)
    lines, read, owners = [], {}, {}
    for label, name, module in modules:
        own = format_symvers(module.exports, module.columns, name) if module.exports else []
        if name in read:
            if read[name][1] != own:
                raise SymversError("%s and %s are both module %s, with other exports: give "
                                   "one of them" % (read[name][0], label, name),
                                   EXIT_INCONSISTENT)
            continue
        read[name] = (label, own)
        lines += own
        for symbol in module.exports:
            owner = owners.setdefault(symbol.name, name)
            if owner != name:
                log("%s is exported by %s and by %s: both lines kept" % (symbol.name, owner,
                                                                          name))
    log("%d modules read, %d export %d symbols"
        % (len(modules), sum(bool(m.exports) for _, _, m in modules), len(lines)))
    return lines


def modules_config(paths, limit=MAX_OUTPUT):
    """The .config of kernel/configs.ko (CONFIG_IKCONFIG=m) in `paths`, or None."""
    for top in paths:
        for label, name, compression, source in module_sources(top, limit):
            if name.rsplit("/", 1)[-1] == "configs":
                _, _, module, error = _read_module((label, name, compression, source, None))
                if error:
                    raise SymversError(error, EXIT_INCONSISTENT)
                return module.config
    return None


# --- Checks: would the kernel load a module? -------------------------------------------

class Export(NamedTuple):
    crc: int
    module: str
    export: str
    namespace: str


def parse_symvers(lines):
    """{name: Export} of Module.symvers lines, whatever the release's columns (the first
    line of a name wins, as the loader finds vmlinux's first)."""
    exports = {}
    for line in lines:
        fields = line.rstrip("\n").split("\t")
        if len(fields) < 3:
            continue
        if len(fields) == 3:
            fields.append(PLAIN.export)
        if len(fields) == 4:
            fields.append("")
        crc, name = int(fields[0], 16), fields[1]
        if fields[3].startswith("EXPORT_"):          # COLS_NS_LAST, COLS_EXPORT, COLS_PLAIN
            module, export, namespace = fields[2:5]
        else:                                          # COLS_NS_MIDDLE (5.4.0-5.4.y)
            namespace, module, export = fields[2:5]
        exports.setdefault(name, Export(crc, module, export, namespace))
    return exports


def parse_config(text):
    """{CONFIG_X: value} of a .config ("# CONFIG_X is not set" is left out)."""
    config = {}
    for line in text.splitlines():
        key, equal, value = line.partition("=")
        if equal and key.startswith("CONFIG_"):
            config[key] = value.strip('"')
    return config


class Kernel(NamedTuple):
    """What the loader compares a module with: the image's vermagic (None: not found),
    every export it can resolve (vmlinux and the modules given), its .config (None:
    unknown) and release."""
    vermagic: str
    exports: dict
    config: dict
    version: tuple

    @property
    def modversions(self):
        if self.vermagic is not None:
            return "modversions" in self.vermagic.split()
        return any(export.crc for export in self.exports.values())


GPL_ONLY = (GPL.export, UNUSED_GPL.export)
# include/linux/license.h license_is_gpl_compatible(); "Dual MIT/GPL" from 2.6.18
GPL_COMPATIBLE = ("GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL", "Dual MPL/GPL")
MODULE_STRUCT_SYMBOLS = ("module_layout", "struct_module")   # 2.6.28 renamed the second


def same_magic(module_magic, kernel_magic, has_crcs):
    """kernel/module's same_magic(): with CRCs on both sides, the release may differ."""
    if has_crcs:
        module_magic = module_magic[len(module_magic.split(" ")[0]):]
        kernel_magic = kernel_magic[len(kernel_magic.split(" ")[0]):]
    return module_magic == kernel_magic


def _namespace_allowed(namespace, module_name):
    """6.16's "module:" namespaces (EXPORT_SYMBOL_FOR_MODULES): module names, or
    prefixes ending in *, that may use the symbol."""
    if not namespace.startswith("module:"):
        return False
    name = module_name.replace("-", "_")
    for pattern in namespace[len("module:"):].replace("-", "_").split(","):
        if name == pattern or pattern.endswith("*") and name.startswith(pattern[:-1]):
            return True
    return False


def check_module(module, kernel, name):
    """(reasons the loader would refuse the module, taints it would add), in its words:
    load_module()'s order, the checks of `kernel`'s release; `name` is the module column of
    its Module.symvers lines."""
    refused, taints = [], []
    config = kernel.config or {}

    def enabled(option):
        return config.get("CONFIG_" + option) == "y"

    def force(reason):              # try_to_force_load()
        if enabled("MODULE_FORCE_LOAD"):
            taints.append("%s: kernel tainted" % reason)
        else:
            refused.append("%s (loads only with CONFIG_MODULE_FORCE_LOAD=y%s)"
                           % (reason, "" if config else ": the kernel's .config is unknown"))

    if enabled("MODULE_SIG_FORCE") and not module.signed:
        refused.append("Loading of unsigned module is rejected (CONFIG_MODULE_SIG_FORCE=y)")
    dots = module.machine == EM_PPC64       # ppc64 ELFv1: dedotify() strips ".name"
    versions = module.versions
    if dots and versions is not None:
        versions = {n[1:] if n.startswith(".") else n: c for n, c in versions.items()}
    has_crcs = kernel.modversions and versions is not None
    magic = module.modinfo.get("vermagic", [None])[0]
    if magic is None:
        force("bad vermagic")
    elif kernel.vermagic is not None and not same_magic(magic, kernel.vermagic, has_crcs):
        refused.append("version magic '%s' should be '%s'" % (magic, kernel.vermagic))

    def check_version(symbol, crc):
        if not has_crcs or not crc or symbol not in versions:
            return True     # no symbol version: the loader warns once and goes on
        if versions[symbol] == crc:
            return True
        refused.append("disagrees about version of symbol %s (module 0x%08x, kernel 0x%08x)"
                       % (symbol, versions[symbol], crc))
        return False

    if kernel.modversions and versions is None:
        force("no versions for imported symbols")
    for symbol in MODULE_STRUCT_SYMBOLS:
        if symbol in kernel.exports:
            check_version(symbol, kernel.exports[symbol].crc)
            break
    licence = module.modinfo.get("license", ["unspecified"])[0]
    gplok = licence in GPL_COMPATIBLE or licence == "Dual MIT/GPL" and \
        kernel.version >= (2, 6, 18)
    if not gplok:
        taints.append("module license '%s' taints kernel" % licence)
    imported = set(module.modinfo.get("import_ns", ()))
    module_name = module.modinfo.get("name", [name.rsplit("/", 1)[-1]])[0]
    ignore_missing_ns = enabled("MODULE_ALLOW_MISSING_NAMESPACE_IMPORTS")
    for symbol, weak in module.undefined:
        if dots and symbol.startswith("."):
            symbol = symbol[1:]
            if symbol == "TOC.":
                continue
        export = kernel.exports.get(symbol)
        if export is None or export.export in GPL_ONLY and not gplok:
            if not weak and not (module.machine in EM_X86 and
                                 symbol == "_GLOBAL_OFFSET_TABLE_"):
                refused.append("Unknown symbol %s%s" % (symbol, " (GPL-only, licence '%s')"
                                                         % licence if export else ""))
            continue
        if not check_version(symbol, export.crc):
            continue
        namespace = export.namespace
        if namespace and namespace not in imported and \
                not _namespace_allowed(namespace, module_name):
            message = "module uses symbol (%s) from namespace %s, but does not import it" \
                % (symbol, namespace)
            (taints if ignore_missing_ns else refused).append(message)
    for symbol in module.exports:           # verify_exported_symbols()
        owner = kernel.exports.get(symbol.name)
        if owner and owner.module != name:
            refused.append("exports duplicate symbol %s (owned by %s)" % (
                symbol.name, "kernel" if owner.module == "vmlinux" else owner.module))
    return refused, taints


def check_modules(modules, kernel):
    """[(path, refused, taints)] of (path, name, Module) tuples, as read_modules() gives."""
    return [(path,) + check_module(module, kernel, name) for path, name, module in modules]


# --- Command line -----------------------------------------------------------------------

MAP_SIZE = 32 << 20     # regular files from this size are mapped rather than read


def _read_input(path, limit):
    """The whole input (a file, a block or character device, a pipe, or - for stdin), up to
    `limit` bytes: a larger one (a whole disk, /dev/zero) is refused.  A large regular file
    is a read-only mmap (bytes-like): a kernel 16 MiB into a 128 MiB dump is found without
    reading the rest."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(path, "rb") as f:
                # a regular file's size is known (0 for procfs files: read as a pipe)
                size = os.fstat(f.fileno()).st_size if os.path.isfile(path) else 0
                if size > limit:
                    data = None
                elif size >= MAP_SIZE:      # a dump: mapped, only what is searched is read
                    import mmap
                    return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                else:
                    data = f.read(size or limit + 1)
    except OSError as e:
        raise SymversError("cannot read %s: %s" % (path, e.strerror or e), EXIT_INPUT) from None
    if data is None or len(data) > limit:
        raise SymversError("%s is larger than %d MiB: not a kernel image (see --max-size)"
                           % (path, limit >> 20), EXIT_INPUT)
    return data


def write_atomic(path, data):
    """Write `data` to `path` through a temporary file in the same directory."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".extract_symvers.", dir=directory)
    except OSError as e:
        raise SymversError("cannot write %s: %s" % (path, e.strerror or e), EXIT_INPUT) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException as e:      # nothing half-written is left, whatever stopped it
        os.unlink(tmp)
        if isinstance(e, OSError):
            raise SymversError("cannot write %s: %s" % (path, e.strerror or e),
                               EXIT_INPUT) from None
        raise


def _hex_address(text):
    try:
        value = int(text, 16)
    except ValueError:
        raise argparse.ArgumentTypeError("not a hex address: %r" % text) from None
    if value < 0:
        raise argparse.ArgumentTypeError("negative address: %r" % text)
    return value


def _mebibytes(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError("not a positive number of MiB: %r" % text)
    return value


def _version(text):
    try:
        return parse_version(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


EPILOG = """\
exit status: 0 success, 1 internal error, 2 usage error, 3 cannot read the input (or write -d FILE),
4 not a kernel / unsupported or broken compression, 5 export tables not found with
these options, 6 tables found but inconsistent.
examples: %(prog)s vmlinuz > Module.symvers
          %(prog)s --modules /lib/modules/6.1.0-50-amd64 vmlinuz > Module.symvers
          %(prog)s -b 64 -B ffffffff80e00000 -k 6.1 vmlinuz > Module.symvers"""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="extract_symvers.py", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Recover Module.symvers (CRC, symbol, module, export type, namespace of "
                    "every export) from a binary kernel: vmlinux, vmlinuz, uImage or memory "
                    "dump. Module.symvers lines go to stdout, diagnostics to stderr. Options "
                    "not given are detected from the image (and printed); given ones win.")
    parser.add_argument("kernel", metavar="KERNEL", nargs="?",
                        help="kernel image, or - for stdin (left out with --modules: only "
                             "the modules' lines)")
    parser.add_argument("-B", "--base-address", dest="base", metavar="ADDRESS", type=_hex_address,
                        help="virtual address (hex) of file offset 0 of the decompressed image")
    parser.add_argument("-e", "--endian", choices=["big", "little", "be", "le"],
                        help="endianness")
    parser.add_argument("-b", "--bits", type=int, choices=[32, 64],
                        help="size of pointers in bits")
    parser.add_argument("-k", "--kernel-version", dest="version", metavar="KVER", type=_version,
                        help="kernel version: major.minor[.patch] (5.15, 5.15.0-1-amd64, 4.19+, "
                             "2.6.12) or old (2.6.27-2.6.39)")
    parser.add_argument("-p", "--prel32", choices=["y", "n"],
                        help="for kernels 4.19+: CONFIG_HAVE_ARCH_PREL32_RELOCATIONS")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write Module.symvers to FILE (atomically: a failed run leaves an "
                             "existing FILE as it was) instead of stdout")
    parser.add_argument("-d", "--decompress", metavar="FILE",
                        help="save the decompressed kernel (with -r: relocated) to FILE and exit")
    parser.add_argument("--config", metavar="FILE",
                        help="save the .config embedded with CONFIG_IKCONFIG to FILE and exit "
                             "(written atomically)")
    parser.add_argument("-r", "--relocate", action="store_true",
                        help="apply the image's relative relocations (arm64 Image: pointers "
                             "left zero for the boot code) before anything else; done anyway "
                             "when the tables are not found otherwise")
    parser.add_argument("--modules", metavar="DIR", action="append",
                        help="also the exports of every *.ko[.xz|.zst|.gz] in DIR: a directory "
                             "(/lib/modules/RELEASE), a module, or an archive: cpio (initramfs, "
                             "ramdisk), tar, .deb, zip, boot.img, vendor_boot.img, plain or "
                             "compressed (repeatable)")
    parser.add_argument("--skip-bad-modules", action="store_true",
                        help="leave out, with a warning each, the modules that cannot be read "
                             "(by default: all listed, exit 6, nothing printed)")
    parser.add_argument("--check", metavar="MODULE", action="append",
                        help="instead of Module.symvers, say for each module (a .ko file, or "
                             "every one under a directory; repeatable) whether this kernel, "
                             "with the --modules given, would load it, or why not")
    parser.add_argument("--version", action="version", version="%(prog)s " + __version__)
    parser.add_argument("--max-size", metavar="MIB", type=_mebibytes, default=MAX_OUTPUT >> 20,
                        help="refuse an input, or a compressed payload expanding to, more "
                             "than MIB mebibytes; defaults to %(default)s")
    return parser


def _check(args, image, lines, modules, checked):
    """--check: a line per module on stdout; EXIT_REFUSED when any would be refused."""
    config = embedded_config(image) or next((m.config for _, _, m in modules + checked
                                             if m.config), None)
    if config is None:
        print("extract_symvers: no embedded .config: CONFIG_MODULE_SIG_FORCE and "
              "CONFIG_MODULE_FORCE_LOAD are unknown", file=sys.stderr)
    kernel = Kernel(vermagic(image), parse_symvers(lines),
                    config and parse_config(config.decode("latin-1")),
                    args.version or _detect_version(image, lambda message: None))
    results = check_modules(checked, kernel)
    out = []
    for label, refused, taints in results:
        verdict = "refused: " + "; ".join(refused) if refused else "loads"
        out.append("%s: %s%s\n" % (label, verdict, ", tainting: " + "; ".join(taints)
                                     if taints and not refused else ""))
    print("extract_symvers: %d modules checked: %d load, %d refused"
          % (len(results), sum(not r[1] for r in results), sum(bool(r[1]) for r in results)),
          file=sys.stderr)
    sys.stdout.write("".join(out))
    return EXIT_REFUSED if any(r[1] for r in results) else 0


def _exported_twice(vmlinux_lines, modules):
    """A module exporting what vmlinux exports is from another build: modpost stops there."""
    names = {line.split("\t")[1] for line in vmlinux_lines}
    for label, name, module in modules:
        twice = [symbol.name for symbol in module.exports if symbol.name in names]
        if twice:
            raise SymversError("%s exports %s, which vmlinux exports too (modpost: \"exported "
                               "twice\"): is it from another build?" % (label, twice[0]),
                               EXIT_INCONSISTENT)


def _progress(done, total):
    print("\r%d/%d modules" % (done, total), end="\n" if done == total else "",
          file=sys.stderr, flush=True)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)

    def log(message):
        print(message, file=sys.stderr)

    if args.kernel is None and (args.check or args.decompress or args.relocate
                                or not args.modules):
        parser.error("KERNEL is needed, except to list the exports of --modules alone")
    limit = args.max_size << 20
    progress = _progress if sys.stderr.isatty() else None
    read = {}       # a path given to --modules and --check is read once

    def modules_in(paths):
        for path in paths:
            if os.path.realpath(path) not in read:
                read[os.path.realpath(path)] = read_modules(
                    [path], args.version, progress, log if args.skip_bad_modules else None,
                    limit)
        return [module for path in paths for module in read[os.path.realpath(path)]]

    try:
        image = None
        if args.kernel is not None:
            data, core_base = read_kernel(args.kernel, limit, log)
            image, payload = unpack(data, log, limit)
            hints = tuple(h for h in (payload.load, core_base) if h is not None)
            log("vermagic: %s" % (vermagic(image) or "not found"))
        if args.config:
            config = (image and embedded_config(image, limit)) or \
                modules_config(args.modules or [], limit)
            if config is None:
                raise SymversError("no embedded .config (IKCFG_ST): the kernel was built "
                                   "without CONFIG_IKCONFIG%s" % (
                                       "" if args.modules else ", or with =m: give --modules "
                                       "with kernel/configs.ko"), EXIT_NOT_FOUND)
            log("saving the embedded .config (%d bytes) to %s" % (len(config), args.config))
            write_atomic(args.config, config)
            return 0
        base = args.base
        if args.relocate:
            relocated = relocate(image, base, log)
            if relocated is None:
                raise SymversError("no relocations to apply: none found, or their slots are "
                                   "filled already", EXIT_NOT_FOUND)
            image, link = relocated
            base = link if base is None else base
        if args.decompress:
            log("saving unpacked kernel to %s" % args.decompress)
            write_atomic(args.decompress, image)
            return 0
        modules = modules_in(args.modules or [])
        checked = modules_in(args.check or [])
        lines = []
        if image is not None:
            big = args.endian in ("big", "be") if args.endian else None
            prel32 = args.prel32 == "y" if args.prel32 else None
            lines = extract(image, base, args.bits, big, args.version, prel32, log, hints)
            log("%d symbols" % len(lines))
        if args.check:
            return _check(args, image, lines + module_symvers(None, modules=modules + checked),
                          modules, checked)
        _exported_twice(lines, modules)
        lines += module_symvers(None, log=log, modules=modules) if modules else []
        text = "".join(line + "\n" for line in lines)
        if args.output:
            write_atomic(args.output, text.encode())
            log("written to %s" % args.output)
            return 0
    except SymversError as e:
        print("extract_symvers: error: %s" % e, file=sys.stderr)
        return e.status
    except MemoryError:
        print("extract_symvers: error: out of memory", file=sys.stderr)
        return EXIT_INPUT
    except Exception as e:      # a bug: still one line, and a status of its own
        print("extract_symvers: error: internal error (please report): %s: %s"
              % (type(e).__name__, e), file=sys.stderr)
        return EXIT_INTERNAL
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
