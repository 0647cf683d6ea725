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

Sections, in the order the data flows (each uses only itself and the sections above it; the
command line uses them all):

    Errors and exit status      SymversError, whose ``status`` is the CLI's exit code
    Kernel-version history      LAYOUTS: a row per release that changed the tables
    Records                     Options (-B -b -e -k -p), Image, TableFormat, Symbol; its line
    Banners and byte helpers    the "Linux version" banner; a binary header as a record
    ELF                         ElfObject: modules, vmlinux and core dumps
    Decompression               CODECS: gzip, xz, lzma, bzip2, zstd, lz4, lzo
    Reading inputs and dumps    read_kernel(): files, devices, pipes; Memory: dumps by address
    Page tables                 SCHEMES: x86, arm64, ARMv7, RISC-V, s390x DAT tables
    Containers and unpack       CONTAINERS: u-boot, Android boot, FIT, sparse; unpack()
    Detection                   image_header(), vermagic(), the options an image says
    Relocation                  relocate(): arm64 Images whose pointers the boot code fills
    Locating the tables         find_symsearch(), find_tables_direct()
    Walking the tables          walk()
    Extract                     extract(): image -> Module.symvers lines
    Output                      write_stdout(), write_file(): whole or not at all
    Module archives             ARCHIVES: cpio, tar, .deb, zip, boot.img; module_sources()
    Signatures                  module_signature(): who signed a module (PKCS#7);
                                kernel_certificates(): the keys an image holds built in;
                                verify_signature()
    kCFI                        KCFI_CODE: Clang's type checks; module_kcfi(), kernel_kcfi()
    Module files                read_module(), read_modules(), module_symvers()
    BTF                         btf_struct(): the kernel's own description of a structure;
                                btf_blob(): the kernel's BTF, as /sys/kernel/btf/vmlinux holds it;
                                Btf: every type of it
    Loaded modules              loaded_modules(): the modules of a dump, by struct module
    Android GKI                 gki_lists(): what a module the kernel cannot verify may not
                                export or use (CONFIG_MODULE_SIG_PROTECT)
    Load checks                 check_module(): would the kernel load it? build_refusals():
                                is it of the kernel's build, as the loader judges builds?
    Comparing kernels           kabi_changes(): a kABI report between two kernels;
                                crc_causes(): why each CRC changed, from both kernels' BTF
    Command line                main()

Diagnostics go to the ``extract_symvers`` logger, silent unless the caller configures logging;
main() prints them on stderr.
"""

# Ctrl-C, run as a script, from this line to the last: SIGINT is taken first of all, before
# the imports, the classes and the tables are built.  Until main() runs, it stops the program
# at once with main()'s line and status (nothing is written yet); while main() runs, it is a
# KeyboardInterrupt, raised once (what is half done is undone on the way out); once main()
# has decided its status, it is ignored, and the script ends by os._exit(), without the
# interpreter's shutdown (whose threading._shutdown a Ctrl-C could interrupt).  A Ctrl-C in
# the interpreter's own start, before this line (importing site, compiling this file: some
# 0.1 s, more on a loaded machine), is Python's KeyboardInterrupt traceback (its frame of this
# file at line 0, or under 3.8 at the docstring): nothing in this file can prevent that.
import os
import sys
try:
    import _signal      # CPython's builtin core of signal, which imports enum: a slow import
except ImportError:
    import signal as _signal


def _sigint(signum, frame):
    """The script's SIGINT handler, by _sigint.phase (main() sets it): "starting" stops at
    once, "running" raises KeyboardInterrupt and is "stopping" then, which ignores it, as
    "decided" does."""
    if _sigint.phase == "running":
        _sigint.phase = "stopping"
        raise KeyboardInterrupt
    if _sigint.phase == "starting":
        try:
            os.write(2, b"extract_symvers: error: interrupted (SIGINT): nothing written\n")
        finally:
            os._exit(130)       # EXIT_SIGINT, not defined yet


_sigint.phase = "starting"
# run as the file, or as the installed command (whose entry point, _script, imports this first)
if (__name__ == "__main__" or os.path.basename(sys.argv[0] if sys.argv else "")
        == "extract-symvers") \
        and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
    _signal.signal(_signal.SIGINT, _sigint)     # not where the shell ignores it (a & job)

import argparse
import array
import bisect
import bz2
import collections
import errno
import hashlib
import itertools
import json
import logging
import lzma
import operator
import re
import signal
import stat
import struct
import tempfile
import textwrap
import zlib
from typing import NamedTuple, Optional

__version__ = "0.3.0"
__all__ = ["SymversError", "EXIT_INTERNAL", "EXIT_USAGE", "EXIT_INPUT", "EXIT_FORMAT",
           "EXIT_NOT_FOUND", "EXIT_INCONSISTENT", "EXIT_REFUSED", "EXIT_ABI_CHANGED",
           "EXIT_INCOMPLETE", "EXIT_SIGINT", "EXIT_SIGPIPE", "EXIT_SIGTERM", "ExportType",
           "Layout", "LAYOUTS", "layout_for", "parse_version", "release_option", "Options", "Image",
           "TableFormat", "TableRef", "Symbol", "format_symvers", "banner_version", "ElfObject",
           "decompress_payload", "Memory", "Input", "read_kernel", "Payload", "unpack", "Header",
           "image_header", "vermagic", "embedded_config", "kernel_version", "relocate",
           "find_symsearch", "find_tables_direct", "walk", "extract", "write_stdout", "write_file",
           "module_sources", "module_kcfi", "kernel_kcfi", "Module", "ModuleFile", "read_module",
           "read_modules", "module_symvers", "modules_config", "Struct", "btf_struct", "btf_blob",
           "Btf",
           "LoadedModule", "loaded_modules", "parse_symvers", "parse_config", "Kernel", "Verdict",
           "same_magic", "RELOCATIONS", "relocation_types", "vermagic_differences", "check_module",
           "build_refusals", "elf_header_refusal", "Build", "GkiRelease", "gki_release",
           "check_modules", "Change", "kabi_changes", "Causes", "crc_causes", "main"]


# --- Errors and exit status ----------------------------------------------------------------

# One status per class of failure (argparse's usage errors are 2).
EXIT_INTERNAL = 1       # a bug in this program
EXIT_USAGE = 2
EXIT_INPUT = 3          # the input cannot be read, or an output cannot be written
EXIT_FORMAT = 4         # not a kernel, unsupported or broken compression or container
EXIT_NOT_FOUND = 5      # the export tables were not found with these options
EXIT_INCONSISTENT = 6   # tables found, but what they hold is not a valid export list
EXIT_REFUSED = 7        # --check: the kernel would refuse a module
EXIT_ABI_CHANGED = 8    # --diff: an export (one the --check modules use) broke
EXIT_INCOMPLETE = 9     # printed, but loaded modules of a dump could not be read whole
EXIT_SIGINT, EXIT_SIGPIPE, EXIT_SIGTERM = 130, 141, 143    # 128 + the signal: stopped
EXIT_STATUSES = (
    (0, "success: every table found, walked and validated"),
    (EXIT_INTERNAL, "internal error (a bug: please report it with the message)"),
    (EXIT_USAGE, "usage error (a bad option value)"),
    (EXIT_INPUT, "the input cannot be read (missing, a directory, empty, larger than "
                 "--max-size), or an output (-o, -d, --config FILE, stdout) cannot be written"),
    (EXIT_FORMAT, "not a kernel; unsupported or broken compression, container or archive"),
    (EXIT_NOT_FOUND, "no export tables found with these options (-B -b -e -k -p)"),
    (EXIT_INCONSISTENT, "tables found but not valid; modules that cannot be read, or of "
                        "another build"),
    (EXIT_REFUSED, "--check: the kernel would refuse at least one of the modules"),
    (EXIT_ABI_CHANGED, "--diff: a symbol (with --check: one the modules use) was removed, or "
                       "its CRC, licence or namespace changed"),
    (EXIT_INCOMPLETE, "incomplete: loaded modules of a dump that cannot be read whole are "
                      "named on stderr, the others printed"),
    (EXIT_SIGINT, "interrupted (Ctrl-C): nothing written"),
    (EXIT_SIGPIPE, "the reader of stdout has gone (broken pipe)"),
    (EXIT_SIGTERM, "terminated (SIGTERM): nothing written"))


class SymversError(Exception):
    """Every failure of this module; ``status`` is the exit code main() returns for it."""

    def __init__(self, message, status=EXIT_NOT_FOUND):
        super().__init__(message)
        self.status = status


class _MissingPackage(SymversError):
    """A payload this interpreter cannot decompress without an optional package."""


class _DecompressionBomb(SymversError):
    """A payload expanding past the limit (for a probe: one that decodes that far)."""


_log = logging.getLogger("extract_symvers")
_log.addHandler(logging.NullHandler())      # a library is silent unless asked


# --- Kernel-version history ----------------------------------------------------------------

class ExportType(NamedTuple):
    name: str       # as Module.symvers names it
    licence: int    # symsearch licence value (enum mod_license)
    unused: bool    # symsearch `unused` flag (CONFIG_UNUSED_SYMBOLS tables)
    suffix: str     # of its sections: __ksymtab<suffix>, __kcrctab<suffix>


PLAIN = ExportType("EXPORT_SYMBOL", 0, False, "")
GPL = ExportType("EXPORT_SYMBOL_GPL", 1, False, "_gpl")
GPL_FUTURE = ExportType("EXPORT_SYMBOL_GPL_FUTURE", 2, False, "_gpl_future")
UNUSED = ExportType("EXPORT_UNUSED_SYMBOL", 0, True, "_unused")
UNUSED_GPL = ExportType("EXPORT_UNUSED_SYMBOL_GPL", 1, True, "_unused_gpl")

# Module.symvers columns, in the order modpost writes them (Symbol's field names).
COLS_PLAIN = ("crc", "name", "module")
COLS_EXPORT = ("crc", "name", "module", "export_type")
COLS_NS_MIDDLE = ("crc", "name", "namespace", "module", "export_type")
COLS_NS_LAST = ("crc", "name", "module", "export_type", "namespace")


class Layout(NamedTuple):
    since: tuple            # first kernel (major, minor, patch) with this layout
    symsearch: tuple        # ExportTypes in symsearch array order; () = no static array
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

    @property
    def ksym_fields(self):
        """Fields of a kernel_symbol: value, name[, namespace]."""
        return 3 if self.namespace else 2


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
OLDEST = LAYOUTS[0].since


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
        raise SymversError("Linux %d.%d: kernels before 2.6 are not supported"
                           % tuple(version[:2]), EXIT_FORMAT)
    return rows[-1]


def release_option(version):
    """A version as -k takes it: major.minor, with the patch level where the layout needs it
    (2.6 before 2.6.27, 5.4.0-27, 5.5.0-12)."""
    release = "%d.%d" % tuple(version[:2])
    if layout_for(version) != layout_for(tuple(version[:2]) + (LATEST_PATCH,)):
        release += ".%d" % version[2]
    return release


# --- Records: the user's options, an image, its table format, symbols and their lines ---

class Options(NamedTuple):
    """What the user says of an image (-B, -b, -e, -k, -p); None: detected from the image."""
    base: Optional[int] = None          # virtual address of file offset 0
    bits: Optional[int] = None          # pointer size
    big_endian: Optional[bool] = None
    version: Optional[tuple] = None     # (major, minor, patch)
    prel32: Optional[bool] = None       # CONFIG_HAVE_ARCH_PREL32_RELOCATIONS

    def spell(self):
        """The options known, as the user writes them: '-b 64 -e le -k 6.1 -p y'."""
        words = [] if self.base is None else ["-B %x" % self.base]
        words += [] if self.bits is None else ["-b %d" % self.bits]
        words += [] if self.big_endian is None else ["-e " + ("be" if self.big_endian else "le")]
        words += [] if self.version is None else ["-k " + release_option(self.version)]
        words += [] if self.prel32 is None else ["-p " + ("y" if self.prel32 else "n")]
        return " ".join(words)


class Image(NamedTuple):
    """A decompressed kernel: file offset 0 is at virtual address `base`."""
    data: bytes
    base: Optional[int]     # None: unknown, which PREL32 tables do not need
    ptr_size: int           # 4 or 8
    endian: str             # struct prefix: '<' or '>'

    @classmethod
    def of(cls, data, options):
        return cls(data, options.base, options.bits // 8, ">" if options.big_endian else "<")

    @property
    def ptr(self):
        return "I" if self.ptr_size == 4 else "Q"

    def offset(self, address):
        """File offset of a virtual address, or None when it is outside the image."""
        off = address - self.base
        return off if 0 <= off < len(self.data) else None


class TableFormat(NamedTuple):
    """How the export tables lie in one image: its release's layout, and kernel_symbol
    fields that are PREL32 offsets (from the field itself) or absolute pointers."""
    image: Image
    layout: Layout
    prel32: bool

    @property
    def field(self):
        return 4 if self.prel32 else self.image.ptr_size

    @property
    def step(self):
        """Bytes of one kernel_symbol."""
        return self.field * self.layout.ksym_fields

    @property
    def crc_width(self):
        return self.layout.crc_width or self.image.ptr_size

    @property
    def entry(self):
        """The struct format of one kernel_symbol."""
        return self.image.endian + ("i" if self.prel32 else self.image.ptr) * \
            self.layout.ksym_fields

    def resolve(self, at, k, value):
        """The file offset that field k (holding `value`) of the kernel_symbol at `at` refers
        to; None outside the image."""
        if self.prel32:
            return at + 4 * k + value
        return self.image.offset(value)


class TableRef(NamedTuple):
    """One ksymtab: `count` kernel_symbols at file offset `start`; its CRCs at `crcs` (None
    without CONFIG_MODVERSIONS) and, from 7.1, its flags at `flags`."""
    export_type: ExportType
    start: int
    count: int
    crcs: Optional[int]
    flags: Optional[int] = None


class Symbol(NamedTuple):
    """One line of Module.symvers."""
    crc: int
    name: str
    export_type: str
    namespace: str
    module: str = "vmlinux"


def format_symvers(symbols, columns):
    """Module.symvers lines (without newlines) in the column order of a layout's modpost."""
    line = "\t".join("0x%08x" if c == "crc" else "%s" for c in columns)
    fields = operator.itemgetter(*[Symbol._fields.index(c) for c in columns])
    return [line % fields(s) for s in symbols]


def _vmlinux_lines(symbols, layout):
    """The vmlinux lines modpost writes: the kernel's exports, then the ones modpost of that
    release lists for vmlinux whatever the kernel holds (CRC 0 unless the kernel has them)."""
    names = {s.name for s in symbols}
    symbols = symbols + [Symbol(0, name, PLAIN.name, "") for name in layout.modpost_adds
                         if name not in names]
    return format_symvers(symbols, layout.columns)


NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_.$]{0,1023}(?=\x00)")
NAMESPACE = re.compile(rb"[\x21-\x7e]{0,1024}(?=\x00)")
NONZERO = re.compile(b"[^\0]")


# --- Banners and byte helpers --------------------------------------------------------------

BANNER = re.compile(rb"Linux version (\d+)\.(\d+)(?:\.(\d+))?")
BANNER_TEXT = re.compile(rb"[^\0\n]{0,200}")


def _banner_at(data, start=0, end=None):
    """Offset of the kernel banner in data[start:end], or -1 (bytes.find first, then the
    pattern: a dump that holds none is searched at C speed)."""
    end = len(data) if end is None else end
    at = data.find(b"Linux version ", start, end)
    while at >= 0 and not BANNER.match(data, at):
        at = data.find(b"Linux version ", at + 1, end)
    return at


def _has_banner(data):
    return _banner_at(data) >= 0


RELEASE = re.compile(rb"Linux version ([!-~]+) ")


def _banner_release(data):
    """The release of the first kernel banner that has one (b'6.1.0-50-amd64'), or None."""
    at = _banner_at(data)
    while at >= 0:
        m = RELEASE.match(data, at)
        if m:
            return m[1]
        at = _banner_at(data, at + 1)
    return None


# the words after the release: SMP, preempt, mod_unload, modversions, the architecture's
# (aarch64, ARMv7 p2v8, 686, MIPS32_R2 32BIT, mprofile-kernel, gcc-4.1 ...), RANDSTRUCT_<seed>:
# letters, digits, _ . + -; not the x86 setup code's kernel_version, "RELEASE (builder@host)
# #1 SMP ...", which a dump of low memory holds too
VERMAGIC_WORDS = re.compile(rb"(?:[\w.+-]+ )*[\w.+-]*(?=\0)")


def vermagic(data):
    """The string the module loader compares each module's vermagic with (kernel/module's
    vermagic[] = VERMAGIC_STRING: the release, then "SMP ", "preempt ", "mod_unload ",
    "modversions ", the architecture's words: arm64's "aarch64" has no space), or None: the
    release of the banner, a space and words, a string of its own."""
    release = _banner_release(data)
    if release is None:
        return None
    head = b"\0" + release + b" "        # found by bytes.find, at C speed
    at = data.find(head)
    while at >= 0:
        found = VERMAGIC_WORDS.match(data, at + len(head))
        if found:
            return (release + b" " + found.group()).decode("latin-1")
        at = data.find(head, at + 1)
    return None


def banner_version(data):
    """((major, minor, patch), banner text) of the first kernel banner in `data`, or None;
    without a patch level the newest of the series."""
    at = _banner_at(data)
    if at < 0:
        return None
    m = BANNER.match(data, at)
    version = (int(m[1]), int(m[2]), int(m[3]) if m[3] else LATEST_PATCH)
    return version, BANNER_TEXT.match(data, at).group().decode("latin-1")


def _round_up(value, alignment):
    return -(-value // alignment) * alignment


class _Record(struct.Struct):
    """A binary header: its struct format, read into a named tuple of its fields."""

    def __init__(self, name, fields, fmt):
        super().__init__(fmt)
        self.tuple = collections.namedtuple(name, fields)

    def read(self, data, offset=0):
        return self.tuple._make(self.unpack_from(data, offset))

    def read_table(self, data, count, stride):
        """`count` records `stride` bytes apart from the start of `data` (QEMU's paging
        dumps: ~66 000 program headers)."""
        if stride == self.size:
            return list(map(self.tuple._make, self.iter_unpack(data[:count * stride])))
        return [self.read(data, i * stride) for i in range(count)]


def _in_range(values, low, length):
    """For each value, whether low <= value < low + length, at C speed: the difference is
    taken as an unsigned number wider than any pointer, so one comparison does."""
    return map(length.__gt__, map(operator.and_, map(operator.sub, values, itertools.repeat(low)),
                                  itertools.repeat((1 << 80) - 1)))


def _cstring(data, offset):
    end = data.find(b"\0", offset)
    return bytes(data[offset:end if end >= 0 else len(data)]).decode("latin-1")


# --- ELF: one reader for modules, vmlinux and core dumps -----------------------------------

ELF_MAGIC = b"\x7fELF"
ET_REL, ET_CORE = 1, 4
PT_LOAD, PT_NOTE = 1, 4
SHN_UNDEF, SHN_ABS = 0, 0xFFF1
SHT_SYMTAB, SHT_RELA, SHT_NOBITS, SHT_REL = 2, 4, 8, 9
SHF_ALLOC, SHF_EXECINSTR = 0x2, 0x4
STB_WEAK = 2
STT_FUNC = 2
EM_386, EM_MIPS, EM_PPC, EM_PPC64, EM_S390, EM_ARM = 3, 8, 20, 21, 22, 40
EM_X86_64, EM_AARCH64, EM_RISCV, EM_LOONGARCH = 62, 183, 243, 258
# the architecture's words of vermagic (MODULE_ARCH_VERMAGIC): what names the machine of a
# dump that does not (QEMU's kdump-compressed arm, riscv and ppc64 dumps say "Unknown");
# powerpc's: "mprofile-kernel " or "patchable-function-entry " (64-bit ftrace),
# "relocatable " (arch/powerpc/include/asm/module.h), the pointer size telling 32-bit powerpc
VERMAGIC_MACHINES = ((re.compile(r" aarch64\b"), EM_AARCH64), (re.compile(r" ARMv\d+ "), EM_ARM),
                     (re.compile(r" riscv\b"), EM_RISCV),
                     (re.compile(r" LOONGARCH "), EM_LOONGARCH),
                     (re.compile(r" (mprofile-kernel|patchable-function-entry|relocatable) "),
                      EM_PPC64))


def _vermagic_machine(data):
    """The e_machine a kernel's vermagic words name (32-bit powerpc's are ppc64's), or None."""
    words = vermagic(data) or ""
    return next((machine for pattern, machine in VERMAGIC_MACHINES if pattern.search(words)),
                None)


EM_X86 = (EM_386, EM_X86_64)
# 4.19+: the architectures selecting HAVE_ARCH_PREL32_RELOCATIONS (powerpc did, briefly)
PREL32_MACHINES = EM_X86 + (EM_AARCH64,)

# Relative relocation types -> (name, e_machine): the slot gets load offset + r_addend, the
# link-time value.  arm64 links with --no-apply-dynamic-relocs, leaving those slots zero.
R_AARCH64_RELATIVE, R_PPC64_RELATIVE, R_RISCV_RELATIVE, R_390_RELATIVE = 1027, 22, 3, 12
RELATIVE_TYPES = {R_AARCH64_RELATIVE: ("R_AARCH64_RELATIVE", EM_AARCH64),
                  R_PPC64_RELATIVE: ("R_PPC64_RELATIVE", EM_PPC64),
                  R_RISCV_RELATIVE: ("R_RISCV_RELATIVE", EM_RISCV),
                  R_390_RELATIVE: ("R_390_RELATIVE", EM_S390)}


def _is_elf(data):
    """Whether `data` starts with a whole ELF header of a known class and byte order."""
    return data[:4] == ELF_MAGIC and data[4:5] in (b"\1", b"\2") and data[5:6] in (b"\1", b"\2") \
        and len(data) >= (52 if data[4:5] == b"\1" else 64)


def _elf_records(bits, e):
    """The ELF records of one class and byte order (elf.h): (Ehdr, Phdr, Shdr, Sym, Rel,
    Rela); 64-bit headers order some fields differently, the names are the same."""
    wide = bits == 64
    word = "Q" if wide else "I"
    return (
        _Record("Ehdr", "type machine version entry phoff shoff flags ehsize phentsize phnum "
               "shentsize shnum shstrndx", e + "16xHHI" + word * 3 + "IHHHHHH"),
        _Record("Phdr", "type flags offset vaddr paddr filesz memsz align", e + "IIQQQQQQ")
        if wide else
        _Record("Phdr", "type offset vaddr paddr filesz memsz flags align", e + "IIIIIIII"),
        _Record("Shdr", "name type flags addr offset size link info addralign entsize",
               e + "II" + word * 4 + "II" + word * 2),
        _Record("Sym", "name info other shndx value size", e + "IBBHQQ") if wide else
        _Record("Sym", "name value size info other shndx", e + "IIIBBH"),
        _Record("Rel", "offset info", e + word * 2),
        _Record("Rela", "offset info addend", e + word * 2 + ("q" if wide else "i")))


ELF_RECORDS = {(bits, e): _elf_records(bits, e) for bits in (32, 64) for e in "<>"}


class ElfObject:
    """An ELF file: a module's sections, symbols and relocations, the program headers of a
    vmlinux or of a core dump (given its head: the headers, not the memory)."""

    def __init__(self, data, sections=True):
        if not _is_elf(data):
            raise SymversError("not an ELF file", EXIT_FORMAT)
        self.data, self.bits = data, 32 * data[4]
        self.e = "<" if data[5] == 1 else ">"
        self.ptr_size = self.bits // 8
        ehdr, self.phdr, self.shdr, self.sym, rel, rela = ELF_RECORDS[(self.bits, self.e)]
        self.rel = {SHT_REL: rel, SHT_RELA: rela}
        self.header = ehdr.read(data)
        self.type, self.machine = self.header.type, self.header.machine
        self.sections, self.names, self.symtab = [], {}, None
        count = self.header.shnum
        if not count or not sections:   # a core dump: program headers only
            return
        shoff, size, names = self.header.shoff, self.header.shentsize, self.header.shstrndx
        if shoff + count * size > len(data) or names >= count:
            raise SymversError("section headers outside the file", EXIT_INCONSISTENT)
        self.sections = [self.shdr.read(data, shoff + i * size) for i in range(count)]
        table = self.sections[names].offset
        self.names = {_cstring(data, table + s.name): i for i, s in enumerate(self.sections)}
        self.symtab = next((s for s in self.sections if s.type == SHT_SYMTAB), None)

    def segments(self):
        """The program headers within the data given."""
        phoff, step = self.header.phoff, self.header.phentsize or 1
        end = min(len(self.data), phoff + self.header.phnum * self.header.phentsize)
        return [self.phdr.read(self.data, at)
                for at in range(phoff, end - self.phdr.size + 1, step)]

    def section(self, name):
        """(file offset, size) of a section, or None."""
        i = self.names.get(name)
        return None if i is None else (self.sections[i].offset, self.sections[i].size)

    def symbol(self, index):
        """(st_value, st_shndx) of a symbol."""
        if self.symtab is None or (index + 1) * self.sym.size > self.symtab.size:
            raise SymversError("relocation to symbol %d outside .symtab" % index,
                               EXIT_INCONSISTENT)
        sym = self.sym.read(self.data, self.symtab.offset + index * self.sym.size)
        return sym.value, sym.shndx

    def undefined(self):
        """(name, weak) of every undefined symbol: what the loader must resolve."""
        if self.symtab is None:
            return []
        names = self.sections[self.symtab.link].offset
        fields = self.sym.tuple._fields
        pick = operator.itemgetter(fields.index("name"), fields.index("info"),
                                   fields.index("shndx"))
        table = self.data[self.symtab.offset:self.symtab.offset + self.symtab.size
                          // self.sym.size * self.sym.size]
        return [(_cstring(self.data, names + name), info >> 4 == STB_WEAK)
                for name, info, shndx in map(pick, self.sym.iter_unpack(table))
                if shndx == SHN_UNDEF and name]

    def functions(self):
        """{section index: [(st_value, st_size, name)]} of the function symbols (STT_FUNC)."""
        if self.symtab is None:
            return {}
        names = self.sections[self.symtab.link].offset
        fields = self.sym.tuple._fields
        pick = operator.itemgetter(*map(fields.index, ("name", "info", "shndx", "value", "size")))
        table = self.data[self.symtab.offset:self.symtab.offset + self.symtab.size
                          // self.sym.size * self.sym.size]
        found = {}
        for name, info, shndx, value, size in map(pick, self.sym.iter_unpack(table)):
            if info & 0xF == STT_FUNC and SHN_UNDEF < shndx < len(self.sections):
                found.setdefault(shndx, []).append((value, size, _cstring(self.data,
                                                                          names + name)))
        return found

    def relocations(self, name):
        """{offset in the section: (symbol index, addend)} of the section's REL/RELA
        sections; the addend of a REL record is None (it is in place)."""
        target = self.names.get(name)
        out = {}
        for s in self.sections:
            if s.info != target or s.type not in self.rel:
                continue
            record = self.rel[s.type]
            for r in record.iter_unpack(self.data[s.offset:s.offset + s.size // record.size
                                                  * record.size]):
                where, info = r[0], r[1]
                if self.bits == 32:
                    symbol = info >> 8
                elif self.machine == EM_MIPS and self.e == "<":
                    symbol = info & 0xFFFFFFFF      # mips64el: r_sym, then the type bytes
                else:
                    symbol = info >> 32
                out[where] = (symbol, r[2] if s.type == SHT_RELA else None)
        return out

    def relocation_types(self):
        """The relocation types of the REL/RELA sections the loader applies (apply_relocations()
        skips those of sections it does not allocate), read a byte column at a time."""
        if self.bits == 32:     # r_info & 0xff
            low, high = (4 if self.e == "<" else 7), None
        elif self.machine == EM_MIPS:       # r_sym, r_ssym, r_type3, r_type2, r_type
            low, high = 15, None
        else:                               # r_info & 0xffffffff: two bytes hold them
            low, high = (8, 9) if self.e == "<" else (15, 14)
        types = set()
        for s in self.sections:
            if s.type not in self.rel or s.info >= len(self.sections) or \
                    not self.sections[s.info].flags & SHF_ALLOC:
                continue
            size = self.rel[s.type].size
            end = s.offset + s.size // size * size
            column = self.data[s.offset + low:end:size]
            if high is None:
                types.update(column)
            else:
                types.update(a | b << 8 for a, b in set(zip(column,
                                                             self.data[s.offset + high:end:size])))
        return frozenset(types)

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
        return shndx, self.sections[shndx].offset + value + addend


# --- Decompression -------------------------------------------------------------------------
# The standard library's gzip, xz, lzma and bzip2; zstd through the zstandard package (or
# Python 3.14's compression.zstd); LZ4 blocks through the optional lz4 package, else the
# pure decoder below, which also does LZO (python-lzo has no wheels).

MAX_SIZE = 512 << 20    # --max-size: a payload expanding past this is refused as a bomb
DECOMPRESS_CHUNK = 1 << 20     # small: the chunk is a copy on top of the image
PROBE_INPUT, PROBE_OUTPUT = 1 << 18, 1 << 16
# what a decompressor raises on data it cannot decode (the package decoders' own errors are
# turned into ValueError where they are called)
DECODE_ERRORS = (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError, IndexError,
                 struct.error, OverflowError)


def _bomb(kind, limit):
    return _DecompressionBomb("%s payload expands past %d MiB: refused as a decompression "
                             "bomb (see --max-size)" % (kind, limit >> 20), EXIT_FORMAT)


def _truncated(kind):
    return SymversError("%s payload is truncated" % kind, EXIT_FORMAT)


def _stream_decompress(decompressor, view, kind, limit):
    """Run a zlib/lzma/bz2-style decompressor to the end of its stream, into one bytearray,
    a bounded chunk at a time (a bomb is refused before it is allocated).  The input goes in
    bounded slices too: zlib's unconsumed_tail is a copy of what it was given, so a slice of
    the whole rest of a large dump would make every chunk cost a copy of it."""
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
            raise _truncated(kind)
        out += chunk
        if len(out) > limit:
            raise _bomb(kind, limit)
    return out


STREAMS = {"gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
           "xz": lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ),
           "lzma": lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE),
           "bzip2": bz2.BZ2Decompressor}


def _stream_codec(kind):
    """(probe, decode) of a standard-library stream format."""
    return (lambda view: STREAMS[kind]().decompress(view[:PROBE_INPUT], PROBE_OUTPUT),
            lambda view, limit: _stream_decompress(STREAMS[kind](), view, kind, limit))


def _stdlib_zstd():
    """Python 3.14's compression.zstd (PEP 784): its ZstdDecompressor and ZstdError (not a
    ValueError: a chance magic's frame header must be turned into one), or None."""
    try:
        from compression import zstd
    except ImportError:
        return None
    return zstd


def _zstd_probe(view):
    try:
        import zstandard
    except ImportError:
        stdlib = _stdlib_zstd()
        if stdlib is not None:      # without either, decoding says what is missing
            try:
                stdlib.ZstdDecompressor().decompress(view[:PROBE_INPUT], PROBE_OUTPUT)
            except stdlib.ZstdError as e:
                raise ValueError(e) from None
        return
    try:
        zstandard.ZstdDecompressor().stream_reader(view[:PROBE_INPUT]).read(PROBE_OUTPUT)
    except zstandard.ZstdError as e:
        raise ValueError(e) from None


def _zstd_decode(view, limit):
    try:
        import zstandard
    except ImportError:
        stdlib = _stdlib_zstd()
        if stdlib is None:
            raise _MissingPackage("zstd payload needs the zstandard package (pip install "
                                 "zstandard) or Python 3.14+", EXIT_FORMAT) from None
        try:
            return _stream_decompress(stdlib.ZstdDecompressor(), view, "zstd", limit)
        except stdlib.ZstdError as e:
            raise ValueError(e) from None
    # one frame, trailing data ignored; a frame larger than the bound fails like a truncated one
    try:
        if zstandard.frame_content_size(view) > limit:
            raise _bomb("zstd", limit)
        return zstandard.ZstdDecompressor().decompress(view, max_output_size=limit)
    except zstandard.ZstdError as e:
        raise ValueError(e) from None


def _lz4_block(src, limit, history=b""):
    """Decompress one LZ4 block (the format of lz4_Block_format.md), at most `limit` bytes;
    its matches may reach into `history`, the output before it (a frame's linked blocks)."""
    out, ip, end = bytearray(history), 0, len(src)
    limit += len(history)
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
    return out[len(history):] if history else out


def _lz4_length(src, ip, length):
    """(length, next input offset): a 4-bit length of 15 goes on in the following bytes,
    each adding up to 255."""
    while True:
        byte = src[ip]
        ip += 1
        length += byte
        if byte != 255:
            return length, ip


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
    """The LZ4 block decoder: lz4.block.decompress when the package is there (C speed), else
    _lz4_block()."""
    try:
        import lz4.block
    except ImportError:
        return _lz4_block

    def decode(src, size, history=b""):
        try:
            return lz4.block.decompress(bytes(src), uncompressed_size=size, dict=bytes(history))
        except lz4.block.LZ4BlockError as e:
            raise ValueError(e) from None
    return decode


LZ4_LEGACY_MAGIC = b"\x02\x21\x4c\x18"      # kbuild's `lz4 -l`: 0x184C2102
LZ4_FRAME_MAGIC = b"\x04\x22\x4d\x18"       # the LZ4 frame format: 0x184D2204
LZ4_LEGACY_BLOCK = 8 << 20      # every block of a legacy frame but the last expands to this
# LZ4 frame descriptor FLG bits (lz4_Frame_format.md)
LZ4_DICT_ID, LZ4_CONTENT_SIZE, LZ4_BLOCK_CHECKSUM, LZ4_INDEPENDENT = 0x01, 0x08, 0x10, 0x20
LZ4_WINDOW = 64 << 10       # what a linked block's matches may reach back into


def _lz4_legacy_decode(view, limit):
    """A legacy frame: sized blocks of 8 MiB output, no end mark (the size kbuild appends,
    or whatever follows, ends it)."""
    block = _lz4_blocks()
    out, at = bytearray(), len(LZ4_LEGACY_MAGIC)
    while at + 4 <= len(view):
        size = int.from_bytes(view[at:at + 4], "little")
        if view[at:at + 4] == LZ4_LEGACY_MAGIC:     # concatenated legacy frames
            at += 4
            continue
        if not 0 < size <= LZ4_LEGACY_BLOCK + LZ4_LEGACY_BLOCK // 255 + 16 \
                or at + 4 + size > len(view):
            break
        try:
            chunk = block(view[at + 4:at + 4 + size], LZ4_LEGACY_BLOCK)
        except DECODE_ERRORS:
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
        raise _truncated("lz4")
    return out


def _lz4_frame_decode(view, limit):
    """An LZ4 frame: a descriptor, then blocks (each stored or compressed), 0 ends them;
    unless they are independent, a block's matches reach into the 64 KiB before it."""
    block = _lz4_blocks()
    flags, descriptor = view[4], view[5]
    if flags >> 6 != 1:
        raise ValueError("unknown LZ4 frame version")
    at = 6 + 8 * bool(flags & LZ4_CONTENT_SIZE) + 4 * bool(flags & LZ4_DICT_ID) + 1
    block_max = 1 << (8 + 2 * ((descriptor >> 4) & 7))
    out = bytearray()
    while True:
        if at + 4 > len(view):
            raise _truncated("lz4")
        size = int.from_bytes(view[at:at + 4], "little")
        at += 4
        if size == 0:
            return out
        stored, size = size >> 31, size & 0x7FFFFFFF
        if at + size > len(view):
            raise _truncated("lz4")
        history = b"" if flags & LZ4_INDEPENDENT else out[-LZ4_WINDOW:]
        out += view[at:at + size] if stored else block(view[at:at + size], block_max, history)
        if len(out) > limit:
            raise _bomb("lz4", limit)
        at += size + 4 * bool(flags & LZ4_BLOCK_CHECKSUM)


LZOP_MAGIC = b"\x89LZO\x00\r\n\x1a\n"
# lzop header flags (lzop's conf.h)
F_ADLER32_D, F_ADLER32_C, F_H_EXTRA_FIELD = 0x1, 0x2, 0x40
F_CRC32_D, F_CRC32_C, F_H_FILTER = 0x100, 0x200, 0x800


def _lzop_decode(view, limit):
    """An lzop file (kbuild's `lzop -9`): header, then blocks of LZO1X data, as
    lib/decompress_unlzo.c reads them."""
    at = len(LZOP_MAGIC)
    version = int.from_bytes(view[at:at + 2], "big")
    new = version >= 0x0940
    at += 4 + 2 * new                                       # version, lib version[, needed]
    at += 1 + new                                           # method[, level]
    flags = int.from_bytes(view[at:at + 4], "big")
    at += 4 + 4 * bool(flags & F_H_FILTER)                  # flags[, filter]
    at += 8 + 4 * new                                       # mode, mtime[, mtime high]
    at += 1 + view[at] + 4                                  # name, header checksum
    if flags & F_H_EXTRA_FIELD:
        at += 4 + int.from_bytes(view[at:at + 4], "big") + 4
    out = bytearray()
    while True:
        if at + 4 > len(view):
            raise _truncated("lzo")
        size = int.from_bytes(view[at:at + 4], "big")
        if size == 0:
            return out
        packed = int.from_bytes(view[at + 4:at + 8], "big")
        at += 8 + 4 * bool(flags & F_ADLER32_D) + 4 * bool(flags & F_CRC32_D)
        if packed < size:
            at += 4 * bool(flags & F_ADLER32_C) + 4 * bool(flags & F_CRC32_C)
        if packed > size or at + packed > len(view):
            raise _truncated("lzo")
        chunk = view[at:at + packed] if packed == size else _lzo1x_block(view[at:at + packed], size)
        if len(chunk) != size:
            raise ValueError("block of %d bytes expands to %d" % (size, len(chunk)))
        out += chunk
        if len(out) > limit:
            raise _bomb("lzo", limit)
        at += packed


def _lzo_length(src, ip, length):
    """(length, next input offset): a zero length field goes on in the following bytes,
    each zero byte adding 255, the first non-zero one ending it."""
    while src[ip] == 0:
        length += 255
        ip += 1
    return length + src[ip], ip + 1


def _lzo1x_block(src, limit):
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


# An .lzma (LZMA-alone) header: properties (lc + lp <= 4, as liblzma requires; not 0, which
# zero-filled space would match everywhere), a dictionary of 2^n or 3 * 2^(n-1) bytes, the
# size (unknown, or below 512 MiB), then the range coder's first byte, always 0.  kbuild's
# `lzma -9` writes properties 0x5d; Broadcom's CFE vmlinux.lz has 0x6d (lc=1, lp=2, pb=2).
LZMA_PROPERTIES = bytes(p for p in range(1, 225) if p % 9 + p // 9 % 5 <= 4)
LZMA_DICTIONARIES = sorted({1 << n for n in range(12, 31)} | {3 << n for n in range(12, 30)})
LZMA_HEADER = (b"[" + re.escape(LZMA_PROPERTIES) + b"](?:"
               + b"|".join(re.escape(struct.pack("<I", d)) for d in LZMA_DICTIONARIES)
               + b")(?:\xff{8}|...[\x00-\x1f]\x00{4})\x00")


class _Codec(NamedTuple):
    """A compressed-stream format: how it is found, probed and decoded."""
    kind: str
    prefix: Optional[bytes]     # the literal its magic starts with (None: LZMA-alone)
    magic: object               # compiled pattern of the whole magic
    probe: object               # view -> None; raises a DECODE_ERRORS on a magic met by chance
    decode: object              # (view, limit) -> the decompressed bytes, at most limit


def _codec(kind, prefix, tail, probe_decode):
    magic = re.compile(b"(?s)" + (LZMA_HEADER if prefix is None else re.escape(prefix) + tail))
    return _Codec(kind, prefix, magic, *probe_decode)


# In the order magics are tried at one offset.  LZ4 and LZO are block formats, checked as
# they are read: they have no probe.
CODECS = (
    _codec("gzip", b"\x1f\x8b\x08", b"", _stream_codec("gzip")),
    _codec("xz", b"\xfd7zXZ\x00", b"", _stream_codec("xz")),
    _codec("zstd", b"\x28\xb5\x2f\xfd", b"", (_zstd_probe, _zstd_decode)),
    _codec("bzip2", b"BZh", b"[1-9]1AY&SY", _stream_codec("bzip2")),
    _codec("lzma", None, b"", _stream_codec("lzma")),
    _codec("lz4", LZ4_LEGACY_MAGIC, b"", (None, _lz4_legacy_decode)),
    _codec("lz4", LZ4_FRAME_MAGIC, b"", (None, _lz4_frame_decode)),
    _codec("lzo", LZOP_MAGIC, b"", (None, _lzop_decode)),
)


def _compression_of(data, offset=0):
    """The _Codec of the stream starting at data[offset], or None."""
    return next((codec for codec in CODECS if codec.magic.match(data, offset)), None)


PROBE_HEAD = 64     # a magic met by chance fails within its first bytes; a payload does not


def _probe_error(codec, view):
    """(why a stream found by its magic does not decode its first 64 KiB, whether it is a
    payload for sure: its first bytes decode), or None.  A magic met by chance (a flash
    dump holds a few) fails at once, so only real candidates are decompressed to their end;
    one whose decoder cannot have the memory it asks for fails too.  Block formats (LZ4,
    LZO) are checked as they are read."""
    for head in (True, False):
        try:
            if codec.probe:
                codec.probe(view[:PROBE_HEAD] if head else view)
        except DECODE_ERRORS as e:
            return "%s payload is corrupt: %s" % (codec.kind, e), not head
        except MemoryError:     # an LZMA header met by chance: a dictionary of up to 1.5 GiB
            return "%s payload needs more memory than there is" % codec.kind, False
    return None


def decompress_payload(kind, view, limit=MAX_SIZE):
    """Decompress one payload of a known kind (as a u-boot or FIT header names it), at most
    `limit` bytes and not nothing; errors are SymversError(EXIT_FORMAT)."""
    codecs = [codec for codec in CODECS if codec.kind == kind]
    if not codecs:
        raise SymversError("%s compression is not supported" % kind, EXIT_FORMAT)
    # a block format is decoded from its magic on, which must be there
    codec = next((c for c in codecs if c.probe or c.magic.match(view)), None)
    if codec is None:
        raise SymversError("%s payload is corrupt: no %s magic" % (kind, kind), EXIT_FORMAT)
    try:
        out = codec.decode(view, limit)
    except DECODE_ERRORS as e:
        raise SymversError("%s payload is corrupt: %s" % (kind, e), EXIT_FORMAT) from None
    if not out:
        raise SymversError("%s payload decompresses to nothing" % kind, EXIT_FORMAT)
    return out


# --- Reading inputs and dumps --------------------------------------------------------------
# A file, a device, a pipe or stdin is read whole, up to --max-size (a large regular file is
# mapped instead).  A core dump is not: only the memory around the kernel banner is read.

MAP_SIZE = 32 << 20     # regular files from this size are mapped rather than read
READ_CHUNK = 1 << 20


def _read_stream(read, max_size):
    """All of a pipe, a device or stdin, up to max_size + 1 bytes, by `read(size)` calls of
    one chunk each: every call returns to Python, so a signal (Ctrl-C) stops the read where
    it is (a single large read of a pipe returns what it had)."""
    out = bytearray()
    while len(out) <= max_size:
        chunk = read(min(READ_CHUNK, max_size + 1 - len(out)))
        if not chunk:
            break
        out += chunk
    return out


def _stdin_reader():
    """read(size) of standard input's descriptor, or of its buffer where it has none."""
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):      # a test's stand-in
        return sys.stdin.buffer.read
    return lambda size: os.read(fd, size)


def _read_input(path, max_size):
    """The whole input (a file, a block or character device, a pipe, or - for stdin), up to
    `max_size` bytes: a larger one (a whole disk, /dev/zero) is refused.  A large regular file
    is a read-only mmap (bytes-like): a kernel 16 MiB into a 128 MiB dump is found without
    reading the rest."""
    try:
        if path == "-":
            data = _read_stream(_stdin_reader(), max_size)
        else:
            with open(path, "rb", buffering=0) as f:
                # a regular file's size is known (0 for procfs files: read as a pipe)
                size = os.fstat(f.fileno()).st_size if os.path.isfile(path) else 0
                if size > max_size:
                    data = None
                elif size >= MAP_SIZE:      # a dump: mapped, only what is searched is read
                    import mmap
                    return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                else:
                    data = _read_stream(f.read, max_size)
    except OSError as e:
        raise SymversError("cannot read %s: %s" % (path, e.strerror or e), EXIT_INPUT) from None
    if data is None or len(data) > max_size:
        raise SymversError("%s is larger than %d MiB: give a larger --max-size to read it"
                           % (path, max_size >> 20), EXIT_INPUT)
    return data


# A dump is read by address through a Memory (below): never whole.  What is unpacked of it is
# the window around the kernel banner, the kernel image's reach: .text before the banner (in
# .rodata), .rodata and the export tables after it.
CORE_HEAD = 1 << 20
CORE_BEFORE, CORE_AFTER, CORE_ALIGN = 48 << 20, 80 << 20, 2 << 20
FIND_CHUNK = 4 << 20     # read at a time: the one before is alive while the next is read
PN_XNUM = 0xFFFF        # e_phnum of an ELF file with more program headers: see section 0
MAX_PHDRS = 1 << 18     # program headers of a core dump read at most (QEMU: one a RAM block)


def _reach(banner, text=None, data=None):
    """(start, end) of the memory around a kernel banner that holds the kernel image: from
    its `text` where that is known (and before the banner), nothing before it read; up to
    its writable `data` where that is known (after the banner): the linker scripts put all of
    RO_DATA (the banner, the export tables, BTF) before .data, and nothing after is read."""
    start, end = max(0, banner - CORE_BEFORE), banner + CORE_AFTER
    if text is not None and start <= text <= banner:
        start = text
    if data is not None and banner < data < end:
        end = _round_up(data, 4096)
    return start & ~(CORE_ALIGN - 1), end


def _window(size, max_size):
    """A zeroed buffer for the memory around the kernel in a dump, within --max-size."""
    if size > max_size:
        raise SymversError("kernel window of %d MiB in the dump is larger than %d MiB (see "
                           "--max-size)" % (size >> 20, max_size >> 20), EXIT_INPUT)
    return bytearray(size)


def _file_find(f, offset, size, find, overlap):
    """File offset of the first match `find(chunk)` (an offset, or -1) gives in [offset,
    offset + size), read FIND_CHUNK at a time, `overlap` bytes again, or None."""
    at, end = offset, offset + size
    while at < end:
        f.seek(at)
        chunk = f.read(min(FIND_CHUNK, end - at))
        found = find(chunk)
        if found >= 0:
            return at + found
        if len(chunk) < FIND_CHUNK:
            return None
        at += len(chunk) - overlap
    return None


class Note(NamedTuple):
    name: bytes         # without its NULs
    type: int
    desc: bytes


def _notes(data, e):
    """The Notes in `data` (Elf_Nhdr: namesz, descsz, type)."""
    at, header = 0, struct.Struct(e + "III")
    while at + header.size <= len(data):
        namesz, descsz, kind = header.unpack_from(data, at)
        desc = at + header.size + _round_up(namesz, 4)
        yield Note(data[at + header.size:at + header.size + namesz].rstrip(b"\0"), kind,
                   data[desc:desc + descsz])
        at = desc + _round_up(descsz, 4)


def _vmcoreinfo(notes):
    """{key: value} of the kernel's VMCOREINFO note among `notes`, said (its release, KASLR
    offset)."""
    text = next((note.desc for note in notes if note.name == b"VMCOREINFO"), b"")
    info = dict(line.partition("=")[::2] for line in text.decode("latin-1").splitlines())
    said = ["%s=%s" % (key, info[key]) for key in ("OSRELEASE", "KERNELOFFSET",
                                                   "SYMBOL(_stext)", "PAGESIZE") if key in info]
    if said:
        _log.info("VMCOREINFO: %s", ", ".join(said))
    return info


def _numbers(info, *keys):
    """The VMCOREINFO values of `keys`, or None where one is missing: SYMBOL(x) and
    KERNELOFFSET (s390's KERNELOFFPHYS too) printed as %lx, hexadecimal without 0x; the others
    (NUMBER(x), PAGESIZE) as %ld, or 0x%lx."""
    try:
        return [int(info[key], 16 if key.startswith(("SYMBOL(", "KERNELOFF")) else 0)
                for key in keys]
    except (KeyError, ValueError):
        return None


X86_64_KERNEL_MAP = 0xffffffff80000000     # __START_KERNEL_map
PPC64_PAGE_OFFSET = 0xC000000000000000      # ppc64's linear map: __pa() clears the top nibble

# MIPS's segments (MIPS64 Architecture For Programmers, "Virtual Memory"): KSEG0 and KSEG1
# (CKSEG0/1 sign-extended) map the first 512 MiB of RAM cached and uncached, XKPHYS (a cache
# attribute in bits 61:59) all of it; KSEG2/KSSEG and KSEG3 (CKSSEG, CKSEG3) and XKSEG are
# mapped through the TLB, which Linux fills from swapper_pg_dir for every kernel address:
# vmalloc from XKSEG's start (VMALLOC_END: the tables' reach - 4 GiB on), modules in CKSSEG
# where the kernel is built -msym32 (KBUILD_64BIT_SYM32: MODULE_START), both indexed by the
# address's bits the tables have (_mips_scheme())
MIPS64_SEGMENTS = tuple((0x8000000000000000 + (cca << 59), 0x8000000000000000 + (cca + 1 << 59),
                         True) for cca in range(8)) + (
    (0xFFFFFFFF80000000, 0xFFFFFFFFA0000000, True), (0xFFFFFFFFA0000000, 0xFFFFFFFFC0000000, True),
    (0xFFFFFFFFC0000000, 1 << 64, False))
MIPS_XKSEG = 0xC000000000000000
MIPS32_SEGMENTS = ((0x80000000, 0xA0000000, True), (0xA0000000, 0xC0000000, True),
                   (0xC0000000, 1 << 32, False))

# LoongArch's (LoongArch Reference Manual vol. 1, "Virtual Memory"; Linux's asm/addrspace.h,
# asm/pgtable.h): the direct-mapped windows DMW0-2 (Linux's VSEGs 0x8000 uncached, 0x9000
# cached: the kernel and its page tables, 0xa000 write-combined) map physical memory at
# VSEG << 48 without tables; XKVRANGE's kernel half, from vm_map_base (-2^VALEN-1: VALEN 48
# on the 3A5000 and QEMU's la464), through the tables CSR.PGDH holds: swapper_pg_dir
LOONGARCH_KVRANGE = (1 << 64) - (1 << 47)
LOONGARCH_SEGMENTS = tuple((vseg << 48, (vseg << 48) + (1 << 48), True)
                           for vseg in (0x8000, 0x9000, 0xA000))

# the segments a kernel's own image is in, mapped without tables at a fixed distance from its
# physical address, by architecture: (low, high, direct); its virtual minus physical offset
# is the start of the one holding _stext (ppc64's linear map; MIPS's KSEG0 or XKPHYS, where
# KASLR moves it too; LoongArch's DMW1)
KERNEL_SEGMENTS = {EM_PPC64: ((PPC64_PAGE_OFFSET, 0xC008000000000000, True),),
                   EM_MIPS: MIPS64_SEGMENTS + MIPS32_SEGMENTS, EM_LOONGARCH: LOONGARCH_SEGMENTS}


def _image_offset(info, machine=None):
    """The kernel image's virtual minus physical address as VMCOREINFO says it: arm64's
    kimage_voffset, RISC-V's va_kernel_pa_offset (its arch_crash_save_vmcoreinfo(): Debian's
    6.12 and 7.2 say it), x86-64's __START_KERNEL_map - phys_base, s390's KERNELOFFSET (the
    kernel's virtual start) - KERNELOFFPHYS (its physical one; from 6.10, whose kernel is
    mapped apart from its physical address), else the start of the `machine`'s kernel
    segment holding its _stext; None where it does not."""
    found = _numbers(info, "NUMBER(kimage_voffset)") or \
        _numbers(info, "NUMBER(va_kernel_pa_offset)")
    if found:
        return found[0]
    found = _numbers(info, "NUMBER(phys_base)")
    if found and ("SYMBOL(init_top_pgt)" in info or "SYMBOL(init_level4_pgt)" in info):
        return X86_64_KERNEL_MAP - found[0]
    found = _numbers(info, "KERNELOFFSET", "KERNELOFFPHYS")     # s390's, 6.10+
    if found:
        return found[0] - found[1]
    text = _numbers(info, "SYMBOL(_stext)")
    return next((low for low, high, direct in KERNEL_SEGMENTS.get(machine, ())
                 if direct and low <= text[0] < high), None) if text else None


def _symbol(info, name, space, machine=None):
    """The address of a kernel symbol VMCOREINFO gives (`SYMBOL(name)`) in the `space`
    ("virtual" or "physical") of a dump of a `machine`'s kernel, or None."""
    found = _numbers(info, "SYMBOL(%s)" % name)
    offset = 0 if space == "virtual" else _image_offset(info, machine)
    if found is None or offset is None:
        return None
    return (found[0] - offset) & ((1 << 64) - 1)


def _reach_of(banner, info, space, machine):
    """_reach() of a banner with what VMCOREINFO says: the kernel's text (_stext; on arm64
    the Image header is 64 KiB before it, within the window's alignment) and its first
    writable data (init_uts_ns, in .data since 2.6.19).  Of a dump that says no `machine`
    (QEMU's kdump-compressed ones of ppc64 and LoongArch: "Unknown"), the bound of each
    machine whose kernel segment places the banner between them, where they agree."""
    machines = KERNEL_SEGMENTS if machine is None and space == "physical" else (machine,)
    reaches = {_reach(banner, _symbol(info, "_stext", space, machine),
                      _symbol(info, "init_uts_ns", space, machine))
               for machine in machines} - {_reach(banner)}
    return reaches.pop() if len(reaches) == 1 else _reach(banner)


def _file_size(f):
    """The bytes a dump's file holds, or None where its size says nothing (procfs: 0 bytes,
    or /proc/kcore's, computed by the kernel)."""
    if hasattr(f, "size"):      # a _Flattened file
        return f.size
    st = os.fstat(f.fileno())
    try:
        procfs = os.stat("/proc").st_dev
    except OSError:
        procfs = None
    return None if st.st_dev == procfs or not stat.S_ISREG(st.st_mode) else st.st_size


def _file_held(f):
    """The bytes a dump's file holds on disk, for a bound: a sparse file's holes (a file
    grown by truncate) hold none."""
    if hasattr(f, "size"):      # a _Flattened file: its records
        return f.size
    st = os.fstat(f.fileno())
    return min(st.st_size, getattr(st, "st_blocks", st.st_size >> 9) << 9)


def _truncated_dump(what, size, needed):
    """Whether a dump is shorter than its headers say (size None: unknown), warned of."""
    if size is None or needed <= size:
        return False
    _log.warning("the %s is truncated: %d of the %d bytes its headers say; what is past its "
                 "end is not in the dump", what, size, needed)
    return True


class _Partial(bytes):
    """A page of which the dump holds only the `held` spans ((start, end) in it): the rest
    reads as zeros, for a search, but is not in the dump."""
    held = ()


class _Ranges:
    """Memory in a file: sorted, non-overlapping (start, end, file offset) runs, cut where
    the file (of `size` bytes, None: unknown) ends."""

    page = 4096             # what Memory reads of it at a time

    def __init__(self, f, runs, size=None):
        # three arrays, not a tuple a run: QEMU's paging dumps have ~66 000 runs
        self.f = f
        runs = sorted(runs)
        starts, ends, offsets = zip(*runs) if runs else ((), (), ())
        if size is not None and max(map(operator.sub, map(operator.add, offsets, ends), starts),
                                    default=0) > size:
            ends = tuple(min(end, start + max(0, size - offset)) for start, end, offset in runs)
            runs = list(zip(starts, ends, offsets))
        if not all(map(operator.lt, starts, ends)) or \
                not all(map(operator.le, ends, starts[1:])):
            starts, ends, offsets = [], [], []      # empty runs, or a PA mapped twice: the
            for start, end, offset in runs:         # first
                if start < end and (not ends or start >= ends[-1]):
                    starts.append(start)
                    ends.append(end)
                    offsets.append(offset)
        self.starts, self.ends, self.offsets = (array.array("Q", values) for values in
                                                (starts, ends, offsets))

    @property
    def runs(self):
        """(start, end, file offset) of each run, in order."""
        return zip(self.starts, self.ends, self.offsets)

    def read(self, address, size):
        """The bytes at [address, address + size): a _Partial where runs cover only some
        of them (zeros elsewhere), None where none does."""
        i = max(0, bisect.bisect_right(self.starts, address) - 1)
        out, held = bytearray(size), []
        while i < len(self.starts) and self.starts[i] < address + size:
            start, end, offset = self.starts[i], self.ends[i], self.offsets[i]
            low, high = max(start, address), min(end, address + size)
            if low < high:
                self.f.seek(offset + low - start)
                piece = self.f.read(high - low)     # short where the file shrank since
                out[low - address:low - address + len(piece)] = piece
                if held and held[-1][1] == low - address:
                    held[-1] = (held[-1][0], low - address + len(piece))
                elif piece:
                    held.append((low - address, low - address + len(piece)))
            i += 1
        if not held:
            return None
        if held == [(0, size)]:
            return bytes(out)
        page = _Partial(out)
        page.held = held
        return page

    def find(self, needle, low=0, high=1 << 64):
        """The address of the first `needle` in the runs within [low, high), or None."""
        for start, end, offset in self.runs:
            start, end, offset = max(start, low), min(end, high), offset + max(0, low - start)
            found = _file_find(self.f, offset, end - start, lambda chunk: chunk.find(needle),
                               len(needle)) if start < end else None
            if found is not None:
                return start + found - offset
        return None


class _KdumpPages:
    """The pages of a kdump-compressed file (`page`: its block size), decompressed when
    read."""

    def __init__(self, f, page, descriptors):
        self.f, self.page, self.descriptors = f, page, descriptors

    def read(self, address, size):
        """A page-aligned read of whole pages (what Memory asks), or None."""
        out = b""
        for pfn in range(address // self.page, _round_up(address + size, self.page) // self.page):
            desc = self.descriptors.get(pfn)
            data = None if desc is None else _kdump_page(self.f, desc, self.page,
                                                         self.descriptors.corrupt)
            if data is None:
                return None
            out += data
        return out

    def find(self, needle, low=0, high=1 << 64):
        """The address of the first `needle` within a page in [low, high), or None."""
        for pfn, desc in self.descriptors.items(low // self.page):
            if pfn * self.page >= high:
                break
            found = (_kdump_page(self.f, desc, self.page, self.descriptors.corrupt)
                     or b"").find(needle)
            if found >= 0:
                return pfn * self.page + found
        return None


VMCOREINFO_BYTES = 4096    # include/linux/crash_core.h: a page
PAGE_CACHE = 4096           # pages of a dump kept decompressed or read: 16 MiB of 4 KiB ones


class Memory:
    """A dump by address, read a page at a time through a bounded cache: physical memory
    (ELF PT_LOADs by p_paddr, kdump pages by pfn) and virtual memory (PT_LOADs by p_vaddr
    where the dump has them; elsewhere through `tables`, page tables once set).  What the
    dump lacks reads as None.  `notes` are its ELF notes (QEMU's CPU state among them),
    `info` its VMCOREINFO, `machine` the e_machine it names (None: unknown), `window` where
    the kernel window read of it starts: ("virtual" or "physical", address); `sparse` the
    (start, end) of kcore's vmalloc and module space, held only where page tables map it."""

    PAGE = 4096             # of virtual memory (page tables map 4 KiB at least)

    def __init__(self, f, physical, virtual, *, notes, info, machine, window, sparse=()):
        self.f, self.physical_memory, self.virtual_memory = f, physical, virtual
        self.notes, self.info, self.machine, self.window = notes, info, machine, window
        self.sparse = list(sparse)
        self._tables = None
        self.linear = []        # the virtual runs mapped as the kernel is (see _core())
        self.truncated = False  # the file shorter than its headers say (warned of)
        self._cache = collections.OrderedDict()

    @property
    def tables(self):
        return self._tables

    @tables.setter
    def tables(self, tables):
        """Other tables map other pages: those read through the last are forgotten."""
        self._tables = tables
        for key in [key for key in self._cache if key[0] == "virtual"]:
            del self._cache[key]

    def close(self):
        self.f.close()

    def _page(self, space, address):
        key = (space, address)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        source = self.physical_memory if space == "physical" else self.virtual_memory
        data = None if source is None else source.read(address, self._size(space))
        if data is None and space == "virtual":
            physical = self.tables.translate(address) if self.tables else None
            data = None if physical is None else self.read(physical, self.PAGE, "physical")
        self._cache[key] = data
        if len(self._cache) > PAGE_CACHE:
            self._cache.popitem(last=False)
        return data

    def read(self, address, size, space="virtual", fill=False):
        """The bytes at [address, address + size) of the `space`, or None where a byte of
        them is not in the dump (with `fill`, zeros instead: for a search)."""
        out, page_size = [], self._size(space)
        at = address - address % page_size
        while at < address + size:
            page = self._page(space, at)
            if page is None:
                if not fill:
                    return None
                page = bytes(page_size)
            elif not fill and isinstance(page, _Partial):
                low, high = max(address - at, 0), min(address + size - at, page_size)
                if not any(start <= low and high <= end for start, end in page.held):
                    return None
            out.append(page)
            at += page_size
        data = b"".join(out)
        return data[address % page_size:address % page_size + size]

    def _size(self, space):
        return self.physical_memory.page if space == "physical" else self.PAGE


def _vmcoreinfo_in_memory(memory, release, low=0, high=1 << 64):
    """{key: value} of the VMCOREINFO the kernel keeps in its memory, for a dump without the
    note (QEMU's without -device vmcoreinfo): vmcoreinfo_data, written at boot by
    crash_save_vmcoreinfo_init() (CONFIG_CRASH_CORE; a page of its own from 4.13, commit
    203e9e41219b, before in .bss), "OSRELEASE=" the `release` of the kernel's banner first,
    in the physical memory [low, high); {} where none."""
    at = None if release is None else \
        memory.physical_memory.find(b"OSRELEASE=%s\n" % release, low, high)
    if at is None:
        return {}
    text = (memory.read(at, VMCOREINFO_BYTES, "physical", fill=True) or b"").split(b"\0")[0]
    _log.info("no VMCOREINFO note: the kernel's own copy found at physical %#x", at)
    return _vmcoreinfo([Note(b"VMCOREINFO", 0, text)])


def _own_window(memory, banner, start, end):
    """The window [start, end) around the kernel banner at a physical address of a dump
    without a VMCOREINFO note, bounded as the note would have bounded it (_reach_of) by the
    kernel's own copy, where [start, end) holds it (then memory.info), before it is read:
    its first writable data, else 80 MiB past the banner (s390x, ppc64el and loong64 under
    QEMU: their copy 60-80 MiB past it)."""
    release = _banner_release(memory.read(banner, 256, "physical", fill=True))
    memory.info = _vmcoreinfo_in_memory(memory, release, start, end)
    return _reach_of(banner, memory.info, "physical", memory.machine) if memory.info else \
        (start, end)


def _core_headers(f, head, size):
    """(ElfObject, [program headers]) of an ELF core of `size` bytes (None: unknown),
    reading as much of it as they need (with more than 65535 program headers, section
    header 0 holds their count): a table the file cannot hold is refused, whatever its
    count says."""
    elf = ElfObject(head, sections=False)
    header, phdr = elf.header, elf.phdr
    count = header.phnum
    if count == PN_XNUM and header.shoff:
        f.seek(header.shoff)
        count = elf.shdr.read(f.read(elf.shdr.size)).info
    if header.phentsize < phdr.size:
        raise SymversError("ELF core dump with program headers of %d bytes, not %d"
                           % (header.phentsize, phdr.size), EXIT_FORMAT)
    end = header.phoff + count * header.phentsize
    if count > MAX_PHDRS or size is not None and end > size:
        raise SymversError("ELF core dump with %d program headers at %#x: %s" % (
            count, header.phoff, "more than %d" % MAX_PHDRS if count > MAX_PHDRS else
            "past the end of the file (%d bytes): truncated or corrupt" % size), EXIT_FORMAT)
    f.seek(header.phoff)            # anywhere in the file: read the table alone
    table = f.read(count * header.phentsize)
    if len(table) < count * header.phentsize:
        raise SymversError("ELF core dump with %d program headers at %#x, past the end of the "
                           "file: truncated or corrupt" % (count, header.phoff), EXIT_FORMAT)
    return elf, phdr.read_table(table, count, header.phentsize)


def _virtual(segment):
    """Whether a PT_LOAD says a virtual address (QEMU's physical dumps: 0, or the same)."""
    return segment.vaddr not in (0, segment.paddr)


def _core_window(f, loads, info, machine):
    """(the pieces to read: [(low, high, file offset)], the window they make: (space, low,
    high), the banner's address) of the kernel in an ELF core: the memory around the first
    kernel banner of the segment holding VMCOREINFO's _stext, else of the smallest segment
    holding one (kcore's KCORE_TEXT, before the direct map of all RAM), assembled from every
    PT_LOAD in that address space (p_vaddr; p_paddr for a segment without a virtual address,
    whose base is then unknown).  `loads` are those that map memory (not kcore's vmalloc
    space, its unmapped pages zeros)."""
    # the kernel says where its text is: that segment first, searched from there (the
    # banner is in .rodata, after the text)
    texts = {space: _symbol(info, "_stext", space, machine) for space in ("virtual", "physical")}

    def skip(s):
        text, address = (texts["virtual"], s.vaddr) if _virtual(s) else \
            (texts["physical"], s.paddr)
        return text - address if text is not None and 0 <= text - address < s.filesz else None

    def order():        # the segments holding _stext, then the others, the smallest first
        held = [s for s in loads if skip(s) is not None]
        yield from held
        yield from sorted((s for s in loads if s not in held), key=lambda s: s.filesz)

    for segment in order():
        start = skip(segment) or 0
        found = _file_find(f, segment.offset + start, segment.filesz - start, _banner_at, 64)
        if found is not None:
            break
    else:
        raise SymversError("ELF core dump with %d memory segments, none holding a kernel "
                           "banner" % len(loads), EXIT_FORMAT)
    virtual = _virtual(segment)

    def address(s):
        return s.vaddr if virtual else s.paddr

    banner = address(segment) + found - segment.offset
    start, end = _reach_of(banner, info, "virtual" if virtual else "physical", machine)
    pieces = []
    for s in loads:
        low, high = max(start, address(s)), min(end, address(s) + s.filesz)
        if low < high and _virtual(s) == virtual:
            pieces.append((low, high, s.offset + low - address(s)))
    space = "virtual" if virtual else "physical"
    _log.info("ELF core dump, %d memory segments: kernel banner at %s %#x", len(loads),
              space, banner)
    return pieces, (space, min(p[0] for p in pieces), max(p[1] for p in pieces)), banner


def _read_pieces(f, pieces, low, high, max_size):
    """The window [low, high) of a dump, read from the file's `pieces`: [(low, high, file
    offset)]."""
    window = _window(high - low, max_size)
    view = memoryview(window)
    for piece_low, piece_high, offset in pieces:
        f.seek(offset)
        f.readinto(view[piece_low - low:piece_high - low])     # what a file lacks stays 0
    _log.info("reading %#x-%#x (%d MiB) of the dump", low, high, (high - low) >> 20)
    return window


def _core(f, head, max_size):
    """(window, base, Memory) of an ELF core dump (QEMU's dump-guest-memory, a saved
    /proc/vmcore, /proc/kcore)."""
    size = _file_size(f)
    elf, segments = _core_headers(f, head, size)
    notes = []
    for note in (s for s in segments if s.type == PT_NOTE):
        f.seek(note.offset)
        notes += _notes(f.read(min(note.filesz, 1 << 20)), elf.e)
    info = _vmcoreinfo(notes)
    loads = [s for s in segments if s.type == PT_LOAD and s.filesz]
    truncated = _truncated_dump("ELF core dump", size, max(
        (s.offset + s.filesz for s in segments if s.type in (PT_LOAD, PT_NOTE)), default=0))
    if size is not None:        # what the file holds of each segment
        loads = [s if s.offset + s.filesz <= size else s._replace(filesz=size - s.offset)
                 for s in loads if s.offset < size]
    # kcore's vmalloc and module space (p_paddr -1, fs/proc/kcore.c): what no page table
    # maps there reads as zeros, so it is read only through the page tables
    no_paddr = (1 << elf.bits) - 1
    sparse = [s for s in loads if s.paddr == no_paddr and _virtual(s)]
    if sparse:
        loads = [s for s in loads if s not in sparse]
    pieces, (space, start, end), banner = _core_window(f, loads, info, elf.machine)
    virtual = [s for s in loads if _virtual(s)]
    # a virtual segment's p_paddr 0: none said (kcore before it set __pa(), its vmalloc
    # space 0 too), but where the vmalloc space says -1, RAM from physical 0 (ppc64, s390x;
    # MIPS's, in XKPHYS)
    physical = _Ranges(f, [(s.paddr, s.paddr + s.filesz, s.offset) for s in loads
                           if s.paddr or sparse or not _virtual(s)], size)
    memory = Memory(f, physical, _Ranges(f, [(s.vaddr, s.vaddr + s.filesz, s.offset)
                                             for s in virtual], size) if virtual else None,
                    notes=notes, info=info, machine=elf.machine, window=(space, start),
                    sparse=[(s.vaddr, s.vaddr + s.filesz) for s in sparse])
    memory.truncated = truncated
    if not info and space == "physical":
        start, end = _own_window(memory, banner, start, end)
        pieces = [(max(low, start), min(high, end), offset + max(0, start - low))
                  for low, high, offset in pieces if low < end and high > start]
        memory.window = (space, start)
    if space == "virtual":  # the map the kernel is in (i386's, arm's: lowmem) holds no module
        offset = next(s.vaddr - s.paddr for s in virtual
                      if s.vaddr <= banner < s.vaddr + s.filesz)
        memory.linear = [(s.vaddr, s.vaddr + s.filesz) for s in virtual
                         if s.vaddr - s.paddr == offset]
    del segments, loads, virtual    # the program headers (QEMU's -p: ~66 000) before the window
    window = _read_pieces(f, pieces, start, end, max_size)
    return window, start if space == "virtual" else None, memory


# makedumpfile's kdump-compressed format (diskdump_mod.h; what kdump-tools saves by default,
# QEMU's dump-guest-memory -z/-l/-s): a header block, sub-header blocks (VMCOREINFO, the ELF
# notes), two page bitmaps, then one page_desc per dumped page (the second bitmap's set bits,
# in pfn order), each page raw or compressed.
KDUMP_MAGIC = b"KDUMP   "
KDUMP_FLATTENED = b"makedumpfile\0"
KDUMP_ZLIB, KDUMP_LZO, KDUMP_SNAPPY, KDUMP_ZSTD = 0x1, 0x2, 0x4, 0x20
KDUMP_BLOCK_SIZES = (4096, 8192, 16384, 65536)
_KDUMP_FIELDS = ("signature header_version utsname status block_size sub_hdr_size "
                 "bitmap_blocks max_mapnr total_ram_blocks device_blocks written_blocks "
                 "current_cpu nr_cpus")
_KDUMP_SUB_FIELDS = ("phys_base dump_level split start_pfn end_pfn offset_vmcoreinfo "
                     "size_vmcoreinfo offset_note size_note offset_eraseinfo size_eraseinfo "
                     "start_pfn_64 end_pfn_64 max_mapnr_64")
# disk_dump_header and kdump_sub_header of a 64-bit and of a 32-bit kernel, as QEMU's dump.h
# writes them: after the utsname, padding to a long, a timeval of two longs, then 32-bit
# fields; the 32-bit sub-header is packed (off_t is 64-bit).  Each in the dump's byte order
# (makedumpfile: the dumped machine's; QEMU's dump.c: cpu_to_dump32/64(), the d_endian of its
# ELF dumps too: big-endian for s390x), as are the page descriptors and the notes; the bitmaps
# are bytes.  QEMU up to 8.0 dumps a little-endian ppc64 guest big-endian
# (target/ppc/arch_dump.c asked for the hypervisor's interrupt endianness, fixed in 2023).  The
# block size tells the order: none of the sizes reads as another byte-swapped.
KDUMP_HEADERS = tuple(
    (e, _Record("DiskDumpHeader", _KDUMP_FIELDS, e + header),
     _Record("KdumpSubHeader", _KDUMP_SUB_FIELDS, e + sub))
    for e in "<>" for header, sub in (("8si390s6x16xIiiIIIIIIi", "QiiQQQQQQQQQQQ"),
                                      ("8si390s2x8xIiiIIIIIIi", "IiiIIQIQIQIQQQ")))
# utsname.machine (the fifth of new_utsname's six 65-byte fields) -> e_machine
UTS_MACHINES = {"x86_64": EM_X86_64, "i386": EM_386, "i486": EM_386, "i586": EM_386,
                "i686": EM_386, "aarch64": EM_AARCH64, "armv7l": EM_ARM, "armv6l": EM_ARM,
                "arm": EM_ARM, "riscv64": EM_RISCV, "s390x": EM_S390, "S390X": EM_S390,
                "ppc64": EM_PPC64, "ppc64le": EM_PPC64, "loongarch64": EM_LOONGARCH}
KDUMP_PAGE_DESC = {e: struct.Struct(e + "qIIQ") for e in "<>"}  # offset, size, flags, page_flags
KDUMP_BITMAP_MAX = 256 << 20    # bytes of a bitmap read at most: 8 TiB of 4 KiB pages, 128 of 64
KDUMP_INDEX_STEP = 4096         # bytes of a bitmap per running count of its set bits
POPCOUNT = bytes(bin(byte).count("1") for byte in range(256))
# the pages (bit numbers) each byte of a bitmap says, least significant first
BITS_OF = [[bit for bit in range(8) if byte >> bit & 1] for byte in range(256)]


def _popcount(data):
    """The bits set in `data`, at C speed."""
    counted = data.translate(POPCOUNT)
    return sum(k * counted.count(k) for k in range(1, 9))


class _KdumpIndex:
    """The pages of a kdump-compressed file, {pfn: (offset, size, flags)} read when asked:
    its second bitmap (the pages dumped), kept as the steps of it that have a bit set, each
    with the count of set bits before it, says which; the n-th set bit's descriptor is the
    n-th of the table at `descs_at`, which the file holds `room` of.  Its memory is that of
    the bitmap's steps with pages, whatever the count of pages or where they are (a ppc64
    guest's device memory 32 TiB up: a bitmap of 64 MiB for 8 192 pages of RAM)."""

    def __init__(self, f, steps, descs_at, room, endian):
        self.f, self.descs_at = f, descs_at
        self.desc = KDUMP_PAGE_DESC[endian]
        self.keys = sorted(steps)       # step numbers, each KDUMP_INDEX_STEP bytes of bitmap
        self.steps = [steps[key] for key in self.keys]
        self.counts = array.array("Q", [0])
        for step in self.steps:
            self.counts.append(self.counts[-1] + _popcount(step))
        self.total = min(self.counts[-1], room)
        self.truncated = False      # the file shorter than its pages say
        self.corrupt = set()        # the offsets of pages found corrupt (warned of)

    def _rank(self, pfn):
        """(the pages the bitmap says before `pfn`, whether it says `pfn`)."""
        key, byte = divmod(pfn >> 3, KDUMP_INDEX_STEP)
        i = bisect.bisect_left(self.keys, key)
        if i == len(self.keys) or self.keys[i] != key:
            return self.counts[i], False
        step = self.steps[i]
        if byte >= len(step):
            return self.counts[i + 1], False
        return self.counts[i] + _popcount(step[:byte]) + POPCOUNT[
            step[byte] & (1 << (pfn & 7)) - 1], bool(step[byte] >> (pfn & 7) & 1)

    def _index(self, pfn):
        """The number of a page's descriptor, or None where the file does not hold it."""
        index, held = self._rank(pfn)
        return index if held and index < self.total else None

    def last_pfn(self):
        """The highest pfn the bitmap says, or -1."""
        if not self.steps:
            return -1
        step = self.steps[-1]
        end = len(step.rstrip(b"\0"))
        return 8 * (self.keys[-1] * KDUMP_INDEX_STEP + end) - 9 + step[end - 1].bit_length()

    def get(self, pfn):
        """A page's descriptor, or None where the file does not hold the page."""
        index = self._index(pfn)
        if index is None:
            return None
        self.f.seek(self.descs_at + index * self.desc.size)
        raw = self.f.read(self.desc.size)
        if len(raw) < self.desc.size:         # the file shrank since: no data
            return 0, 0, 0
        return self.desc.unpack(raw)[:3]

    def __len__(self):
        return self.total

    def _pfns(self, start):
        """The pfns from `start`, in order (only the bitmap's non-zero bytes cost a step)."""
        first, at = divmod(start >> 3, KDUMP_INDEX_STEP)
        i = bisect.bisect_left(self.keys, first)
        for key, step in zip(self.keys[i:], self.steps[i:]):
            for m in NONZERO.finditer(step, at if key == first else 0):
                for bit in BITS_OF[step[m.start()]]:
                    pfn = 8 * (key * KDUMP_INDEX_STEP + m.start()) + bit
                    if pfn >= start:
                        yield pfn

    def items(self, start=0):
        """(pfn, descriptor) of each page from pfn `start`, in order, the table read a
        chunk at a time."""
        pfns, step = self._pfns(start), READ_CHUNK // self.desc.size
        for index in range(self._rank(start)[0], self.total, step):
            self.f.seek(self.descs_at + index * self.desc.size)
            table = self.f.read(min(step, self.total - index) * self.desc.size)
            descs = self.desc.iter_unpack(table[:len(table) // self.desc.size
                                                * self.desc.size])
            for desc, pfn in zip(descs, pfns):      # a pfn taken only with its descriptor
                yield pfn, desc[:3]


def _kdump_pages(f, head):
    """(page size, {pfn: (offset, size, flags)}, VMCOREINFO text, ELF notes bytes, the
    e_machine its utsname names, its byte order) of a kdump-compressed file."""
    for endian, header_record, sub_record in KDUMP_HEADERS:
        header = header_record.read(head)
        if header.block_size in KDUMP_BLOCK_SIZES and 0 < header.sub_hdr_size < 64:
            break
    else:
        raise SymversError("kdump-compressed file with a header this tool does not read",
                           EXIT_FORMAT)
    block, mapnr = header.block_size, header.max_mapnr
    f.seek(block)
    sub = sub_record.read(f.read(block * header.sub_hdr_size))
    if header.header_version >= 6:
        mapnr = sub.max_mapnr_64
    f.seek(sub.offset_vmcoreinfo)
    info = f.read(min(sub.size_vmcoreinfo, 1 << 20))
    notes = b""
    if header.header_version >= 4 and sub.size_note:
        f.seek(sub.offset_note)
        notes = f.read(min(sub.size_note, 1 << 20))
    half = header.bitmap_blocks * block // 2
    size = _file_size(f)
    descs_at = block * (1 + header.sub_hdr_size + header.bitmap_blocks)
    if half > mapnr // 8 + block or half > KDUMP_BITMAP_MAX or \
            size is not None and descs_at > size:
        raise SymversError("kdump-compressed header: %d bitmap blocks for %d pages%s"
                           % (header.bitmap_blocks, mapnr, "" if size is None or
                              descs_at <= size else ", past the end of the file (%d bytes)"
                              % size), EXIT_FORMAT)
    # the second bitmap: the pages dumped (no more than `mapnr`), each with a descriptor
    f.seek(block * (1 + header.sub_hdr_size) + half)
    steps, length = {}, min(half, -(-mapnr // 8))
    for at in range(0, length, READ_CHUNK):
        chunk = f.read(min(READ_CHUNK, length - at))
        if at + len(chunk) == length and mapnr % 8:
            chunk = chunk[:-1] + bytes([chunk[-1] & (1 << mapnr % 8) - 1])
        m = NONZERO.search(chunk)
        while m:
            low = m.start() - m.start() % KDUMP_INDEX_STEP
            steps[(at + low) // KDUMP_INDEX_STEP] = chunk[low:low + KDUMP_INDEX_STEP]
            m = NONZERO.search(chunk, low + KDUMP_INDEX_STEP)
    # a descriptor each: no more than the file holds (a sparse file: what is not a hole)
    room = MAX_SIZE if size is None else \
        min(size - descs_at, _file_held(f)) // KDUMP_PAGE_DESC[endian].size
    pages = _KdumpIndex(f, steps, descs_at, room, endian)
    if pages.counts[-1] > room:
        pages.truncated = _truncated_dump("kdump-compressed dump", size,
                                          descs_at + pages.counts[-1] * pages.desc.size)
    elif len(pages):        # the last page's data: where the pages end, as makedumpfile writes
        offset, length, _ = pages.get(pages.last_pfn())
        pages.truncated = _truncated_dump("kdump-compressed dump", size, offset + length)
    _log.info("kdump-compressed dump (header version %d, %s): %d of %d pages of %d bytes",
              header.header_version, "big-endian" if endian == ">" else "little-endian",
              len(pages), mapnr, block)
    machine = UTS_MACHINES.get(header.utsname[4 * 65:5 * 65].split(b"\0")[0].decode(
        "latin-1"))
    return block, pages, info, notes, machine, endian


def _kdump_page(f, desc, page, corrupt):
    """The bytes of a kdump page, or None where the file ends before its data or they are
    not a page (a descriptor or compressed data corrupt: warned of once, its offset added to
    the set `corrupt`): that page is not in the dump, the others are."""
    offset, size, flags = desc
    if flags & KDUMP_SNAPPY:
        raise SymversError("kdump-compressed dump with snappy pages: not read here; rewrite "
                           "it with makedumpfile -c (zlib) or -z (zstd)", EXIT_FORMAT)
    if offset < 0 or not 0 < size <= 2 * page:  # a page is raw when it does not shrink
        return _corrupt_page(corrupt, offset, "a descriptor of %d bytes" % size)
    f.seek(offset)
    data = f.read(size)
    if len(data) < size:
        return None
    kind = "zlib" if flags & KDUMP_ZLIB else "zstd" if flags & KDUMP_ZSTD else \
        "lzo" if flags & KDUMP_LZO else None
    try:
        if kind == "zlib":
            data = zlib.decompress(data, bufsize=page)
        elif kind == "zstd":
            data = bytes(_zstd_decode(memoryview(data), page))
        elif kind == "lzo":
            data = bytes(_lzo1x_block(data, page))
    except DECODE_ERRORS as e:
        return _corrupt_page(corrupt, offset, e)
    if len(data) != page:
        return _corrupt_page(corrupt, offset, "%d bytes, not a page" % len(data))
    return data


KDUMP_CORRUPT_SAID = 10    # corrupt pages warned of one by one; the rest in one line


def _corrupt_page(corrupt, offset, why):
    """None, for a corrupt kdump page; warned of the first time (the first few pages)."""
    if offset not in corrupt and len(corrupt) <= KDUMP_CORRUPT_SAID:
        corrupt.add(offset)
        if len(corrupt) <= KDUMP_CORRUPT_SAID:
            _log.warning("kdump-compressed page at %#x is corrupt (%s): not read", offset, why)
        else:
            _log.warning("more kdump-compressed pages are corrupt: not read, not said")
    return None


def _kdump_window(memory, pages, max_size):
    """(bytes, physical address of the first) of the memory around the kernel banner of a
    kdump-compressed file: where VMCOREINFO places the kernel's text and data, those pages
    alone, the banner among them; else pages decompressed in pfn order until the banner,
    then the window around it."""
    f, page, info, machine = memory.f, memory.physical_memory.page, memory.info, memory.machine
    last = (pages.last_pfn() + 1) * page
    text, data = (_symbol(info, name, "physical", machine) for name in ("_stext", "init_uts_ns"))
    if text is not None and data is not None and text < data <= last:
        start, end = text & ~(CORE_ALIGN - 1), _round_up(data, 4096)
        window = _kdump_read(f, page, pages, start, end, max_size)
        at = _banner_at(window)
        if at >= 0 and _reach(start + at, text, data) == (start, end):
            return _kdump_said(window, start, start + at)
    tail = b""          # the end of the page before: a banner may straddle two pages
    for pfn, desc in pages.items():
        data = _kdump_page(f, desc, page, pages.corrupt)
        if data is None:        # not in the file
            tail = b""
            continue
        data = tail + data
        at = _banner_at(data)
        if at >= 0:
            banner = pfn * page + at - len(tail)
            break
        tail = data[-64:]
    else:
        raise SymversError("kdump-compressed dump: no kernel banner in its %d pages"
                           % len(pages), EXIT_FORMAT)
    start, end = _reach_of(banner, info, "physical", machine)
    if not info:
        start, end = _own_window(memory, banner, start, end)
    return _kdump_said(_kdump_read(f, page, pages, start, min(end, last), max_size), start,
                       banner)


def _kdump_read(f, page, pages, start, end, max_size):
    """The physical memory [start, end) of a kdump-compressed file, its pages decompressed
    (zeros where it has none)."""
    window = _window(end - start, max_size)
    for pfn, desc in pages.items(start // page):
        if pfn * page >= end:
            break
        data = _kdump_page(f, desc, page, pages.corrupt)
        if data is not None:
            window[pfn * page - start:pfn * page - start + len(data)] = data
    del window[end - start:]
    return window


def _kdump_said(window, start, banner):
    """(window, start), logged."""
    _log.info("kdump-compressed dump: kernel banner at physical %#x; reading %#x-%#x (%d MiB)",
              banner, start, start + len(window), len(window) >> 20)
    return window, start


def _kdump(f, head, max_size):
    """(window, None, Memory) of a kdump-compressed file."""
    page, pages, info, notes, machine, endian = _kdump_pages(f, head)
    notes = list(_notes(notes, endian))
    info = _vmcoreinfo(notes + [Note(b"VMCOREINFO", 0, info)])
    memory = Memory(f, _KdumpPages(f, page, pages), None, notes=notes, info=info,
                    machine=machine, window=None)
    window, start = _kdump_window(memory, pages, max_size)
    memory.window = ("physical", start)
    memory.truncated = pages.truncated or getattr(f, "truncated", False)
    return window, None, memory


class _Flattened:
    """makedumpfile -F's flattened format (QEMU's dump-guest-memory -z writes it unless given
    -R) as the file it stands for: after a 4096-byte header, big-endian (offset, size)
    records, each followed by the bytes to be written at offset; offset -1 ends them.  What
    no record writes reads as zeros, but the end of a truncated file is not read: the
    records stop where the file does, or at one of no bytes (the zeros of a sparse file)."""

    RECORD = struct.Struct(">qq")

    def __init__(self, f):
        self.f, self.pos, runs, at = f, 0, [], 4096
        file_size = _file_size(f)
        while file_size is None or at < file_size:
            f.seek(at)
            header = f.read(self.RECORD.size)
            if len(header) < self.RECORD.size:
                break
            offset, size = self.RECORD.unpack(header)
            if offset < 0 or size < 0:
                break
            if not size:        # not a record: zeros (a sparse file, grown without its end)
                header = b""
                break
            runs.append((offset, offset + size, at + self.RECORD.size))
            at += self.RECORD.size + size
        else:
            header = b""
        self.truncated = len(header) < self.RECORD.size
        if self.truncated:
            _log.warning("makedumpfile flattened file without its end record (%d records, "
                         "the last ending at byte %d): truncated?", len(runs), at)
        self.truncated |= _truncated_dump("makedumpfile flattened file", file_size, at)
        self.records = len(runs)
        self.written = _Ranges(f, runs, file_size)
        self.size = max((end for _, end, _ in self.written.runs), default=0)

    def seek(self, pos):
        self.pos = pos

    def read(self, size):
        size = max(0, min(size, self.size - self.pos))
        data = self.written.read(self.pos, size) or bytes(size)
        self.pos += size
        if isinstance(data, _Partial):      # what no record writes: zeros
            data = bytes(data)
        return data

    def close(self):
        self.f.close()


def _dump(f, max_size):
    """(window, base, Memory) of a dump read by seek and read, or None when the file is not
    a core dump or a kdump file."""
    head = f.read(CORE_HEAD)
    if _is_elf(head) and ElfObject(head, sections=False).type == ET_CORE:
        return _window_base(*_core(f, head, max_size))
    if head[:len(KDUMP_MAGIC)] == KDUMP_MAGIC:
        return _window_base(*_kdump(f, head, max_size))
    if head[:len(KDUMP_FLATTENED)] == KDUMP_FLATTENED:
        flat = _Flattened(f)
        head = flat.read(CORE_HEAD)
        if head[:len(KDUMP_MAGIC)] == KDUMP_MAGIC:
            _log.info("makedumpfile flattened format: %d records", flat.records)
            return _window_base(*_kdump(flat, head, max_size))
        raise SymversError("makedumpfile flattened file without a kdump header", EXIT_FORMAT)
    return None


def _window_base(window, base, memory):
    """(window, base, Memory) with the virtual address of a physical window's first byte
    where VMCOREINFO says the kernel's virtual minus physical offset (the note's, else the
    kernel's own copy _own_window() found); on ppc64, MIPS and LoongArch, whose VMCOREINFO
    says none, the start of the segment holding _stext (KERNEL_SEGMENTS), of the machine the
    dump says, else its kernel's vermagic (QEMU's kdump-compressed dumps of ppc64 and
    LoongArch say "Unknown").  The absolute name pointers of a riscv64 kernel, or of a ppc64
    one with the hash MMU, do not vote for its base in a dump: its __ksymtab_strings is not
    among the largest identifier blocks there."""
    if base is None and memory.window[0] == "physical":
        memory.machine = memory.machine or _vermagic_machine(window)
        offset = _image_offset(memory.info, memory.machine)
        if offset is not None:
            base = (memory.window[1] + offset) & ((1 << 64) - 1)
            _log.info("the window's base from VMCOREINFO: %x", base)
    return window, base, memory


class Input(NamedTuple):
    """What read_kernel() reads of a file: the bytes to unpack, the virtual address of their
    first byte where a dump says it, and, of a dump, its Memory (to close)."""
    data: bytes
    base: Optional[int]
    memory: Optional[Memory]


def read_kernel(path, max_size=MAX_SIZE):
    """The Input of a path: what a core dump maps around the kernel (never the whole file:
    /proc/kcore says it is 128 TiB) and the dump by address, else the whole input.  Only a
    regular file is looked into first: a pipe cannot be read twice."""
    if path != "-" and os.path.isfile(path):
        try:
            f = open(path, "rb")
        except OSError:
            f = None            # said by _read_input()
        if f is not None:
            try:
                found = _dump(f, max_size)
            except (struct.error, ValueError, OverflowError, OSError) as e:
                f.close()
                if isinstance(e, OSError) and e.errno != errno.EINVAL:
                    raise SymversError("cannot read %s: %s" % (path, e.strerror or e),
                                       EXIT_INPUT) from None
                # a header short of its fields, or sending seeks where no file goes
                raise SymversError("%s: the dump's headers are truncated or corrupt" % path,
                                   EXIT_FORMAT) from None
            except BaseException:
                f.close()
                raise
            if found is not None:
                return Input(*found)
            f.close()
    return Input(_read_input(path, max_size), None, None)


# --- Page tables: the virtual memory of a dump that holds physical memory -----------------
# A scheme is an MMU's translation-table format: the bytes of an entry, the (shift, index
# bits) of each level from the top, and what an entry says: nothing, the next table, or the
# page (or block) it maps and the shift of its size.

class _Scheme(NamedTuple):
    name: str
    entry: int              # bytes per entry
    levels: tuple           # ((shift, index bits), ...) from the top level
    decode: object          # (entry, level, last) -> None, (TABLE, address, span: the
                            # indexes the next table has, (first, end), None for all),
                            # or (PAGE_ENTRY, address, shift: None for the level's)
    va_bits: int            # the bits of a virtual address that index it; without `extend`,
                            # an address with bits above them set is not translated
    extend: str = ""        # the bits above: "sign" (x86-64), "upper" (arm64's TTBR1: all set),
                            # "quadrant" (Book3S-64: 63:62 set, those between clear)
    big_endian: bool = False
    designation: object = None  # root -> (the top table's address, its span): the root is
                                # not the top table's address but says it (s390x's ASCE)
    linear: tuple = ()      # (start, end) of virtual memory at start + its physical address,
                            # not looked up in the tables (Book3S-64's linear map)
    segments: tuple = ()    # MIPS: the address space's ((low, high, direct), ...): direct, RAM
                            # from 0 at `low` without tables, else mapped by them (indexed by
                            # the address's low va_bits); an address in none is not translated


TABLE, PAGE_ENTRY = "table", "page"


def _x86_decode(mask, large):
    """x86 entries: bit 0 present, bit 7 a large page at the `large` levels."""
    def decode(entry, level, last):
        if not entry & 1:
            return None
        if last or level in large and entry & 0x80:
            return PAGE_ENTRY, entry & mask, None
        return TABLE, entry & mask, None
    return decode


def _arm64_decode(granule, mask):
    """VMSAv8-64 descriptors (and ARMv7 LPAE's): bit 0 valid, bit 1 a table (a page at the
    last level), else a block; with 64 KiB granules bits 15:12 hold PA[51:48]."""
    def decode(entry, level, last):
        if not entry & 1 or last and not entry & 2:
            return None
        address = entry & mask
        if granule == 16:
            address |= (entry >> 12 & 0xF) << 48
        if entry & 2 and not last:
            return TABLE, address, None
        return PAGE_ENTRY, address, None
    return decode


def _arm_short_decode(entry, level, last):
    """ARMv7 short descriptors: a first-level section (1 MiB; 16 MiB supersection) or a
    second-level table of 256 entries; second level: large (64 KiB) and small pages."""
    kind = entry & 3
    if level == 0:
        if kind == 1:
            return TABLE, entry & 0xFFFFFC00, None
        if kind == 2:
            return (PAGE_ENTRY, entry & 0xFF000000, 24) if entry & 1 << 18 else \
                (PAGE_ENTRY, entry & 0xFFF00000, 20)
        return None
    if kind == 1:
        return PAGE_ENTRY, entry & 0xFFFF0000, 16
    return (PAGE_ENTRY, entry & 0xFFFFF000, 12) if kind else None


def _riscv_decode(entry, level, last):
    """RISC-V Sv39/Sv48/Sv57 PTEs (the privileged spec's "Virtual-Memory System"; Linux's
    arch/riscv/include/asm/pgtable-bits.h): bit 0 valid; R, W and X (bits 1-3) all clear a
    pointer to the next table, else a leaf, at an upper level a megapage (2 MiB, 1 GiB, ...);
    the PPN in bits 10-53 (above: Svpbmt's memory types, Svnapot's N) is the address >> 12.
    A leaf with N set is a 64 KiB NAPOT page (Svnapot: the PPN's low 4 bits 1000, the VA's
    own in the address)."""
    if not entry & 1:
        return None
    address = (entry >> 10 & (1 << 44) - 1) << 12
    if entry & 0xE:
        return PAGE_ENTRY, address, 16 if last and entry >> 63 else None
    return None if last else (TABLE, address, None)


def _s390_decode(tables):
    """z/Architecture DAT entries (Principles of Operation, "Dynamic Address Translation";
    Linux's arch/s390/include/asm/pgtable.h), under an ASCE that designates the first of
    `tables` (5: a region-first table, 4 region-second, 3 region-third, 2 segment): at each
    level the table type its entries must say (bits 60-61: 3 region-first to 0 segment; an
    entry of another type is a translation-specification exception), bit 58 invalid; a
    region entry's next table from bit 0 to 51 with its offset (bits 56-57) and length
    (62-63) in 512-entry units, the entries it has; a segment entry's page table of 256
    entries, 2 KiB aligned; format control (bit 53) in a segment entry a 1 MiB frame
    (EDAT-1), in a region-third entry a 2 GiB one (EDAT-2).  A page entry: bit 53 invalid,
    bit 52 a specification exception."""
    def decode(entry, level, last):
        if last:
            return None if entry & 0xC00 else (PAGE_ENTRY, entry & ~0xFFF, None)
        kind = tables - 2 - level
        if entry & 0x20 or entry >> 2 & 3 != kind:
            return None
        if entry & 0x400 and kind <= 1:     # the frame: the bits above the level's size
            return PAGE_ENTRY, entry, None
        if kind == 0:
            return TABLE, entry & ~0x7FF, None
        return TABLE, entry & ~0xFFF, ((entry >> 6 & 3) << 9, ((entry & 3) + 1) << 9)
    return decode


def _segment(scheme, address):
    """The (low, high, direct) of a scheme's segments holding `address`, or None."""
    return next((s for s in scheme.segments if s[0] <= address < s[1]), None)


def _unmapped(segments, address):
    """The physical address of a virtual one in a direct segment (MIPS's KSEG0, XKPHYS),
    else None."""
    segment = next((s for s in segments if s[0] <= address < s[1] and s[2]), None)
    return None if segment is None else address - segment[0]


def _mips_decode(segments, pfn_shift, huge, page_shift=12):
    """Linux's MIPS page tables (arch/mips/include/asm/pgtable-64.h, pgtable-32.h; walked by
    the TLB refill handler mm/tlbex.c builds): a pgd, pud or pmd entry is the kernel virtual
    address of the next table (in KSEG0 or XKPHYS: the kernel's own .bss, or a page of RAM),
    an empty one that of invalid_pmd_table or invalid_pte_table (tables too, of nothing); a
    PTE is software bits under the hardware's EntryLo bits (asm/pgtable-bits.h):
    _PAGE_PRESENT bit 0, the PFN from _PFN_SHIFT (PAGE_SHIFT - 12 + the cache bits' end:
    with 4 KiB pages, on 64-bit 14 with an R2 core and huge pages, 13 with R1's; without
    them 12 for R2, 11 for R1, as on 32-bit: `pfn_shift`); with huge pages an entry above
    the PTEs with _PAGE_HUGE (bit `huge`) maps the pmd's span itself (a table's address, a
    page's, has that bit clear)."""
    shift = pfn_shift + page_shift - 12

    def decode(entry, level, last):
        if last or huge and entry & 1 << huge:
            return (PAGE_ENTRY, entry >> shift << page_shift, None) if entry & 1 else None
        address = _unmapped(segments, entry)
        return None if address is None else (TABLE, address, None)
    return decode


def _s390_asce(asce):
    """The top table of an ASCE (control registers 1, 7, 13): its origin (bits 0-51) and the
    entries its length (bits 62-63, 512-entry units) gives it."""
    return asce & ~0xFFF & (1 << 64) - 1, (0, ((asce & 3) + 1) << 9)


def _s390_scheme(tables):
    """The DAT of an ASCE designating a region-first (5 tables), region-second (4),
    region-third (3) or segment table (2): 2048 entries a table, 256 in a page table."""
    levels = ((53, 11), (42, 11), (31, 11), (20, 11), (12, 8))[5 - tables:]
    return _Scheme("s390x DAT %s table" % ("region-first", "region-second", "region-third",
                                           "segment")[5 - tables],
                   8, levels, _s390_decode(tables), 64 - 11 * (5 - tables), big_endian=True,
                   designation=_s390_asce)


def _book3s_decode(entry, level, last):
    """Book3S-64's Linux page tables, radix's and the hash MMU's alike (arch/powerpc/include/
    asm/book3s/64/pgtable.h, radix.h, hash.h; 6.1): bit 63 _PAGE_PRESENT; bit 62 _PAGE_PTE a
    leaf (above the last level a huge page: radix maps the linear map in 2 MiB and 1 GiB
    ones), its address in bits 12-52 (PTE_RPN_MASK, _PAGE_PA_MAX 53: the hash MMU's slot
    bits above), else the next table, its address with the top two bits and the low byte
    cleared (PMD_MASKED_BITS: a radix entry's low bits say the next level's size, NLS)."""
    if not entry >> 63:
        return None
    if entry >> 62 & 1:
        return PAGE_ENTRY, entry & 0x001FFFFFFFFFF000, None
    return None if last else (TABLE, entry & 0x3FFFFFFFFFFFFF00, None)


def _book3s_scheme(what, levels, va_bits, kern_virt_start=0xC008000000000000):
    """Book3S-64's tables of `levels` over `va_bits` of the kernel's quadrant, big-endian,
    the linear map below KERN_VIRT_START read without them."""
    return _Scheme("Book3S-64 " + what, 8, levels, _book3s_decode, va_bits, "quadrant", True,
                   linear=(PPC64_PAGE_OFFSET, kern_virt_start))


def _arm64_scheme(granule, va_bits, big_endian=False):
    """The translation scheme of an arm64 kernel: granule 12 (4 KiB), 14 or 16 bits, VA_BITS
    39 to 52 (an Android kernel often 39): as many levels as the VA bits need; a big-endian
    kernel (SCTLR_EL1.EE) walks big-endian tables."""
    levels, shift = [], granule
    while shift < va_bits:
        levels.insert(0, (shift, min(granule - 3, va_bits - shift)))
        shift += granule - 3
    return _Scheme("arm64 %d KiB pages, %d-bit VA" % (1 << granule - 10, va_bits), 8,
                   tuple(levels), _arm64_decode(granule, ((1 << 48) - 1) & ~((1 << granule) - 1)),
                   va_bits, "upper", big_endian)


# 64-bit MIPS's tables by (PAGE_SHIFT, CONFIG_MIPS_VA_BITS_48): (shift, index bits) of each
# level from the top (asm/pgtable-64.h: a table a page of 8-byte entries, but the pgd of two
# pages with 4 KiB pages and 40 bits, or 16 KiB pages and 48; 64 KiB pages without
# VA_BITS_48 two levels)
MIPS64_LEVELS = {(12, False): ((30, 10), (21, 9), (12, 9)),
                 (12, True): ((39, 9), (30, 9), (21, 9), (12, 9)),
                 (14, False): ((36, 11), (25, 11), (14, 11)),
                 (14, True): ((36, 12), (25, 11), (14, 11)),
                 (16, False): ((29, 13), (16, 13)),
                 (16, True): ((42, 13), (29, 13), (16, 13))}


def _mips_scheme(bits, pfn_shift, huge=0, big_endian=False, page_shift=12, va_48=False):
    """The page tables of a MIPS kernel: 64-bit, MIPS64_LEVELS' (XKSEG's vmalloc as far as
    they reach, 48 bits at most, less 4 GiB), 32-bit with 4 KiB pages, two levels of 1024
    entries; `pfn_shift`, `huge`, `page_shift`: _mips_decode()'s."""
    if bits == 64:
        levels = MIPS64_LEVELS[page_shift, va_48]
        va_bits = sum(levels[0])
        segments = MIPS64_SEGMENTS + (
            (MIPS_XKSEG, MIPS_XKSEG + (1 << min(va_bits, 48)) - (1 << 32), False),)
        return _Scheme("MIPS64 %d KiB pages%s, _PFN_SHIFT %d" % (
            1 << page_shift - 10, ", 48-bit VA" if va_48 else "", pfn_shift + page_shift - 12),
            8, levels, _mips_decode(segments, pfn_shift, huge, page_shift), va_bits, "",
            big_endian, segments=segments)
    return _Scheme("MIPS32 4 KiB pages, _PFN_SHIFT %d" % pfn_shift, 4, ((22, 10), (12, 10)),
                   _mips_decode(MIPS32_SEGMENTS, pfn_shift, 0), 32, "", big_endian,
                   segments=MIPS32_SEGMENTS)


def _loongarch_decode(entry, level, last):
    """Linux's LoongArch page tables (asm/pgtable.h, asm/pgtable-bits.h; walked by the TLB
    refill handler, arch/loongarch/mm/tlbex.S), derived from MIPS's: a pgd, pud or pmd
    entry is the kernel virtual address (in a DMW) of the next table, an empty one that of
    invalid_pmd_table or invalid_pte_table (tables of nothing); a pmd entry with _PAGE_HUGE
    (bit 6) maps the pmd's span itself; a PTE: _PAGE_PRESENT bit 7, the page's address in
    bits PAGE_SHIFT-47 (_PFN_MASK; below it, in a huge pmd, _PAGE_HGLOBAL at 12)."""
    if last or level and entry & 0x40:
        return (PAGE_ENTRY, entry & 0xFFFFFFFFF000, None) if entry & 0x80 else None
    address = _unmapped(LOONGARCH_SEGMENTS, entry)
    return None if address is None else (TABLE, address, None)


def _loongarch_scheme(page_shift, levels):
    """The page tables of a LoongArch kernel: pages of 2^page_shift bytes, `levels` tables
    (CONFIG_PGTABLE_LEVELS) of a page of 8-byte entries each, indexing VA bits from
    page_shift up to VA_BITS (asm/pgtable.h: PGDIR_SHIFT + PAGE_SHIFT - 3)."""
    bits = page_shift - 3
    va_bits = page_shift + levels * bits
    mapped = ((LOONGARCH_KVRANGE, LOONGARCH_KVRANGE + (1 << min(va_bits, 47)), False),)
    return _Scheme("LoongArch %d KiB pages, %d levels" % (1 << page_shift - 10, levels), 8,
                   tuple((page_shift + k * bits, bits) for k in range(levels - 1, -1, -1)),
                   _loongarch_decode, va_bits, segments=LOONGARCH_SEGMENTS + mapped)


X86_MASK = 0x000FFFFFFFFFF000
SCHEMES = {
    "x86-64": _Scheme("x86-64 4-level", 8, ((39, 9), (30, 9), (21, 9), (12, 9)),
                      _x86_decode(X86_MASK, (1, 2)), 48, "sign"),
    "x86-64 la57": _Scheme("x86-64 5-level", 8, ((48, 9), (39, 9), (30, 9), (21, 9), (12, 9)),
                           _x86_decode(X86_MASK, (2, 3)), 57, "sign"),
    "i386 pae": _Scheme("i386 PAE", 8, ((30, 2), (21, 9), (12, 9)),
                        _x86_decode(X86_MASK, (1,)), 32),
    "i386": _Scheme("i386 2-level", 4, ((22, 10), (12, 10)), _x86_decode(0xFFFFF000, (0,)), 32),
    "arm": _Scheme("ARMv7 short descriptors", 4, ((20, 12), (12, 8)), _arm_short_decode, 32),
    "arm lpae": _Scheme("ARMv7 LPAE", 8, ((30, 2), (21, 9), (12, 9)),
                        _arm64_decode(12, 0xFFFFFFF000), 32),
    # satp's modes 8, 9 and 10: 3, 4 and 5 levels of 512 entries over 4 KiB pages, the VA
    # sign-extended from bit 38, 47 or 56 (Linux picks the largest the hart has, or the one
    # no4lvl/no5lvl leaves: VMCOREINFO's VA_BITS, arch/riscv/include/asm/pgtable.h)
    "riscv sv39": _Scheme("RISC-V Sv39", 8, ((30, 9), (21, 9), (12, 9)), _riscv_decode, 39,
                          "sign"),
    "riscv sv48": _Scheme("RISC-V Sv48", 8, ((39, 9), (30, 9), (21, 9), (12, 9)), _riscv_decode,
                          48, "sign"),
    "riscv sv57": _Scheme("RISC-V Sv57", 8, ((48, 9), (39, 9), (30, 9), (21, 9), (12, 9)),
                          _riscv_decode, 57, "sign"),
    # Book3S-64 (POWER): the kernel's Linux page tables, entries __be64 whatever the kernel's
    # byte order, indexed by the address without its top two bits (the quadrant: 0xc... the
    # kernel's), the linear map PAGE_OFFSET + physical below KERN_VIRT_START not looked up
    # (the hash MMU's is in no table: bolted in the hashed page table).  Index bits from the
    # top, per page size: radix-64k.h 13/9/9/5, radix-4k.h 13/9/9/9 (52-bit), hash-64k.h
    # 8/10/10/8 (52-bit), hash-4k.h 9/9/7/9 (46-bit); KERN_VIRT_START 0xc008000000000000
    # (hash with 4 KiB pages: 0xc0003d0000000000, 61 TiB of linear map, from 5.8's commit
    # 7746406baa3b; measured on Debian's 7.2 with disable_radix)
    "book3s radix 64k": _book3s_scheme("radix, 64 KiB pages",
                                       ((39, 13), (30, 9), (21, 9), (16, 5)), 52),
    "book3s hash 64k": _book3s_scheme("hash MMU's Linux tables, 64 KiB pages",
                                      ((44, 8), (34, 10), (24, 10), (16, 8)), 52),
    "book3s radix 4k": _book3s_scheme("radix, 4 KiB pages",
                                      ((39, 13), (30, 9), (21, 9), (12, 9)), 52),
    "book3s hash 4k": _book3s_scheme("hash MMU's Linux tables, 4 KiB pages",
                                     ((37, 9), (28, 9), (21, 7), (12, 9)), 46,
                                     0xC0003D0000000000),
}
# each page size's schemes, radix first (POWER9 boots radix unless disable_radix): a
# VMCOREINFO of 6.1 does not say which MMU the kernel chose; the module list does.  With
# each, the low byte of its first-level entries: radix's NLS, the next level's 9 index bits
# (RADIX_PGD_VAL_BITS), the hash MMU's none (HASH_PGD_VAL_BITS)
BOOK3S_SCHEMES = {65536: [(SCHEMES["book3s radix 64k"], 9), (SCHEMES["book3s hash 64k"], 0)],
                  4096: [(SCHEMES["book3s radix 4k"], 9), (SCHEMES["book3s hash 4k"], 0)]}
BOOK3S_PGD_ALIGN = 0x10000  # swapper_pg_dir: __aligned(SZ_64K), radix's root table's size
BOOK3S_PTE = struct.Struct(">Q")
RISCV_SCHEMES = {39: SCHEMES["riscv sv39"], 48: SCHEMES["riscv sv48"], 57: SCHEMES["riscv sv57"]}
# s390x: the ASCE's designation type (bits 60-61) -> the scheme of its tables
S390_SCHEMES = {kind: _s390_scheme(kind + 2) for kind in range(4)}
S390_REAL_SPACE = 0x20      # an ASCE's R bit (58): no translation, not the kernel's
# MIPS PTE layouts (asm/pgtable-bits.h), by pointer size: (_PFN_SHIFT with 4 KiB pages,
# _PAGE_HUGE's bit or 0), tried in turn, with each of MIPS64_LEVELS of VMCOREINFO's PAGESIZE
# (no note says the core's release, CONFIG_MIPS_HUGE_TLB_SUPPORT or VA_BITS_48; the module
# list found through them is the proof): 64-bit R2 with huge pages (Debian's 5kc-malta 6.1:
# CONFIG_CPU_MIPS64_R2, CONFIG_HUGETLB_PAGE), R2 without, R1 with and without; 32-bit R2, R1
MIPS_PTES = {8: ((14, 4), (12, 0), (13, 5), (11, 0)), 4: ((12, 0), (11, 0))}
# LoongArch's page size (VMCOREINFO's PAGESIZE) -> its tables' CONFIG_PGTABLE_LEVELS, tried in
# turn (VMCOREINFO does not say them; the module list found through them is the proof):
# Kconfig's defaults first (16 KiB pages, 3 levels: Debian's loong64), then VA_BITS_48's
LOONGARCH_LEVELS = {16384: (3, 4), 4096: (3, 4), 65536: (2, 3)}
RISCV_PTE = struct.Struct("<Q")
SATP_MODES = {8: 39, 9: 48, 10: 57}     # RV64 satp: MODE in bits 63:60 (VA bits), PPN 43:0


class _PageTables:
    """Virtual addresses translated by walking a scheme's tables from a root, in a dump's
    physical memory."""

    def __init__(self, memory, scheme, root, how):
        self.memory, self.scheme, self.root, self.how = memory, scheme, root, how
        self.top = scheme.designation(root) if scheme.designation else (root, None)
        self.format = (">" if scheme.big_endian else "<") + ("Q" if scheme.entry == 8 else "I")
        self._cache = {}

    def _entries(self, at, count):
        """The `count` entries from physical address `at`, or None where they are not in
        the dump."""
        raw = self.memory.read(at, count * self.scheme.entry, "physical")
        return None if raw is None else struct.unpack(self.format[0] + "%d" % count
                                                      + self.format[1], raw)

    def translate(self, address):
        """The physical address of a virtual one, or None where nothing maps it."""
        scheme = self.scheme
        if scheme.linear and scheme.linear[0] <= address < scheme.linear[1]:
            return address - scheme.linear[0]
        if scheme.extend == "quadrant" and (address ^ PPC64_PAGE_OFFSET) >> scheme.va_bits:
            return None         # another quadrant (another table), or past the tables' reach
        page = address & ~0xFFF
        if page not in self._cache:
            if len(self._cache) > 1 << 16:
                self._cache.clear()
            self._cache[page] = self._walk(page)
        found = self._cache[page]
        return None if found is None else found + (address & 0xFFF)

    def _walk(self, address):
        (table, span), last = self.top, len(self.scheme.levels) - 1
        if self.scheme.segments:
            segment = _segment(self.scheme, address)
            if segment is None:
                return None
            if segment[2]:          # KSEG0, XKPHYS: no tables
                return address - segment[0]
        elif not self.scheme.extend and address >> self.scheme.va_bits:
            return None
        for level, (shift, bits) in enumerate(self.scheme.levels):
            index = address >> shift & (1 << bits) - 1
            if span and not span[0] <= index < span[1]:
                return None
            entry = self._entries(table + index * self.scheme.entry, 1)
            if entry is None:
                return None
            found = self.scheme.decode(entry[0], level, level == last)
            if found is None:
                return None
            if found[0] == PAGE_ENTRY:
                size = found[2] or shift
                return (found[1] & ~((1 << size) - 1)) | (address & (1 << size) - 1)
            table, span = found[1:]
        return None

    def small_pages(self, low, high):
        """(virtual, physical) of every page the last level maps in [low, high), in order:
        what vmalloc (module memory among it) maps, where the direct map has large ones.
        Each table is walked once: tables whose entries lead to one table again (a corrupt
        dump's) would make a walk of every address."""
        scheme, last = self.scheme, len(self.scheme.levels) - 1
        above = ((1 << 64) - 1) & ~((1 << scheme.va_bits) - 1)
        walked = set()

        def canonical(va):
            if scheme.extend == "upper" or scheme.extend == "sign" and va >> scheme.va_bits - 1:
                return va | above
            if scheme.extend == "quadrant":
                return va | PPC64_PAGE_OFFSET
            for low, high, direct in scheme.segments:   # the mapped segment its index is in
                if not direct and low & ~above <= va <= (high - 1) & ~above:
                    return low & above | va
            return va

        def walk(table, held, level, prefix):
            if table in walked:
                return
            walked.add(table)
            shift, bits = scheme.levels[level]
            first, end = held or (0, 1 << bits)     # the entries the table has
            entries = self._entries(table + first * scheme.entry, end - first)
            if entries is None:
                return
            for index, entry in enumerate(entries, first):
                va = canonical(prefix | index << shift)
                span = 1 << shift
                if va + span <= low or va >= high or not entry:
                    continue
                found = scheme.decode(entry, level, level == last)
                if found is None:
                    continue
                if found[0] == TABLE:
                    yield from walk(found[1], found[2], level + 1, prefix | index << shift)
                elif level == last:
                    yield va, found[1]

        yield from walk(*self.top, 0, 0)


# --- Containers and unpack -----------------------------------------------------------------
# A container is read by its header and what it holds is unpacked in turn; a file without
# one is searched for compressed payloads (a vmlinuz, a flash dump).

# u-boot's include/image.h: a legacy image header, big-endian
UBOOT_MAGIC = b"\x27\x05\x19\x56"
UBOOT_HEADER = _Record("UbootHeader", "magic hcrc time size load ep dcrc os arch type comp name",
                      ">4sIIIIIIBBBB32s")
UBOOT_COMPRESSION = {0: "none", 1: "gzip", 2: "bzip2", 3: "lzma", 4: "lzo", 5: "lz4", 6: "zstd"}
UBOOT_KERNEL_TYPES = (2, 14)       # kernel, kernel_noload
UBOOT_MULTI = 4
UBOOT_ARCH = ("invalid", "alpha", "arm", "i386", "ia64", "mips", "mips64", "ppc", "s390", "sh",
              "sparc", "sparc64", "m68k", "nios", "microblaze", "nios2", "blackfin", "avr32",
              "st200", "sandbox", "nds32", "openrisc", "arm64", "arc", "x86_64", "xtensa", "riscv")


class Payload(NamedTuple):
    kind: str               # "none", or the _Codec kind it was compressed with
    offset: Optional[int]   # where the compressed stream starts in the file (None: none)
    load: Optional[int] = None  # where a loader header says the image goes: a -B to try


def _uboot(data, max_size):
    """(image, Payload) of a u-boot legacy image, decompressed by its compression byte; a
    multi-file image's uncompressed kernel (a zImage...) is unpacked in turn; None for an
    uncompressed one, whose whole file (header included) is the image."""
    if len(data) < UBOOT_HEADER.size:
        raise SymversError("u-boot header is truncated", EXIT_FORMAT)
    h = UBOOT_HEADER.read(data)
    _log.info("u-boot image: compression %d (%s) arch %d (%s) type %d load_address %#x "
              "entry_point %#x name %r", h.comp, UBOOT_COMPRESSION.get(h.comp, "unknown"),
              h.arch, UBOOT_ARCH[h.arch] if h.arch < len(UBOOT_ARCH) else "unknown", h.type,
              h.load, h.ep, h.name.split(b"\0")[0].decode("latin-1"))
    if h.type not in UBOOT_KERNEL_TYPES + (UBOOT_MULTI,):
        raise SymversError("u-boot image type %d is not a kernel" % h.type, EXIT_FORMAT)
    payload = memoryview(data)[UBOOT_HEADER.size:UBOOT_HEADER.size + h.size]
    if len(payload) < h.size:
        raise SymversError("u-boot payload is truncated: %d of %d bytes"
                           % (len(payload), h.size), EXIT_FORMAT)
    if h.type == UBOOT_MULTI:   # -T multi: sizes up to a 0, then the images, the kernel first
        sizes = []
        while 4 * len(sizes) + 4 <= len(payload):
            length, = struct.unpack_from(">I", payload, 4 * len(sizes))
            if not length:
                break
            sizes.append(length)
        if not sizes:
            raise SymversError("u-boot multi-file image without images", EXIT_FORMAT)
        start = 4 * len(sizes) + 4
        _log.info("u-boot multi-file image: %d images, the kernel first (%d bytes)",
                  len(sizes), sizes[0])
        payload = payload[start:start + sizes[0]]
        if h.comp == 0:
            return unpack(bytes(payload), max_size)
    if h.comp == 0:
        return None
    kind = UBOOT_COMPRESSION.get(h.comp, "unknown (%d)" % h.comp)
    image = decompress_payload(kind, payload, max_size)
    _log.info("u-boot payload: %s, %d bytes decompressed", kind, len(image))
    return image, Payload(kind, UBOOT_HEADER.size)


# AOSP's bootimg.h: boot.img v0-v2 (page_size in the header), v3/v4 (4096-byte pages, the
# ramdisk size moved up); vendor_boot.img v3/v4 (v4: a table of vendor ramdisk fragments)
ANDROID_BOOT = b"ANDROID!"
VENDOR_BOOT = b"VNDRBOOT"
ANDROID_PAGES = (2048, 4096, 8192, 16384)
BOOT_IMG_V0 = _Record("BootImage", "magic kernel_size kernel_addr ramdisk_size ramdisk_addr "
                     "second_size second_addr tags_addr page_size header_version", "<8s9I")
BOOT_IMG_V3 = _Record("BootImageV3", "magic kernel_size ramdisk_size os_version header_size "
                     "header_version", "<8sIIII16xI")
VENDOR_BOOT_V3 = _Record("VendorBoot", "magic header_version page_size kernel_addr "
                        "ramdisk_addr vendor_ramdisk_size cmdline tags_addr name header_size "
                        "dtb_size dtb_addr", "<8sIIIII2048sI16sIIQ")
VENDOR_BOOT_V4 = _Record("VendorBootV4", "table_size table_entries table_entry_size "
                        "bootconfig_size", "<IIII")                 # after the v3 fields
VENDOR_RAMDISK = _Record("VendorRamdisk", "size offset type name", "<III32s")


def _pages(size, page):
    if page not in ANDROID_PAGES:
        raise SymversError("Android boot image with a page size of %d" % page, EXIT_FORMAT)
    return _round_up(size, page)


def _boot_img(data):
    """(header version, page size, kernel size, ramdisk size) of an Android boot.img."""
    version = BOOT_IMG_V0.read(data).header_version
    if version >= 3:
        h = BOOT_IMG_V3.read(data)
        return version, 4096, h.kernel_size, h.ramdisk_size
    h = BOOT_IMG_V0.read(data)
    return version, h.page_size, h.kernel_size, h.ramdisk_size


BOOT_IMG_CMDLINES = ((64, 512), (608, 1024))      # v0-v2: cmdline, then extra_cmdline
BOOT_IMG_V3_CMDLINE = (44, 1536)
VENDOR_BOOT_V3_CMDLINE = (28, 2048)


def boot_image_cmdline(data):
    """The kernel command line the header of an Android boot.img or vendor_boot.img gives
    (the bootloader joins the two, and may add to them), or None for another file."""
    if data[:8] == VENDOR_BOOT and len(data) >= VENDOR_BOOT_V3.size:
        fields = (VENDOR_BOOT_V3_CMDLINE,)
    elif data[:8] == ANDROID_BOOT and len(data) >= 1632:
        fields = BOOT_IMG_CMDLINES if _boot_img(data)[0] < 3 else (BOOT_IMG_V3_CMDLINE,)
    else:
        return None
    return "".join(bytes(data[at:at + size]).split(b"\0", 1)[0].decode("latin-1")
                   for at, size in fields)


def _android_kernel(data, max_size):
    """The kernel of an Android boot.img, after the header page, unpacked in turn."""
    version, page, size, _ = _boot_img(data)
    start = _pages(page, page)
    kernel = data[start:start + size]
    if len(kernel) < size or not size:
        raise SymversError("Android boot image v%d: kernel of %d bytes at %#x is truncated or "
                           "empty" % (version, size, start), EXIT_FORMAT)
    codec = _compression_of(kernel)
    _log.info("Android boot image v%d, page %d: kernel at %#x, %.1f MB, %s", version, page,
              start, size / 1e6, codec.kind if codec else "not compressed")
    return unpack(kernel, max_size)


def _android_ramdisks(data):
    """The ramdisks of an Android boot.img (after the header page and the kernel) or
    vendor_boot.img (v3; v4 with its vendor ramdisk table of fragments)."""
    if data[:8] == ANDROID_BOOT:
        _, page, kernel, size = _boot_img(data)
        return [data[_pages(page, page) + _pages(kernel, page):][:size]]
    h = VENDOR_BOOT_V3.read(data)
    start = _pages(h.header_size, h.page_size)
    v4 = VENDOR_BOOT_V4.read(data, VENDOR_BOOT_V3.size) if h.header_version >= 4 else None
    if not v4 or not v4.table_entries:  # v3, or a v4 header without a table (mkbootimg 29)
        return [data[start:start + h.vendor_ramdisk_size]]
    table = start + _pages(h.vendor_ramdisk_size, h.page_size) + _pages(h.dtb_size, h.page_size)
    fragments = []
    for i in range(v4.table_entries):
        entry = VENDOR_RAMDISK.read(data, table + i * v4.table_entry_size)
        fragments.append(data[start + entry.offset:start + entry.offset + entry.size])
    return fragments


def _vendor_boot(data, max_size):
    raise SymversError("a vendor_boot image holds no kernel (the kernel is in boot.img); its "
                       "vendor ramdisk holds modules: give it to --modules", EXIT_FORMAT)


# The devicetree specification's flattened tree: a header, then tokens
FDT_MAGIC = b"\xd0\x0d\xfe\xed"
FDT_HEADER = _Record("FdtHeader", "magic totalsize off_dt_struct off_dt_strings off_mem_rsvmap "
                    "version last_comp_version boot_cpuid_phys size_dt_strings "
                    "size_dt_struct", ">4s9I")
FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END = 1, 2, 3, 4, 9


def _fdt_nodes(data):
    """{path: {property: bytes}} of a flattened device tree (a FIT image)."""
    header = FDT_HEADER.read(data)
    at, path, nodes = header.off_dt_struct, [], {}
    strings = header.off_dt_strings
    while at + 4 <= len(data):
        token, = struct.unpack_from(">I", data, at)
        at += 4
        if token == FDT_BEGIN_NODE:             # name, 4-aligned
            end = data.index(b"\0", at)
            path.append(data[at:end].decode("latin-1"))
            nodes["/".join(path)] = {}
            at = _round_up(end + 1, 4)
        elif token == FDT_END_NODE:
            path.pop()
        elif token == FDT_PROP:                 # len, name offset, value
            length, name = struct.unpack_from(">II", data, at)
            key = data[strings + name:data.index(b"\0", strings + name)].decode("latin-1")
            nodes["/".join(path)][key] = data[at + 8:at + 8 + length]
            at = _round_up(at + 8 + length, 4)
        elif token == FDT_END:
            break
        elif token != FDT_NOP:
            raise SymversError("corrupt device tree token %#x" % token, EXIT_FORMAT)
    return nodes


def _fit_kernel(data, max_size):
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
        offset, = struct.unpack(">I", props["data-offset"])
        size, = struct.unpack(">I", props["data-size"])
        payload = data[_round_up(FDT_HEADER.read(data).totalsize, 4) + offset:][:size]
    else:
        raise SymversError("FIT image: kernel node %s has no data" % path, EXIT_FORMAT)
    kind = props.get("compression", b"none").rstrip(b"\0").decode("latin-1")
    _log.info("FIT image: kernel in %s, %d bytes, compression %s", path, len(payload), kind)
    if kind != "none":
        payload = bytes(decompress_payload(kind, memoryview(payload), max_size))
    return unpack(payload, max_size)


# AOSP's sparse_format.h: a header, then chunks (raw, fill, don't care, crc32)
SPARSE_MAGIC = b"\x3a\xff\x26\xed"
SPARSE_HEADER = _Record("SparseHeader", "magic major_version minor_version file_hdr_sz "
                       "chunk_hdr_sz blk_sz total_blks total_chunks image_checksum",
                       "<4sHHHHIIII")
SPARSE_CHUNK = _Record("SparseChunk", "chunk_type reserved chunk_sz total_sz", "<HHII")
SPARSE_RAW, SPARSE_FILL, SPARSE_DONT_CARE, SPARSE_CRC = 0xCAC1, 0xCAC2, 0xCAC3, 0xCAC4


def _unsparse(data, max_size):
    """The raw image an Android sparse image stands for, unpacked in turn."""
    h = SPARSE_HEADER.read(data)
    if h.total_blks * h.blk_sz > max_size:
        raise SymversError("Android sparse image expands to %d MiB (see --max-size)"
                           % (h.total_blks * h.blk_sz >> 20), EXIT_FORMAT)
    out, at = bytearray(), h.file_hdr_sz
    for _ in range(h.total_chunks):
        chunk = SPARSE_CHUNK.read(data, at)
        body = data[at + h.chunk_hdr_sz:at + chunk.total_sz]
        if chunk.chunk_type == SPARSE_RAW:
            out += body
        elif chunk.chunk_type == SPARSE_FILL:
            out += body[:4] * (chunk.chunk_sz * h.blk_sz // 4)
        elif chunk.chunk_type == SPARSE_DONT_CARE:
            out += bytes(chunk.chunk_sz * h.blk_sz)
        elif chunk.chunk_type != SPARSE_CRC:
            raise SymversError("Android sparse image: chunk type %#x" % chunk.chunk_type,
                               EXIT_FORMAT)
        at += chunk.total_sz
    _log.info("Android sparse image: %d blocks of %d bytes", h.total_blks, h.blk_sz)
    return unpack(bytes(out), max_size)


class _Container(NamedTuple):
    name: str
    magic: bytes            # at offset 0
    read: object            # (data, max_size) -> (image, Payload), or None: not one after all


CONTAINERS = (
    _Container("Android boot image", ANDROID_BOOT, _android_kernel),
    _Container("Android vendor_boot image", VENDOR_BOOT, _vendor_boot),
    _Container("Android sparse image", SPARSE_MAGIC, _unsparse),
    _Container("FIT image", FDT_MAGIC, _fit_kernel),
    _Container("u-boot image", UBOOT_MAGIC, _uboot),
)

# Filesystem images hold files, not a kernel: (offset, magic, what, how to get the files out)
FILESYSTEMS = (
    (1080, b"\x53\xef", "an ext2/3/4 filesystem image",
     "mount -o loop,ro IMAGE DIR, or debugfs -R 'rdump / DIR' IMAGE"),
    (1024, b"\xe2\xe1\xf5\xe0", "an EROFS image", "fsck.erofs --extract=DIR IMAGE"),
    (0, b"hsqs", "a squashfs image", "unsquashfs -d DIR IMAGE"),
    (0, b"sqsh", "a squashfs image", "unsquashfs -d DIR IMAGE"),
    (0, b"\x45\x3d\xcd\x28", "a cramfs image", "cramfsck -x DIR IMAGE"),
    (512, b"\x45\x3d\xcd\x28", "a cramfs image", "cramfsck -x DIR IMAGE"),
    (0, b"\x28\xcd\x3d\x45", "a cramfs image", "cramfsck -x DIR IMAGE"),
    (0, SPARSE_MAGIC, "an Android sparse image", "simg2img IMAGE RAW, then mount or extract RAW"))


def _filesystem(data):
    """(what, how to get the files out) of a filesystem image, or None."""
    return next(((what, how) for offset, magic, what, how in FILESYSTEMS
                 if data[offset:offset + len(magic)] == magic), None)


# Archives of files, a kernel's modules in them (the Module archives section reads those).
# cpio(5): magic -> (header size, alignment of name and data, base of the numbers, (offset,
# width) of c_mode, c_namesize, c_filesize): newc and its crc variant, then odc
CPIO_FORMATS = {b"070701": (110, 4, 16, ((14, 8), (94, 8), (54, 8))),
                b"070702": (110, 4, 16, ((14, 8), (94, 8), (54, 8))),
                b"070707": (76, 1, 8, ((18, 6), (59, 6), (65, 11)))}
USTAR, USTAR_AT = b"ustar", 257
AR_MAGIC, ZIP_MAGIC = b"!<arch>\n", b"PK\x03\x04"


class _Archive(NamedTuple):
    name: str
    offset: int             # of the magic
    magics: tuple
    what: str               # said of a KERNEL that is one


FILE_ARCHIVES = (
    _Archive("cpio", 0, tuple(CPIO_FORMATS), "a cpio archive (an initramfs?)"),
    _Archive("tar", USTAR_AT, (USTAR,), "a tar archive"),
    _Archive("Debian package", 0, (AR_MAGIC,), "a Debian package"),
    _Archive("zip", 0, (ZIP_MAGIC,), "a zip archive"),
    _Archive("Android boot image", 0, (ANDROID_BOOT, VENDOR_BOOT), "an Android boot image"),
)


def _archive(data):
    """The _Archive of files `data` is, or None."""
    return next((archive for archive in FILE_ARCHIVES
                 if any(data[archive.offset:archive.offset + len(magic)] == magic
                        for magic in archive.magics)), None)


def _not_a_kernel(data, compressed=None):
    """Raise the error saying what `data` (the input, or what it decompressed to,
    `compressed` by that) is, when it is a filesystem image or an archive of files."""
    how = ", %s-compressed" % compressed if compressed else ""
    filesystem = _filesystem(data)
    if filesystem:
        raise SymversError("this is %s%s, not a kernel: get the kernel and the modules out of "
                           "it (%s), then give the kernel, and the modules to --modules DIR"
                           % (filesystem[0], how, filesystem[1]), EXIT_FORMAT)
    archive = _archive(data)
    if archive:
        raise SymversError("this is %s%s, not a kernel: give it to --modules for the modules "
                           "it holds" % (archive.what, how), EXIT_FORMAT)


# arm64 (Documentation/arch/arm64/booting.rst) and riscv Image headers: the same fields up to
# image_size, a magic at 0x38 (riscv: magic2)
IMAGE_HEADER = _Record("ImageHeader", "code0 code1 text_offset image_size flags res2 res3 res4 "
                      "magic res5", "<IIQQQQQQ4sI")
ARM64_MAGIC, RISCV_MAGIC = b"ARM\x64", b"RSC\x05"
IMAGE_MAGICS = ((ARM64_MAGIC, "arm64 Image header"), (RISCV_MAGIC, "riscv Image header"))
IMAGE_MAGIC_AT = 0x38
MAX_IMAGE = 256 << 20


def _image_at(data, start):
    """(image_size, what) when an arm64/riscv Image header at `start` begins an image holding
    the kernel banner (a raw Image in a boot.img page, an uncompressed FIT node, a flash
    dump), else None."""
    if start < 0 or start % 8 or start + IMAGE_HEADER.size > len(data):
        return None
    h = IMAGE_HEADER.read(data, start)
    how = next((how for magic, how in IMAGE_MAGICS if h.magic == magic), None)
    if how and 0 < h.image_size <= MAX_IMAGE and _banner_at(data, start, start + h.image_size) >= 0:
        return h.image_size, how
    return None


class Header(NamedTuple):
    """What an image's own header says: pointer size, byte order, bases, PREL32 likelihood."""
    bits: Optional[int]
    big_endian: Optional[bool]
    bases: tuple            # candidate -B values, most likely first
    prel32: Optional[bool]  # the architecture selects HAVE_ARCH_PREL32_RELOCATIONS
    how: str
    unrelocated: bool = False   # arm64: absolute pointers are left to the boot code
    relocations: tuple = tuple(RELATIVE_TYPES)   # the relative types its image may carry
    machine: Optional[int] = None   # its ELF e_machine


def image_header(data):
    """The Header of an ELF vmlinux, an arm64 or riscv Image, or an empty one."""
    if _is_elf(data):
        elf = ElfObject(data, sections=False)
        # the first segment holds _text and, after it, .rodata with the export tables
        bases = tuple(dict.fromkeys(s.vaddr - s.offset for s in elf.segments()
                                    if s.type == PT_LOAD and s.filesz and s.vaddr >= s.offset))
        machine = elf.machine
        return Header(elf.bits, elf.e == ">", bases, machine in PREL32_MACHINES,
                      "ELF header (machine %d)" % machine, machine == EM_AARCH64,
                      tuple(t for t, (_, m) in RELATIVE_TYPES.items() if m == machine),
                      machine)
    if len(data) >= IMAGE_HEADER.size:
        h = IMAGE_HEADER.read(data)
        if h.magic == ARM64_MAGIC:                  # flags bit 0: big endian
            return Header(64, bool(h.flags & 1), (), True, "arm64 Image header", True,
                          (R_AARCH64_RELATIVE,), EM_AARCH64)
        if h.magic == RISCV_MAGIC:
            return Header(64, False, (), False, "riscv Image header", False,
                          (R_RISCV_RELATIVE,), EM_RISCV)
    return Header(None, None, (), None, "")


# The x86 boot protocol's setup header (Documentation/arch/x86/boot.rst), from 0x1F1
SETUP_HEADER_AT = 0x1F1
SETUP_HEADER = _Record("SetupHeader", "setup_sects root_flags syssize ram_size vid_mode root_dev "
                      "boot_flag jump header version realmode_swtch start_sys_seg "
                      "kernel_version type_of_loader loadflags setup_move_size code32_start "
                      "ramdisk_image ramdisk_size bootsect_kludge heap_end_ptr ext_loader_ver "
                      "ext_loader_type cmd_line_ptr initrd_addr_max kernel_alignment "
                      "relocatable_kernel min_alignment xloadflags cmdline_size "
                      "hardware_subarch hardware_subarch_data payload_offset payload_length",
                      "<BHIHHHHH4sHIHHBBHIIIIHBBIIIBBHIIQII")
ZIMAGE_MAGIC_AT, ZIMAGE_MAGICS = 0x24, (b"\x18\x28\x6f\x01", b"\x01\x6f\x28\x18")
CFE_HEADER = struct.Struct(">III")      # load address, entry point, length
CFE_LZMA = re.compile(b"(?s)[\x80-\x9f]...[\x80-\x9f].......(?=" + LZMA_HEADER + b")")


def _boot_header(data):
    """(payload offset, load address), as far as a boot header says them, said.
    x86 bzImage: the real-mode setup header (boot protocol 2.08+ has payload_offset/length);
    arm zImage: its magic; Broadcom CFE vmlinux.lz: load address, entry point (both MIPS
    kseg0) and length, then an .lzma."""
    if len(data) > SETUP_HEADER_AT + SETUP_HEADER.size and \
            SETUP_HEADER.read(data, SETUP_HEADER_AT).header == b"HdrS":
        h = SETUP_HEADER.read(data, SETUP_HEADER_AT)
        setup = ((h.setup_sects or 4) + 1) * 512
        at = 0x200 + h.kernel_version
        release = data[at:at + 120].split(b"\0")[0] if h.kernel_version else b""
        _log.info("x86 bzImage, boot protocol %d.%02d%s", h.version >> 8, h.version & 0xFF,
                  ": " + release.decode("latin-1") if release else "")
        if h.version >= 0x208 and setup + h.payload_offset + h.payload_length <= len(data):
            return setup + h.payload_offset, None
    elif data[ZIMAGE_MAGIC_AT:ZIMAGE_MAGIC_AT + 4] in ZIMAGE_MAGICS:
        _log.info("arm zImage")
    elif CFE_LZMA.match(data):
        load, entry, length = CFE_HEADER.unpack_from(data)
        if CFE_HEADER.size + length <= len(data):
            _log.info("Broadcom CFE header: load address %#x, entry point %#x, %d bytes of "
                      "lzma: trying -B %x first", load, entry, length, load)
            return CFE_HEADER.size, load
    return None, None


SEARCH_WINDOW = 4 << 20         # payload magics are searched for this much at a time


def _payload_candidates(data, payload):
    """(offset, kind) of the compressed streams to try: at `payload`, where a boot header
    says the payload is, then at every magic (a flash dump may hold the kernel anywhere)
    before the first plain kernel banner (a payload holding the kernel starts before its
    banner, which LZ4 and LZO may keep as literals; after it, the plain image is the
    kernel), in file order, a window at a time, so that the search goes no further than the
    kernel: first the magics with a literal prefix (and arm64/riscv Image headers, "image"),
    then LZMA-alone headers, whose pattern the regex engine searches for."""
    first = [(payload, codec.kind) for codec in CODECS
             if payload is not None and codec.magic.match(data, payload)]
    yield from first
    stop = len(data)
    for literal in (True, False):
        for start in range(0, stop, SEARCH_WINDOW):
            end = min(start + SEARCH_WINDOW, stop)
            if literal:     # the banner found in the first pass bounds both
                banner = _banner_at(data, start, min(end + 64, len(data)))
                if banner >= 0:
                    stop = end = banner
            found = []
            if literal:     # uncompressed arm64/riscv Images, by their header's magic
                for magic, _ in IMAGE_MAGICS:
                    at = data.find(magic, start, end)
                    while at >= 0:
                        found.append((at - IMAGE_MAGIC_AT, "image"))
                        at = data.find(magic, at + 1, end)
            for codec in CODECS:
                if (codec.prefix is None) == literal:
                    continue
                if codec.prefix is None:
                    found += [(m.start(), codec.kind)
                              for m in codec.magic.finditer(data, start, end + 64)
                              if m.start() < end]
                    continue
                at = data.find(codec.prefix, start, end)
                while at >= 0:
                    if codec.magic.match(data, at):
                        found.append((at, codec.kind))
                    at = data.find(codec.prefix, at + 1, end)
            yield from sorted(f for f in found if f not in first)


def _container(data, max_size):
    """What the container `data` is holds, unpacked: (image, Payload), or None."""
    for container in CONTAINERS:
        if data[:len(container.magic)] == container.magic:
            try:
                return container.read(data, max_size)
            except struct.error:
                raise SymversError("%s header is truncated" % container.name,
                                   EXIT_FORMAT) from None
    return None


def _search_payloads(data, max_size):
    """(found, fallback, errors): (image, Payload) of the first compressed payload (or Image
    header further in) that holds a kernel, or None; of the first that decompressed to
    something else, or None; the payloads that failed, as (error, whether it was a payload
    for sure: one whose first 64 KiB decoded, not a magic met by chance, whether a package
    is missing to read it)."""
    view = memoryview(data)
    fallback, errors = None, []
    payload, load = _boot_header(data)
    for at, kind in _payload_candidates(data, payload):
        if kind == "image":
            inside = _image_at(data, at)
            if inside:      # image_size counts the bss: the file part may be shorter
                size, how = inside
                _log.info("%s at offset %#x, not compressed", how, at)
                return (bytes(data[at:at + size]), Payload("none", at)), None, errors
            continue
        codec = _compression_of(data, at)
        error = _probe_error(codec, view[at:])
        if error:
            errors.append(("%s at %#x: %s" % (kind, at, error[0]), error[1], False))
            continue
        try:
            image = decompress_payload(kind, view[at:], max_size)
        except SymversError as e:
            errors.append(("%s at %#x: %s" % (kind, at, e), codec.probe is not None,
                           isinstance(e, _MissingPackage)))
            continue
        if _has_banner(image):
            _log.info("%s compressed at pos %d (%#x): %d bytes", kind, at, at, len(image))
            if kind == "lz4" and _lz4_blocks() is _lz4_block:
                _log.info("lz4 decoded in Python: pip install lz4 makes it faster")
            return (image, Payload(kind, at, load)), None, errors
        if fallback is None and (len(image) >= 1 << 16 or not at):    # or the whole file
            fallback = (image, Payload(kind, at))
    return None, fallback, errors


def _unread(errors):
    """Warn of the payloads a missing package leaves unread, as the file is read otherwise
    (a failure says them in its error)."""
    for error, _, missing in errors:
        if missing:
            _log.warning("%s", error)


def _whole(data):
    """The image in memory of its own: a mapped file (or a view of one) is copied out."""
    return data if isinstance(data, (bytes, bytearray)) else bytes(data)


def unpack(data, max_size=MAX_SIZE, raw=False):
    """(image, Payload): the decompressed kernel image in a file's bytes, and where it was.

    A container is read by its header (CONTAINERS), and an ELF vmlinux or an arm64/riscv
    Image holding the kernel banner is used as it is.  Otherwise the file is searched for
    compressed payloads (and Image headers further in) and the first that decompresses to a
    kernel is used; failing that, a file holding the banner is a plain image (checked only
    now: LZ4 and LZO keep literal runs, so a compressed payload may hold the banner too),
    else the first payload that decompressed at all.  With `raw` (the version is known, -k),
    a file holding none of these is the image as it is (a partial memory dump, a vendor
    image with its banner altered), as the original tool reads any file."""
    if not data:
        raise SymversError("input is empty", EXIT_INPUT)
    found = _container(data, max_size)
    if found is not None:
        return found
    header = image_header(data).how
    if header and _has_banner(data):
        _log.info("%s, not compressed (%d bytes)", header, len(data))
        return _whole(data), Payload("none", None)
    found, fallback, errors = _search_payloads(data, max_size)
    if found is not None:
        return found
    if _has_banner(data):    # searched for only now: the whole of a dump
        _unread(errors)
        _log.info("image is not compressed (%d bytes)", len(data))
        return _whole(data), Payload("none", None)
    if not header:
        _not_a_kernel(data)
    if fallback is not None:
        image, payload = fallback
        if not payload.offset:      # the whole file compressed
            _not_a_kernel(image, payload.kind)
        _unread(errors)
        _log.info("%s compressed at pos %d (%#x): %d bytes, no kernel banner in it",
                  payload.kind, payload.offset, payload.offset, len(image))
        return fallback
    said = "; ".join(error for error, _, _ in errors[:3])
    if raw and not any(payload for _, payload, _ in errors):
        _log.warning("no kernel banner, no compressed kernel%s: reading the file as a raw "
                     "image, as -k says", " (%s)" % said if said else "")
        return _whole(data), Payload("none", None)
    if errors:
        raise SymversError("no payload decompressed to a kernel (%s)" % said, EXIT_FORMAT)
    if not header:
        raise SymversError("not a kernel: found no kernel banner, no compressed kernel and no "
                           "kernel image header in %d bytes (give -k to read it as a raw image)"
                           % len(data), EXIT_FORMAT)
    _unread(errors)
    _log.info("no kernel banner: reading the %s as it is", header)
    return _whole(data), Payload("none", None)


# --- Detection: what the image says of itself ----------------------------------------------

IKCONFIG_MARK = b"IKCFG_ST"
IKCONFIG = re.compile(re.escape(IKCONFIG_MARK) + rb"(?=\x1f\x8b\x08)")


def embedded_config(data, max_size=MAX_SIZE):
    """The .config of a CONFIG_IKCONFIG kernel: kernel/configs.c's gzip stream between the
    IKCFG_ST and IKCFG_ED marks (what scripts/extract-ikconfig reads), or None."""
    m = IKCONFIG.search(data)
    if m is None:
        return None
    return bytes(decompress_payload("gzip", memoryview(data)[m.end():], max_size))


def kernel_version(data):
    """The (major, minor, patch) of the image's banner, said."""
    found = banner_version(data)
    if found is None:
        raise SymversError("no 'Linux version' banner in the image: give -k", EXIT_NOT_FOUND)
    version, text = found
    _log.info("detected kernel version %d.%d%s from the banner %r", version[0], version[1],
              "" if version[2] == LATEST_PATCH else ".%d" % version[2], text[:80])
    return version


# identifiers, and namespaces such as "module:cxl_core,cxl-pmem"
_IDENT = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.$:,-"
# byte -> 1 where a string block ends: anything but an identifier character or NUL
_BREAK = bytes(0 if c in _IDENT or c == 0 else 1 for c in range(256))
SAMPLE_STRIDE = 16
SAMPLE_RUN = bytes(32)      # 32 samples, >= 512 bytes of identifier characters and NULs


def _string_blocks(data):
    """(start, end) of the regions made only of NUL-terminated identifiers, largest first:
    __ksymtab_strings among them, where both the base vote and the direct search start.

    Every SAMPLE_STRIDE-th byte is classified at C speed (translate, then find; a regex over
    the samples is slower); runs of identifier/NUL samples that are not mostly NUL are then
    widened to the exact byte boundaries."""
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


def _attempts(data, blocks, options, bases_to_try=()):
    """Complete Options to try (every one set: the given ones as they are, the others from
    the image's header, else guessed), the likeliest first; options.version is known."""
    layout = layout_for(options.version)
    header = image_header(data)
    guess_big, guess_bits = None, None
    if (options.big_endian is None and header.big_endian is None) or \
            (options.bits is None and not header.bits):
        guess_big, guess_bits = _lanes(data, blocks)

    def order(given, from_header, guessed, values, what):
        if given is not None:
            return [given]
        if from_header is not None:
            _log.info("detected %s from the %s", what(from_header), header.how)
            return [from_header]
        first = guessed if guessed is not None else values[0]
        return [first] + [v for v in values if v != first]

    endians = order(options.big_endian, header.big_endian, guess_big, [False, True],
                    lambda v: "big endian" if v else "little endian")
    widths = order(options.bits, header.bits, guess_bits, [64, 32],
                   lambda v: "%d-bit pointers" % v)
    if options.prel32 is not None or not layout.prel32:
        prel32s = [bool(options.prel32) and layout.prel32]
    else:
        prel32s = [True, False] if header.prel32 is not False else [False, True]
    for big in endians:
        for bits in widths:
            for prel32 in prel32s:
                narrowed = options._replace(big_endian=big, bits=bits, prel32=prel32)
                for base in _bases(data, blocks, narrowed, header, bases_to_try):
                    yield narrowed._replace(base=base)


def _bases(data, blocks, options, header, bases_to_try):
    """Candidate -B values: the given one, the ELF segments', the ones to try first (a
    loader header's), else (absolute pointers only: PREL32 tables are found without one)
    the ones the name pointers vote for."""
    bits = options.bits
    if options.base is not None:
        if not options.base >> bits:
            yield options.base
        return
    for b, how in [(b, header.how) for b in header.bases] + [(b, "loader header")
                                                             for b in bases_to_try]:
        if not b >> bits:
            _log.debug("trying base %x from the %s", b, how)
            yield b
    if options.prel32:
        yield None
        return
    for b in _vote_bases(data, blocks, options):
        _log.debug("trying base %x from the name pointers", b)
        yield b


def _vote_bases(data, blocks, options):
    """Bases that absolute name pointers point into a string block from.

    For each identifier block [start, end), every name pointer p before it satisfies
    base + start <= p < base + end: cells of the block's length vote for the base, and the
    winning cell gives the pointers - those of them one kernel_symbol away from another,
    as in a table.  The lowest, the section's first string, is matched against the heads
    of the block (its detected start may be off by the table bytes before it); a base is
    kept when nearly all the other pointers then land on a string in the block too: just
    after a NUL, or on the NUL of "" (5.5+ namespaces)."""
    bits = options.bits
    size = bits // 8
    fields = layout_for(options.version).ksym_fields
    found = []
    # the words read before a block are in proportion to its strings: fewest first (the
    # .BTF strings may be larger than __ksymtab_strings)
    for strings, start, end in sorted((data.count(b"\0", start, end), start, end)
                                      for start, end in blocks[:4]):
        length = end - start
        lo = max(0, start - strings * (fields * size + 5) - 4096) // size * size
        words = array.array("I" if size == 4 else "Q", data[lo:start // size * size])
        if options.big_endian != (sys.byteorder == "big"):
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
                if _lands_on_strings(data, b, probes, (start, end), share) and \
                        _lands_on_strings(data, b, sample, (start, end), 0.9):
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


def _lands_on_strings(data, base, pointers, block, share):
    """Whether at least `share` of the pointers land on a string of the block (start, end)
    - just after a NUL, or on the NUL of "" (5.5+ namespaces) - and enough of them on a
    string's first byte: one byte off, names land on the NUL before them."""
    start, end = block
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


# --- Relocation: images whose absolute pointers the boot code fills in ---------------------

MIN_RELOCATIONS = 64
RELA_ENTRY = 24                 # Elf64_Rela: r_offset, r_info, r_addend


class _Relocations(NamedTuple):
    name: str           # the relocation type
    endian: str         # struct prefix
    records: list       # (r_offset, r_addend): link-time slot address and value


def _find_relocations(data, kinds=tuple(RELATIVE_TYPES), endians="<>"):
    """The runs of Elf64_Rela records {r_offset, r_info, r_addend} of one relative type in
    the image (an arm64 Image carries its .rela.dyn), or None.  A literal-prefixed regex
    finds runs of at least MIN_RELOCATIONS records, 24 bytes apart; each kind and byte order
    is a pass over the image, so only the architecture's are tried when it is known."""
    for kind in kinds:
        name = RELATIVE_TYPES[kind][0]
        for endian in endians:
            info = re.escape(struct.pack(endian + "Q", kind))
            run = re.compile(b"(?s)" + info + b"(?:.{%d}" % (RELA_ENTRY - 8) + info
                             + b"){%d,}" % (MIN_RELOCATIONS - 1))
            records = []
            for m in run.finditer(data):    # r_offset before the first r_info, r_addend after
                if m.start() >= 8 and m.end() + 8 <= len(data):
                    records += [(offset, addend) for offset, _, addend in struct.iter_unpack(
                        endian + "QQq", data[m.start() - 8:m.end() + 8])]
            if records:
                return _Relocations(name, endian, records)
    return None


def relocate(data, base=None):
    """(relocated copy of the image, link base) when the image holds relative relocations
    whose slots are still empty, else None.  The base is the given one, or the page-aligned
    address that puts the relocated slots on zeros, as --no-apply-dynamic-relocs leaves them.
    The input is never modified."""
    header = image_header(data)
    endians = "<>" if header.big_endian is None else ">" if header.big_endian else "<"
    relocations = _find_relocations(data, header.relocations, endians)
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
        _log.info("%d %s relocations, but their slots are filled already",
                  len(relocations.records), relocations.name)
        return None
    out = bytearray(data)
    pack = struct.Struct(relocations.endian + "Q").pack_into
    applied = 0
    for offset, addend in relocations.records:
        if 0 <= offset - link <= len(out) - 8:
            pack(out, offset - link, addend & 0xFFFFFFFFFFFFFFFF)
            applied += 1
    _log.info("applied %d of %d %s relocations (link base %x)", applied,
              len(relocations.records), relocations.name, link)
    return out, link


# --- Locating the tables: the symsearch array, or the tables themselves --------------------

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


def _symsearch_entry(fmt, export_type):
    """Size and tail bytes (licence, unused flag, zero padding) of one symsearch entry."""
    image = fmt.image
    tail = struct.pack(image.endian + "I", export_type.licence)
    if fmt.layout.unused_field:
        tail += bytes([export_type.unused])
    size = _round_up(3 * image.ptr_size + len(tail), image.ptr_size)
    return size, tail + bytes(size - 3 * image.ptr_size - len(tail))


def find_symsearch(fmt):
    """Candidate symsearch arrays: (offset, [TableRef]), most plausible first.

    An entry is {start, stop, crcs, licence[, unused]}; start/stop point into the image, crcs
    into it or NULL.  The regex anchors on the literal tail of the second entry and checks the
    first two entries in a lookbehind, so the 10-70 MB image is scanned at C speed."""
    image, layout = fmt.image, fmt.layout
    if len(layout.symsearch) < 2 or image.base is None:
        return []
    ptr = _pointer_pattern(image)
    crc_ptr = b"(?:" + ptr + b"|" + re.escape(bytes(image.ptr_size)) + b")"
    entries = [_symsearch_entry(fmt, t) for t in layout.symsearch]
    size = entries[0][0]
    pattern = [ptr + ptr + crc_ptr + re.escape(tail) for _, tail in entries]
    # the regex engine skips ahead to its literal prefix: make it start with a rare byte
    tail = entries[1][1]
    anchor = tail.lstrip(b"\0") if len(tail.lstrip(b"\0")) >= 4 else tail
    regex = re.compile(b"(?s)" + re.escape(anchor) + b"(?<=" + pattern[0] + pattern[1] + b")"
                       + b"".join(pattern[2:]))
    optional = [re.compile(b"(?s)" + ptr + ptr + crc_ptr + re.escape(_symsearch_entry(fmt, t)[1]))
                for t in layout.unused_tables]
    entry_format = image.endian + 3 * image.ptr
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
            if stop < start or (stop - start) % fmt.step:
                break
            refs.append(TableRef(table, image.offset(start), (stop - start) // fmt.step,
                                 image.offset(crcs) if crcs else None))
        else:
            if any(r.count for r in refs):      # every kernel exports something
                found.append((at, refs))
    return found


def _chains(positions, step):
    """Runs of positions spaced exactly `step` apart: [(first, count)], longest first."""
    length = {}
    for p in positions:
        length[p] = length.get(p - step, 0) + 1
    ends = [p for p in length if p + step not in length]
    return sorted(((p - (length[p] - 1) * step, length[p]) for p in ends), key=lambda c: -c[1])


REFS_CHUNK = 1 << 16
MIN_DIRECT_SYMBOLS = 16
# the block's strings as whitespace-separated words, for bytes.split() to count at C speed
_NUL_TO_SPACE = bytes.maketrans(b"\0 \t\n\r\x0b\x0c", b" xxxxxx")


def _search_blocks(data):
    """The identifier blocks to look for __ksymtab_strings in, likeliest first: of an ELF
    vmlinux, its __ksymtab_strings section, then the blocks in its allocated sections (a
    vmlinux with debug info has larger ones in .debug_str and .strtab); else every block,
    largest first."""
    blocks = _string_blocks(data)
    try:
        elf = ElfObject(data) if _is_elf(data) else None
    except (SymversError, struct.error):
        elf = None
    if not elf or not elf.sections:
        return blocks
    allocated = [(s.offset, s.offset + s.size) for s in elf.sections
                 if s.flags & SHF_ALLOC and s.type != SHT_NOBITS]
    named = elf.section("__ksymtab_strings")
    first = [(named[0], named[0] + named[1])] if named and named[1] else []
    return first + [b for b in blocks if b not in first and
                    any(low <= b[0] < high for low, high in allocated)]


def find_tables_direct(fmt, blocks=None):
    """Candidate table sets located without symsearch (lists of TableRef), best first.

    __ksymtab_strings is a block of NUL-terminated identifiers right after the ksymtab,
    kcrctab and (7.1+) kflagstab sections.  For each such block, the words before it that
    refer into it are found; the ksymtab is the longest run of them spaced one
    kernel_symbol apart (before 3.0 widened over the few entries whose names live elsewhere),
    with the CRC table right after, split into its tables (_split_tables).
    `blocks` are the image's _string_blocks(), when already known."""
    data = fmt.image.data
    for block_start, block_end in blocks or _search_blocks(data):
        chains = _chains(_refs_before(fmt, block_start, block_end), fmt.step)[:3]
        if not chains:
            continue
        # a ksymtab has at least a few entries and refers to most strings of its block
        strings = len(data[block_start:block_end].translate(_NUL_TO_SPACE).split())
        least = max(MIN_DIRECT_SYMBOLS, strings // 2)
        for first, count in chains:
            if count < least:
                break
            runs = [(first - fmt.field, count)]
            if not fmt.layout.sorted:
                runs.insert(0, _widen_run(fmt, first - fmt.field, count))
            for start, count in dict.fromkeys(runs):
                refs = _direct_tables(fmt, start, count)
                if refs:
                    yield refs
                    break


def _refs_before(fmt, block_start, block_end):
    """Offsets of the aligned words before the block that refer into it: self-relative
    offsets (PREL32; never 0) or absolute pointers.  Names may point into the middle of a
    string (the linker merges common suffixes).

    The scan starts a little inside the block, whose detected start may have swallowed
    NUL-like flag or CRC bytes, and goes backward a chunk at a time.  Until a reference is
    found it goes only as far as the CRC and flag tables of as many symbols as the block has
    strings could reach; then it goes on while the references reach a chunk's lower edge,
    as a ksymtab running on into the chunk before does."""
    image, field, prel32 = fmt.image, fmt.field, fmt.prel32
    strings = image.data.count(b"\0", block_start, block_end)
    reach = max(0, block_start - strings * (fmt.crc_width + 1) - 4096) // field * field
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
        if (hits and not (found and found[0] < lo + 2 * fmt.step)) or (not hits and lo <= reach):
            break
        hi = lo
    return hits


def _string_refs(fmt, start, count):
    """File offsets of the names and namespaces that `count` kernel_symbols refer to."""
    table = memoryview(fmt.image.data)[start:start + count * fmt.step]
    for i, fields in enumerate(struct.iter_unpack(fmt.entry, table)):
        for k in range(1, len(fields)):
            if fields[k]:
                yield fmt.resolve(start + i * fmt.step, k, fields[k])


def _names(fmt, start, count):
    """The names of `count` kernel_symbols (bytes), or None at the first that is not one."""
    data, step, resolve = fmt.image.data, fmt.step, fmt.resolve
    names = []
    for i, fields in enumerate(struct.iter_unpack(fmt.entry, data[start:start + count * step])):
        offset = resolve(start + i * step, 1, fields[1])
        m = NAME.match(data, offset) if offset is not None else None
        if m is None:
            return None
        names.append(m.group())
    return names


def _widen_run(fmt, start, count):
    """(start, count) of the run widened over neighbouring entries whose names are valid
    anywhere in the image.  Before 3.0 a few exports may name strings outside
    __ksymtab_strings (ARM 2.6.12: nwfpe's kern_fp_enter, fp_printk, fp_send_sig), which cut
    the run of references into the block in two."""
    step = fmt.step
    while start >= step and _names(fmt, start - step, 1):
        start -= step
        count += 1
    while _names(fmt, start + count * step, 1):
        count += 1
    return start, count


def _direct_tables(fmt, start, count):
    """The TableRefs of a run of kernel_symbols, with their CRC and flag offsets, or None
    when the tables do not add up.

    kcrctab follows the last ksymtab, kflagstab follows kcrctab, then __ksymtab_strings: the
    room before the first string the tables refer to must be exactly those tables (with
    CONFIG_MODVERSIONS or without), give or take alignment.  Anything else means the run
    found is not the whole ksymtab, and its CRCs would be read from the wrong slots."""
    step, width = fmt.step, fmt.crc_width
    stop = start + count * step
    strings_start = min((r for r in _string_refs(fmt, start, count)
                         if r is not None and r >= stop), default=None)
    if strings_start is None:
        return None
    flags = count if fmt.layout.flagstab else 0
    room = strings_start - stop
    if 0 <= room - count * width - flags < 16:
        crc_at = stop
    elif 0 <= room - flags < 16:
        crc_at = None
    else:
        return None
    tables = _split_tables(fmt, start, count, crc_at)
    if tables is None:
        return None
    out, at = [], 0
    flag_at = stop + (count * width if crc_at is not None else 0)
    for table, size in tables:
        out.append(TableRef(table, start + at * step, size,
                            None if crc_at is None else crc_at + at * width,
                            flag_at + at if fmt.layout.flagstab else None))
        at += size
    return out


def _split_tables(fmt, start, count, crc_at):
    """[(ExportType, count)] of a run of kernel_symbols, or None.

    From 3.0 each table is sorted: a name smaller than the one before starts the next (a
    table may hold an export twice, see _unique()).  Before, the tables are in link order and
    the kernel's code refers to their bounds (_referenced_entries), in the ksymtab and, with
    CRCs, in the kcrctab too.  Where the Module.symvers of the release has no export type
    (before 2.6.18) the split changes nothing: one table."""
    layout = fmt.layout
    if layout.sorted:
        names = _names(fmt, start, count)
        if names is None:
            return None
        breaks = [i + 1 for i in range(count - 1) if names[i] > names[i + 1]]
    elif "export_type" not in layout.columns:
        return [(layout.section_order[0], count)]
    else:
        breaks = _referenced_entries(fmt.image, start, count, fmt.step)
        if crc_at is not None:
            breaks &= _referenced_entries(fmt.image, crc_at, count, fmt.crc_width)
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
    byteorder = "little" if image.endian == "<" else "big"
    shift = 2 if image.endian == "<" else 0        # where the high half sits in the word
    for half in range(low >> 16, (high >> 16) + 1):
        tag = struct.pack(image.endian + "H", half & 0xFFFF)
        for m in re.finditer(re.escape(tag), image.data):
            at = m.start() - shift
            if 0 <= at <= len(image.data) - 4:
                k, rest = divmod(int.from_bytes(image.data[at:at + 4], byteorder) - low, size)
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


# --- Walking the tables: names, namespaces, CRCs, export types -----------------------------

MAX_SYMBOLS = 1 << 20      # real kernels export ~30 000; more is a misread table


def _string(image, offset, pattern, what, symbol_at):
    m = pattern.match(image.data, offset) if offset is not None else None
    if m is None:
        raise SymversError("%s of the kernel_symbol at %#x is not a valid string"
                           % (what, symbol_at), EXIT_INCONSISTENT)
    return m.group().decode("ascii")


def walk(fmt, refs):
    """The exported symbols of the tables: names, namespaces, CRCs and export types.

    Names are read and checked first, so a garbage candidate fails at its first entry,
    before anything in proportion to its claimed size is read."""
    image, step, resolve = fmt.image, fmt.step, fmt.resolve
    if sum(r.count for r in refs) > MAX_SYMBOLS:
        raise SymversError("tables claim %d symbols" % sum(r.count for r in refs),
                           EXIT_INCONSISTENT)
    namespaces = {None: ""}     # a few namespaces, each referred to by many symbols
    entries = []
    for t, r in enumerate(refs):
        end = r.start + r.count * step if r.start is not None else None
        if end is None or end > len(image.data) or (
                r.flags is not None and r.flags + r.count > len(image.data)):
            raise SymversError("%s table runs past the end of the image" % r.export_type.name,
                               EXIT_INCONSISTENT)
        flags = image.data[r.flags:r.flags + r.count] if r.flags is not None else None
        for i, fields in enumerate(struct.iter_unpack(fmt.entry,
                                                      memoryview(image.data)[r.start:end])):
            at = r.start + i * step
            name = _string(image, resolve(at, 1, fields[1]), NAME, "name", at)
            # 5.4 leaves the namespace NULL (0) when there is none; 5.5+ points at ""
            target = resolve(at, 2, fields[2]) if fmt.layout.namespace and fields[2] else None
            namespace = namespaces.get(target)
            if namespace is None:
                namespace = namespaces[target] = _string(image, target, NAMESPACE,
                                                         "namespace", at)
            export_type = r.export_type.name
            if flags is not None:
                if flags[i] > 1:
                    raise SymversError("flag byte %#x of %s is not a known kflagstab value"
                                       % (flags[i], name), EXIT_INCONSISTENT)
                export_type = GPL.name if flags[i] else PLAIN.name
            entries.append((t, i, name, export_type, namespace))
    crcs, relative = _read_crcs(fmt, _crc_tables(refs, fmt.crc_width))
    if relative:
        _log.info("CRC tables hold self-relative offsets (CONFIG_MODULE_REL_CRCS)")
    return _unique([Symbol(crcs[t][i], name, export_type, namespace)
                   for t, i, name, export_type, namespace in entries])


def _crc_tables(refs, width):
    """The refs, or all without CRCs when the kcrctab sections are empty.

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
                               % (a.export_type.name, a.crcs, b.export_type.name, b.crcs),
                               EXIT_INCONSISTENT)
    return refs


def _read_crcs(fmt, refs):
    """([crcs of each table], relative): slots of the layout's width, or self-relative s32
    offsets to the CRC (CONFIG_MODULE_REL_CRCS, detected: every slot + offset lands on a
    word inside the image, which a table of CRC values practically never does)."""
    image, width = fmt.image, fmt.crc_width
    slot_format = image.endian + ("I" if width == 4 else "Q")
    slots = []
    for r in refs:
        if r.crcs is None:
            slots.append([0] * r.count)
            continue
        end = r.crcs + r.count * width
        if end > len(image.data):
            raise SymversError("%s CRC table runs past the end of the image"
                               % r.export_type.name, EXIT_INCONSISTENT)
        slots.append([v for (v,) in struct.iter_unpack(slot_format,
                                                       memoryview(image.data)[r.crcs:end])])
    targets = [[r.crcs + 4 * i + v - (v >> 31 << 32) for i, v in enumerate(values)]
               for r, values in zip(refs, slots)
               if r.crcs is not None] if fmt.layout.rel_crcs else []
    last = len(image.data) - 4
    if any(targets) and all(0 <= t <= last and t % 4 == 0 for ts in targets for t in ts):
        read = struct.Struct(image.endian + "I").unpack_from
        targets = iter(targets)
        return [[read(image.data, t)[0] for t in next(targets)] if r.crcs is not None
                else values for r, values in zip(refs, slots)], True
    return [[v & 0xFFFFFFFF for v in values] for values in slots], False


def _unique(symbols):
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


# --- Extract: image -> Module.symvers lines ------------------------------------------------

def _describe(refs):
    return ", ".join("%s %d at %#x" % (r.export_type.name, r.count, r.start) for r in refs)


def _read_tables(data, options, blocks):
    """(Module.symvers lines, whether the base and pointer size mattered) with every option
    known: the symsearch array first, then the direct search.  A base of None is allowed
    with PREL32 (the symsearch array needs it, the direct search does not: its tables hold
    32-bit offsets, whatever the pointer size)."""
    layout = layout_for(options.version)
    fmt = TableFormat(Image.of(data, options), layout, options.prel32)
    errors = []
    candidates = find_symsearch(fmt)
    for at, refs in candidates:
        try:
            symbols = walk(fmt, refs)
        except SymversError as e:
            errors.append("symsearch candidate at %#x: %s" % (at, e))
            continue
        _log.info("symsearch found at offset %#x: %s", at, _describe(refs))
        return _vmlinux_lines(symbols, layout), True
    if layout.symsearch and options.base is not None:
        _log.debug("symsearch not found%s; locating the tables directly",
                  " (%d candidates rejected)" % len(candidates) if candidates else "")
    for refs in find_tables_direct(fmt, blocks):
        try:
            symbols = walk(fmt, refs)
        except SymversError as e:
            errors.append("tables at %#x: %s" % (refs[0].start, e))
            continue
        _log.info("export tables found directly: %s", _describe(refs))
        return _vmlinux_lines(symbols, layout), not options.prel32
    if errors:
        raise SymversError("export tables found but not valid with these options: %s"
                           % "; ".join(errors[:3]), EXIT_INCONSISTENT)
    raise SymversError("no export tables found with %s (nor in front of any of the %d blocks "
                       "of identifiers): check the base address, pointer size, endianness, "
                       "kernel version and PREL32 setting" % (options.spell(), len(blocks)),
                       EXIT_NOT_FOUND)


def _image_says(data, options):
    """What the image says against the options given: [(the option, what the image says,
    what to try)], from its banner and header (cheap: no search)."""
    said = []
    found = banner_version(data)
    if options.version and found and release_option(found[0]) != release_option(options.version):
        said.append(("-k %s" % release_option(options.version),
                     "the banner says Linux %s" % release_option(found[0]),
                     "-k %s, or no -k" % release_option(found[0])))
    header = image_header(data)
    if options.bits and header.bits and options.bits != header.bits:
        said.append(("-b %d" % options.bits, "the %s says %d-bit" % (header.how, header.bits),
                     "-b %d" % header.bits))
    if options.big_endian is not None and header.big_endian is not None \
            and options.big_endian != header.big_endian:
        said.append(("-e %s" % ("be" if options.big_endian else "le"),
                     "the %s says %s endian" % (header.how, "big" if header.big_endian
                                                else "little"),
                     "-e %s" % ("be" if header.big_endian else "le")))
    return said


class _Quiet(logging.Filter):
    """Silences the logger while a question is answered on the side (which option is
    wrong): what is tried then is not the run's."""

    def __enter__(self):
        _log.addFilter(self)

    def __exit__(self, *exc):
        _log.removeFilter(self)

    def filter(self, record):
        return False


CULPRITS = (("big_endian", "-e"), ("bits", "-b"), ("version", "-k"), ("prel32", "-p"),
            ("base", "-B"))


def _culprit(data, given, options, bases_to_try):
    """When the options `given` find no tables: a sentence naming those the image
    contradicts, and what it says: the one that, detected alone (the others as given),
    finds them, else every one that differs where all detected together find them; or
    None.  `options` are the given ones with the version known."""
    banner = banner_version(data)
    detectable = [(field, flag) for field, flag in CULPRITS if getattr(given, field) is not None
                  and not (field == "version" and banner is None)]

    def detected(fields):
        try:
            with _Quiet():
                return _search_options(data, options._replace(
                    **{field: banner[0] if field == "version" else None for field in fields}),
                    bases_to_try)
        except SymversError:
            return None

    for field, flag in detectable:
        found = detected([field])
        if found is not None:
            says = Options(**{field: getattr(found.mattered, field)}).spell()
            return ("%s finds no export tables; the image says %s (%d symbols found with it): "
                    "give that, or leave %s out" % (
                        Options(**{field: getattr(given, field)}).spell(),
                        says or "it does not matter", len(found.lines), flag))
    found = detected([field for field, _ in detectable]) if len(detectable) > 1 else None
    if found is None:
        return None
    wrong = sorted(((field, flag) for field, flag in detectable
                    if _contradicts(field, getattr(given, field), found.mattered)),
                   key=lambda culprit: Options._fields.index(culprit[0]))   # as spell() does
    if not wrong:
        return None
    return ("%s find no export tables; the image says %s (%d symbols found with them): give "
            "those, or leave %s out" % (
                _and([Options(**{field: getattr(given, field)}).spell() for field, _ in wrong]),
                Options(**{field: getattr(found.mattered, field) for field, _ in wrong}).spell(),
                len(found.lines), _and([flag for _, flag in wrong])))


def _contradicts(field, given, found):
    """Whether an option given differs from what the image says (the Options `found` with)
    where it matters: a kernel version by its layout; PREL32 only where the version has it
    (extract() warns of -p y before)."""
    says = getattr(found, field)
    if says is None or field == "prel32" and not layout_for(found.version).prel32:
        return False
    if field == "version":
        return layout_for(given) != layout_for(says)
    return given != says


def _and(words):
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _search_options(data, options, bases_to_try=()):
    """The Extraction of the first complete option set that finds valid tables (_attempts()),
    said when any option was detected; else an error naming what to give."""
    if options.base is not None and options.bits is not None and options.base >> options.bits:
        raise SymversError("base address %#x does not fit in %d bits"
                           % (options.base, options.bits), EXIT_USAGE)
    failures = []
    blocks = _search_blocks(data)     # asked for by every attempt: found once
    for attempt in _attempts(data, blocks, options, bases_to_try):
        try:
            lines, placed = _read_tables(data, attempt, blocks)
        except SymversError as e:
            _log.debug("not with %s: %s", attempt.spell(), e)
            failures.append((attempt, e))
            continue
        found = Extraction(lines, attempt, placed)
        if None in options:
            _log.info("detected options: %s%s", found.mattered.spell(),
                      "" if placed else " (-B and -b do not matter: PREL32 tables found "
                                        "directly)")
        return found
    advice = ["%s: try %s" % (says, fix) for _, says, fix in _image_says(data, options)]
    if len(failures) == 1:
        raise SymversError("; ".join([str(failures[0][1])] + advice), failures[0][1].status)
    header = image_header(data)
    unknown = [option for option, value in (
        ("-B", options.base if options.base is not None else (header.bases or None)),
        ("-b", options.bits or header.bits),
        ("-e", options.big_endian if options.big_endian is not None else header.big_endian),
        ("-p", options.prel32)) if value is None]
    inconsistent = [(attempt, e) for attempt, e in failures if e.status == EXIT_INCONSISTENT]
    if inconsistent:
        said = "%s (%s, of %d option sets tried)" % (inconsistent[0][1], inconsistent[0][0].spell(),
                                                   len(failures))
    elif failures:
        said = "no export tables found with any of the %d option sets tried from what the " \
               "image says (-v lists them)" % len(failures)
    else:
        said = "no export tables found with %s: no base address to try (none in a header, " \
               "none the name pointers point from)" % options.spell()
    raise SymversError("; ".join(["%s: give %s" % (said, " ".join(unknown) or "other options")]
                                 + advice), EXIT_INCONSISTENT if inconsistent else EXIT_NOT_FOUND)


class Extraction(NamedTuple):
    lines: list         # vmlinux's Module.symvers lines
    options: Options    # the options they were found with, every one
    placed: bool        # whether -B and -b mattered (PREL32 tables found directly: not)

    @property
    def mattered(self):
        """The options as they mattered: -B and -b None where they did not."""
        return self.options if self.placed else self.options._replace(base=None, bits=None)


PREL32_SINCE = next(layout.since for layout in LAYOUTS if layout.prel32)


def extract(data, options=Options(), bases_to_try=(), raw=False):
    """The Extraction of a decompressed kernel image: its Module.symvers lines, and the
    options they were found with.

    Every option left as None is detected from the image (see _attempts()); the ones given
    are used as they are, with a warning for each the image contradicts.  Each combination
    is confirmed by a full walk of the tables.  When none finds them and the image carries
    relative relocations whose slots are empty (an arm64 Image), they are applied to a copy
    and the search runs again; on an arm64 Image with a symsearch array (before 7.1), whose
    pointers are all such slots, right away.  `bases_to_try` are bases to try before voting
    (a loader header's load address).  When the options given find nothing, the error names
    the one that is wrong, where detecting it instead finds the tables."""
    if len(data) < 256:
        raise SymversError("%d bytes are not a kernel image" % len(data), EXIT_FORMAT)
    for given, says, _ in _image_says(data, options):
        _log.warning("%s: %s; used as given", given, says)
    given = options
    if options.version is None:
        options = options._replace(version=kernel_version(data))
    if options.prel32 and not layout_for(options.version).prel32:
        _log.warning("-p y: Linux %s has no PREL32 export tables (they came in %d.%d); not used",
                     release_option(options.version), *PREL32_SINCE[:2])
    if options.base is None and layout_for(options.version).symsearch and \
            image_header(data).unrelocated:
        relocated = relocate(data)
        if relocated:
            data, link = relocated
            options = options._replace(base=link)
    try:
        return _search_options(data, options, bases_to_try)
    except SymversError as e:
        if e.status not in (EXIT_NOT_FOUND, EXIT_INCONSISTENT):
            raise
        relocated = relocate(data, options.base)
        if relocated is None:
            culprit = _culprit(data, given, options, bases_to_try) if given != Options() \
                else None
            if culprit is None:
                raise
            raise SymversError(culprit, e.status) from None
    image, link = relocated
    return _search_options(image, options._replace(base=link))


# --- Output: files replaced whole or not at all, streams written through ------------------

def _cannot_write(what, e):
    if isinstance(e, BrokenPipeError):      # a reader gone: what a SIGPIPE would have done
        return SymversError("cannot write %s: the reader has gone (broken pipe)" % what,
                            EXIT_SIGPIPE)
    return SymversError("cannot write %s: %s" % (what, e.strerror or e), EXIT_INPUT)


def _write_all(fd, data):
    """os.write until every byte is out: a pipe, a device or a nearly full disk may take
    fewer at a time; a full one raises."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_stdout(data):
    """Write `data` (bytes or text) to standard output, every byte checked: a full disk or
    a closed stdout is an error (EXIT_INPUT), a reader gone is EXIT_SIGPIPE."""
    stream = sys.stdout
    if stream is None:                      # started with >&-
        raise SymversError("cannot write standard output: it is closed", EXIT_INPUT)
    try:
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):  # a stand-in without one (a test's)
            (stream if isinstance(data, str) else stream.buffer).write(data)
            stream.flush()
            return
        stream.flush()
        _write_all(fd, data.encode() if isinstance(data, str) else data)
    except OSError as e:
        raise _cannot_write("standard output", e) from None


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_file(path, data):
    """Write `data` to the file `path` names, whole or not at all.  A regular file (through
    symlinks: the link stays, its target is replaced) is written to a temporary file in its
    directory and renamed over it, keeping its mode (and owner, where the process may); a
    new one gets 0666 & ~umask.  A device, a FIFO or "-" (stdout) is written straight
    through.  Every failure, Ctrl-C included, leaves the old file and no temporary one."""
    if path == "-":
        return write_stdout(data)
    target = os.path.realpath(path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise _cannot_write(path, e) from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        try:
            fd = os.open(target, os.O_WRONLY)
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
        except OSError as e:
            raise _cannot_write(path, e) from None
        return None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".extract_symvers.", dir=os.path.dirname(target))
    except OSError as e:
        raise _cannot_write(path, e) from None
    try:
        try:
            os.fchmod(fd, stat.S_IMODE(st.st_mode) if st else 0o666 & ~_umask())
            if st and (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
                try:
                    os.fchown(fd, st.st_uid, st.st_gid)
                except PermissionError:         # only root may give a file away
                    pass
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException as e:      # nothing half-written is left, whatever stopped it
        os.unlink(tmp)
        if isinstance(e, OSError):
            raise _cannot_write(path, e) from None
        raise
    return None


# --- Module archives: where the .ko files are ----------------------------------------------
# Directories, module files, and archives read in memory (never unpacked to disk).  An
# archive member is a module by its suffix; a file given is read by its content.

MODULE_SUFFIXES = ((".ko", None), (".ko.xz", "xz"), (".ko.zst", "zstd"), (".ko.gz", "gzip"))
MODULE_NAME = re.compile(r"[!-~]+")
ARCHIVE_DEPTH = 4       # archives inside archives (a .deb's data.tar.xz, a boot image's ramdisk)
TAR_STREAMS = {"gzip": "gz", "xz": "xz", "bzip2": "bz2"}     # what tarfile decompresses itself


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


S_IFMT, S_IFREG = 0o170000, 0o100000


def _cpio_modules(data, label, max_size, depth):
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
                files += _archive_modules(data[at:], label, max_size, depth + 1, False)
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
        body = _round_up(at + header + namesize, align)
        if body + size > len(data):
            raise SymversError("%s: cpio archive is truncated (%s)" % (label, name), EXIT_FORMAT)
        if mode & S_IFMT == S_IFREG and size and _module_suffix(name):
            files.append((name, data[body:body + size]))
        at = _round_up(body + size, align)
    return files


def _tar_modules(source, mode, label, max_size):
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
                    if total > max_size:
                        raise _bomb("tar", max_size)
                    files.append((member.name, tar.extractfile(member).read()))
    except (tarfile.TarError,) + DECODE_ERRORS as e:
        raise SymversError("%s: broken tar archive: %s" % (label, e), EXIT_FORMAT) from None
    return files


AR_HEADER = _Record("ArHeader", "name date uid gid mode size fmag", "16s12s6s6s8s10s2s")


def _ar_members(data, label):
    """{name: bytes} of an ar archive (a Debian package: debian-binary, control.tar.*,
    data.tar.*): headers of fixed-width text fields, members 2-aligned."""
    members, at = {}, len(AR_MAGIC)
    while at + AR_HEADER.size <= len(data):
        h = AR_HEADER.read(data, at)
        name = h.name.decode("latin-1").strip().rstrip("/")
        try:
            size = int(h.size)
        except ValueError:
            size = -1
        if size < 0:
            raise SymversError("%s: corrupt ar header at %#x" % (label, at), EXIT_FORMAT)
        body = at + AR_HEADER.size
        if body + size > len(data):
            raise SymversError("%s: ar archive is truncated (%s)" % (label, name), EXIT_FORMAT)
        members[name] = data[body:body + size]
        at = body + _round_up(size, 2)
    return members


def _deb_modules(data, label, max_size, depth):
    """The module files of a Debian package: its data.tar.* member."""
    members = _ar_members(data, label)
    inside = [name for name in members if name.startswith("data.tar")]
    if not inside:
        raise SymversError("%s: an ar archive without data.tar: not a Debian package" % label,
                           EXIT_FORMAT)
    return _archive_modules(members[inside[0]], label, max_size, depth + 1, False)


def _zip_modules(data, label, max_size, depth):
    import io
    import zipfile
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return [(info.filename, archive.read(info)) for info in archive.infolist()
                    if _module_suffix(info.filename) and not info.is_dir()]
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError) + DECODE_ERRORS as e:
        # NotImplementedError, RuntimeError: an unsupported method, an encrypted member
        raise SymversError("%s: broken zip archive: %s" % (label, e), EXIT_FORMAT) from None


def _ramdisk_modules(data, label, max_size, depth):
    """The module files of the ramdisks of an Android boot.img or vendor_boot.img."""
    try:
        ramdisks = _android_ramdisks(data)
    except struct.error:
        raise SymversError("%s: Android boot image header is truncated" % label,
                           EXIT_FORMAT) from None
    except SymversError as e:
        raise SymversError("%s: %s" % (label, e), EXIT_FORMAT) from None
    return [f for ramdisk in ramdisks if ramdisk
            for f in _archive_modules(ramdisk, label, max_size, depth + 1, False)]


def _tar_in(codec, data, label):
    """Whether the stream compressed with `codec` starts a tar archive."""
    try:
        start = STREAMS[codec.kind]().decompress(bytes(data[:1 << 16]), 512)
    except DECODE_ERRORS as e:
        raise SymversError("%s: %s data is corrupt: %s" % (label, codec.kind, e),
                           EXIT_FORMAT) from None
    return start[USTAR_AT:USTAR_AT + len(USTAR)] == USTAR


# The modules of each of FILE_ARCHIVES: (data, label, max_size, depth) -> [(path, bytes)]
ARCHIVES = {
    "cpio": _cpio_modules,
    "tar": lambda data, label, max_size, depth: _tar_modules(data, "r|", label, max_size),
    "Debian package": _deb_modules,
    "zip": _zip_modules,
    "Android boot image": _ramdisk_modules,
}


def _archive_modules(data, label, max_size, depth=0, whole=True):
    """(path inside, bytes) of every module file in an archive or container, through any
    compression the tool reads; ("", bytes) when the input itself (`whole`, decompressed)
    is a module; a filesystem image or anything else is an error."""
    if depth > ARCHIVE_DEPTH:
        raise SymversError("%s: archives nested too deep" % label, EXIT_FORMAT)
    codec = _compression_of(data)
    if codec:
        if codec.kind in TAR_STREAMS and _tar_in(codec, data, label):   # tarfile reads it
            return _tar_modules(data, "r|" + TAR_STREAMS[codec.kind], label, max_size)
        return _archive_modules(bytes(decompress_payload(codec.kind, memoryview(data),
                                                         max_size)),
                                label, max_size, depth + 1, whole)
    if whole and data[:len(ELF_MAGIC)] == ELF_MAGIC:
        return [("", data)]
    archive = _archive(data)
    if archive:
        return ARCHIVES[archive.name](data, label, max_size, depth)
    filesystem = _filesystem(data)
    if filesystem:
        raise SymversError("%s is %s, whose files this tool does not read: get them out (%s) "
                           "and give --modules DIR" % ((label,) + filesystem), EXIT_FORMAT)
    raise SymversError("%s is not a kernel module, a directory or an archive of modules "
                       "(cpio, tar, .deb, zip, boot.img, vendor_boot.img, plain or compressed)"
                       % label, EXIT_FORMAT)


def module_sources(top, max_size=MAX_SIZE):
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
    data = _read_input(top, max_size)
    if not data:
        raise SymversError("%s is empty" % top, EXIT_INPUT)
    files = _archive_modules(data, top, max_size)
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


# --- Signatures: who signed a module, and the keys its kernel holds ------------------------

# A signed module ends with its PKCS#7 message (the signature), then struct module_signature
# (include/linux/module_signature.h: big-endian sig_len, the other fields zero for PKCS#7),
# then SIGNATURE_MARK; scripts/sign-file writes them.  PKCS#7 (id_type 2) since 4.3.
SIGNATURE_MARK = b"~Module signature appended~\n"
MODULE_SIGNATURE = _Record("ModuleSignatureInfo", "algo hash id_type signer_len key_id_len "
                           "sig_len", ">BBBBB3xI")
PKEY_ID_PKCS7 = 2

# Object identifiers, dotted (RFC 5280, 5652, 8017, 5480, NIST's and China's registries)
OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
OID_SUBJECT_KEY_ID = "2.5.29.14"
HASHES = {"1.3.14.3.2.26": "sha1", "2.16.840.1.101.3.4.2.4": "sha224",
          "2.16.840.1.101.3.4.2.1": "sha256", "2.16.840.1.101.3.4.2.2": "sha384",
          "2.16.840.1.101.3.4.2.3": "sha512", "2.16.840.1.101.3.4.2.8": "sha3_256",
          "2.16.840.1.101.3.4.2.9": "sha3_384", "2.16.840.1.101.3.4.2.10": "sha3_512",
          "1.2.156.10197.1.401": "sm3"}
HASH_OIDS = {name: oid for oid, name in HASHES.items()}
KEY_ALGORITHMS = {"1.2.840.113549.1.1.1": "rsa", "1.2.840.10045.2.1": "ecdsa",
                  "1.2.156.10197.1.301": "sm2"}
# the X.509 Name attributes x509_fabricate_name() (crypto/asymmetric_keys) names a key by
NAME_ATTRIBUTES = {"2.5.4.3": "CN", "2.5.4.10": "O", "1.2.840.113549.1.9.1": "email"}


class Der(NamedTuple):
    """A DER element (X.690): its tag, its value data[start:end], itself data[begin:end]."""
    tag: int
    start: int
    end: int
    begin: int


def _der(data, at):
    """The Der element at `at`."""
    begin = at
    tag, length = data[at], data[at + 1]
    at += 2
    if length & 0x80:
        size = length & 0x7F
        if not 0 < size <= 4:
            raise ValueError("a DER length of %d bytes" % size)
        length = int.from_bytes(data[at:at + size], "big")
        at += size
    if at + length > len(data):
        raise ValueError("a DER element runs past its data")
    return Der(tag, at, at + length, begin)


def _der_items(data, element):
    """The Der elements inside a constructed one."""
    items, at = [], element.start
    while at < element.end:
        items.append(_der(data, at))
        at = items[-1].end
    return items


def _oid(data, element):
    """An OBJECT IDENTIFIER's value, dotted."""
    numbers, value = [], 0
    for byte in data[element.start:element.end]:
        value = value << 7 | byte & 0x7F
        if not byte & 0x80:
            numbers.append(value)
            value = 0
    first = min(numbers[0] // 40, 2) if numbers else 0
    return ".".join(map(str, [first, numbers[0] - 40 * first] + numbers[1:])) if numbers else ""


def _der_int(data, element):
    return int.from_bytes(data[element.start:element.end], "big", signed=True)


def _key_name(data, name):
    """A certificate's Name as the kernel names its key: "O: CN", or CN alone when it starts
    with O (x509_fabricate_name())."""
    found = {}
    for rdn in _der_items(data, name):
        for attribute in _der_items(data, rdn):
            oid, value = _der_items(data, attribute)[:2]
            found.setdefault(NAME_ATTRIBUTES.get(_oid(data, oid)),
                             bytes(data[value.start:value.end]).decode("utf-8", "replace"))
    cn, o = found.get("CN"), found.get("O")
    if cn and o and not cn.startswith(o):
        return "%s: %s" % (o, cn)
    return cn or o or found.get("email") or ""


class Certificate(NamedTuple):
    """An X.509 certificate (RFC 5280) as the kernel's keyring holds its key: found by its
    issuer and serial number or by its subject key identifier."""
    subject: str            # the key's name (_key_name())
    issuer: bytes           # the issuer Name's DER: with the serial, what a signer names
    serial: int
    skid: Optional[bytes]   # the subjectKeyIdentifier extension
    algorithm: str          # KEY_ALGORITHMS' name, else the OID
    key: tuple              # rsa: (n, e); ecdsa: (curve OID, the point's bytes)

    def words(self):
        return "'%s'%s" % (self.subject, " (key id %s)" % self.skid.hex() if self.skid else "")


def read_certificate(data, at=0):
    """The Certificate whose DER starts at `at`; ValueError or IndexError if it does not
    parse."""
    certificate = _der(data, at)
    tbs = _der_items(data, _der_items(data, certificate)[0])
    if tbs[0].tag == 0xA0:           # [0] version
        tbs = tbs[1:]
    serial, issuer, subject, spki = tbs[0], tbs[2], tbs[4], tbs[5]
    algorithm, bits = _der_items(data, spki)
    parameters = _der_items(data, algorithm)
    kind = _oid(data, parameters[0])
    kind = KEY_ALGORITHMS.get(kind, kind)
    public = data[bits.start + 1:bits.end]           # a BIT STRING: its unused-bits byte first
    if kind == "rsa":
        n, e = _der_items(public, _der(public, 0))
        key = (_der_int(public, n), _der_int(public, e))
    else:
        key = (_oid(data, parameters[1]) if len(parameters) > 1 and parameters[1].tag == 6
               else "", bytes(public))
    skid = None
    for extensions in (item for item in tbs[6:] if item.tag == 0xA3):
        for extension in _der_items(data, _der_items(data, extensions)[0]):
            fields = _der_items(data, extension)
            if _oid(data, fields[0]) == OID_SUBJECT_KEY_ID:
                value = _der(data, fields[-1].start)
                skid = bytes(data[value.start:value.end])
    return Certificate(_key_name(data, subject), bytes(data[issuer.begin:issuer.end]),
                       _der_int(data, serial), skid, kind, key)


class Signer(NamedTuple):
    """A PKCS#7 SignerInfo (RFC 2315): whose key, and what it signed."""
    issuer: Optional[bytes]     # issuerAndSerialNumber (sign-file's default)...
    serial: Optional[int]
    skid: Optional[bytes]       # ...or subjectKeyIdentifier (sign-file -k)
    hash: str                   # HASHES' name, else the OID
    signature: bytes
    digest: Optional[bytes]     # what the signature is over, digested: the module's bytes,
                                # or its authenticated attributes (None: not computable)
    content_digest: Optional[bytes]     # the module's, and the attributes' messageDigest:
    attested_digest: Optional[bytes]    # with attributes, they must agree
    key_words: str              # its key: "key id ...", or "issuer '...', serial ..."

    def key_of(self, certificates):
        """The certificate among `certificates` whose key this signer names, or None."""
        return next((c for c in certificates if (c.skid == self.skid if self.skid is not None
                                                 else (c.issuer, c.serial) ==
                                                 (self.issuer, self.serial))), None)


class ModuleSignature(NamedTuple):
    """A module's appended signature, as mod_verify_sig() reads it: `problem` says, in the
    kernel's terms, why it is not one it verifies (None: a PKCS#7 message with signers)."""
    id_type: int
    signers: tuple          # (Signer,)
    problem: Optional[str]  # "EBADMSG: ...", "ENOPKG: ..."


def _digest(name, data):
    try:
        return hashlib.new(name, data).digest()
    except ValueError:      # not in this Python's hashlib (sm3)
        return None


def _signer(data, info, content):
    """The Signer of a SignerInfo; `content` the module's bytes without the signature."""
    fields = _der_items(data, info)
    sid = fields[1]
    issuer = serial = skid = None
    if sid.tag == 0x30:
        named, number = _der_items(data, sid)
        issuer, serial = bytes(data[named.begin:named.end]), _der_int(data, number)
        key_words = "issuer '%s', serial %x" % (_key_name(data, named), serial)
    else:
        skid = bytes(data[sid.start:sid.end])
        key_words = "key id %s" % skid.hex()
    hash_oid = _oid(data, _der_items(data, fields[2])[0])
    hash_name = HASHES.get(hash_oid, hash_oid)
    at = 3
    attributes = None
    if fields[at].tag == 0xA0:      # authenticatedAttributes: signed in their SET form
        attributes = b"\x31" + bytes(data[fields[at].begin + 1:fields[at].end])
        at += 1
    signature = bytes(data[fields[at + 1].start:fields[at + 1].end])   # after its algorithm
    content_digest = _digest(hash_name, content)
    attested = None
    if attributes is not None:
        for attribute in _der_items(data, fields[3]):
            kind, values = _der_items(data, attribute)
            if _oid(data, kind) == OID_MESSAGE_DIGEST:
                value = _der_items(data, values)[0]
                attested = bytes(data[value.start:value.end])
    return Signer(issuer, serial, skid, hash_name, signature, content_digest if attributes is None
                  else _digest(hash_name, attributes), content_digest, attested, key_words)


def module_signature(data):
    """The ModuleSignature appended to a module's bytes, or None: unsigned."""
    if not data.endswith(SIGNATURE_MARK):
        return None
    end = len(data) - len(SIGNATURE_MARK)
    if end < MODULE_SIGNATURE.size:
        return ModuleSignature(0, (), "EBADMSG: too short for its struct module_signature")
    info = MODULE_SIGNATURE.read(data, end - MODULE_SIGNATURE.size)
    end -= MODULE_SIGNATURE.size
    if info.sig_len >= end:      # mod_check_sig()
        return ModuleSignature(info.id_type, (), "EBADMSG: a signature of %d bytes in a "
                               "module of %d" % (info.sig_len, end))
    if info.id_type != PKEY_ID_PKCS7:
        return ModuleSignature(info.id_type, (), "ENOPKG: not signed with expected PKCS#7 "
                               "message (its id_type is %d)" % info.id_type)
    if info.algo or info.hash or info.signer_len or info.key_id_len:
        return ModuleSignature(info.id_type, (), "EBADMSG: struct module_signature's fields "
                               "other than its length are not zero")
    message = memoryview(data)[end - info.sig_len:end]
    content = memoryview(data)[:end - info.sig_len]
    try:
        content_info = _der_items(message, _der(message, 0))
        if _oid(message, content_info[0]) != OID_SIGNED_DATA:
            raise ValueError("not PKCS#7 signed data")
        signed_data = _der_items(message, _der_items(message, content_info[1])[0])
        signers = tuple(_signer(message, info, content)
                        for info in _der_items(message, signed_data[-1]))
    except (ValueError, IndexError) as e:
        return ModuleSignature(info.id_type, (), "EBADMSG: its PKCS#7 message does not "
                               "parse (%s)" % e)
    if not signers:
        return ModuleSignature(info.id_type, (), "EBADMSG: a PKCS#7 message without a signer")
    return ModuleSignature(info.id_type, signers, None)


# certs/system_certificates.S: system_certificate_list, the certificates compiled in (the
# build's signing key, then CONFIG_SYSTEM_TRUSTED_KEYS, then the room of
# CONFIG_SYSTEM_EXTRA_CERTIFICATE that scripts/insert-sys-cert fills), 8-aligned, and after
# them (past that room and system_extra_cert_used), 8-aligned, system_certificate_list_size:
# an unsigned long holding their length.  That length word, in the image's byte order and
# word size, tells the list from other certificates a kernel holds (cfg80211's regulatory
# database keys).  It is in init memory, freed after boot: a dump no longer holds it.
CERTIFICATE_START = re.compile(rb"\x30\x82(?=..\x30\x82..\xa0\x03\x02\x01\x02)", re.DOTALL)
EXTRA_CERTIFICATE_ROOM = 1 << 16    # CONFIG_SYSTEM_EXTRA_CERTIFICATE_SIZE: 4096 by default


def _certificate_runs(data):
    """[(start, end)] of runs of DER certificates that follow each other in `data`."""
    runs = []
    for m in CERTIFICATE_START.finditer(data):
        at = m.start()
        end = at + 4 + int.from_bytes(data[at + 2:at + 4], "big")
        if runs and runs[-1][1] == at:
            runs[-1] = (runs[-1][0], end)
        elif not runs or at >= runs[-1][1]:
            runs.append((at, end))
    return runs


def _length_follows(image, start, end):
    """Whether system_certificate_list_size follows the certificates at start:end: their
    length, at an 8-aligned place past zeros and at most one other word (the extra room's
    system_extra_cert_used)."""
    length = end - start
    words = {struct.pack(fmt, length) for fmt in ("<Q", ">Q", "<I", ">I")}
    others = 0
    for at in range(end + (-length) % 8, min(end + EXTRA_CERTIFICATE_ROOM, len(image) - 7),
                    8):
        chunk = bytes(image[at:at + 8])
        if chunk[:4] in words and not any(chunk[4:]) or chunk in words:
            return True
        if any(chunk):
            others += 1
            if others > 1:
                return False
    return False


def kernel_certificates(image):
    """The certificates of an image's system_certificate_list ((Certificate,), in its
    order), or None when the image holds no such list."""
    for start, end in _certificate_runs(image):
        if not _length_follows(image, start, end):
            continue
        certificates, at = [], start
        try:
            while at < end:
                certificates.append(read_certificate(image, at))
                at = _der(image, at).end
        except (ValueError, IndexError):
            continue
        return tuple(certificates)
    return None


def _der_tlv(tag, value):
    """A DER element of `value` (shorter than 128 bytes: a DigestInfo)."""
    return bytes((tag, len(value))) + value


def _der_oid(dotted):
    numbers = [int(n) for n in dotted.split(".")]
    encoded = bytearray((40 * numbers[0] + numbers[1],))
    for number in numbers[2:]:
        septets = [number & 0x7F]
        while number > 0x7F:
            number >>= 7
            septets.append(0x80 | number & 0x7F)
        encoded += bytes(reversed(septets))
    return _der_tlv(6, bytes(encoded))


def _rsa_verifies(key, signer):
    """RSASSA-PKCS1-v1_5 (RFC 8017 8.2.2), as crypto/rsa-pkcs1pad.c checks it."""
    n, e = key
    size = (n.bit_length() + 7) // 8
    s = int.from_bytes(signer.signature, "big")
    if len(signer.signature) > size or s >= n or e <= 0:
        return False
    digest_info = _der_tlv(0x30, _der_tlv(0x30, _der_oid(HASH_OIDS[signer.hash]) + b"\5\0") +
                           _der_tlv(4, signer.digest))
    return pow(s, e, n).to_bytes(size, "big") == \
        b"\0\1" + b"\xff" * (size - 3 - len(digest_info)) + b"\0" + digest_info


class Curve(NamedTuple):
    """A prime curve y^2 = x^3 + ax + b mod p, its generator and the generator's order."""
    p: int
    a: int
    b: int
    g: tuple
    n: int


def _curve(p, b, gx, gy, n):
    """A NIST curve (a = -3) from its parameters in hexadecimal (SEC 2)."""
    p = int(p, 16)
    return Curve(p, p - 3, int(b, 16), (int(gx, 16), int(gy, 16)), int(n, 16))


# The curves crypto/ecdsa.c verifies with, by their OIDs (RFC 5480): P-192, P-256, P-384
# (5.13 on, the kernel's own module key with CONFIG_MODULE_SIG_KEY_TYPE_ECDSA), P-521 (6.10)
CURVES = {
    "1.2.840.10045.3.1.1": _curve(
        "fffffffffffffffffffffffffffffffeffffffffffffffff",
        "64210519e59c80e70fa7e9ab72243049feb8deecc146b9b1",
        "188da80eb03090f67cbf20eb43a18800f4ff0afd82ff1012",
        "07192b95ffc8da78631011ed6b24cdd573f977a11e794811",
        "ffffffffffffffffffffffff99def836146bc9b1b4d22831"),
    "1.2.840.10045.3.1.7": _curve(
        "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
        "5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b",
        "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
        "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
        "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"),
    "1.3.132.0.34": _curve(
        "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000"
        "ffffffff",
        "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8ed"
        "d3ec2aef",
        "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e38"
        "72760ab7",
        "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c"
        "90ea0e5f",
        "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196a"
        "ccc52973"),
    "1.3.132.0.35": _curve(
        "1" + "f" * 130,
        "51953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0"
        "bd3bb1bf073573df883d2c34f1ef451fd46b503f00",
        "c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc1"
        "27a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66",
        "11839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b"
        "9013fad0761353c7086a272c24088be94769fd16650",
        "1fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0"
        "148f709a5d03bb5c9b8899c47aebb6fb71e91386409"),
}


def _ec_double(p, point):
    """2P in Jacobian coordinates (x = X/Z^2, y = Y/Z^3, Z = 0 at infinity) on a curve with
    a = -3, as every NIST curve has (dbl-2001-b): no inverse per step, where affine
    coordinates would take one (a pow() as long as p) each time."""
    x, y, z = point
    if not z or not y:
        return 1, 1, 0
    delta, gamma = z * z % p, y * y % p
    beta = x * gamma % p
    alpha = 3 * (x - delta) * (x + delta) % p
    x3 = (alpha * alpha - 8 * beta) % p
    return (x3, (alpha * (4 * beta - x3) - 8 * gamma * gamma) % p,
            ((y + z) * (y + z) - gamma - delta) % p)


def _ec_add(p, point, other):
    """P + Q, P in Jacobian coordinates and Q affine (x, y), in Jacobian coordinates."""
    x, y, z = point
    if not z:
        return other[0], other[1], 1
    zz = z * z % p
    h = (other[0] * zz - x) % p
    r = (other[1] * zz * z - y) % p
    if not h:
        return _ec_double(p, point) if not r else (1, 1, 0)
    hh = h * h % p
    hhh, v = h * hh % p, x * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    return x3, (r * (v - x3) - y * hhh) % p, z * h % p


def _ec_affine(p, points):
    """Points in Jacobian coordinates as affine (x, y), None at infinity, with one inverse
    for them all (Montgomery's trick); the inverse by Fermat (p is prime): pow(x, -1, p)
    needs Python 3.8."""
    products, product = [], 1
    for _, _, z in points:
        products.append(product)
        product = product * (z or 1) % p
    inverse = pow(product, p - 2, p)
    affine = []
    for (x, y, z), before in zip(reversed(points), reversed(products)):
        if not z:
            affine.append(None)
            continue
        z_inverse, inverse = inverse * before % p, inverse * z % p
        square = z_inverse * z_inverse % p
        affine.append((x * square % p, y * square * z_inverse % p))
    return affine[::-1]


EC_WINDOW = 6      # bits of a scalar per table row: 64 rows of 63 points for P-384


def _ec_windows(curve, point, _tables={}):
    """The multiples j 2^(w i) P (0 < j < 2^w, w = EC_WINDOW) of an affine point P, affine,
    row i by row: u P is then an addition per w bits of u and no doubling. The tables of
    the last few points are kept (a generator and a kernel's key each verify thousands of
    modules)."""
    table = _tables.get((curve, point))
    if table is None:
        p, table, base = curve.p, [], point
        for _ in range((curve.n.bit_length() + EC_WINDOW - 1) // EC_WINDOW):
            row = [base + (1,)]
            for _ in range((1 << EC_WINDOW) - 1):   # up to 2^w base: the next row's base
                row.append(_ec_add(p, row[-1], base))
            *row, base = _ec_affine(p, row)
            table.append(row)
        if len(_tables) >= 4:
            _tables.clear()
        _tables[curve, point] = table
    return table


def _ecdsa_verifies(key, signer):
    """ECDSA (SEC 1 4.1.4) over a NIST curve, as crypto/ecdsa.c checks it; None for a curve
    or a point this tool does not read."""
    oid, point = key
    curve = CURVES.get(oid)
    size = curve and (curve.p.bit_length() + 7) // 8
    if curve is None or len(point) != 1 + 2 * size or point[0] != 4:
        return None
    q = (int.from_bytes(point[1:1 + size], "big"), int.from_bytes(point[1 + size:], "big"))
    if max(q) >= curve.p or (q[1] * q[1] - (q[0] * q[0] + curve.a) * q[0] - curve.b) % curve.p:
        return None         # not a point of the curve: a key the kernel does not load
    try:
        signature = _der(signer.signature, 0)
        r, s = (_der_int(signer.signature, item) for item in
                _der_items(signer.signature, signature))
    except (ValueError, IndexError):
        return False
    n = curve.n
    if not (0 < r < n and 0 < s < n):
        return False
    e = int.from_bytes(signer.digest, "big") >> max(0, 8 * len(signer.digest) -
                                                     n.bit_length())
    w = pow(s, n - 2, n)    # the order is prime
    u1, u2 = e * w % n, r * w % n
    p, total, mask = curve.p, (1, 1, 0), (1 << EC_WINDOW) - 1
    for g_row, q_row in zip(_ec_windows(curve, curve.g), _ec_windows(curve, q)):
        for row, digit in ((g_row, u1 & mask), (q_row, u2 & mask)):
            if digit:
                total = _ec_add(p, total, row[digit - 1])
        u1, u2 = u1 >> EC_WINDOW, u2 >> EC_WINDOW
    # x(u1 G + u2 Q) mod n == r, without an inverse: X == x Z^2 for x in r, r + n (< p)
    x, _, z = total
    return bool(z) and any((x - candidate * z * z) % p == 0
                           for candidate in range(r, p, n))


# how each kind of key verifies (True, False; None: not this tool's to say); sm2 and
# rsa-pss keys are left to the kernel
VERIFIERS = {"rsa": _rsa_verifies, "ecdsa": _ecdsa_verifies}


class SignatureCheck(NamedTuple):
    """mod_verify_sig() on one module against the kernel's built-in keys: `error` is its
    errno's name (None: verified, the module is sig_ok), `words` say why."""
    error: Optional[str]    # ENODATA ENOPKG ENOKEY EBADMSG EKEYREJECTED, or "unknown"
    words: str
    signer: Optional[Signer] = None
    key: Optional[Certificate] = None


def verify_signature(signature, certificates):
    """The SignatureCheck of a ModuleSignature (None: unsigned) against `certificates`, the
    kernel's built-in ones (None: unknown): its first signer whose key the kernel holds
    decides, as pkcs7_validate_trust() takes it (crypto/asymmetric_keys, 4.3 on)."""
    if signature is None:
        return SignatureCheck("ENODATA", "unsigned")
    if signature.problem:
        error, _, why = signature.problem.partition(": ")
        return SignatureCheck(error, why)
    signer = signature.signers[0]
    said = "signed (%s) by %s" % (signer.hash, signer.key_words)
    if certificates is None:
        return SignatureCheck("unknown", "%s: whether the kernel holds that key is unknown "
                              "(its built-in certificates are read from the image)" % said,
                              signer)
    for signer in signature.signers:
        key = signer.key_of(certificates)
        if key is None:
            continue
        said = "signed (%s) by %s" % (signer.hash, key.words())
        if signer.attested_digest is not None and signer.attested_digest != \
                signer.content_digest:
            return SignatureCheck("EKEYREJECTED", "%s, a key the kernel holds, but its "
                                  "message digest is not the module's" % said, signer, key)
        verifies = VERIFIERS.get(key.algorithm)
        verified = verifies(key.key, signer) if verifies and signer.digest is not None and \
            signer.hash in HASH_OIDS else None
        if verified is None:
            return SignatureCheck("unknown", "%s, a key the kernel holds; a %s signature "
                                  "with %s this tool does not verify" % (
                                      said, key.algorithm, signer.hash), signer, key)
        if not verified:
            return SignatureCheck("EKEYREJECTED", "%s, a key the kernel holds, but the "
                                  "signature does not match the module's bytes (changed "
                                  "after signing?)" % said, signer, key)
        return SignatureCheck(None, "%s, a key the kernel holds: verified" % said, signer,
                              key)
    return SignatureCheck("ENOKEY", "%s: not a key built into the kernel (%s); one added at "
                          "run time (the secondary or machine keyring, MOK) is unknowable "
                          "here" % (said, ", ".join(c.words() for c in certificates) or
                                    "it holds none"), signature.signers[0])


# --- kCFI: Clang's type check before each indirect call -----------------------------------

# Clang's -fsanitize=kcfi (16+; the kernel's CONFIG_CFI_CLANG from 6.1 on x86-64 and arm64,
# CONFIG_CFI from 6.18, 23ef9d439769): a function whose address is taken carries a 32-bit hash
# of its type just before its entry, and each indirect call compares the hash before its
# target with the one its pointer's type wants, trapping when they differ.  The loader compares
# nothing of it (6.1's load_module() has no kCFI check): a module built without kCFI loads on
# a kCFI kernel and traps on the kernel's first indirect call into it, and a kCFI module on a
# kernel without it on its first indirect call into the kernel.  Before 6.1 CONFIG_CFI_CLANG
# was another scheme (LTO's jump tables, arm64 only), not judged here.
KCFI_SINCE = (6, 1)
KCFI_CONFIGS = ("CONFIG_CFI_CLANG", "CONFIG_CFI")
# A module's list of its traps, which kernel/cfi.c module_cfi_finalize() reads (x86-64): the
# compiler's .kcfi_traps, renamed by scripts/module.lds.S of a kCFI tree
KCFI_TRAPS = ("__kcfi_traps", ".kcfi_traps")
# The hash of an address-taken function declared elsewhere (for assembly to use): absolute
# symbols only Clang's kCFI emits
KCFI_TYPEID = re.compile(rb"\0__kcfi_typeid_")
# The functions the kernel calls through a pointer of every module: mod->init, mod->exit
KCFI_ENTRIES = ("init_module", "cleanup_module")


class KcfiCode(NamedTuple):
    """Clang's kCFI code on one machine: `check`, the sequence before each indirect call,
    ending in its trap; `hash`, a type hash's slot, matched ending at a function's entry;
    `trap`, what a kernel without kCFI says of that trap (measured on 6.1 under QEMU)."""
    machine: int
    check: "re.Pattern"
    hash: "re.Pattern"
    trap: str


KCFI_CODE = {row.machine: row for row in (
    # arch/x86/kernel/cfi.c decode_cfi_insn() (6.1): movl $-hash, %r10d; addl -4(%reg), %r10d
    # (-15 from 6.2 with CONFIG_CALL_PADDING); je 1f; ud2.  The hash: __cfi_<function>'s
    # movl $hash, %eax, then 11 nops with CONFIG_CALL_PADDING (arch/x86/include/asm/cfi.h)
    KcfiCode(EM_X86_64, re.compile(rb"\x41\xba[\s\S]{4}[\x44\x45]\x03[\x50-\x57][\x80-\xff]"
                                   rb"\x74\x02\x0f\x0b"),
             re.compile(rb"\xb8[\s\S]{4}(?:\x90{11})?\Z"), 'ud2: "invalid opcode"'),
    # arm64 (the kernel's cfi_handler() decodes the brk): ldur w16, [xN, #-4]; movz, movk w17;
    # cmp w16, w17; b.eq 1f; brk #(CFI_BRK_IMM_BASE 0x8000 | type register << 5 | target
    # register), arch/arm64/include/asm/brk-imm.h.  The hash: a word of data before the entry
    # (neither a nop nor zero padding)
    KcfiCode(EM_AARCH64, re.compile(rb"\x40\x00\x00\x54[\x00\x20\x40\x60\x80\xa0\xc0\xe0]"
                                    rb"[\x00-\x7f]\x30\xd4"),
             re.compile(rb"(?!\x1f\x20\x03\xd5|\0\0\0\0)[\s\S]{4}\Z"),
             'brk: "Unexpected kernel BRK exception at EL1"'),
)}


def _kcfi_hashed(elf, code, shndx, functions, entry, name):
    """Whether the function `name` at `entry` (its section's offset) carries a type hash:
    the slot before it within its section, inside no other function (its __cfi_ preamble
    aside)."""
    section = elf.sections[shndx]
    m = code.hash.search(elf.data, section.offset + max(entry - 16, 0), section.offset + entry)
    if m is None:
        return False
    start = m.start() - section.offset
    return not any(value < entry and value + size > start for value, size, other in functions
                   if other != "__cfi_" + name)


def module_kcfi(elf):
    """Whether a module (an ElfObject) was built with kCFI: its traps' section, a
    __kcfi_typeid_ symbol, a check before an indirect call, a type hash before its init or
    exit function; None when it cannot tell (another machine; no mark and neither function)."""
    code = KCFI_CODE.get(elf.machine)
    if code is None:
        return None
    if any(name in elf.names for name in KCFI_TRAPS):
        return True
    strtab = elf.sections[elf.symtab.link] if elf.symtab else None
    if strtab and KCFI_TYPEID.search(elf.data, strtab.offset, strtab.offset + strtab.size):
        return True
    if any(s.flags & SHF_EXECINSTR and s.type != SHT_NOBITS and
           code.check.search(elf.data, s.offset, s.offset + s.size) for s in elf.sections):
        return True
    hashed = [_kcfi_hashed(elf, code, shndx, functions, value, name)
              for shndx, functions in elf.functions().items()
              for value, _, name in functions if name in KCFI_ENTRIES]
    return any(hashed) if hashed else None


def kernel_kcfi(config, image, machine, version, dump=False):
    """Whether the kernel was built with kCFI: its .config says (`config`, {CONFIG_X: value});
    without one, its code: a kCFI kernel has thousands of checks (a dump's running kernel may
    have rewritten them, FineIBT or cfi=off: their absence there says nothing); None where
    unknown, and before 6.1."""
    if tuple(version) < KCFI_SINCE:
        return None
    if config is not None:
        return any(config.get(option) == "y" for option in KCFI_CONFIGS)
    code = KCFI_CODE.get(machine)
    if code is None or image is None:
        return None
    return True if code.check.search(image) else None if dump else False


# --- Module files: what a .ko exports and needs --------------------------------------------

VERMAGIC = re.compile(rb"(?:^|\0)vermagic=([^\0]*)")
MODVERSION_SIZE = 64        # struct modversion_info: unsigned long crc; char name[...]
THIS_MODULE = ".gnu.linkonce.this_module"   # modpost's struct module __this_module


class Module(NamedTuple):
    """What a .ko holds for Module.symvers and for the loader's checks."""
    exports: list           # [Symbol]: the module column is the file's (ModuleFile.name)
    version: Optional[tuple]    # its vermagic's (else the one given): its tables' layout
    modinfo: dict           # .modinfo: key -> [values]
    undefined: list         # [(name, weak)]: what the loader resolves among the exports
    versions: Optional[dict]    # __versions (or 6.14+ __version_ext_*): name -> CRC
    signature: Optional[ModuleSignature]    # None: unsigned
    build: "Build"          # its vermagic's release, ELF class, byte order and machine
    config: Optional[bytes]     # kernel/configs.ko (CONFIG_IKCONFIG=m): the .config
    this_module: Optional[int]  # the size of .gnu.linkonce.this_module: its struct module
    relocation_types: frozenset     # of the relocations the loader applies
    split_btf: bool         # a .BTF section: its own types, split on the kernel's BTF
    header: bytes           # its first 64 bytes: the ELF header, as the loader reads it
    kcfi: Optional[bool] = None     # built with Clang's kCFI (module_kcfi(); None: unknown)

    @property
    def columns(self):
        """The Module.symvers columns of its release."""
        return layout_for(self.version).columns

    @property
    def vermagic(self):
        return self.modinfo.get("vermagic", [None])[0]


MACHINES = {EM_386: "i386", EM_MIPS: "mips", EM_PPC: "powerpc", EM_PPC64: "ppc64",
            EM_S390: "s390", EM_ARM: "arm", EM_X86_64: "x86-64", EM_AARCH64: "arm64",
            EM_RISCV: "riscv", EM_LOONGARCH: "loongarch"}


class Build(NamedTuple):
    """What modules of one build share with their kernel: the release (vermagic's first
    word), the ELF class, byte order and machine; None where unknown."""
    release: Optional[str]
    bits: Optional[int]
    big_endian: Optional[bool]
    machine: Optional[int]

    def words(self):
        """Its ELF class, byte order and machine, as far as known: '64-bit big-endian ppc64'."""
        return " ".join(word for word in (
            self.bits and "%d-bit" % self.bits,
            None if self.big_endian is None else "big-endian" if self.big_endian else
            "little-endian",
            None if self.machine is None else MACHINES.get(self.machine,
                                                           "machine %d" % self.machine)) if word)


class ModuleFile(NamedTuple):
    path: str           # as the user knows it: a file, or archive:member
    name: str           # its Module.symvers module column
    module: Module


def _module_vermagic_version(data):
    m = VERMAGIC.search(data)
    return parse_version(m.group(1).decode("latin-1")) if m else None


def read_module(data, version=None):
    """A Module from a kernel module's bytes; `version` is the layout of one without a
    vermagic; one too broken to read raises SymversError."""
    try:
        elf = ElfObject(data)
        info = elf.section(".modinfo")
        modinfo = {}
        for entry in data[info[0]:info[0] + info[1]].split(b"\0") if info else ():
            key, equal, value = entry.decode("latin-1").partition("=")
            if equal:
                modinfo.setdefault(key, []).append(value)
        version = _module_vermagic_version(data) or version
        magic = modinfo.get("vermagic", [""])[0].split(" ")[0] or None
        this_module = elf.section(THIS_MODULE)
        return Module(_module_exports(elf, version), version, modinfo, elf.undefined(),
                      _versions(elf), module_signature(data),
                      Build(magic, elf.bits, elf.e == ">", elf.machine), embedded_config(data),
                      this_module and this_module[1], elf.relocation_types(),
                      elf.section(".BTF") is not None, bytes(data[:64]), module_kcfi(elf))
    except (struct.error, IndexError, ValueError, OverflowError) as e:
        raise SymversError("corrupt module: %s" % e, EXIT_INCONSISTENT) from None


class _RelocatedSection:
    """A section of a module whose fields its relocations fill in (__ksymtab*, __kcrctab*);
    `field` bytes each."""

    def __init__(self, elf, name, field):
        self.elf, self.name, self.field = elf, name, field
        self.section = elf.section(name)
        self.relocations = elf.relocations(name) if self.section else {}

    def string(self, where, pattern, what):
        """The string the relocation of the field at `where` refers to; None without one."""
        if where not in self.relocations:
            return None
        _, offset = self.elf.target(self.section, (where, self.relocations[where]), self.field)
        data = self.elf.data
        m = pattern.match(data, offset) if 0 <= offset < len(data) else None
        if m is None:
            raise SymversError("%s is not a valid string" % what, EXIT_INCONSISTENT)
        return m.group().decode("ascii")

    def crc(self, i):
        """The CRC in slot i: before 5.19 a relocation to an absolute __crc_* symbol (or,
        with MODULE_REL_CRCS, to the CRC's place), from 5.19 the value in place."""
        if self.section is None or (i + 1) * self.field > self.section[1]:
            return 0
        slot, elf = i * self.field, self.elf
        if slot in self.relocations:
            shndx, value = elf.target(self.section, (slot, self.relocations[slot]), self.field)
            return value if shndx is None else \
                struct.unpack_from(elf.e + "I", elf.data, value)[0]
        return struct.unpack_from(elf.e + ("I" if self.field == 4 else "Q"), elf.data,
                                  self.section[0] + slot)[0]


def _module_exports(elf, version):
    """The exported symbols of a kernel module, as its loader would see them: the
    __ksymtab* entries through their relocations, names and namespaces in
    __ksymtab_strings, CRCs from __kcrctab*, GPL-only from __kflagstab from 7.1, in the
    layout of `version`."""
    if not any(name.startswith("__ksymtab") for name in elf.names):
        return []
    if version is None:
        raise SymversError("no vermagic in the module: give -k", EXIT_NOT_FOUND)
    layout = layout_for(version)
    # a relocatable object is linked at 0: its fields are section offsets
    fmt = TableFormat(Image(elf.data, 0, elf.ptr_size, elf.e), layout,
                      layout.prel32 and elf.machine in PREL32_MACHINES)
    flags = elf.section("__kflagstab") if layout.flagstab else None
    symbols = []
    for table in layout.section_order:
        ksymtab = _RelocatedSection(elf, "__ksymtab" + table.suffix, fmt.field)
        if ksymtab.section is None:
            continue
        kcrctab = _RelocatedSection(elf, "__kcrctab" + table.suffix, fmt.crc_width)
        for i in range(ksymtab.section[1] // fmt.step):
            at = i * fmt.step
            what = "export %d of %s" % (i, table.name)
            name = ksymtab.string(at + fmt.field, NAME, "name of " + what)
            if name is None:
                raise SymversError("%s has no name relocation" % what, EXIT_INCONSISTENT)
            namespace = layout.namespace and ksymtab.string(at + 2 * fmt.field, NAMESPACE,
                                                            "namespace of " + what)
            export_type = table.name
            if flags is not None and i < flags[1]:
                export_type = GPL.name if elf.data[flags[0] + i] & 1 else PLAIN.name
            symbols.append(Symbol(kcrctab.crc(i) & 0xFFFFFFFF, name, export_type,
                                  namespace or ""))
    return _unique(symbols)


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


def _load_module(job):
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


def _load_modules(jobs):
    return [_load_module(job) for job in jobs]


MODULE_CHUNK = 32       # modules a worker reads per task
ERRORS_SHOWN = 20       # unreadable modules listed one by one; then a count


def read_modules(paths, version=None, progress=None, skip_bad=False, max_size=MAX_SIZE):
    """[ModuleFile] of every module in `paths` (directories, module files, archives), in
    module order, read in parallel; `version` is the layout of modules without a vermagic.
    Every module that cannot be read is reported at once, in one SymversError, or, with
    `skip_bad`, each in a warning and left out.  `progress(done, total)` is called as they
    are read."""
    sources = [source for top in paths for source in module_sources(top, max_size)]
    if not sources:
        raise SymversError("no *.ko, *.ko.xz, *.ko.zst or *.ko.gz in %s" % ", ".join(paths),
                           EXIT_INPUT)
    jobs = [source + (version,) for source in sources]
    modules, errors = [], []
    results = _load_all(jobs)
    try:
        for done, (label, name, module, error) in enumerate(results, 1):
            if error:
                errors.append(error)
            else:
                modules.append(ModuleFile(label, name, module))
            if progress:
                progress(done, len(jobs))
    finally:
        results.close()     # the workers stop now, whatever stopped this
    _bad_modules(errors, len(jobs), "cannot be read", skip_bad)
    return modules


def _bad_modules(errors, total, what, skip_bad):
    """Every module that cannot be used, said at once (a count after the first ones), as
    one SymversError; with `skip_bad`, a warning each."""
    if errors and not skip_bad:
        shown = errors[:ERRORS_SHOWN] + (["... and %d more" % (len(errors) - ERRORS_SHOWN)]
                                         if len(errors) > ERRORS_SHOWN else [])
        raise SymversError("%d of %d modules %s (--skip-bad-modules leaves them out):\n  %s"
                           % (len(errors), total, what, "\n  ".join(shown)), EXIT_INCONSISTENT)
    for error in errors:
        _log.warning("left out: %s", error)


POOL_HELD = {signal.SIGINT, signal.SIGTERM}


def _pool_worker():
    """A worker ignores Ctrl-C (the parent stops it, and says so once) and dies of SIGTERM,
    which the parent may handle otherwise (main() does) and sends to stop it: both held
    from its fork (see _load_all) until it takes them so."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, POOL_HELD)


class _PoolSignalsHeld:
    """Ctrl-C and SIGTERM held in this thread while it is in the pool's code, taken (if they
    came) as it leaves: raised there, an exception could leave one of the pool's locks
    taken (a `with` is not signal-safe), and terminate() would wait for it forever."""

    def __enter__(self):
        self.held = signal.pthread_sigmask(signal.SIG_BLOCK, POOL_HELD)

    def __exit__(self, *exc):
        signal.pthread_sigmask(signal.SIG_SETMASK, self.held)


def _load_all(jobs):
    """_load_module() of every job, in order, as a generator: by a process pool where there
    are cores and chunks to share, else (one core, a few modules, or no POSIX semaphores:
    Termux, a read-only /dev/shm) in this process.  Closing it stops the workers."""
    chunks = [jobs[i:i + MODULE_CHUNK] for i in range(0, len(jobs), MODULE_CHUNK)]
    pool = None
    try:
        if len(chunks) > 1 and (os.cpu_count() or 1) > 1:
            import multiprocessing
            # held while the pool starts, too: a worker forked before its initializer has run
            # does not take them as this process would (a traceback), and the pool is
            # assigned (so stopped below) before they stop anything; the pool's threads keep
            # them held, and so the workers they fork later
            with _PoolSignalsHeld():
                try:
                    pool = multiprocessing.Pool(initializer=_pool_worker)
                except (ImportError, OSError, NotImplementedError) as e:
                    _log.info("reading the modules in one process (%s)", e)
        if pool is None:
            yield from map(_load_module, jobs)
            return
        with _PoolSignalsHeld():
            results = pool.imap(_load_modules, chunks)
        while True:     # a Ctrl-C taken between the waits: a tenth of a second after it came
            with _PoolSignalsHeld():
                try:
                    chunk = results.next(timeout=0.1)
                except multiprocessing.TimeoutError:
                    continue
                except StopIteration:
                    return
            yield from chunk
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def module_symvers(modules):
    """Module.symvers lines of the modules read_modules() gives, in module order.  A module
    met twice (Android's vendor ramdisk and vendor_dlkm) gives its lines once; a symbol two
    modules export keeps both lines, as modpost of an external module accepts them, and is
    said."""
    lines, read, owners = [], {}, {}
    for label, name, module in modules:
        own = format_symvers([s._replace(module=name) for s in module.exports],
                             module.columns) if module.exports else []
        if name in read:
            if read[name][1] != own:
                raise SymversError("%s and %s are both module %s, with other exports: give "
                                   "one of them" % (read[name][0], label, name),
                                   EXIT_INCONSISTENT)
            continue
        read[name] = (label, own)
        lines += own
        for symbol in module.exports:
            owner, crc = owners.setdefault(symbol.name, (name, symbol.crc))
            if owner == name:
                continue
            if crc == symbol.crc:
                _log.info("%s is exported by %s and by %s: both lines kept", symbol.name,
                          owner, name)
            else:       # a module built against one is refused beside the other
                _log.warning("%s is exported by %s with CRC 0x%08x and by %s with CRC 0x%08x: "
                             "both lines kept", symbol.name, owner, crc, name, symbol.crc)
    _log.info("%d modules read, %d export %d symbols", len(modules),
              sum(bool(m.module.exports) for m in modules), len(lines))
    return lines


def modules_config(paths, max_size=MAX_SIZE):
    """The .config of kernel/configs.ko (CONFIG_IKCONFIG=m) in `paths`, or None."""
    for top in paths:
        for label, name, compression, source in module_sources(top, max_size):
            if name.rsplit("/", 1)[-1] == "configs":
                _, _, module, error = _load_module((label, name, compression, source, None))
                if error:
                    raise SymversError(error, EXIT_INCONSISTENT)
                return module.config
    return None


# --- BTF: the kernel's own description of its types ----------------------------------------
# CONFIG_DEBUG_INFO_BTF kernels (Debian's, Android's GKI, most distributions') carry .BTF in
# their read-only data: a header, then btf_type records, each followed by what its kind
# needs (Documentation/bpf/btf.rst).

# a header's first 8 bytes, little- and big-endian (magic 0xeb9f, version 1, flags 0,
# hdr_len 24), each found by bytes.find: a regex alternation of the two is 30 times slower
BTF_MAGICS = (b"\x9f\xeb\x01\x00\x18\x00\x00\x00", b"\xeb\x9f\x01\x00\x00\x00\x00\x18")
BTF_HEADER_FIELDS = "magic version flags hdr_len type_off type_len str_off str_len"
(BTF_INT, BTF_PTR, BTF_ARRAY, BTF_STRUCT, BTF_UNION, BTF_ENUM, BTF_FWD, BTF_TYPEDEF,
 BTF_VOLATILE, BTF_CONST, BTF_RESTRICT, BTF_FUNC, BTF_FUNC_PROTO, BTF_VAR, BTF_DATASEC,
 BTF_FLOAT, BTF_DECL_TAG, BTF_TYPE_TAG, BTF_ENUM64) = range(1, 20)
# kind -> (bytes after the btf_type, bytes per vlen item): int, ptr, array, struct, union,
# enum, fwd, typedef, volatile, const, restrict, func, func_proto, var, datasec, float,
# decl_tag, type_tag, enum64
BTF_KINDS = {1: (4, 0), 2: (0, 0), 3: (12, 0), 4: (0, 12), 5: (0, 12), 6: (0, 8), 7: (0, 0),
             8: (0, 0), 9: (0, 0), 10: (0, 0), 11: (0, 0), 12: (0, 0), 13: (0, 8), 14: (4, 0),
             15: (0, 12), 16: (0, 0), 17: (4, 0), 18: (0, 0), 19: (0, 12)}


class Struct(NamedTuple):
    """A structure as the kernel's BTF describes it."""
    name: str
    size: int
    members: dict       # name -> byte offset


def _btf_header(data, at):
    """(byte order, header, bytes in all) of the BTF blob at `at`: the header, then its type
    and string sections, as pahole writes .BTF and /sys/kernel/btf/vmlinux holds it."""
    e = "<" if data[at:at + 1] == b"\x9f" else ">"
    header = _Record("BtfHeader", BTF_HEADER_FIELDS, e + "HBBIIIII").read(data, at)
    return e, header, header.hdr_len + max(header.type_off + header.type_len,
                                           header.str_off + header.str_len)


def _btf_types(data, at):
    """(byte order, header, where its strings start, its types) of the BTF blob at `at`; the
    types an iterator of (name offset, kind, vlen, kind_flag, size or type, where what its kind
    adds starts, where the next type starts).  A blob outside `data`, a type of no kind or
    named outside the strings, types overrunning their section raise ValueError."""
    e, header, _ = _btf_header(data, at)
    first = at + header.hdr_len + header.type_off
    strings = at + header.hdr_len + header.str_off
    end = first + header.type_len
    if end > len(data) or strings + header.str_len > len(data) or not header.type_len:
        raise ValueError("BTF blob outside the data")

    def types(at=first):
        record = struct.Struct(e + "III")
        while at < end:
            name_off, info, ref = record.unpack_from(data, at)
            kind, vlen = info >> 24 & 0x1F, info & 0xFFFF
            if kind not in BTF_KINDS or name_off >= header.str_len:
                raise ValueError("BTF type of kind %d" % kind)
            fixed, each = BTF_KINDS[kind]
            body = at + record.size
            at = body + fixed + each * vlen
            if at > end:
                raise ValueError("BTF types overrun their section")
            yield name_off, kind, vlen, info >> 31, ref, body, at

    return e, header, strings, types()


def _btf_struct_at(data, at, name):
    """The Struct `name` of the BTF blob at `at`, None when it has none: found by its name,
    not by building every type: the string (every string follows a NUL: the first is ""),
    then a struct type naming it (types are records of 4-byte words), only its members read
    and checked (C identifiers among the strings, or none: an anonymous union's; offsets
    within its size).  With `name`
    None, the blob walked type by type, None; a blob that does not parse (sections outside
    `data`; walked: a type of no kind, types overrunning their section; a corrupt copy left
    in memory) raises ValueError."""
    e, header, strings, types = _btf_types(data, at)
    if name is None:
        for _ in types:
            pass
        return None
    first, end = at + header.hdr_len + header.type_off, \
        at + header.hdr_len + header.type_off + header.type_len
    text = data.find(b"\0%s\0" % name.encode(), strings, strings + header.str_len)
    if text < 0:
        return None
    word, member = struct.Struct(e + "II"), struct.Struct(e + "III")
    needle = struct.pack(e + "I", text + 1 - strings)
    where = data.find(needle, first, end)
    while where >= 0:
        _, info = word.unpack_from(data, where)
        if (where - first) % 4 == 0 and info >> 24 & 0x1F == BTF_STRUCT:
            break
        where = data.find(needle, where + 1, end)
    else:
        return None
    vlen, bitfields, size = info & 0xFFFF, info >> 31, word.unpack_from(data, where + 4)[1]
    body = where + 12
    if body + vlen * member.size > end:
        raise ValueError("BTF struct %s overruns its section" % name)
    members = {}
    for member_name, _, offset in member.iter_unpack(data[body:body + vlen * member.size]):
        bits = offset & 0xFFFFFF if bitfields else offset
        text = _cstring(data, strings + member_name) if member_name < header.str_len else "?"
        if text and not (text.isascii() and text.isidentifier()) or bits > 8 * size:
            raise ValueError("BTF struct %s with a member out of place" % name)
        members[text] = bits // 8
    return Struct(name, size, members)


def _btf_blobs(data, name=None):
    """(offset, Struct `name` or None) of each BTF blob in `data` that parses from end to
    end."""
    at = -1
    while True:         # the nearest of either magic: the second searched up to the first's
        nearest = len(data)
        for magic in BTF_MAGICS:
            found = data.find(magic, at + 1, nearest)
            nearest = found if found >= 0 else nearest
        if nearest == len(data):
            return
        at = nearest
        try:
            yield at, _btf_struct_at(data, at, name)
        except (ValueError, struct.error, IndexError):
            continue


def btf_struct(data, name):
    """The Struct `name` as the first BTF blob in `data` that parses describes it, or None."""
    return next((found for _, found in _btf_blobs(data, name) if found is not None), None)


class Btf:
    """Every type of a BTF blob, by id (0 is void): its kind, name, size or the type it
    refers to, and what its kind lists: a struct's or union's members (name, type, bit
    offset, bitfield bits), a prototype's parameters (name, type), an enum's values (name,
    value), an array's (element type, count).  Parsing is bounded by the blob: each type
    takes 12 bytes at least, each item its own; a reference outside the blob is void."""

    # kind -> struct format of its vlen items, read at C speed
    ITEMS = {BTF_STRUCT: "III", BTF_UNION: "III", BTF_ENUM: "Ii", BTF_ENUM64: "IIi",
             BTF_FUNC_PROTO: "II"}
    REFERS = (BTF_PTR, BTF_TYPEDEF, BTF_VOLATILE, BTF_CONST, BTF_RESTRICT, BTF_FUNC, BTF_VAR,
              BTF_TYPE_TAG)
    QUALIFIERS = {BTF_CONST: "const ", BTF_VOLATILE: "volatile ", BTF_RESTRICT: "restrict ",
                  BTF_TYPE_TAG: ""}

    def __init__(self, blob):
        e, header, strings, types = _btf_types(blob, 0)
        names, at = {}, 0
        for name in bytes(blob[strings:strings + header.str_len]).split(b"\0"):
            names[at] = name.decode("latin-1")
            at += len(name) + 1
        items = {kind: struct.Struct(e + fmt) for kind, fmt in self.ITEMS.items()}
        array = struct.Struct(e + "III")
        self.kinds, self.names, self.refs, self.items, self.kind_flags = [0], [""], [0], [()], [0]
        for name_off, kind, _, kind_flag, ref, body, end in types:
            if kind in items:
                listed = tuple(items[kind].iter_unpack(blob[body:end]))
            elif kind == BTF_ARRAY:
                element, _, count = array.unpack_from(blob, body)
                listed = (element, count)
            else:
                listed = ()
            self.kinds.append(kind)
            self.names.append(names.get(name_off, ""))
            self.refs.append(ref)
            self.items.append(listed)
            self.kind_flags.append(kind_flag)
        self.names_of = names

    def __len__(self):
        return len(self.kinds)

    def referenced(self, tid):
        """The ids type `tid` refers to: what a pointer, typedef or qualifier names, an
        array's element, a struct's member types, a prototype's return and parameters."""
        kind, items = self.kinds[tid], self.items[tid]
        if kind in self.REFERS:
            found = (self.refs[tid],)
        elif kind == BTF_ARRAY:
            found = (items[0],)
        elif kind in (BTF_STRUCT, BTF_UNION):
            found = tuple(member[1] for member in items)
        elif kind == BTF_FUNC_PROTO:
            found = (self.refs[tid],) + tuple(param[1] for param in items)
        else:
            found = ()
        return tuple(t for t in found if 0 < t < len(self.kinds))

    def key(self, tid):
        """How a named type is known on both sides ("struct sk_buff", "u32"), or None."""
        kind, name = self.kinds[tid], self.names[tid]
        if not name:
            return None
        if kind in (BTF_STRUCT, BTF_UNION, BTF_ENUM, BTF_ENUM64):
            return "%s %s" % ({BTF_UNION: "union", BTF_STRUCT: "struct"}.get(kind, "enum"),
                              name)
        return name if kind in (BTF_INT, BTF_FLOAT, BTF_TYPEDEF) else None

    def text(self, tid, depth=0):
        """A type as C writes it where it is used: named types by their name, anonymous
        ones spelled out (to a depth of 8)."""
        if not 0 < tid < len(self.kinds):
            return "void"
        kind, name, ref = self.kinds[tid], self.names[tid], self.refs[tid]
        key = self.key(tid)
        if key is not None:
            return key
        if depth > 8:
            return "..."
        if kind == BTF_FWD:
            return "%s %s" % ("union" if self.kind_flags[tid] else "struct", name)
        if kind == BTF_PTR and 0 < ref < len(self.kinds) and \
                self.kinds[ref] == BTF_FUNC_PROTO:
            return self.text(ref, depth + 1).replace(" (", " (*)(", 1)
        if kind == BTF_PTR:
            return self.text(ref, depth + 1) + " *"
        if kind in self.QUALIFIERS:
            return self.QUALIFIERS[kind] + self.text(ref, depth + 1)
        if kind == BTF_ARRAY:
            return "%s[%d]" % (self.text(self.items[tid][0], depth + 1), self.items[tid][1])
        if kind == BTF_FUNC_PROTO:
            return "%s (%s)" % (self.text(ref, depth + 1), ", ".join(
                ("%s %s" % (self.text(t, depth + 1), self.names_of.get(n, "")) if t else
                 "...").strip() for n, t in self.items[tid]))
        if kind in (BTF_STRUCT, BTF_UNION, BTF_ENUM, BTF_ENUM64):
            return "%s {%s}" % ({BTF_UNION: "union", BTF_STRUCT: "struct"}.get(kind, "enum"),
                                "; ".join(_declared(member)
                                          for member in self.members(tid, depth + 1)))
        return name or "void"

    def members(self, tid, depth=0, base=0):
        """A struct's or union's members, (name, type, byte offset, bitfield bits or 0),
        those of an anonymous struct or union member among them as C reaches them (skb->next);
        an enum's values, (name, value)."""
        kind, flag, names = self.kinds[tid], self.kind_flags[tid], self.names_of
        if kind == BTF_ENUM:
            return [(names.get(name, ""), value) for name, value in self.items[tid]]
        if kind == BTF_ENUM64:
            return [(names.get(name, ""), high << 32 | low) for name, low, high in self.items[tid]]
        found = []
        for name, t, offset in self.items[tid]:
            at = base + (offset & 0xFFFFFF if flag else offset) // 8
            if not name and 0 < t < len(self.kinds) and depth < 8 and \
                    self.kinds[t] in (BTF_STRUCT, BTF_UNION) and not self.names[t]:
                found += self.members(t, depth + 1, at)
            else:
                found.append((names.get(name, ""), self.text(t, depth), at,
                              offset >> 24 if flag else 0))
        return found


def _declared(member):
    """A member as its struct declares it ("u32 len", "int flags:3"), or an enum's value
    ("NAME = 3")."""
    if len(member) == 2:
        return "%s = %d" % member
    name, text, _, bits = member
    return "%s%s%s" % (text, " " + name if name else "", ":%d" % bits if bits else "")


def btf_blob(data):
    """The kernel's BTF, byte for byte (what /sys/kernel/btf/vmlinux holds): the first blob
    in `data` that parses from end to end, or None."""
    for at, _ in _btf_blobs(data):
        return bytes(data[at:at + _btf_header(data, at)[2]])
    return None


# --- Loaded modules: the exports of the modules a dump holds -------------------------------
# Every loaded module is a struct module on the kernel's `modules` list.  Its head has not
# changed since 2.6: enum module_state state (0-3), struct list_head list, then
# char name[MODULE_NAME_LEN] (64 bytes minus a pointer).  It is found by that head in module
# memory, and believed only on the ring: each node's next->prev is the node, and exactly one
# node is no module (the list head); a stale copy (an unloaded module, the
# .gnu.linkonce.this_module of a .ko in the page cache) is on no ring.  Where its export
# tables are in it comes from the kernel's BTF, else from a vote over every module on the
# ring for where a pointer to `count` valid kernel_symbols is.  In a damaged dump, one bad
# module costs only itself: each link is checked on its own, a link broken one way is walked
# around from the other direction, and a module that cannot be read whole (a byte of it not
# in the dump, a table not valid, tables overlapping another module's) is named, with why,
# and left out; the others are read.

MODULE_NAME_LEN = 64
MODULE_STATES = 4           # LIVE, COMING, GOING, UNFORMED
MAX_MODULES = 8192


# The shape of an export table in struct module, for the vote: where its CRC pointer, its
# count (and from 7.1 its flag pointer) are from its symbol pointer, as (pointers, bytes):
# {syms, num_syms, crcs}; {syms, crcs, num_syms}; {num_gpl_syms, gpl_syms, gpl_crcs}, the
# count a 32-bit word right before (after num_kp); {syms, crcs, flagstab, num_syms}
SYMS_COUNT_CRCS = ((2, 0), (1, 0))
SYMS_CRCS_COUNT = ((1, 0), (2, 0))
COUNT_SYMS_CRCS = ((1, 0), (0, -4))
SYMS_CRCS_FLAGS_COUNT = ((1, 0), (3, 0), (2, 0))


# the fields of each export table in struct module, as BTF names them
MODULE_FIELDS = ((PLAIN, "syms", "crcs", "num_syms"),
                 (GPL, "gpl_syms", "gpl_crcs", "num_gpl_syms"),
                 (UNUSED, "unused_syms", "unused_crcs", "num_unused_syms"),
                 (UNUSED_GPL, "unused_gpl_syms", "unused_gpl_crcs", "num_unused_gpl_syms"),
                 (GPL_FUTURE, "gpl_future_syms", "gpl_future_crcs", "num_gpl_future_syms"))


class ModuleLayout(NamedTuple):
    """The export tables of struct module from a release on: each one's shape (in the
    order of the release's section_order)."""
    since: tuple
    shapes: dict            # ExportType -> its shape


MODULE_LAYOUTS = (
    # 2.6.24's (and 2.6.0's) struct module: each table as {syms, num_syms, crcs}
    ModuleLayout((2, 6, 0), {t: SYMS_COUNT_CRCS for t, *_ in MODULE_FIELDS}),
    # 2.6.32's: the counts beside each other for 64-bit padding (Vlasenko 2007, Kennedy
    # 2008, "module: reorder struct module to save space on 64 bit builds", for 2.6.27)
    ModuleLayout((2, 6, 27), {PLAIN: SYMS_CRCS_COUNT, GPL: COUNT_SYMS_CRCS,
                              UNUSED: SYMS_CRCS_COUNT, UNUSED_GPL: COUNT_SYMS_CRCS,
                              GPL_FUTURE: SYMS_CRCS_COUNT}),
    # 7.1's kflagstab series: one table, GPL-only as a flag: {syms, crcs, flagstab, num_syms}
    ModuleLayout((7, 1, 0), {PLAIN: SYMS_CRCS_FLAGS_COUNT}),
)


def _module_layout(version):
    return [row for row in MODULE_LAYOUTS if row.since <= tuple(version)][-1]


class LoadedModule(NamedTuple):
    name: Optional[str]         # as the kernel holds it (None: not readable)
    address: Optional[int]      # of its struct module (None: a part of the list not read)
    exports: list               # [Symbol], module: its name
    missing: Optional[str] = None   # why it cannot be read whole (then exports is [])


class _Unreadable(Exception):
    """What keeps one loaded module from being read whole: a byte of it not in the dump, a
    table not valid.  That module is named and left out; the others are read."""


class _Kernel(NamedTuple):
    """What reading a dump's modules needs of the kernel found in it."""
    fmt: TableFormat    # its export tables' format (its image: the window of the dump)
    version: tuple
    machine: Optional[int]


# Where module memory is, by architecture (Documentation/arch/*/memory layouts): x86-64's
# module mapping space (from ffffffffa0000000 before KASLR grew the kernel image mapping to
# 1 GiB), the vmalloc area above PAGE_OFFSET on i386, MODULES_VADDR (PAGE_OFFSET - 16 MiB)
# and vmalloc on arm.  arm64's: VMCOREINFO's MODULES_VADDR-MODULES_END, and with KASLR
# within 4 GiB of the kernel text, which moves with it (module_alloc_base, 4.6 to 6.4; from
# 6.5 in 2 GiB of it, commit 3e35d303ab7d), else the upper half of kernel space.  riscv64's
# last 4 GiB (Documentation/arch/riscv/vm-layout.rst, 5.13 on): modules and BPF in the 2 GiB
# below the kernel's end (MODULES_VADDR = _end - 2 GiB, MODULES_END = _start), the kernel
# in the last 2 GiB, KASLR (6.6) moving it within its first 1 GiB.  Book3S-64's vmalloc
# space (module_alloc(): VMALLOC_START-VMALLOC_END where no MODULES_VADDR, 6.1): 512 TiB
# from KERN_VIRT_START (radix.h, hash-64k.h), with the hash MMU's 4 KiB pages 1 TiB from
# 0xc0003d0000000000 (hash-4k.h, 5.8 on).  LoongArch's at the start of XKVRANGE
# (MODULES_VADDR = vm_map_base + PCI_IOSIZE + 2 pages; 256 MiB, 2 GiB in Debian's 7.2, whose
# VMCOREINFO says VMALLOC_START, the area's end, 0xffff800082008000).
MODULE_AREAS = {EM_X86_64: [(0xffffffffa0000000, 0xffffffffff600000)],
                EM_386: [(0xc0000000, 0xfffff000)], EM_ARM: [(0x7f000000, 0xfffff000)],
                EM_RISCV: [(0xffffffff00000000, 1 << 64)],
                EM_LOONGARCH: [(LOONGARCH_KVRANGE, LOONGARCH_KVRANGE + (4 << 30))],
                EM_PPC64: [(0xc0003d0000000000, 0xc0003e0000000000),
                           (0xc008000000000000, 0xc00a000000000000)]}
# MIPS's by pointer size (arch/mips/kernel/module.c, asm/pgtable-64.h, pgtable-32.h): 64-bit,
# CKSSEG to the fixmap (MODULE_START, a -msym32 kernel: Debian's 5kc-malta 6.1 under QEMU
# loads them at 0xffffffffc0xxxxxx) or vmalloc in XKSEG; 32-bit, vmalloc in KSEG2
MIPS_MODULE_AREAS = {8: [(0xffffffffc0000000, 1 << 64),
                         (MIPS_XKSEG, MIPS_XKSEG + (1 << 48) - (1 << 32))],
                     4: [(0xc0000000, 0xfffff000)]}
ARM64_MODULE_REACH = 4 << 30
# s390x's (asm/pgtable.h MODULES_LEN; arch/s390/boot/startup.c setup_kernel_memory_layout()):
# from 6.10, whose kernel is mapped apart from its physical address (Documentation/arch/s390/
# mm.rst; KASLR moves it), the 2 GiB below the kernel's start rounded down to 1 MiB
# (VMCOREINFO's KERNELOFFSET; without it, below the window's start and up to its end: the
# kernel's own pages are not module memory); before, 2 GiB at the top of the address space
# its ASCE spans, under the absolute lowcore and memcpy windows (the last 4 GiB read)
S390_MODULES_LEN = 2 << 30
S390_APART = (6, 10, 0)


def _architecture(memory, kernel):
    """The e_machine the kernel runs as: the dump's, the kernel image's, its vermagic's,
    with the pointer size telling i386 from x86-64 (QEMU writes i386 dumps as EM_X86_64
    ELF) and 32-bit powerpc from ppc64 (their vermagic words are alike)."""
    machine = memory.machine or kernel.machine or _vermagic_machine(kernel.fmt.image.data)
    if machine == EM_X86_64 and kernel.fmt.image.ptr_size == 4:
        return EM_386
    if machine == EM_PPC64 and kernel.fmt.image.ptr_size == 4:
        return EM_PPC
    return machine


def _module_areas(memory, kernel, machine, scheme):
    """[(low, high)] of the virtual memory modules can be in, or [] where unknown."""
    if machine in MODULE_AREAS:
        return MODULE_AREAS[machine]
    if machine == EM_MIPS:
        return MIPS_MODULE_AREAS[kernel.fmt.image.ptr_size]
    if machine == EM_S390:
        if tuple(kernel.version) < S390_APART:
            top = 1 << scheme.va_bits if scheme is not None else None
            return [(top - 2 * S390_MODULES_LEN, top)] if top else []
        start = _numbers(memory.info, "KERNELOFFSET")
        start, end = (start[0], start[0]) if start else \
            (kernel.fmt.image.base, kernel.fmt.image.base + len(kernel.fmt.image.data))
        return [((start & ~((1 << 20) - 1)) - S390_MODULES_LEN, end)]
    areas = [tuple(_numbers(memory.info, "NUMBER(MODULES_VADDR)", "NUMBER(MODULES_END)")
                   or ())]
    text = _numbers(memory.info, "SYMBOL(_stext)")
    if text:
        areas.append((text[0] - ARM64_MODULE_REACH, text[0] + ARM64_MODULE_REACH))
    areas = [area for area in areas if area]
    if not areas and scheme is not None and scheme.extend == "upper":
        areas = [((1 << 64) - (1 << scheme.va_bits - 1), 1 << 64)]
    return areas


QEMU_CR = 392           # QEMUCPUState: cr[5] after the registers and ten segments
# s390x's ELF notes (QEMU's target/s390x/arch_dump.c, the kernel's arch/s390/kernel/
# crash_dump.c): "LINUX" NT_S390_CTRS holds the 16 control registers, big-endian; CR13 the
# home space's ASCE, the kernel's (arch/s390/mm/init.c, vmem.c: kernel_asce loaded in 1 and
# 13; in Debian's 7.2 under QEMU, CR1 and CR7 held a user process's ASCE, CR13 swapper_pg_dir)
NT_S390_CTRS = 0x304
S390_CR = struct.Struct(">Q")
S390_TABLE = 2048 * 8       # a region or segment table: swapper_pg_dir
S390_INVALID = 0x20         # bit 58 of a region or segment entry; bits 60-61 its table type
S390_TYPE = 0xC


PTI_USER_PGD = 1 << 12      # CR3 of a task in user mode with PTI: the user half of 8 KiB


def _kernel_offset(memory, kernel, machine):
    """The kernel image's virtual minus physical address, where known: arm64's kimage_voffset,
    x86-64's __START_KERNEL_map - phys_base, ppc64's PAGE_OFFSET (its kernel is in the
    linear map), else the window's (absolute pointers gave its base in a physical dump; on
    i386 and ARM PAGE_OFFSET minus the start of RAM)."""
    found = _image_offset(memory.info, machine)
    if found is not None:
        return found
    if machine == EM_PPC64:
        return PPC64_PAGE_OFFSET
    if kernel.fmt.image.base is not None and memory.window[0] == "physical":
        return kernel.fmt.image.base - memory.window[1]
    return None


def _root_candidates(memory, kernel, machine, offset):
    """(scheme, root, how) to try: what the dump says (QEMU's CPU state; VMCOREINFO's top
    table at the kernel's virtual minus physical `offset`), then a scan of the kernel window
    for a first-level table mapping the kernel where it is."""
    info = memory.info
    for name, _, desc in memory.notes:
        if name == b"QEMU" and len(desc) >= QEMU_CR + 40 and machine in EM_X86:
            cr3, cr4 = struct.unpack_from("<QQ", desc, QEMU_CR + 24)
            if machine == EM_X86_64:
                scheme, root = SCHEMES["x86-64 la57" if cr4 & 1 << 12 else "x86-64"], \
                    cr3 & X86_MASK
            else:
                pae = cr4 & 1 << 5
                scheme, root = SCHEMES["i386 pae" if pae else "i386"], \
                    cr3 & (0xFFFFFFE0 if pae else 0xFFFFF000)
            if root & PTI_USER_PGD:     # the kernel's half first
                yield scheme, root & ~PTI_USER_PGD, "CR3 of QEMU's CPU state (PTI's kernel half)"
            yield scheme, root, "CR3 of QEMU's CPU state"
            break
    ctrs = next((note.desc for note in memory.notes if note.name == b"LINUX" and note.type
                 == NT_S390_CTRS and len(note.desc) >= 128), None) if machine == EM_S390 else None
    if ctrs:        # the first CPU's: CR13 is the kernel's ASCE on every CPU, in every release
        asce = S390_CR.unpack_from(ctrs, 13 * S390_CR.size)[0]
        if not asce & S390_REAL_SPACE:
            yield S390_SCHEMES[asce >> 2 & 3], asce, "CR13 of the dump's CPU note"
    satp = _numbers(info, "NUMBER(satp)") if machine == EM_RISCV else None
    if satp and satp[0] >> 60 in SATP_MODES:    # riscv's, from 7.x (Debian's 6.12 has none)
        yield RISCV_SCHEMES[SATP_MODES[satp[0] >> 60]], (satp[0] & (1 << 44) - 1) << 12, \
            "VMCOREINFO's satp"
    symbol = next((key for key in ("SYMBOL(init_top_pgt)", "SYMBOL(init_level4_pgt)",
                                   "SYMBOL(swapper_pg_dir)") if key in info), None)
    top = _numbers(info, symbol) if symbol else None
    image = kernel.fmt.image
    if machine == EM_MIPS and top:      # swapper_pg_dir in the kernel's .bss, in KSEG0
        page = int(info.get("PAGESIZE", 4096)).bit_length() - 1         # (KASLR's too)
        shapes = [key for key in MIPS64_LEVELS if key[0] == page] if image.ptr_size == 8 \
            else [(12, False)] if page == 12 else []
        for (_, va_48), (pfn_shift, huge) in itertools.product(shapes,
                                                              MIPS_PTES[image.ptr_size]):
            scheme = _mips_scheme(8 * image.ptr_size, pfn_shift, huge, image.endian == ">",
                                  page, va_48)
            root = _unmapped(scheme.segments, top[0])
            if root is not None:
                yield scheme, root, "VMCOREINFO %s" % symbol
    if machine == EM_LOONGARCH and top:     # swapper_pg_dir in the kernel's .bss, in DMW1
        page, root = int(info.get("PAGESIZE", 0)), _unmapped(LOONGARCH_SEGMENTS, top[0])
        for levels in LOONGARCH_LEVELS.get(page, ()) if root is not None else ():
            yield _loongarch_scheme(page.bit_length() - 1, levels), root, \
                "VMCOREINFO %s" % symbol
    if top and offset is not None:
        root, how = (top[0] - offset) & ((1 << 64) - 1), "VMCOREINFO %s" % symbol
        if machine == EM_X86_64:
            yield SCHEMES["x86-64 la57" if info.get("NUMBER(pgtable_l5_enabled)") == "1"
                          else "x86-64"], root, how
        elif machine == EM_AARCH64:
            granule = {4096: 12, 16384: 14, 65536: 16}.get(int(info.get("PAGESIZE", 4096)), 12)
            t1sz = _numbers(info, "NUMBER(TCR_EL1_T1SZ)")
            va_bits = 64 - t1sz[0] if t1sz else int(info.get("NUMBER(VA_BITS)", 48))
            yield _arm64_scheme(granule, va_bits, kernel.fmt.image.endian == ">"), root, how
        elif machine == EM_386:
            yield SCHEMES["i386 pae" if "CONFIG_X86_PAE" in info else "i386"], root, how
        elif machine == EM_ARM:
            yield SCHEMES["arm lpae" if "CONFIG_ARM_LPAE" in info else "arm"], root, how
        elif machine == EM_RISCV:
            # VA_BITS: the mode the kernel chose at boot (pgtable_l4/l5_enabled)
            va_bits = _numbers(info, "NUMBER(VA_BITS)")
            if va_bits and va_bits[0] in RISCV_SCHEMES:
                yield RISCV_SCHEMES[va_bits[0]], root, how
        elif machine == EM_S390:    # the type its valid entries agree on, the length Linux's
            raw = memory.read(root, S390_TABLE, "physical")
            kinds = {entry >> 2 & 3 for entry in struct.unpack(">2048Q", raw)
                     if not entry & S390_INVALID} if raw else set()
            if len(kinds) == 1:
                kind = kinds.pop()
                yield S390_SCHEMES[kind], root | kind << 2 | 3, how
        elif machine == EM_PPC64:
            for scheme, _ in _book3s_schemes(info):
                yield scheme, root, how
    yield from _scanned_roots(memory, kernel, machine)


def _book3s_schemes(info):
    """[(scheme, the low byte of its first-level entries)] of the kernel's page size
    (VMCOREINFO's PAGESIZE; not said: each), radix first."""
    size = _numbers(info, "PAGESIZE")
    return BOOK3S_SCHEMES.get(size[0], []) if size else \
        [scheme for schemes in BOOK3S_SCHEMES.values() for scheme in schemes]


def _scanned_roots(memory, kernel, machine):
    """Roots found by their content: where the kernel image's own virtual and physical
    addresses are known (a physical dump of a kernel with absolute pointers, whose base
    the name pointers gave), a first-level table that maps its banner where it is: on
    32-bit ARM in the 16 MiB from the first memory of the window (swapper_pg_dir is 16 KiB
    before the kernel text, which starts near the start of RAM), on RISC-V a page of the
    window (swapper_pg_dir is in the kernel's .bss) whose entry for the banner points to a
    table, in each mode from the largest; on s390x likewise a page whose entry for the banner
    is a valid one of each table type from region-first's (the ASCE Linux would make of it:
    that type, the full length); on Book3S-64 a 64 KiB-aligned page of the window
    whose entry for the vmalloc space points, as the scheme's entries do, to a table the
    dump holds (the hash MMU's tables do not map the kernel)."""
    space, start = memory.window
    image = kernel.fmt.image
    if machine == EM_PPC64 and space == "physical":
        for scheme, low_byte in _book3s_schemes(memory.info):
            shift, bits = scheme.levels[0]
            slot = 8 * (scheme.linear[1] >> shift & (1 << bits) - 1)
            for at in range(-start % BOOK3S_PGD_ALIGN, len(image.data) - slot - 7,
                            BOOK3S_PGD_ALIGN):
                entry = BOOK3S_PTE.unpack_from(image.data, at + slot)[0]
                found = _book3s_decode(entry, 0, False)
                if found and found[0] == TABLE and entry & 0xFF == low_byte and \
                        memory.read(found[1], 8, "physical") is not None:
                    yield scheme, start + at, "a first-level table found at %#x" % (start + at)
        return
    if machine not in (EM_ARM, EM_RISCV, EM_S390) or space != "physical" or image.base is None:
        return
    banner = _banner_at(image.data)
    va, pa = image.base + banner, start + banner
    if machine == EM_S390:
        for kind in sorted(S390_SCHEMES, reverse=True):
            scheme = S390_SCHEMES[kind]
            slot = 8 * (va >> scheme.levels[0][0] & 2047)
            for at in range(-start % 4096, len(image.data) - S390_TABLE + 1, 4096):
                if S390_CR.unpack_from(image.data, at + slot)[0] & (S390_INVALID | S390_TYPE) \
                        != kind << 2:
                    continue        # invalid, or another table type's
                asce = start + at | kind << 2 | 3
                tables = _PageTables(memory, scheme, asce, "a first table found at %#x"
                                     % (start + at))
                if tables.translate(va) == pa:
                    yield scheme, asce, tables.how
        return
    if machine == EM_RISCV:
        for bits in sorted(RISCV_SCHEMES, reverse=True):
            scheme = RISCV_SCHEMES[bits]
            slot = 8 * (va >> scheme.levels[0][0] & 511)
            for at in range(-start % 4096, len(image.data) - 4095, 4096):
                if RISCV_PTE.unpack_from(image.data, at + slot)[0] & 0xF != 1:
                    continue        # not valid, or a leaf: the kernel's is a table
                tables = _PageTables(memory, scheme, start + at, "a first-level table "
                                     "found at %#x" % (start + at))
                if tables.translate(va) == pa:
                    yield scheme, start + at, tables.how
        return
    first = start + NONZERO.search(image.data).start()      # a kdump's window: RAM after 0s
    for scheme, align in ((SCHEMES["arm"], 0x4000), (SCHEMES["arm lpae"], 0x1000)):
        low = max(0, (first - (1 << 20)) & ~(align - 1))
        for root in range(low, first + (16 << 20), align):
            tables = _PageTables(memory, scheme, root, "a first-level table found at %#x"
                                 % root)
            if tables.translate(va) == pa:
                yield scheme, root, tables.how


def _head_pattern(pointer, endian):
    """A regex of struct module's head: state, list (two pointers), name."""
    state = b"[\x00-\x03]\x00\x00\x00" if endian == "<" else b"\x00\x00\x00[\x00-\x03]"
    return re.compile(b"(?s)" + state + bytes(pointer - 4) + b".{%d}" % (2 * pointer)
                      + b"[A-Za-z0-9_-]{1,%d}\x00" % (MODULE_NAME_LEN - pointer - 1))


class _Ring(NamedTuple):
    head: int           # the list head (the kernel's `modules`)
    modules: list       # the struct module addresses, in list order
    breaks: list        # [(a gap, what)]: a link broken one way walked around, or a gap


class _ModuleMemory:
    """A dump's virtual memory read as a kernel of this pointer size and byte order."""

    def __init__(self, memory, pointer, endian, machine):
        self.memory, self.pointer, self.endian, self.machine = memory, pointer, endian, machine
        self.word = struct.Struct(endian + ("Q" if pointer == 8 else "I"))
        self.head_pattern = _head_pattern(pointer, endian)

    def read(self, address, size, fill=False):
        if address < 0 or address + size > 1 << 8 * self.pointer:
            return None
        return self.memory.read(address, size, fill=fill)

    def pointer_at(self, address):
        raw = self.read(address, self.pointer)
        return None if raw is None else self.word.unpack(raw)[0]

    def string(self, address, limit=128):
        """The bytes at `address` to its NUL (included), within `limit`: None where one of
        them is not in the dump or there is no NUL (a page at a time: a string ends before
        the page after it, which may be missing)."""
        out = b""
        while len(out) < limit:
            at = address + len(out)
            raw = self.read(at, min(limit - len(out), Memory.PAGE - at % Memory.PAGE), True)
            end = raw.find(b"\0") if raw else -1
            if self.read(at, end + 1 if end >= 0 else len(raw or b"-")) is None:
                return None     # read again: whether the dump holds them
            if end >= 0:
                return out + raw[:end + 1]
            out += raw
        return None

    def kernel_pointer(self, value):
        """Whether a value can be a kernel address (the upper half, ARM's modules below;
        s390x's kernel has an address space of its own, the home space, from 0 up)."""
        if self.machine == EM_S390:
            return bool(value)
        return bool(value) and (value >> 63 if self.pointer == 8 else value >= 0x7f000000)

    def head(self, address):
        """The name of the struct module at `address`, where its head is one, else None."""
        raw = self.read(address, 3 * self.pointer + MODULE_NAME_LEN - self.pointer)
        m = self.head_pattern.match(raw) if raw else None
        if not m:
            return None
        name = raw[3 * self.pointer:]
        text, _, rest = name.partition(b"\0")
        next_, prev = self.word.unpack_from(raw, self.pointer)[0], \
            self.word.unpack_from(raw, 2 * self.pointer)[0]
        if rest.strip(b"\0") or not (self.kernel_pointer(next_) and self.kernel_pointer(prev)):
            return None
        return text.decode("ascii")


def _module_runs(memory, areas, offset):
    """Sorted (start, end) of the virtual memory in the areas that can hold modules: not
    the map the kernel is in (walking page tables: the pages mapped at its virtual minus
    physical `offset`, where known; arm64's kernel is within reach of its modules).  Of
    kcore's sparse space (TiB of vmalloc), only the pages its page tables map."""
    runs = []
    for low, high in areas:
        if memory.virtual_memory is not None:
            runs += [(max(low, start), min(high, end)) for start, end, _ in
                     memory.virtual_memory.runs if start < high and end > low
                     and (start, end) not in memory.linear]
        if memory.tables is not None:       # a page of the last level: 4, 16 or 64 KiB
            page = 1 << memory.tables.scheme.levels[-1][0]
            runs += [(va, va + page) for va, pa in memory.tables.small_pages(low, high)
                     if va - pa != offset]
    merged = []
    for start, end in sorted(runs):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _head_candidates(mm, runs, found):
    """Addresses of what looks like a struct module head in the runs of module memory, each
    also appended to `found`, read a megabyte at a time as they are asked for: the ring
    found through the first live module ends the scan (the rest of module memory unread)."""
    pattern = mm.head_pattern
    top = 1 << 8 * mm.pointer
    for start, end in runs:
        for at in range(start, end, 1 << 20):
            size = min(1 << 20, end - at)
            data = mm.read(at, min(size + MODULE_NAME_LEN, top - at), fill=True)
            for m in pattern.finditer(data):
                if m.start() % mm.pointer == 0 and m.start() < size:
                    found.append(at + m.start())
                    yield at + m.start()


class _Links:
    """The list_heads of a dump's module list, each read once: (next, prev), None where
    not in the dump."""

    def __init__(self, mm):
        self.mm, self.read = mm, {}

    def __call__(self, node):
        if node not in self.read:
            raw = self.mm.read(node, 2 * self.mm.pointer)
            self.read[node] = None if raw is None else \
                tuple(self.mm.word.unpack_from(raw, k * self.mm.pointer)[0] for k in (0, 1))
        return self.read[node]

    def step(self, node, way):
        """The node after (`way` 0) or before (1) `node` where its link and the link back
        agree (next->prev is the node), else None."""
        here = self(node)
        there = here and self(here[way])
        return here[way] if there and there[1 - way] == node else None

    def chain(self, start, way):
        """The nodes from `start` (not included) one `way`, while the links agree, until
        one repeats: (nodes, whether they came back to start)."""
        nodes, seen, node = [], {start}, start
        while len(nodes) < MAX_MODULES:
            node = self.step(node, way)
            if node is None or node in seen:
                break
            seen.add(node)
            nodes.append(node)
        return nodes, node == start


def _ring(mm, candidates, kernel_at):
    """The module list through the candidates, or None.  Its nodes are linked where next
    and prev agree; a ring of them, through exactly one node that is no module (the list
    head; where other nodes are no module either, the one `kernel_at(node)` says is in the
    kernel), is the list whole.  Else the stretches of agreeing links (one through the
    list head) are joined where one link of two says they follow each other; what cannot
    be joined is a gap in the list, said in the _Ring."""
    pointer, links = mm.pointer, _Links(mm)
    tried, stretches, cycles = set(), [], []
    for candidate in candidates:
        start = candidate + pointer
        if start in tried or mm.head(candidate) is None:
            continue
        ahead, closed = links.chain(start, 0)
        before = [] if closed else links.chain(start, 1)[0]
        nodes = before[::-1] + [start] + ahead
        tried.update(nodes)
        if closed:
            ring = _ring_through(mm, nodes, [], kernel_at)
            if ring:
                return ring
            cycles.append(nodes)    # through no list head: a stretch cut off, or stale
        else:
            stretches.append(nodes)

    def label(node):
        name = mm.head(node - pointer)
        return "%#x (%s)" % (node, name or "not a module's")

    def after(node):
        """The stretch whose first node's prev is `node`."""
        return next((s for s in stretches if (links(s[0]) or (0, None))[1] == node), None)

    # a list broken: from each stretch through a list head, the stretches that follow it
    found = []
    for stretch in stretches:
        if _list_head(mm, stretch, kernel_at) is None:
            continue
        nodes, breaks, used = list(stretch), [], {id(stretch)}
        while len(used) <= len(stretches):
            end = nodes[-1]
            following = (links(end) or (None,))[0]
            joined = after(end) or next((s for s in stretches if s[0] == following), None)
            cycle = next((c for c in cycles if following in c), None)
            if joined is None and cycle is not None:    # a stretch whose last link is bad
                joined = cycle[cycle.index(following):] + cycle[:cycle.index(following)]
                cycles.remove(cycle)
            if joined is None and following is not None and links(following) is None:
                joined = after(following)   # one node between, not in the dump: a module
                if joined is not None:      # that cannot be read, named by its address
                    nodes.append(following)
                    end = following
            if joined is stretch:
                breaks.append((False, "the link from %s to %s is broken one way: walked "
                                      "around" % (label(end), label(stretch[0]))))
                break
            if joined is None or id(joined) in used:
                breaks.append((True, "it is broken after the node at %s (next: %s), before "
                                     "the node at %s: the modules between, if any, are not "
                                     "read" % (label(end), "%#x" % following if following
                                               is not None else "not in the dump",
                                               label(stretch[0]))))
                break
            breaks.append((False, "the link from %s to %s is broken one way: walked around"
                                  % (label(end), label(joined[0]))))
            used.add(id(joined))
            nodes += joined
        ring = _ring_through(mm, nodes, breaks, kernel_at)
        if ring:
            found.append((kernel_at(ring.head), len(ring.modules), ring))
    return max(found, key=operator.itemgetter(0, 1))[2] if found else None


def _list_head(mm, nodes, kernel_at):
    """The node of `nodes` that is the list head: the only one the dump holds that is no
    module, else the only one of those in the kernel; None where there is none, or no
    telling."""
    others = [n for n in nodes if mm.head(n - mm.pointer) is None
              and mm.read(n, 2 * mm.pointer) is not None]
    if len(others) > 1:
        others = [n for n in others if kernel_at(n)]
    return others[0] if len(others) == 1 else None


def _ring_through(mm, nodes, breaks, kernel_at):
    """The _Ring of `nodes` in list order, from after its list head, or None."""
    head = _list_head(mm, nodes, kernel_at)
    if head is None:
        return None
    at = nodes.index(head)
    return _Ring(head, [n - mm.pointer for n in nodes[at + 1:] + nodes[:at]], breaks)


class _TableAt(NamedTuple):
    """One export table of struct module, by its fields' offsets."""
    export_type: ExportType
    syms: int
    crcs: int
    count: int
    flags: Optional[int] = None


def _btf_tables(window, pointer, layout):
    """The _TableAt of each export table as the kernel's BTF places them, or None."""
    described = btf_struct(window, "module")
    if described is None:
        return None
    members = described.members
    if members.get("list") != pointer or members.get("name") != 3 * pointer:
        return None
    found = []
    for export_type, syms, crcs, count in MODULE_FIELDS:
        if all(field in members for field in (syms, crcs, count)):
            found.append(_TableAt(export_type, members[syms], members[crcs], members[count],
                                  members.get("flagstab") if layout.flagstab else None))
    return found if any(t.export_type == PLAIN for t in found) else None


VOTE_SPAN = 1024        # bytes of struct module where its export tables are looked for


def _place(at, where, pointer):
    """The offset of a field `where` (pointers, bytes) from the field at `at`."""
    return at + where[0] * pointer + where[1]


def _table_fault(mm, fmt, syms, count):
    """What is wrong with `count` kernel_symbols at `syms` (virtual), or None where the
    dump holds them and their names, valid, sorted as from 3.0."""
    if not 0 < count < MAX_SYMBOLS or not mm.kernel_pointer(syms):
        return "%d entries at %#x: not a table" % (count, syms)
    raw = mm.read(syms, count * fmt.step)
    if raw is None:
        return "%d entries at %#x: not in the dump" % (count, syms)
    names = []
    for i, fields in enumerate(struct.iter_unpack(fmt.entry, raw)):
        at = syms + i * fmt.step
        target = at + fmt.field + fields[1] if fmt.prel32 else fields[1]
        name = mm.string(target) if mm.kernel_pointer(target) else None
        m = NAME.match(name) if name else None
        if m is None:
            return "the name of entry %d (at %#x) is %s" % (
                i, target, "not in the dump" if mm.kernel_pointer(target) and name is None
                and mm.read(target, 1) is None else "not valid")
        names.append(m.group())
    if fmt.layout.sorted and names != sorted(names):
        return "%d entries at %#x: not sorted by name" % (count, syms)
    return None


def _first_name(mm, fmt, syms):
    """Whether the dump holds the first kernel_symbol at `syms` and its valid name: what a
    table's first entry has, and most pointers of struct module have not (a vote reads no
    table of a count that is not one: through QEMU's MIPS, whole minutes)."""
    raw = mm.read(syms, fmt.step)
    if raw is None:
        return False
    value = struct.unpack(fmt.entry, raw)[1]
    target = syms + fmt.field + value if fmt.prel32 else value
    name = mm.string(target) if mm.kernel_pointer(target) else None
    return bool(name and NAME.match(name))


def _voted_tables(mm, kernel, modules):
    """The _TableAt of each export table, where the modules on the ring agree a pointer to
    valid kernel_symbols is, with its count and CRC pointer as the release places them."""
    fmt, pointer = kernel.fmt, mm.pointer
    layout, row = fmt.layout, _module_layout(kernel.version)
    votes = collections.Counter()
    for address in modules:
        raw = mm.read(address, VOTE_SPAN, fill=True)
        for at in range(3 * pointer + MODULE_NAME_LEN - pointer, VOTE_SPAN - 4 * pointer,
                        pointer):
            syms = mm.word.unpack_from(raw, at)[0]
            if not mm.kernel_pointer(syms) or not _first_name(mm, fmt, syms):
                continue
            for shape in set(row.shapes.values()):
                count = struct.unpack_from(mm.endian + "I", raw, _place(at, shape[1],
                                                                        pointer))[0]
                if not _table_fault(mm, fmt, syms, count):
                    votes[(at, shape)] += 1
    # the tables in section order at increasing offsets, each where modules vote for it, the
    # most votes in all (a table with fewer votes than a later one of its shape keeps its
    # place); ties to the lower offsets.  choices: the last table's offset -> (key, tables)
    choices = {0: ((0, ()), [])}
    for export_type in layout.section_order:
        shape = row.shapes.get(export_type)
        update = {}
        for (at, s), n in votes.items():
            if s != shape:
                continue
            (total, offsets), found = max((c for after, c in choices.items() if after < at),
                                          key=operator.itemgetter(0))
            key = (total + n, offsets + (-at,))
            if key > (update.get(at) or choices.get(at) or ((-1, ()),))[0]:
                update[at] = (key, found + [_TableAt(export_type, at, *[
                    _place(at, where, pointer) for where in shape])])
        choices.update(update)
    return max(choices.values(), key=operator.itemgetter(0))[1] or None


def _module_exports_at(mm, fmt, address, tables):
    """[(the _TableAt, its syms address and count)] and the exports of the struct module at
    `address`, read with the kernel's table format; _Unreadable where a byte they need is
    not in the dump (its struct module, a table, a name, a namespace, a CRC), or a table
    is not valid."""
    size = max(max(t.syms, t.crcs, t.count, t.flags or 0) for t in tables) + 2 * mm.pointer
    raw = mm.read(address, size)
    if raw is None:
        raise _Unreadable("its struct module (%d bytes at %#x) is not in the dump"
                          % (size, address))
    symbols, placed = [], []
    for t in tables:
        what = t.export_type.name
        syms, crcs = (mm.word.unpack_from(raw, at)[0] for at in (t.syms, t.crcs))
        flags = mm.word.unpack_from(raw, t.flags)[0] if t.flags is not None else None
        count = struct.unpack_from(mm.endian + "I", raw, t.count)[0]
        if not count:
            continue
        fault = _table_fault(mm, fmt, syms, count)
        if fault:
            raise _Unreadable("its %s table: %s" % (what, fault))
        for table, at, length in (("CRC", crcs, count * fmt.crc_width),
                                  ("flag", flags, count)):
            if at and mm.read(at, length) is None:
                raise _Unreadable("its %s %s table (%d bytes at %#x) is not in the dump"
                                  % (what, table, length, at))
        entries = mm.read(syms, count * fmt.step)
        targets = [syms, syms + count * fmt.step, crcs or syms, (flags or syms) + count]
        for i, fields in enumerate(struct.iter_unpack(fmt.entry, entries)):
            at = syms + i * fmt.step
            targets += [at + k * fmt.field + value if fmt.prel32 else value
                        for k, value in enumerate(fields) if k and value]
            if fmt.layout.namespace and fields[2]:
                target = targets[-1]
                if mm.kernel_pointer(target) and mm.string(target, 1025) is None:
                    raise _Unreadable("its %s table: the namespace of entry %d (at %#x) is "
                                      "not in the dump" % (what, i, target))
        low = min(t for t in targets if mm.kernel_pointer(t)) & ~0xFFF
        high = max(targets) + 1024 + count * fmt.crc_width
        if high - low > 64 << 20:
            raise _Unreadable("its %s table spreads over %d MiB" % (what, (high - low) >> 20))
        if crcs and fmt.layout.rel_crcs:    # self-relative CRCs: where each slot leads
            slots = struct.unpack(mm.endian + "%di" % count, mm.read(crcs, 4 * count))
            ends = [crcs + 4 * i + v for i, v in enumerate(slots)]
            if all(low <= end <= high - 4 for end in ends) and \
                    any(mm.read(end, 4) is None for end in ends):
                raise _Unreadable("its %s CRCs (self-relative) are not in the dump" % what)
        window = Image(mm.read(low, high - low, fill=True), low, mm.pointer, mm.endian)
        ref = TableRef(t.export_type, syms - low, count, crcs - low if crcs else None,
                       flags - low if flags else None)
        try:
            symbols += walk(TableFormat(window, fmt.layout, fmt.prel32), [ref])
        except SymversError as e:
            raise _Unreadable("its %s table: %s" % (what, e)) from None
        placed.append((what, syms, count * fmt.step))
        if crcs:
            placed.append((what + " CRC", crcs, count * fmt.crc_width))
    return placed, symbols


def _overlapping(loaded, placed):
    """The loaded modules, those whose export tables overlap another's (`placed`: each
    one's [(table, address, size)]) named, both left out: one of them is not what the
    dump says, and neither's exports are printed twice."""
    spans = sorted((address, address + size, i, what) for i, tables in placed.items()
                   for what, address, size in tables)
    bad = {}
    end, owner = 0, None
    for start, stop, i, what in spans:
        if start < end and owner[0] != i:
            for k, other in ((i, owner), (owner[0], (i, what))):
                bad.setdefault(k, "its %s table at %#x overlaps the %s table of %s: the "
                               "dump is inconsistent" % (
                                   what if k == i else owner[1], start,
                                   other[1], _module_label(loaded[other[0]])))
        if stop > end:
            end, owner = stop, (i, what)
    return [m._replace(exports=[], missing=bad[i]) if i in bad else m
            for i, m in enumerate(loaded)]


def _module_label(module):
    """A loaded module as a warning names it: its name, else its address."""
    return module.name if module.name is not None else "the module at %#x" % module.address


def _module_ring(memory, kernel):
    """(_ModuleMemory, _Ring or None, how the page tables were found, the most struct
    module heads seen) of the module list: through each way the dump says how its virtual
    memory is mapped, until the ring is; without a VMCOREINFO note, again with the
    kernel's own copy of it."""
    machine = _architecture(memory, kernel)
    mm = _ModuleMemory(memory, kernel.fmt.image.ptr_size, kernel.fmt.image.endian, machine)
    image = kernel.fmt.image
    heads = 0
    for _ in range(2):
        offset = _kernel_offset(memory, kernel, machine)
        candidates = [(None, None, "the dump's virtual addresses")] \
            if memory.virtual_memory is not None and not memory.sparse else \
            _root_candidates(memory, kernel, machine, offset)
        for scheme, root, how in candidates:
            memory.tables = None if scheme is None else _PageTables(memory, scheme, root, how)
            runs = _module_runs(memory, _module_areas(memory, kernel, machine, scheme), offset)
            starts = [start for start, _ in runs]

            def kernel_at(node):
                """Whether a node is in the kernel: in its window, or not in module memory."""
                if image.base is not None and 0 <= node - image.base < len(image.data):
                    return True
                i = bisect.bisect_right(starts, node) - 1
                return i < 0 or node >= runs[i][1]

            found = []
            ring = _ring(mm, _head_candidates(mm, runs, found), kernel_at)
            heads = max(heads, len(found))
            if ring:
                return mm, ring, how if scheme is None else "%s from %s" % (scheme.name, how), \
                    heads
        memory.tables = None
        if memory.info:
            break
        memory.info = _vmcoreinfo_in_memory(memory, _banner_release(kernel.fmt.image.data))
    return mm, None, None, heads


def loaded_modules(memory, image, found):
    """[LoadedModule] of the modules on the module list of the dump `memory`, whose kernel
    window `image` extract() read as `found` (an Extraction): each module read whole, or
    named in a warning, with why, and left out (its `missing`; one with no address: a part
    of the list that is not read); [] where the dump holds no module list (a window of the
    kernel alone), said."""
    options = found.options
    layout = layout_for(options.version)
    sizes = [options.bits // 8] if found.placed else [8, 4]     # what PREL32 did not say
    heads = 0
    for size in sizes:
        kernel = _Kernel(TableFormat(Image(image, options.base, size,
                                           ">" if options.big_endian else "<"), layout,
                                     options.prel32), options.version,
                         image_header(image).machine)
        mm, ring, how, seen = _module_ring(memory, kernel)
        heads = max(heads, seen)
        if ring:
            break
    else:
        if not heads and not memory.truncated:
            _log.info("no module list found in the dump")
            return []
        why = "%d struct module heads in module memory, but no module list through them: " \
              "the loaded modules are not read" % heads if heads else \
            "no module list in what the truncated dump holds"
        _log.warning("the module list cannot be read whole: %s", why)
        return [LoadedModule(None, None, [], why)]
    fmt = kernel.fmt
    tables = _btf_tables(image, mm.pointer, layout)
    offsets = "BTF"
    if tables is None:
        offsets = "a vote of the %d modules" % len(ring.modules)
        tables = _voted_tables(mm, kernel, ring.modules)
    if tables is None:
        raise SymversError("%d modules on the module list, but where struct module keeps "
                           "their export tables is not found: the kernel has no BTF (with "
                           "CONFIG_RANDSTRUCT only BTF says it)" % len(ring.modules),
                           EXIT_NOT_FOUND)
    loaded, placed = [], {}
    for address in ring.modules:
        name = mm.head(address)
        try:
            if name is None:
                raise _Unreadable("its struct module's head (state, list, a name with its "
                                  "NUL) is %s" % ("not in the dump" if mm.read(
                                      address, 3 * mm.pointer) is None else "not valid"))
            placed[len(loaded)], exports = _module_exports_at(mm, fmt, address, tables)
            loaded.append(LoadedModule(name, address, [s._replace(module=name)
                                                       for s in exports]))
        except _Unreadable as e:
            loaded.append(LoadedModule(name, address, [], str(e)))
    loaded = _overlapping(loaded, placed)
    for gap, why in ring.breaks:
        if gap:
            loaded.append(LoadedModule(None, None, [], why))
        else:
            _log.warning("the module list is broken: %s", why)
    for module in loaded:
        if module.address is None:
            _log.warning("the module list cannot be read whole: %s", module.missing)
        elif module.missing:
            _log.warning("%s cannot be read whole, left out: %s", _module_label(module),
                         module.missing)
    _log.info("%d modules on the module list (page tables: %s; struct module's export "
              "tables from %s)", len(ring.modules), how, offsets)
    return loaded


# --- Android GKI: what a module the kernel cannot verify may not export or use ---------------

# CONFIG_MODULE_SIG_PROTECT of the Android common kernel (android13-5.10 on): a module that is
# not sig_ok (unsigned, or signed by a key the kernel does not hold) may not export a symbol of
# the signed GKI modules (verify_exported_symbols()), nor use a symbol outside the KMI symbol
# list (resolve_symbol(): whose symbols count, GKI_USE_RULES).  kernel/module/gki_module.c
# (kernel/gki_module.c in 5.10 and 5.15) bsearch()es two arrays that
# scripts/gen_gki_modules_headers.sh writes into generated headers from the symbol lists:
#     static const char gki_unprotected_symbols[][MAX_UNPROTECTED_NAME_LEN] = {"name", ...};
#     static const char gki_protected_exports_symbols[][MAX_PROTECTED_EXPORTS_NAME_LEN] = ...;
# each sorted in byte order (LC_ALL=C sort -u), a name a row, NUL-padded to the width of the
# longest name + 1.  They are found here by that shape, without symbols: the KMI table by its
# rows, most of them vmlinux's exports; the other beside it (both are gki_module.o's .rodata,
# between them only alignment), none of its names vmlinux's.  A build without a KMI list
# has an empty unprotected array, which turns both checks off (gki_is_module_unprotected_symbol()
# says yes to all; gki_is_module_protected_export() no, from "ANDROID: GKI: Move GKI module
# headers to generated includes"; in the 5.15 tree read, exports stayed protected: without the
# KMI table that is not seen here).  The first form (android13-5.10's early
# gki_module_protected.h: the GKI modules' exports an unsigned module may not use, no KMI
# list) holds no table of vmlinux's names: nothing is found, nothing said.
GKI_ROW = re.compile(rb"[A-Za-z_][A-Za-z0-9_.$]*\0+")
GKI_MIN_KMI = 16        # rows of a KMI table at least (real ones: thousands)
GKI_RUN = re.compile(rb"(?:[A-Za-z_][A-Za-z0-9_.$]*\0+)+")
# where a table may be: rows padded with more than one NUL, as most of a table's are (a
# literal start, searched for fast), the run of rows around them read from GKI_BACK before
GKI_SEED = re.compile(rb"\0\0(?:[A-Za-z_][A-Za-z0-9_.$]*\0\0+){4}")
GKI_BACK = 4096
GKI_NEAR = 256          # bytes searched beside the KMI table for the protected exports
EACCES_WORDS = "EACCES: insmod says Permission denied"


class GkiLists(NamedTuple):
    """The two lists of kernel/module/gki_module.c, as the image holds them."""
    unprotected: frozenset          # the KMI: what a module not sig_ok may use
    protected_exports: frozenset    # the signed GKI modules' exports
    at: int                         # where the KMI table starts in the image


class _GkiTable(NamedTuple):
    start: int
    end: int
    names: list


def _gki_tables(data, start, end):
    """The tables of the generator's shape between start and end: NUL-padded names one after
    the other at one stride, in byte order, the stride the longest name + 1; a lone name is
    a table of one row."""
    rows = [(m.start(), m.end(), m.group().rstrip(b"\0"))
            for m in GKI_ROW.finditer(data, start, end)]
    # each pair of rows that may be neighbours in a table, by its stride
    pairs = [(i, b[0] - a[0] if a[1] == b[0] and a[2] < b[2] else None)
             for i, (a, b) in enumerate(zip(rows, rows[1:]))]
    spans = [(i, i) for i in range(len(rows))]
    for stride, run in itertools.groupby(pairs, key=operator.itemgetter(1)):
        if stride is not None:
            run = list(run)
            spans.append((run[0][0], run[-1][0] + 1))
    tables = []
    for first, last in spans:
        names = [row[2] for row in rows[first:last + 1]]
        width = max(map(len, names)) + 1
        if (first == last or rows[first + 1][0] - rows[first][0] == width) and \
                rows[last][1] - rows[last][0] >= width:
            tables.append(_GkiTable(rows[first][0], rows[last][0] + width, names))
    return tables


def _gki_runs(data):
    """The GKI_RUNs of an image that hold rows padded with more than one NUL."""
    end = 0
    for seed in GKI_SEED.finditer(data):
        if seed.start() < end:
            continue
        run = next(run for run in GKI_RUN.finditer(data, max(seed.start() - GKI_BACK, end))
                   if run.end() > seed.start())     # the seed's rows are one at least
        end = run.end()
        yield run


def gki_lists(data, vmlinux):
    """The GkiLists of an image (`vmlinux`: the names it exports), or None when it holds no
    KMI table (not CONFIG_MODULE_SIG_PROTECT, or built without a KMI list)."""
    kmi = max((table for run in _gki_runs(data)
               for table in _gki_tables(data, run.start(), run.end())
               if len(table.names) >= GKI_MIN_KMI and
               2 * sum(name.decode("latin-1") in vmlinux for name in table.names) >
               len(table.names)), key=lambda table: len(table.names), default=None)
    if kmi is None:
        return None
    beside = [table for table in _gki_tables(data, max(kmi.start - GKI_NEAR, 0),
                                             kmi.end + GKI_NEAR)
              if (not data[table.end:kmi.start].strip(b"\0") if table.end <= kmi.start else
                  table.start >= kmi.end and not data[kmi.end:table.start].strip(b"\0"))
              and not any(name.decode("latin-1") in vmlinux for name in table.names)]
    protected = max(beside, key=lambda table: len(table.names), default=None)
    return GkiLists(frozenset(name.decode("latin-1") for name in kmi.names),
                    frozenset(name.decode("latin-1") for name in protected.names)
                    if protected else frozenset(), kmi.start)


class GkiUseRule(NamedTuple):
    """resolve_symbol()'s rule for a module not sig_ok, from an Android common kernel branch
    on: a symbol outside the KMI list is refused (-EACCES, which simplify_symbols() says as
    GKI_USE_WORDS) when a signed module exports it, and from android15-6.6 also when vmlinux
    does (`vmlinux_too`): only an unsigned module's exports stay free."""
    since: tuple
    vmlinux_too: bool
    read: str       # the tree it was read in


GKI_USE_WORDS = "Protected symbol: %s (err -13)"
GKI_USE_RULES = (
    # "!mod->sig_ok && !gki_is_module_unprotected_symbol(name) && fsa.owner &&
    # fsa.owner->sig_ok"
    GkiUseRule((5, 15), False, "android13-5.15's kernel/module.c, in CodeLinaro-mirror/"
               "kernel-platform-2-0-os_kernel_common fb0838a7"),
    GkiUseRule((6, 1), False, "android14-6.1's kernel/module/main.c, in GrapheneOS/"
               "kernel_common-6.1 a6fc30b2; booted here: tests/data/gki-kernel"),
    # "is_vendor_module && !is_vendor_exported_symbol && !gki_is_module_unprotected_symbol()"
    GkiUseRule((6, 6), True, "android15-6.6's kernel/module/main.c, in GrapheneOS/"
               "kernel_common-6.6 b15343a8 (and a 6.10+ tree: aosp-mirror/kernel_common "
               "02da4609)"),
)


def gki_use_rule(version):
    """The GkiUseRule of a release (before the first read, the first's)."""
    series = tuple(version)[:2]
    return ([rule for rule in GKI_USE_RULES if rule.since <= series] or GKI_USE_RULES[:1])[-1]


# --- Load checks: would the kernel load a module? ------------------------------------------

def parse_symvers(lines):
    """{name: Symbol} of Module.symvers lines, whatever the release's columns (the first
    line of a name wins, as the loader finds vmlinux's first)."""
    exports = {}
    for line in lines:
        fields = line.rstrip("\n").split("\t")
        if len(fields) < 3:
            continue
        if len(fields) == 3:
            fields.append(PLAIN.name)
        if len(fields) == 4:
            fields.append("")
        crc, name = int(fields[0], 16), fields[1]
        if fields[3].startswith("EXPORT_"):          # COLS_NS_LAST, COLS_EXPORT, COLS_PLAIN
            module, export_type, namespace = fields[2:5]
        else:                                          # COLS_NS_MIDDLE (5.4.0-5.4.y)
            namespace, module, export_type = fields[2:5]
        exports.setdefault(name, Symbol(crc, name, export_type, namespace, module))
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
    every export it can resolve ({name: Symbol}: vmlinux and the modules given), its
    .config (None: unknown), release, sizeof(struct module) (from its BTF or a module of
    its build; None: unknown), its Build (the ELF header it reads modules as; None:
    unknown), the certificates it holds built in, its command line, and whether
    it was built with kCFI (kernel_kcfi(); None: unknown)."""
    vermagic: Optional[str]
    exports: dict
    config: Optional[dict]
    version: tuple
    module_size: Optional[int] = None
    build: Optional[Build] = None
    keys: Optional[tuple] = None        # (Certificate,) built in (None: unknown)
    cmdline: Optional["CommandLine"] = None     # None: unknown
    gki: Optional[GkiLists] = None      # CONFIG_MODULE_SIG_PROTECT's lists (None: none)
    sig_ok: frozenset = frozenset()     # the modules given whose signature the kernel accepts
    kcfi: Optional[bool] = None

    @property
    def sig_protect(self):
        """Android GKI's CONFIG_MODULE_SIG_PROTECT, by its .config or its lists."""
        return (self.config or {}).get("CONFIG_MODULE_SIG_PROTECT") == "y" or bool(self.gki)

    def enforcement(self):
        """(signatures enforced: True, False or None when unknown, why)."""
        if self.sig_protect:
            return False, "CONFIG_MODULE_SIG_PROTECT: never; what a module the kernel " \
                "cannot verify may export and use is limited instead"
        return signature_enforcement(self.config, self.cmdline)

    @property
    def modversions(self):
        if self.vermagic is not None:
            return "modversions" in self.vermagic.split()
        return any(export.crc for export in self.exports.values())


class Verdict(NamedTuple):
    path: str
    refused: list       # the loader's reasons, in its words; empty: it loads
    taints: list        # what it would taint the kernel with
    warnings: tuple = ()    # what may break it that the loader does not check, or may not
    after: tuple = ()       # the modules given to load first, in modprobe's order
    signature: Optional[SignatureCheck] = None      # None: signatures are not checked
    protected: tuple = ()   # GkiRefusals: CONFIG_MODULE_SIG_PROTECT's, also in `refused`
    kcfi: tuple = (None, None)  # built with kCFI (None: unknown): the module, the kernel

    def line(self):
        """`path: loads` (after ..., tainting: ...) or `path: refused: reasons`."""
        if self.refused:
            return "%s: refused: %s" % (self.path, "; ".join(self.refused))
        return "%s: loads%s%s" % (self.path, " after " + ", ".join(self.after)
                                  if self.after else "",
                                  ", tainting: " + "; ".join(self.taints) if self.taints else "")


GPL_ONLY = (GPL.name, UNUSED_GPL.name)
# include/linux/license.h license_is_gpl_compatible(); "Dual MIT/GPL" from 2.6.18
GPL_COMPATIBLE = ("GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL", "Dual MPL/GPL")
MODULE_STRUCT_SYMBOLS = ("module_layout", "struct_module")   # 2.6.28 renamed the second


# Since 6.4 (commit "module: add sanity check for ELF module section") elf_validity_check()
# refuses a .gnu.linkonce.this_module of another size than the kernel's struct module;
# before, the module loads and the kernel reads its struct module in the wrong layout.
THIS_MODULE_CHECKED = (6, 4)
THIS_MODULE_SIZE = ".gnu.linkonce.this_module section size must match the kernel's built " \
    "struct module size at run time"


# The ELF header, the first thing load_module() reads of a module (after its signature), in
# the kernel's own class and byte order: elf_header_check() (kernel/module.c), in 4.x renamed
# elf_validity_check(), from 6.13 its elf_validity_ehdr() (90f8f312db72, kernel/module/main.c
# since 5.19).  Each refusal is -ENOEXEC, which insmod says as "Invalid module format"; the
# kernel logs its reason from 5.16 (7fd982f394c4, "module: change to print useful messages
# from elf_validity_check()"), in these words, in this order; before, nothing.
ELF_REASONS_LOGGED = (5, 16)
ELF_HEADER_REFUSALS = {      # what fails: the kernel's message (ET_REL is 1)
    "len": "Invalid ELF header len %d", "type": "Invalid ELF header type: %d != 1",
    "machine": "Invalid architecture in ELF header: %d",
    "shentsize": "Invalid ELF section header size"}


class ArchCheck(NamedTuple):
    """An architecture's elf_check_arch() (its asm/elf.h): the e_machine values it accepts,
    and whether it wants the kernel's ELF class too (EI_CLASS)."""
    machine: int            # the kernel's
    accepted: tuple
    checks_class: bool


ARCH_CHECKS = {row.machine: row for row in (
    ArchCheck(EM_X86_64, (EM_X86_64,), False),
    ArchCheck(EM_386, (EM_386, 6), False),          # elf_check_arch_ia32(): EM_386, EM_486
    ArchCheck(EM_AARCH64, (EM_AARCH64,), False),
    ArchCheck(EM_ARM, (EM_ARM,), False),            # arch/arm/kernel/elf.c (and its flags)
    ArchCheck(EM_PPC, (EM_PPC,), False),            # ELF_ARCH
    ArchCheck(EM_PPC64, (EM_PPC64,), False),
    ArchCheck(EM_S390, (EM_S390, 0xA390), True),    # EM_S390_OLD; && EI_CLASS == ELF_CLASS
    ArchCheck(EM_RISCV, (EM_RISCV,), True),
    ArchCheck(EM_MIPS, (EM_MIPS,), True),           # and the ABI flags of e_flags
    ArchCheck(EM_LOONGARCH, (EM_LOONGARCH,), False),
)}


def elf_header_refusal(module, build, version):
    """The loader's refusal of a module's ELF header by a kernel of `build` (its class, byte
    order and machine: the header is read as that kernel reads it) and release `version`,
    in its words; None when it passes or the kernel's class or byte order is unknown."""
    if build.bits is None or build.big_endian is None:
        return None
    ehdr = ELF_RECORDS[(build.bits, ">" if build.big_endian else "<")][0]
    header = module.header
    arch = ARCH_CHECKS.get(build.machine)
    if len(header) < ehdr.size:
        failed, value = "len", len(header)
    else:
        fields = ehdr.read(header)
        failed, value = next(((what, value) for what, fails, value in (
            ("type", fields.type != ET_REL, fields.type),
            ("machine", arch and (fields.machine not in arch.accepted or arch.checks_class
                                  and header[4] * 32 != build.bits), fields.machine),
            ("shentsize", fields.shentsize != ELF_RECORDS[(build.bits, "<")][2].size, None))
            if fails), (None, None))
        if failed is None:
            return None
    words = ELF_HEADER_REFUSALS[failed]
    words = words % value if value is not None else words
    builds = "a %s module; the kernel is %s" % (module.build.words(), build.words())
    if tuple(version) >= ELF_REASONS_LOGGED:
        return "%s (%s)" % (words, builds)
    return 'Invalid module format (ENOEXEC: %s logs no reason, %s on say "%s"; %s)' % (
        _dotted(version[:2]), _dotted(ELF_REASONS_LOGGED), words, builds)


class RelocationRow(NamedTuple):
    """The relocation types an architecture's apply_relocate(_add)() accepts from a release
    on: those of the rows before, and `added`.  `read` rows come from the sources read
    (SOURCES_READ): the types were added after the read release before it, at the latest
    in this one; the first row of an architecture is its set back to its first release."""
    machine: int
    since: tuple
    added: str              # type numbers and ranges: "0-2 10"
    read: bool = True

    @property
    def types(self):
        spans = (span.split("-") for span in self.added.split())
        return {n for span in spans for n in range(int(span[0]), int(span[-1]) + 1)}


SOURCES_READ = ((5, 10), (6, 1), (6, 12), (7, 2))    # Debian's linux-source packages
RELOCATIONS = (
    RelocationRow(EM_X86_64, OLDEST, "0-2 10-11", False),       # NONE 64 PC32 32 32S
    RelocationRow(EM_X86_64, (4, 16), "4", False),  # PLT32: b21ebf2fb4cd (and 4.4-4.15.y)
    RelocationRow(EM_X86_64, (5, 10), "24"),                    # PC64
    RelocationRow(EM_386, OLDEST, "1-2", False),                # 32 PC32
    RelocationRow(EM_386, (5, 10), "4"),                        # PLT32
    RelocationRow(EM_AARCH64, OLDEST, "256-280 282-293 299"),
    RelocationRow(EM_ARM, OLDEST, "0-2 10 28-30 38 40 42-44 47-48"),
    RelocationRow(EM_ARM, (6, 1), "3 45-46 49-50 57 59 63"),   # REL32, the PREL MOVW/MOVT
    RelocationRow(EM_RISCV, OLDEST, "1-2 16-20 23-28 35-36 39-40 43-45 51"),
    RelocationRow(EM_RISCV, (6, 12), "33-34 37-38 52-57 59-61"),
    RelocationRow(EM_PPC, OLDEST, "1 4-6 10 26"),
    RelocationRow(EM_PPC64, OLDEST, "1 10 26 38 44 47-48 50-51 63-64 109 118 250 252"),
    RelocationRow(EM_PPC64, (6, 12), "116 132-133"),
    RelocationRow(EM_S390, OLDEST, "0-36 57-59"),
    RelocationRow(EM_MIPS, OLDEST, "0 2 4-6 10 18 28-29 60-61"),
    RelocationRow(EM_LOONGARCH, (5, 19), "0-2 20-24 29 32-46 50-56 66 71-76"),  # the port
    RelocationRow(EM_LOONGARCH, (6, 12), "99 109"),
    RelocationRow(EM_LOONGARCH, (7, 2), "128-131"),
)
# what each architecture's loader says of another type
RELOCATION_REFUSALS = {
    EM_X86_64: "%s: Unknown rela relocation: %d", EM_386: "%s: Unknown relocation: %d",
    EM_AARCH64: "module %s: unsupported RELA relocation: %d",
    EM_ARM: "%s: unknown relocation: %d", EM_RISCV: "%s: Unknown relocation type %d",
    EM_PPC: "%s: unknown ADD relocation: %d", EM_PPC64: "%s: Unknown ADD relocation: %d",
    EM_S390: "module %s: unknown relocation: %d", EM_MIPS: "%s: Unknown relocation type %d",
    EM_LOONGARCH: "%s: Unknown relocation type %d"}


def relocation_types(machine, version):
    """(types the loader of `machine` at `version` accepts, types it may accept: those of a
    row read whose release is later, the read release before it earlier), or None for an
    architecture not known."""
    version = tuple(version)
    rows = [row for row in RELOCATIONS if row.machine == machine]
    if not rows:
        return None
    accepted = set().union(*(row.types for row in rows if row.since <= version))
    series = version[:2]        # a series read (5.10.223) stands for its stable releases
    maybe = set().union(*(row.types for row in rows if row.read and row.since > series and
                          max((r for r in SOURCES_READ if r < row.since), default=()) < series))
    return accepted, maybe


# The words of vermagic (include/linux/vermagic.h, the architectures' asm/vermagic.h and
# asm/module.h), each with what sets it; the first word is the release.
VERMAGIC_PARTS = (
    (re.compile(r"SMP$"), "CONFIG_SMP"),
    (re.compile(r"preempt$"), "CONFIG_PREEMPT (or PREEMPT_DYNAMIC)"),
    (re.compile(r"preempt_rt$"), "CONFIG_PREEMPT_RT"),
    (re.compile(r"mod_unload$"), "CONFIG_MODULE_UNLOAD"),
    (re.compile(r"modversions$"), "CONFIG_MODVERSIONS"),
    (re.compile(r"RANDSTRUCT_"), "CONFIG_RANDSTRUCT's per-build seed"),
    (re.compile(r"ARMv\d+$"), "the ARM architecture level (CONFIG_CPU_V6, CONFIG_CPU_V7...)"),
    (re.compile(r"p2v(8|16)$"), "CONFIG_ARM_PATCH_PHYS_VIRT"),
    (re.compile(r"thumb2$"), "CONFIG_THUMB2_KERNEL"),
    (re.compile(r"MIPS(32|64)_R\d+$|[A-Z0-9]+MIPS$|OCTEON|LOONGSON"),
     "the MIPS CPU (CONFIG_CPU_*)"),
    (re.compile(r"(32|64)BIT$"), "CONFIG_32BIT / CONFIG_64BIT"),
    (re.compile(r"mprofile-kernel$|patchable-function-entry$"), "powerpc's ftrace "
                                                                 "(CONFIG_MPROFILE_KERNEL)"),
    (re.compile(r"relocatable$"), "CONFIG_RELOCATABLE (powerpc)"),
    (re.compile(r"gcc-\d"), "the compiler's version (2.6 kernels)"),
    (re.compile(r"REGPARM$|4KSTACKS$"), "CONFIG_REGPARM, CONFIG_4KSTACKS (old i386)"),
    (re.compile(r"."), "the processor family or architecture (CONFIG_M686, aarch64...)"),
)


def _dotted(version):
    return ".".join(map(str, version))


def vermagic_differences(module_magic, kernel_magic):
    """What differs between two vermagic strings, word by word, with what sets each."""
    def parts(magic):
        words = magic.split()
        found = {}
        for word in words[1:]:
            said = next(said for pattern, said in VERMAGIC_PARTS if pattern.match(word))
            found.setdefault(said, []).append(word)
        return (words[0] if words else ""), found

    (module_release, module_parts), (kernel_release, kernel_parts) = parts(module_magic), \
        parts(kernel_magic)
    said = []
    if module_release != kernel_release:
        said.append("the release: module '%s', kernel '%s' (%s)" % (
            module_release, kernel_release, _release_difference(module_release,
                                                                kernel_release)))
    for what in dict.fromkeys(list(module_parts) + list(kernel_parts)):
        mine, theirs = module_parts.get(what, []), kernel_parts.get(what, [])
        if mine != theirs:
            said.append("%s: module '%s', kernel '%s'" % (what, " ".join(mine),
                                                           " ".join(theirs)))
    return said


RELEASE_NUMBER = re.compile(r"\d+\.\d+(\.\d+)?")
DIGITS = re.compile(r"\d+")
# An Android GKI kernel's release, as its build (build/kernel's BRANCH and KMI_GENERATION)
# makes it: 5.15.94-android13-8-00001-gabcdef-ab1234567 is sublevel 94 of the KMI
# android13-5.15, generation 8, then the build (commits, -g<commit>, -ab<build number>)
GKI_RELEASE = re.compile(r"(\d+\.\d+)\.(\d+)-(android\d+)-(\d+)(?:-(.+))?$")


class GkiRelease(NamedTuple):
    kmi: str            # android13-5.15: the branch whose modules share one KMI
    generation: int     # the KMI generation: modules of another one are not vendor-compatible
    sublevel: int
    build: str          # what follows the generation ("" if nothing)


def gki_release(release):
    """The GkiRelease of an Android GKI release string, or None."""
    m = GKI_RELEASE.match(release)
    return m and GkiRelease("%s-%s" % (m.group(3), m.group(1)), int(m.group(4)),
                            int(m.group(2)), m.group(5) or "")


def _gki_difference(mine, theirs):
    """What makes two GKI releases differ: KMI, generation, sublevel, or the build."""
    if mine.kmi != theirs.kmi:
        return "another KMI: %s, the kernel's %s" % (mine.kmi, theirs.kmi)
    if mine.generation != theirs.generation:
        return "KMI %s, generation %d, the kernel's %d" % (mine.kmi, mine.generation,
                                                         theirs.generation)
    kmi = "KMI %s generation %d" % (mine.kmi, mine.generation)
    if mine.sublevel != theirs.sublevel:
        return "%s, sublevel %d, the kernel's %d" % (kmi, mine.sublevel, theirs.sublevel)
    return "%s, sublevel %d, another build: '%s', the kernel's '%s'" % (
        kmi, mine.sublevel, mine.build, theirs.build)


def _release_difference(module_release, kernel_release):
    """What makes two releases differ, in the build's terms."""
    mine, theirs = gki_release(module_release), gki_release(kernel_release)
    if mine and theirs:
        return _gki_difference(mine, theirs)
    if module_release.rstrip("+") == kernel_release.rstrip("+"):
        return "the + a tree with uncommitted changes adds (scripts/setlocalversion)"
    mine, theirs = RELEASE_NUMBER.match(module_release), RELEASE_NUMBER.match(kernel_release)
    if mine and theirs and mine.group() != theirs.group():
        return "another version of the kernel"
    if DIGITS.sub("#", module_release) == DIGITS.sub("#", kernel_release):
        return "the same version, another number after it: a distribution's ABI or build " \
            "number (Debian's 6.1.0-49-amd64 and 6.1.0-50-amd64)"
    return "CONFIG_LOCALVERSION, LOCALVERSION_AUTO's -g<commit>, or make KERNELRELEASE="


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


CMDLINE_WORD = re.compile(r'(?:"[^"]*"|[^\s"])+')


class CommandLine(NamedTuple):
    """A kernel's command line, and where it was read (--cmdline, a boot image's header)."""
    text: str
    source: str

    def value(self, name):
        """The value the kernel's parse_args() leaves a parameter with: the last one given
        (True: given bare), dashes and underscores alike, before "--"; None: not given."""
        found = None
        for word in CMDLINE_WORD.findall(self.text):
            if word == "--":
                break
            key, equal, value = word.partition("=")
            if key.replace("-", "_") == name.replace("-", "_"):
                found = value.strip('"') if equal else True
        return found


def _kstrtobool(value):
    """lib/kstrtox.c kstrtobool(): y/Y/1/on true, n/N/0/off false, else None."""
    if value is True:
        return True
    word = value.lower()
    return True if word[:1] in ("y", "1") or word[:2] == "on" else \
        False if word[:1] in ("n", "0") or word[:3] == "off" else None


# kernel/module/signing.c (kernel/module.c before 5.19) module_sig_check(), from 3.7: a
# module whose signature does not verify by a key the kernel holds (mod_verify_sig(): no
# signature ENODATA, not PKCS#7 ENOPKG, a key it does not hold ENOKEY) is refused when
# signatures are enforced (CONFIG_MODULE_SIG_FORCE, or module.sig_enforce on the command
# line), from 5.4 also when the kernel is locked down; else it loads and taints (E).  A
# signature that does not parse (EBADMSG) or that a key it holds rejects (EKEYREJECTED) is
# refused always.  5.4 ("Enforce module signatures if the kernel is locked down") gave the
# refusal its words and EKEYREJECTED, and made ENOPKG a refusal only when enforced; before,
# an enforced refusal is ENOKEY, silent, and ENOPKG always one.
SIGNATURES_CHECKED = (3, 7)
SIGNATURE_WORDS = (5, 4)
SIGNATURE_REASONS = {"ENODATA": "unsigned module", "ENOPKG": "module with unsupported crypto",
                     "ENOKEY": "module with unavailable key"}
SIGNATURE_TAINT = "module verification failed: signature and/or required key missing - " \
    "tainting kernel"
LOCKDOWN_REFUSAL = "Lockdown: insmod: unsigned module loading is restricted; see man " \
    "kernel_lockdown.7"
INSMOD_SAYS = {"EKEYREJECTED": "Key was rejected by service", "ENOKEY": "Required key not "
               "available", "EBADMSG": "Bad message", "EPERM": "Operation not permitted",
               "ENOPKG": "Package not installed"}


def signature_enforcement(config, cmdline):
    """(enforced: True, False or None when unknown, why) of a kernel's .config ({CONFIG_X:
    value} or None) and CommandLine (or None): is_module_sig_enforced()."""
    if config and config.get("CONFIG_MODULE_SIG_FORCE") == "y":
        return True, "CONFIG_MODULE_SIG_FORCE=y"
    value = cmdline and cmdline.value("module.sig_enforce")
    if value is not None and _kstrtobool(value):
        return True, "module.sig_enforce=%s on %s" % ("1" if value is True else value,
                                                      cmdline.source)
    if cmdline is None:
        return None, "%s unknown (give --cmdline)" % (
            "not CONFIG_MODULE_SIG_FORCE; the command line is" if config else
            "the .config and the command line are")
    return (False if config else None), "%s, no module.sig_enforce on %s" % (
        "not CONFIG_MODULE_SIG_FORCE" if config else "the .config is unknown", cmdline.source)


def lockdown(config, cmdline):
    """(locked down: True, False or None when it depends on the boot, why): from 5.4,
    security/lockdown: CONFIG_LOCK_DOWN_KERNEL_FORCE_*, lockdown= on the command line, or
    UEFI Secure Boot with CONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT (x86, arm64)."""
    config = config or {}
    forced = next((key for key in ("CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY",
                                   "CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY")
                   if config.get(key) == "y"), None)
    if forced:
        return True, forced + "=y"
    level = cmdline and cmdline.value("lockdown")
    if level in ("integrity", "confidentiality") and \
            config.get("CONFIG_SECURITY_LOCKDOWN_LSM", "y") == "y":
        return True, "lockdown=%s on %s" % (level, cmdline.source)
    if config.get("CONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT") == "y":
        return None, "when booted with UEFI Secure Boot (CONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT)"
    return False, ""


class GkiRefusal(NamedTuple):
    """A refusal of CONFIG_MODULE_SIG_PROTECT: a protected symbol the module exports, or
    one it uses (its owner: the module exporting it, or vmlinux)."""
    symbol: str
    exports: bool
    owner: Optional[str]
    said: str       # the kernel's words
    error: int = -errno.EACCES


class _Loader:
    """One module through load_module()'s checks against a kernel, each step named after the
    kernel function it follows: what it refuses and what it taints, in its words."""

    def __init__(self, module, kernel, name):
        self.module, self.kernel, self.name = module, kernel, name
        self.refused, self.taints, self.warnings = [], [], []
        self.dots = module.build.machine == EM_PPC64    # ppc64 ELFv1: dedotify() strips ".name"
        self.versions = module.versions
        if self.dots and self.versions is not None:
            self.versions = {n[1:] if n.startswith(".") else n: c
                             for n, c in self.versions.items()}
        self.has_crcs = kernel.modversions and self.versions is not None
        self.licence = module.modinfo.get("license", ["unspecified"])[0]
        # mod->name: .modinfo's name, else the file's
        self.module_name = module.modinfo.get("name", [name.rsplit("/", 1)[-1]])[0]
        self.gplok = self.licence in GPL_COMPATIBLE or self.licence == "Dual MIT/GPL" and \
            kernel.version >= (2, 6, 18)
        self.signature = None   # module_sig_check()'s SignatureCheck (None: not checked)
        self.sig_ok = False     # mod->sig_ok: signed by a key the kernel holds (verified)
        self.protected = []

    def enabled(self, option):
        return (self.kernel.config or {}).get("CONFIG_" + option) == "y"

    def try_to_force_load(self, reason):
        if self.enabled("MODULE_FORCE_LOAD"):
            self.taints.append("%s: kernel tainted" % reason)
        else:
            self.refused.append("%s (loads only with CONFIG_MODULE_FORCE_LOAD=y%s)" % (
                reason, "" if self.kernel.config else ": the kernel's .config is unknown"))

    def module_sig_check(self):
        """The module's signature by the kernel's keys (self.signature: None when not
        checked: before 3.7, without CONFIG_MODULE_SIG, or, the .config unknown, with no
        built-in key: the build's signing key is one), then what module_sig_check() makes
        of it: False when refused (nothing more of the module is read then)."""
        kernel = self.kernel
        if tuple(kernel.version) < SIGNATURES_CHECKED or not (
                self.enabled("MODULE_SIG") if kernel.config is not None else kernel.keys):
            return True
        check = self.signature = verify_signature(self.module.signature, kernel.keys)
        error, words = check.error, SIGNATURE_WORDS <= tuple(kernel.version)
        self.sig_ok = error is None
        if error is None:
            return True
        if error == "unknown":
            self.warnings.append("%s: whether the loader accepts its signature is unknown"
                                 % check.words)
            return True
        if error in ("EBADMSG", "EKEYREJECTED") or error == "ENOPKG" and not words:
            self.refused.append("%s (%s: insmod says \"%s\"; %s)" % (
                check.words, error, INSMOD_SAYS[error], "refused whether or not signatures "
                "are enforced" if error != "ENOPKG" else "before 5.4, refused always"))
            return False
        if kernel.sig_protect:
            return True     # Android GKI: never enforced, no taint; the protected symbols rule
        enforced, why = kernel.enforcement()
        if enforced:
            self.refused.append("Loading of %s is rejected (%s; insmod says \"%s\")" % (
                SIGNATURE_REASONS[error], why, INSMOD_SAYS["EKEYREJECTED"]) if words else
                "%s: refused, signatures enforced (%s; ENOKEY, insmod says \"%s\"; %s logs "
                "nothing)" % (check.words, why, INSMOD_SAYS["ENOKEY"],
                              _dotted(kernel.version[:2])))
            return False
        locked, because = lockdown(kernel.config, kernel.cmdline) if words else (False, "")
        if locked:
            self.refused.append("%s (%s; insmod says \"%s\")" % (
                LOCKDOWN_REFUSAL, because, INSMOD_SAYS["EPERM"]))
            return False
        if locked is None:
            self.warnings.append("%s: refused %s (\"%s\")" % (check.words, because,
                                                              LOCKDOWN_REFUSAL))
        if enforced is None:
            self.warnings.append("%s: refused if signatures are enforced (%s)" % (
                check.words, why))
        self.taints.append(SIGNATURE_TAINT)
        return True

    def check_vermagic(self):
        """vermagic as same_magic() compares it (with CRCs on both sides, not the release)."""
        magic = self.module.vermagic
        if magic is not None and self.kernel.vermagic is not None and \
                not same_magic(magic, self.kernel.vermagic, self.has_crcs):
            differences = vermagic_differences(magic, self.kernel.vermagic)
            if self.has_crcs:       # the release may differ
                differences = [d for d in differences if not d.startswith("the release")]
            self.refused.append("version magic '%s' should be '%s' (%s)"
                                % (magic, self.kernel.vermagic, "; ".join(differences)))

    def check_modinfo(self):
        """vermagic (none at all: forced or refused); no __versions on a modversions kernel;
        the licence's taint."""
        if self.module.vermagic is None:
            self.try_to_force_load("bad vermagic")
        self.check_vermagic()
        if self.kernel.modversions and self.versions is None:
            self.try_to_force_load("no versions for imported symbols")
        if not self.gplok:
            self.taints.append("module license '%s' taints kernel" % self.licence)

    def elf_header(self):
        """The ELF header as the kernel reads it: False when refused (nothing more of the
        module is read then)."""
        refusal = self.kernel.build and elf_header_refusal(self.module, self.kernel.build,
                                                           self.kernel.version)
        if refusal:
            self.refused.append(refusal)
        return not refusal

    def elf_validity_check(self):
        """.gnu.linkonce.this_module the size of the kernel's struct module: refused from
        THIS_MODULE_CHECKED; before, loaded into a struct module of another layout."""
        size, wanted = self.module.this_module, self.kernel.module_size
        if size is None or wanted is None or size == wanted:
            return
        if tuple(self.kernel.version) >= THIS_MODULE_CHECKED:
            self.refused.append("%s (%d bytes, the kernel's %d)" % (THIS_MODULE_SIZE, size,
                                                                     wanted))
        else:
            self.warnings.append("its struct module is %d bytes, the kernel's %d: %s loads "
                                 "it without checking (the check came in %s) and reads its "
                                 "fields in the wrong places" % (
                                     size, wanted, _dotted(self.kernel.version[:2]),
                                     _dotted(THIS_MODULE_CHECKED)))

    def apply_relocations(self):
        """Each relocation type through the architecture's apply_relocate(_add)()."""
        machine = self.module.build.machine
        known = relocation_types(machine, self.kernel.version)
        if known is None:
            return
        accepted, maybe = known
        for kind in sorted(self.module.relocation_types - accepted):
            if kind in maybe:
                since = min(row.since for row in RELOCATIONS
                            if row.machine == machine and kind in row.types)
                before = max((r for r in SOURCES_READ if r < since), default=None)
                self.warnings.append("relocation type %d: accepted by %s, %s; this release "
                                     "may refuse it" % (kind, _dotted(since), "not by %s" % (
                                         _dotted(before)) if before else "the oldest read"))
            else:
                self.refused.append(RELOCATION_REFUSALS[machine] % (self.module_name, kind))

    def check_version(self, symbol, crc):
        if not self.has_crcs or not crc or symbol not in self.versions:
            return True     # no symbol version: the loader warns once and goes on
        if self.versions[symbol] == crc:
            return True
        self.refused.append("disagrees about version of symbol %s (module 0x%08x, kernel "
                            "0x%08x)" % (symbol, self.versions[symbol], crc))
        return False

    def check_modstruct_version(self):
        for symbol in MODULE_STRUCT_SYMBOLS:
            if symbol in self.kernel.exports:
                self.check_version(symbol, self.kernel.exports[symbol].crc)
                break

    def resolved(self):
        """(name, weak, the kernel's Symbol or None) of each undefined symbol the loader
        resolves."""
        for symbol, weak in self.module.undefined:
            if self.dots and symbol.startswith("."):
                symbol = symbol[1:]
                if symbol == "TOC.":
                    continue
            yield symbol, weak, self.kernel.exports.get(symbol)

    def check_crcs(self):
        """The CRC of each symbol found: what decides whether a module of another release
        is of the kernel's build."""
        for symbol, _, export in self.resolved():
            if export is not None:
                self.check_version(symbol, export.crc)

    def simplify_symbols(self):
        """Each undefined symbol through resolve_symbol(): found (GPL-only ones only for a
        GPL-compatible licence), its CRC, its namespace imported."""
        imported = set(self.module.modinfo.get("import_ns", ()))
        for symbol, weak, export in self.resolved():
            if export is None or export.export_type in GPL_ONLY and not self.gplok:
                if not weak and not (self.module.build.machine in EM_X86 and
                                     symbol == "_GLOBAL_OFFSET_TABLE_"):
                    self.refused.append("Unknown symbol %s (%s)" % (
                        symbol, "GPL-only, exported by %s; licence '%s'" % (
                            export.module, self.licence) if export else
                        "exported by nothing given"))
                continue

            if not self.check_version(symbol, export.crc):
                continue
            namespace = export.namespace
            if namespace and namespace not in imported and \
                    not _namespace_allowed(namespace, self.module_name):
                message = "module uses symbol (%s) from namespace %s, but does not import " \
                    "it" % (symbol, namespace)
                allowed = self.enabled("MODULE_ALLOW_MISSING_NAMESPACE_IMPORTS")
                (self.taints if allowed else self.refused).append(message)
                if not allowed:
                    continue
            self.gki_use(symbol, export.module)

    def gki_refuse(self, refusal, why):
        self.protected.append(refusal)
        self.refused.append("%s (%s; %s)" % (refusal.said, why, EACCES_WORDS))

    def gki_use(self, symbol, owner):
        """resolve_symbol() of CONFIG_MODULE_SIG_PROTECT: a module not sig_ok uses a symbol
        outside the KMI list only from a module the kernel cannot verify either (before 6.6
        from vmlinux too: GKI_USE_RULES)."""
        lists = self.kernel.gki
        if self.sig_ok or lists is None or not lists.unprotected or \
                symbol in lists.unprotected:
            return
        if owner == "vmlinux":
            if gki_use_rule(self.kernel.version).vmlinux_too:
                self.gki_refuse(GkiRefusal(symbol, False, owner, GKI_USE_WORDS % symbol),
                                "not in the kernel's KMI list; exported by vmlinux")
        elif owner in self.kernel.sig_ok:
            self.gki_refuse(GkiRefusal(symbol, False, owner, GKI_USE_WORDS % symbol),
                            "not in the kernel's KMI list; exported by %s, signed" % owner)

    def verify_exported_symbols(self):
        lists = self.kernel.gki
        for symbol in self.module.exports:
            # CONFIG_MODULE_SIG_PROTECT: before the duplicate; the loader stops at the first
            if lists and lists.unprotected and not self.sig_ok and \
                    symbol.name in lists.protected_exports:
                self.gki_refuse(GkiRefusal(symbol.name, True, None,
                                           "exports protected symbol %s" % symbol.name),
                                "an export of a signed GKI module; this module is not "
                                "signed by a key the kernel holds")
                continue
            owner = self.kernel.exports.get(symbol.name)
            if owner and owner.module != self.name:
                self.refused.append("exports duplicate symbol %s (owned by %s)" % (
                    symbol.name, "kernel" if owner.module == "vmlinux" else owner.module))

    def report_cfi_failure(self):
        """kCFI on one side only, which the loader does not check: the first indirect call
        across traps.  A kCFI kernel's check finds no hash before the module's function
        (kernel/cfi.c report_cfi_failure() from arch/x86/kernel/cfi.c handle_cfi_failure(),
        6.1: a BUG, unless CONFIG_CFI_PERMISSIVE; a page fault when nothing is mapped before
        it, permissive or not); a kCFI module's check, on a kernel without them, is a bare ud2
        or brk.  Each as measured on 6.1 under QEMU (tests/data/cfi-kernel)."""
        module, kernel = self.module.kcfi, self.kernel.kcfi
        if module is None or kernel is None or module == kernel:
            return
        config = self.kernel.config
        option = next((o for o in KCFI_CONFIGS if (config or {}).get(o) == "y"), None)
        if kernel:
            permissive = config and config.get("CONFIG_CFI_PERMISSIVE") == "y"
            self.warnings.append(
                "built without kCFI, the kernel with it (%s): it loads, then the kernel's first "
                "indirect call into it (its init function, from do_one_initcall()) finds no type "
                "hash before the function: %s; build it with the kernel's clang and "
                "-fsanitize=kcfi (its Makefile's CC_FLAGS_CFI)" % (
                    option + "=y" if option else "kCFI checks in its code",
                    "\"CFI failure at do_one_initcall+...\", a warning (CONFIG_CFI_PERMISSIVE=y), "
                    "the kernel tainted P (6.1 passes __warn() taint 0, TAINT_PROPRIETARY_MODULE), "
                    "and the call goes on (a page fault and an oops when the function starts the "
                    "module's memory)" if permissive else
                    "an oops%s, \"CFI failure at do_one_initcall+...\" (a page fault when the "
                    "function starts the module's memory), insmod killed, the module left "
                    "half-loaded" % ("" if config is not None else
                                     " unless CONFIG_CFI_PERMISSIVE")))
        else:
            self.warnings.append(
                "built with kCFI (-fsanitize=kcfi), the kernel without it (%s): it loads, then "
                "its first indirect call into the kernel finds no type hash before the "
                "function: its trap (%s), which the kernel has no kCFI handler for, an oops in "
                "the module; build it without -fsanitize=kcfi, as the kernel was" % (
                    "no CONFIG_CFI_CLANG" if config is not None else "no kCFI check in its code",
                    KCFI_CODE[self.module.build.machine].trap))


def check_module(module, kernel, name):
    """The Verdict (its path `name`, nothing after) of the loader on a module: its reasons
    to refuse, the taints it would add, in its words, in load_module()'s order, the checks
    of `kernel`'s release; `name` is the module column of its Module.symvers lines."""
    loader = _Loader(module, kernel, name)
    if loader.module_sig_check() and loader.elf_header():
        loader.elf_validity_check()
        loader.check_modinfo()
        loader.check_modstruct_version()
        loader.simplify_symbols()
        loader.apply_relocations()
        loader.verify_exported_symbols()
        if not loader.refused:
            loader.report_cfi_failure()
    return Verdict(name, loader.refused, loader.taints, tuple(loader.warnings),
                   signature=loader.signature, protected=tuple(loader.protected),
                   kcfi=(module.kcfi, kernel.kcfi))


def build_refusals(module, kernel, name):
    """What makes a module (its Module.symvers column `name`) of another build than
    `kernel`, as the loader judges builds, in its words: its ELF header, its vermagic as
    same_magic() compares it (with CRCs on both sides the release may differ), the CRCs of
    what it uses that `kernel` exports.  Empty: of the kernel's build."""
    loader = _Loader(module, kernel, name)
    if loader.elf_header():
        loader.check_vermagic()
        loader.check_modstruct_version()
        loader.check_crcs()
    return loader.refused


def _needs(module, kernel):
    """The modules (their Module.symvers column) whose exports `module` uses."""
    exports = kernel.exports
    return list(dict.fromkeys(exports[symbol].module for symbol, _ in module.undefined
                              if symbol in exports and exports[symbol].module != "vmlinux"))


def check_modules(modules, kernel, given=()):
    """[Verdict] of the ModuleFiles read_modules() gives; `given` the modules whose exports
    `kernel` resolves besides vmlinux's: what each needs of them loads first, in the order
    modprobe loads them (each after what it needs)."""
    needs = {name: _needs(module, kernel) for _, name, module in given}
    return [check_module(module, kernel, name)._replace(
        path=path, after=tuple(_load_order(_needs(module, kernel), needs)))
        for path, name, module in modules]


def _load_order(direct, needs):
    """The modules `direct` names and what they need in turn, each after what it needs."""
    order, seen = [], set()

    def visit(name):
        if name not in seen:
            seen.add(name)
            for needed in needs.get(name, ()):
                visit(needed)
            order.append(name)

    for name in direct:
        visit(name)
    return [name.rsplit("/", 1)[-1] for name in order]


# --- Comparing kernels: a kABI report ------------------------------------------------------
# Two sides' exports ({name: Symbol}) compared symbol by symbol, as check-kabi and Android's
# ABI monitoring name the changes; the first four break a module built for the old side.

KABI_CHANGES = (("removed", True), ("changed CRC", True), ("became GPL-only", True),
                ("changed namespace", True), ("moved", False), ("no longer GPL-only", False),
                ("added", False))
KABI_BREAKS = dict(KABI_CHANGES)
SYMVERS_LINE = re.compile(rb"0x[0-9a-fA-F]{8}\t[!-~]+\t[!-~]")


class Change(NamedTuple):
    kind: str               # one of KABI_CHANGES
    name: str
    old: Optional[Symbol]
    new: Optional[Symbol]

    def json(self, causes=None):
        """The change as --json says it; a changed CRC with its `causes` (crc_causes():
        "types", the nearest that differ; null where BTF has no type for it)."""
        def side(symbol):
            return symbol and {"crc": "0x%08x" % symbol.crc, "module": symbol.module,
                               "export_type": symbol.export_type,
                               "namespace": symbol.namespace}
        said = {"kind": self.kind, "symbol": self.name, "old": side(self.old),
                "new": side(self.new), "breaks": KABI_BREAKS[self.kind]}
        if causes is not None and self.name in causes.symbols:
            said["types"] = causes.symbols[self.name]
        return said

    def line(self, causes=None):
        """The report's line; a changed CRC with its `causes` as a last column."""
        old, new = self.old, self.new
        detail = {"removed": lambda: "%s\t%s" % (old.module, old.export_type),
                  "added": lambda: "%s\t%s" % (new.module, new.export_type),
                  "changed CRC": lambda: "0x%08x -> 0x%08x\t%s" % (old.crc, new.crc,
                                                                    new.module),
                  "changed namespace": lambda: "'%s' -> '%s'\t%s" % (
                      old.namespace, new.namespace, new.module),
                  "moved": lambda: "%s -> %s" % (old.module, new.module)}.get(
            self.kind, lambda: "%s -> %s\t%s" % (old.export_type, new.export_type,
                                                  new.module))
        if causes is not None and self.name in causes.symbols:
            found = causes.symbols[self.name]
            return "  %s\t%s\t%s" % (self.name, detail(), ", ".join(found) if found else
                                     "no type differs in BTF" if found == [] else
                                     "no BTF type")
        return "  %s\t%s" % (self.name, detail())


def _module_key(column):
    """A module column as both sides name it: a tree's path and a dump's name agree."""
    return column.rsplit("/", 1)[-1].replace("-", "_")


def kabi_changes(old, new, used=None):
    """[Change] from the exports `old` to `new` ({name: Symbol}), in KABI_CHANGES' order
    then by name; `used` (names): only those symbols."""
    changes = []
    for name in sorted(set(old) | set(new)):
        if used is not None and name not in used:
            continue
        was, now = old.get(name), new.get(name)
        if was is None or now is None:
            changes.append(Change("added" if was is None else "removed", name, was, now))
            continue
        gpl = (was.export_type in GPL_ONLY, now.export_type in GPL_ONLY)
        for kind, differs in (("changed CRC", was.crc != now.crc),
                              ("became GPL-only", gpl == (False, True)),
                              ("no longer GPL-only", gpl == (True, False)),
                              ("changed namespace", was.namespace != now.namespace),
                              ("moved", _module_key(was.module) != _module_key(now.module))):
            if differs:
                changes.append(Change(kind, name, was, now))
    order = {kind: i for i, (kind, _) in enumerate(KABI_CHANGES)}
    return sorted(changes, key=lambda change: order[change.kind])


# Why a CRC changed.  genksyms' CRC of an export is that of its declaration with every type
# it reaches spelled out: through pointers, members, typedefs and arrays.  Where both kernels
# carry BTF, the named types reached from the export's BTF (its function's prototype, or a
# variable's type) whose definitions differ are its causes.  BTF holds every type of the
# kernel at once, where genksyms sees those of one file's headers: through pointers most
# exports reach most types, so the causes said of an export are the nearest ones (fewest
# named types on the way), and each type says how many exports it reaches at all.  An export
# whose own prototype differs has that too.  A name defined twice in one BTF is compared by
# its first definition.

OWN_PROTOTYPE = "(its own prototype)"


class Causes(NamedTuple):
    """Why CRCs changed: each differing type's differences in words, each symbol's nearest
    causes (empty: no type it reaches differs in BTF; None: BTF has no type for it), and how
    many of the symbols reach each type at all."""
    types: dict         # "struct sk_buff" -> ["member `foo` added at offset 0x90", ...]
    symbols: dict       # name -> [type names] or None
    reached: collections.Counter


def _definition(btf, tid):
    """What a named type is: (size, members or values) of a struct, union or enum, (None,
    the type a typedef names), an int's or float's (size, ())."""
    kind = btf.kinds[tid]
    if kind == BTF_TYPEDEF:
        return (None, btf.text(btf.refs[tid]))
    if kind in (BTF_STRUCT, BTF_UNION, BTF_ENUM, BTF_ENUM64):
        return (btf.refs[tid], tuple(btf.members(tid)))
    return (btf.refs[tid], ())


def _as_declared(definition):
    """A definition as its source declares it, which is what genksyms reads: a struct's
    members by name, type and bitfield bits, in order, without the offsets and size that
    follow from them (and from the types they embed)."""
    size, body = definition
    if body and len(body[0]) == 4:
        return tuple(member[:2] + member[3:] for member in body)
    return definition


def _declarations(btf):
    """{key: (type id, digest of its declaration)} of every named type, the first of a name
    (a declaration's FWD is no definition): the digests compared, the few definitions that
    differ worked out again, not 40 000 kept."""
    found = {}
    for tid in range(1, len(btf)):
        key = btf.key(tid)
        if key is not None and key not in found:
            declared = repr(_as_declared(_definition(btf, tid))).encode()
            found[key] = (tid, hashlib.blake2b(declared, digest_size=16).digest())
    return found


def _differences(old, new):
    """How a type's definition changed, in words: members added (at their offset),
    removed, retyped, resized (bitfields) or reordered, and the size then; enum values
    added, removed or changed; a typedef's type; an int's size."""
    (old_size, old_body), (new_size, new_body) = old, new
    if old_size is None or new_size is None:        # a typedef's type (or a name now typedef)
        return ["now %s (was %s)" % tuple("`%s`" % body if size is None else "a type of %d "
                                          "bytes" % size for size, body in (new, old))]
    if not old_body and not new_body:
        return ["size %d -> %d bytes" % (old_size, new_size)]
    said = []
    was, now = ({member[0]: member for member in body if member[0]}
                for body in (old_body, new_body))
    what = "value" if len((old_body or new_body)[0]) == 2 else "member"
    for name in sorted(now.keys() - was.keys()):
        said.append("%s `%s` added" % (what, name) + (
            " at offset %#x" % now[name][2] if what == "member" else " (= %d)" % now[name][1]))
    for name in sorted(was.keys() - now.keys()):
        said.append("%s `%s` removed" % (what, name))
    for name in sorted(was.keys() & now.keys()):
        if what == "value" and was[name] != now[name]:
            said.append("value `%s`: %d -> %d" % (name, was[name][1], now[name][1]))
        elif what == "member":
            for i, change in ((1, "retyped: `%s` -> `%s`"), (3, "resized: %d -> %d bits")):
                if was[name][i] != now[name][i]:
                    said.append(("member `%s` " % name) + change % (was[name][i], now[name][i]))
    if not said:                # the same names, types and values: their order
        said.append("%ss reordered" % what)
    if what == "member" and old_size != new_size:
        said.append("size %d -> %d bytes" % (old_size, new_size))
    return said


def _reached(edges, marks):
    """For each type id, the OR of `marks` (a bit mask per id) over every type it reaches,
    itself included: Tarjan's strongly connected components, iteratively, each finished after
    every one it reaches (the types' graph has cycles: a struct's pointer to itself)."""
    count = len(edges)
    order, low, on_stack, stack, reached = [0] * count, [0] * count, [False] * count, [], \
        [0] * count
    counter = 0
    for root in range(count):
        if order[root]:
            continue
        counter += 1
        order[root] = low[root] = counter
        stack.append(root)
        on_stack[root] = True
        work = [(root, iter(edges[root]))]
        while work:
            node, children = work[-1]
            for child in children:
                if not order[child]:
                    counter += 1
                    order[child] = low[child] = counter
                    stack.append(child)
                    on_stack[child] = True
                    work.append((child, iter(edges[child])))
                    break
                if on_stack[child]:
                    low[node] = min(low[node], order[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == order[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack[member] = False
                        component.append(member)
                        if member == node:
                            break
                    bits = 0
                    for member in component:    # the others it reaches are finished
                        bits |= marks[member]
                        for child in edges[member]:
                            bits |= reached[child]
                    for member in component:
                        reached[member] = bits
    return reached


def _symbol_types(btf):
    """{name: type id} of the functions and variables BTF describes."""
    return {btf.names[tid]: tid for tid in range(1, len(btf))
            if btf.kinds[tid] in (BTF_FUNC, BTF_VAR) and btf.names[tid]}


def _nearest(edges, named, bit):
    """For each type id, the mask of the differing types (`bit` of an id) nearest it, counted
    in named types entered on the way (pointers, qualifiers, prototypes and anonymous types
    are on the way to one), 0 where it reaches none: the distances by a 0-1 breadth-first
    walk back from every differing type at once, then each type's mask from its children
    one step nearer (those as near, through an anonymous type, until the masks settle)."""
    count = len(edges)
    parents = [[] for _ in range(count)]
    for tid, children in enumerate(edges):
        for child in children:
            parents[child].append(tid)
    far = count + 1
    distance = [0 if bit[tid] else far for tid in range(count)]
    queue = collections.deque(tid for tid in range(count) if bit[tid])
    while queue:
        child = queue.popleft()
        step = named[child]
        through = distance[child] + step
        for parent in parents[child]:
            if through < distance[parent]:
                distance[parent] = through
                (queue.append if step else queue.appendleft)(parent)
    layers = collections.defaultdict(list)
    for tid in range(count):
        if 0 < distance[tid] < far:
            layers[distance[tid]].append(tid)
    mask = list(bit)
    for at in sorted(layers):
        for _ in range(32):     # an anonymous chain is a few types; a corrupt cycle stops
            settled = True
            for tid in layers[at]:
                found = 0
                for child in edges[tid]:
                    if distance[child] + named[child] == at:
                        found |= mask[child]
                if found != mask[tid]:
                    mask[tid], settled = found, False
            if settled:
                break
    return mask


def crc_causes(old, new, symbols):
    """The Causes of the changed CRCs of `symbols` between two kernels' Btf."""
    declared = [_declarations(old), _declarations(new)]
    differing = sorted(key for key in declared[0].keys() & declared[1].keys()
                       if declared[0][key][1] != declared[1][key][1])
    index = {key: 1 << i for i, key in enumerate(differing)}
    nearest, reaches = {}, {}
    for btf in (old, new):
        keys = [btf.key(tid) for tid in range(len(btf))]
        bit = [index.get(key, 0) for key in keys]
        named = [key is not None for key in keys]
        edges = [btf.referenced(tid) for tid in range(len(btf))]
        reached, near = _reached(edges, bit), _nearest(edges, named, bit)
        described = _symbol_types(btf)
        for name in symbols:
            if name in described:
                tid = described[name]
                reaches[name] = reaches.get(name, 0) | reached[tid]
                nearest[name] = nearest.get(name, 0) | near[tid]
    olds, news = _symbol_types(old), _symbol_types(new)
    own = {name for name in symbols if name in olds and name in news and
           old.text(old.refs[olds[name]]) != new.text(new.refs[news[name]])}
    types = {key: _differences(_definition(old, declared[0][key][0]),
                               _definition(new, declared[1][key][0])) for key in differing}
    if own:
        types[OWN_PROTOTYPE] = ["the export's own parameters or return type"]
    return Causes(types, {name: ([differing[i] for i in _bits(nearest[name])] +
                                 [OWN_PROTOTYPE] * (name in own)) if name in nearest else None
                          for name in symbols},
                  collections.Counter(differing[i] for mask in reaches.values()
                                      for i in _bits(mask)))


def _bits(mask):
    """The indexes of the bits set in `mask`, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


CAUSE_DIFFERENCES = 8       # of a type's differences the report says; --json says all


def _cause_lines(causes):
    """The report's part on why the CRCs changed: the types by how many exports they are
    the nearest cause of, most first, each with how it changed."""
    found = list(causes.symbols.values())
    nearest = collections.Counter(key for keys in found if keys for key in keys)
    lines = ["why the CRCs changed (the BTF of both kernels): %d changed, %d explained, %d "
             "reach no type that differs, %d have no BTF type (variables, and functions BTF "
             "leaves out)" % (len(found), sum(bool(keys) for keys in found),
                              found.count([]), found.count(None))]
    for key, count in sorted(nearest.items(), key=lambda item: (-item[1], item[0])):
        differences = causes.types[key]
        more = len(differences) - CAUSE_DIFFERENCES
        lines.append("  %s: %s%s (the nearest cause of %d exports%s)" % (
            key, "; ".join(differences[:CAUSE_DIFFERENCES]),
            "; and %d more" % more if more > 0 else "", count,
            ", reached by %d" % causes.reached[key] if key in causes.reached else ""))
    return lines


def _kabi_report(old_path, new_path, changes, used, causes=None):
    """The report's lines: why the CRCs changed (`causes`, where both sides have BTF), then
    a heading per kind of change, a line per symbol."""
    lines = ["--- %s" % old_path, "+++ %s" % new_path]
    if used is not None:
        lines.append("(the %d symbols the modules checked use)" % len(used))
    if causes is not None:
        lines += _cause_lines(causes)
    for kind, breaks in KABI_CHANGES:
        of_kind = [change for change in changes if change.kind == kind]
        if of_kind:
            lines.append("%s: %d%s" % (kind, len(of_kind), " (breaks modules built for the "
                                                           "old side)" if breaks else ""))
            lines += [change.line(causes) for change in of_kind]
    if not changes:
        lines.append("no change")
    return lines


# --- Command line --------------------------------------------------------------------------

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
        version = parse_version(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if version < OLDEST:
        raise argparse.ArgumentTypeError("kernels before 2.6 are not supported: %r" % text)
    return version


# The options that save a file of the kernel and exit: (option, what it saves).  Given
# together, each is saved; -o writes wherever the run's result would go (Module.symvers,
# --check's verdicts, --diff's report, --json), so none of them combines with it.
SAVING = (("-d", "the kernel"), ("--config", "the .config"), ("--btf", "the kernel's BTF"))
# Options that cannot be combined: (one, the other, why), each pair refused as a usage error.
CANNOT_COMBINE = tuple(
    (option, other, "%s saves %s and exits" % (option, what))
    for option, what in SAVING for other in ("-o", "--check", "--diff", "--json")) + (
    ("-d", "--modules", "-d saves the kernel alone"),
    ("--diff", "KERNEL", "--diff OLD NEW reads both kernels itself"),
    ("--diff", "--modules", "--diff OLD NEW reads both sides' modules itself"))
OPTION_DESTS = {"KERNEL": "kernel", "-o": "output", "-d": "decompress", "--config": "config",
                "--btf": "btf", "--check": "check", "--diff": "diff", "--json": "json",
                "--modules": "modules"}


def _combined(args):
    """The first row of CANNOT_COMBINE whose two options `args` both give, or None."""
    return next((row for row in CANNOT_COMBINE
                 if all(getattr(args, OPTION_DESTS[option]) not in (None, False)
                        for option in row[:2])), None)


EPILOG = """\
exit status:
%s
options that cannot be combined:
%s
examples: %%(prog)s vmlinuz > Module.symvers
          %%(prog)s --modules /lib/modules/6.1.0-50-amd64 vmlinuz > Module.symvers
          %%(prog)s -b 64 -B ffffffff80e00000 -k 6.1 vmlinuz > Module.symvers
          %%(prog)s --modules vendor-modules --check wlan.ko boot-kernel
          %%(prog)s /var/crash/202612011200/dump.202612011200 > Module.symvers
          %%(prog)s --diff boot-old.img boot-new.img --check my-modules/""" % (
    "\n".join(textwrap.fill(meaning, 88, initial_indent="  %3d  " % status,
                            subsequent_indent=" " * 7) for status, meaning in EXIT_STATUSES),
    "\n".join("  %-22s %s" % ("%s and %s" % (one, other), why)
              for one, other, why in CANNOT_COMBINE))


class _Parser(argparse.ArgumentParser):
    """argparse, saying its usage errors as every other error is said."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, "extract_symvers: error: %s\n" % message)


def _prog():
    """The name the tool was run by: the installed extract-symvers, or the file."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name in ("extract-symvers", "extract_symvers.py") else "extract_symvers.py"


def _parser():
    parser = _Parser(
        prog=_prog(), epilog=EPILOG,
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
                        help="write Module.symvers (or --check's verdicts, --diff's report, "
                             "--json's document) to FILE instead of stdout: a regular file "
                             "(through a symlink: its target) is replaced whole or not at all, "
                             "keeping its mode; a device or FIFO is written through; - is "
                             "stdout")
    parser.add_argument("-d", "--decompress", metavar="FILE",
                        help="save the decompressed kernel (with -r: relocated) to FILE, as -o "
                             "writes, and exit (with --config, --btf: each)")
    parser.add_argument("--config", metavar="FILE",
                        help="save the .config embedded with CONFIG_IKCONFIG (or that "
                             "--modules' configs.ko holds) to FILE, as -o writes, and exit "
                             "(with -d, --btf: each)")
    parser.add_argument("--btf", metavar="FILE",
                        help="save the kernel's BTF (CONFIG_DEBUG_INFO_BTF: what "
                             "/sys/kernel/btf/vmlinux holds) to FILE, as -o writes, and exit "
                             "(with -d, --config: each); with --modules, say which carry their "
                             "own")
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
                             "or are of another build (by default: all listed, exit 6, nothing "
                             "printed)")
    parser.add_argument("--check", metavar="MODULE", action="append",
                        help="instead of Module.symvers, say for each module (a .ko file, or "
                             "every one under a directory; repeatable) whether this kernel, "
                             "with the --modules given, would load it, or why not")
    parser.add_argument("--diff", nargs=2, metavar=("OLD", "NEW"),
                        help="instead of Module.symvers, a kABI report from OLD's exports to "
                             "NEW's, each a kernel image, container or dump (with its loaded "
                             "modules), a Module.symvers file, or a module tree or archive; "
                             "with --check, only the symbols those modules use, and whether "
                             "NEW loads each")
    parser.add_argument("--cmdline", metavar="STRING",
                        help="--check: the kernel's command line (\"$(cat /proc/cmdline)\" on "
                             "the system itself): module.sig_enforce, lockdown; by default the "
                             "one boot.img and vendor_boot.img say, or /proc/cmdline beside "
                             "/proc/kcore")
    parser.add_argument("--json", action="store_true",
                        help="--check and --diff: one JSON document on stdout (or -o FILE)")
    parser.add_argument("--max-size", metavar="MIB", type=_mebibytes, default=MAX_SIZE >> 20,
                        help="refuse an input, or a compressed payload expanding to, more "
                             "than MIB mebibytes; defaults to %(default)s")
    parser.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=-1,
                        default=0, help="say only warnings and errors on stderr")
    parser.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=1,
                        help="say also every option set tried and why it failed")
    parser.add_argument("--version", action="version", version="%(prog)s " + __version__)
    return parser


class _Formatter(logging.Formatter):
    """Diagnostics as the tool has always written them: plain, `warning: ...`, and errors
    as `extract_symvers: error: ...`."""

    PREFIX = {logging.WARNING: "warning: ", logging.ERROR: "extract_symvers: error: "}

    def format(self, record):
        text = self.PREFIX.get(record.levelno, "") + record.getMessage()
        return text + "\n" + self.formatException(record.exc_info) if record.exc_info else text


LEVELS = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}


def _options(args, base):
    return Options(base, args.bits, args.endian in ("big", "be") if args.endian else None,
                   args.version, args.prel32 == "y" if args.prel32 else None)


def _progress(done, total):
    print("\r%d/%d modules" % (done, total), end="\n" if done == total else "",
          file=sys.stderr, flush=True)


class _Run:
    """One run of the command line: the arguments, and the module files read for them (a
    path given to both --modules and --check is read once)."""

    def __init__(self, args):
        self.args = args
        self.max_size = args.max_size << 20
        self.progress = _progress if sys.stderr.isatty() and args.verbosity >= 0 else None
        self.read = {}
        self.memory = None

    def modules(self, paths):
        for path in paths or ():
            key = os.path.realpath(path)
            if key not in self.read:
                self.read[key] = read_modules([path], self.args.version, self.progress,
                                              self.args.skip_bad_modules, self.max_size)
        return [module for path in paths or () for module in self.read[os.path.realpath(path)]]

    def image(self, path):
        """(decompressed image, bases to try, the command line its boot.img says) of a kernel
        path, or (None, (), None) for None; self.memory the dump it is in (None: not a
        dump)."""
        if self.memory is not None:
            self.memory.close()
            self.memory = None
        if path is None:
            return None, (), None
        data, core_base, self.memory = read_kernel(path, self.max_size)
        cmdline = boot_image_cmdline(data)
        if self.memory is not None:     # memory holds the kernel running: nothing compressed
            image, payload = data, Payload("none", None)
        else:
            image, payload = unpack(data, self.max_size, raw=self.args.version is not None)
        if payload.kind != "none" and self.args.version is None and not _has_banner(image) \
                and not image_header(image).how:
            raise SymversError("%s payload at %#x decompresses to %d bytes with no Linux banner: "
                               "not a kernel (give -k to read it as a raw image)"
                               % (payload.kind, payload.offset, len(image)), EXIT_FORMAT)
        _log.info("vermagic: %s", vermagic(image) or "not found")
        return image, tuple(b for b in (payload.load, core_base) if b is not None), \
            None if cmdline is None else _ImageCmdline(cmdline, path)

    def config(self, image):
        """--config FILE: the .config to save."""
        args = self.args
        config = (image and embedded_config(image, self.max_size)) or \
            modules_config(args.modules or [], self.max_size)
        if config is None:
            raise SymversError("no embedded .config (%s): the kernel was built without "
                               "CONFIG_IKCONFIG%s" % (IKCONFIG_MARK.decode(), "" if args.modules
                                                      else ", or with =m: give --modules with "
                                                      "kernel/configs.ko"),
                               EXIT_NOT_FOUND)
        _log.info("saving the embedded .config (%d bytes) to %s", len(config), args.config)
        return config

    def btf(self, image):
        """--btf FILE: the kernel's BTF to save; with --modules, which of them carry their
        own (split BTF on the kernel's, in their .BTF section) said."""
        btf = image and btf_blob(image)
        if btf is None:
            raise SymversError("no BTF in the kernel: it was built without "
                               "CONFIG_DEBUG_INFO_BTF", EXIT_NOT_FOUND)
        _log.info("saving the kernel's BTF (%d bytes) to %s", len(btf), self.args.btf)
        modules = self.modules(self.args.modules)
        if modules:
            split = sum(m.module.split_btf for m in modules)
            _log.info("%d of the %d modules carry their own BTF, split on the kernel's: the "
                      ".BTF section of each .ko (bpftool btf dump file MODULE.ko base %s)",
                      split, len(modules), self.args.btf)
        return btf

    def same_build(self, modules, build, image, lines, version):
        """The modules of the kernel's build as its loader judges builds (build_refusals()
        against vmlinux's `lines` and the modules' exports; without a kernel, among the
        modules: the ELF header and vermagic most of them have); the others are an error, or
        with --skip-bad-modules left out.  Those of another release are said, by release."""
        if not modules:
            return modules
        magic = vermagic(image) if image is not None else None
        if build is None:
            build = collections.Counter(m.module.build._replace(release=None)
                                        for m in modules).most_common(1)[0][0]
            magic = next(iter(collections.Counter(m.module.vermagic for m in modules
                                                  if m.module.vermagic).most_common(1)),
                         (None,))[0]
            build = build._replace(release=magic and magic.split(" ")[0])
            reference, what = "most modules are", "are of another build than most"
        else:
            reference, what = "the kernel is", "are of another build"
        if magic is None and image is not None:
            _log.warning("the kernel's vermagic is not found: the modules' is not compared")
        kernel = Kernel(magic, _exports(lines, modules), None, version or max(
            (m.module.version for m in modules if m.module.version), default=LAYOUTS[-1].since),
            build=build)
        refused = [(m, build_refusals(m.module, kernel, m.name)) for m in modules]
        _bad_modules(["%s: %s" % (m.path, "; ".join(reasons)) for m, reasons in refused
                      if reasons], len(modules), what, self.args.skip_bad_modules)
        kept = [m for m, reasons in refused if not reasons]
        releases = collections.Counter(m.module.build.release for m in kept)
        for release, count in releases.items():
            if magic and release and release != build.release:
                _log.info("%d modules built against %s, %s %s (%s): accepted by MODVERSIONS "
                          "(same_magic() skips the release; their CRCs agree)", count, release,
                          reference, build.release, _release_difference(release,
                                                                        build.release))
        return kept

    def relocated(self, image):
        """(image, base): with -r, the image relocated and its link base."""
        if not self.args.relocate:
            return image, self.args.base
        relocated = relocate(image, self.args.base)
        if relocated is None:
            _log.warning("-r: no relocations to apply (none found, or their slots are filled "
                         "already): the image is read as it is")
            return image, self.args.base
        link = relocated[1] if self.args.base is None else self.args.base
        return relocated[0], link

    def kernel(self, side, checked, given):
        """The Kernel a side is for the loader: the image's vermagic, .config and struct
        module size (its BTF's, else the modules' of its build), every export of it and of
        the modules `given` and checked; a module loaded in a dump that a checked one stands
        in for (by name) left out."""
        image = side.image
        config = (image is not None and embedded_config(image, self.max_size)) or next(
            (m.module.config for m in given + checked if m.module.config), None)
        if config is None:
            _log.warning("no embedded .config: CONFIG_MODULE_SIG_FORCE and "
                         "CONFIG_MODULE_FORCE_LOAD are unknown")
        btf = btf_struct(image, "module") if image is not None else None
        sizes = collections.Counter(m.module.this_module for m in given if m.module.this_module)
        size = btf.size if btf else (sizes.most_common(1)[0][0] if sizes else None)
        if size is None:
            _log.warning("the kernel's struct module size is unknown (no BTF): give "
                         "--modules with a module of its build")
        version = self.args.version or side.version
        if version is None:
            version = max((m.module.version for m in checked if m.module.version),
                          default=LAYOUTS[-1].since)
            _log.warning("the kernel's release is unknown (no image): its checks are %s's "
                         "(give -k)", _dotted(version))
        names = {_loaded_name(m) for m in checked}
        exports = {name: symbol for name, symbol in parse_symvers(side.lines).items()
                   if symbol.module == "vmlinux" or _module_key(symbol.module) not in names}
        for name, symbol in parse_symvers(module_symvers(given + checked)).items():
            exports.setdefault(name, symbol)
        keys = kernel_certificates(image) if image is not None and self.memory is None \
            else None
        if keys is not None:
            _log.info("the kernel's built-in keys: %s", ", ".join(c.words() for c in keys)
                      or "none")
        cmdline = self.cmdline_of(side)
        config = config and parse_config(config.decode("latin-1"))
        gki = self.gki(image, config, exports, version)
        # the modules given that the kernel verifies: mod->sig_ok of GKI's signed modules
        sig_ok = frozenset(m.name for m in given + checked if gki is not None and
                           verify_signature(m.module.signature, keys).error is None)
        kcfi = kernel_kcfi(config, image, side.build and side.build.machine, version,
                           self.memory is not None)
        kernel = Kernel(vermagic(image) if image is not None else None, exports, config,
                        version, size, side.build, keys, cmdline, gki, sig_ok, kcfi)
        enforced, why = kernel.enforcement()
        _log.info("module signatures: %s (%s)", {True: "enforced", False: "not enforced",
                                                 None: "enforcement unknown"}[enforced], why)
        return kernel

    def cmdline_of(self, side):
        """The kernel's CommandLine: --cmdline's; else, beside /proc/kcore, the running
        kernel's /proc/cmdline; else what its boot.img and a vendor_boot.img given with
        --modules say (the bootloader joins them); None: unknown."""
        if self.args.cmdline is not None:
            return CommandLine(self.args.cmdline, "--cmdline")
        if self.args.kernel and os.path.realpath(self.args.kernel) == "/proc/kcore":
            try:
                with open("/proc/cmdline") as f:
                    return CommandLine(f.read().strip(), "/proc/cmdline")
            except OSError as e:
                _log.warning("/proc/cmdline: %s: the command line is unknown", e.strerror)
                return None
        said = [side.cmdline] if side.cmdline is not None else []
        for path in self.args.modules or ():
            try:
                with open(path, "rb") as f:
                    text = boot_image_cmdline(f.read(VENDOR_BOOT_V3.size))
            except OSError:
                continue            # read, or said unreadable, with the modules
            if text is not None:
                said.append(_ImageCmdline(text, path))
        return CommandLine(" ".join(c.text for c in said), "the command line of " + " and "
                           .join(os.path.basename(c.path) for c in said)) if said else None

    @staticmethod
    def gki(image, config, exports, version):
        """The GkiLists of CONFIG_MODULE_SIG_PROTECT (not looked for when the .config says
        it is off), said."""
        if image is None or config is not None and \
                config.get("CONFIG_MODULE_SIG_PROTECT") != "y":
            return None
        lists = gki_lists(image, {name for name, symbol in exports.items()
                                  if symbol.module == "vmlinux"})
        if lists:
            _log.info("CONFIG_MODULE_SIG_PROTECT: %d protected exports, a KMI list of %d "
                      "symbols (gki_module.c's tables, at %#x): a module not signed by a key "
                      "the kernel holds may not export the first, nor use what the second "
                      "lacks", len(lists.protected_exports), len(lists.unprotected), lists.at)
            first = GKI_USE_RULES[0]
            if tuple(version)[:2] < first.since:
                _log.warning("the loader of %s was not read: %s's rule on what a module not "
                             "signed may use is applied (%s)", _dotted(version[:2]),
                             _dotted(first.since), first.read)
        elif config is not None:
            _log.info("CONFIG_MODULE_SIG_PROTECT=y without a KMI list in the kernel (built "
                      "without one): nothing is protected")
        return lists

    def check(self, side, checked):
        """--check: (EXIT_REFUSED when any module would be refused, else 0; the verdicts;
        the Kernel they are of).
        A checked module stands in for the module of its name given with --modules (or
        loaded in a dump): its exports are the ones the others resolve."""
        names = {_loaded_name(m) for m in checked}
        given = [m for m in side.modules if _loaded_name(m) not in names]
        kernel = self.kernel(side, checked, given)
        verdicts = check_modules(checked, kernel, given + checked)
        for verdict in verdicts:
            if verdict.signature is not None:
                _log.info("%s: %s", verdict.path, verdict.signature.words)
            for warning in verdict.warnings:
                _log.warning("%s: %s", verdict.path, warning)
        refusals = sum(bool(v.refused) for v in verdicts)
        _log.info("%d modules checked: %d load, %d refused", len(verdicts),
                  len(verdicts) - refusals, refusals)
        return EXIT_REFUSED if refusals else 0, verdicts, kernel

    def side(self, path, module_paths=()):
        """The _Side of a kernel image, container or dump (None: no kernel) with the
        modules of `module_paths`."""
        args = self.args
        image, bases_to_try, cmdline = self.image(path)
        image, base = self.relocated(image) if image is not None else (None, args.base)
        modules = self.modules(module_paths)
        lines, build, loaded, version = [], None, [], None
        if image is not None:
            found = extract(image, _options(args, base), bases_to_try)
            lines, version = found.lines, found.options.version
            _log.info("%d symbols", len(lines))
            build = _kernel_build(image, found)
            if self.memory is not None:
                loaded = loaded_modules(self.memory, image, found)
        modules = self.same_build(modules, build, image, lines, version)
        return _Side(image, lines + _loaded_lines(loaded, modules, version), modules,
                     version or max((m.module.version for m in modules if m.module.version),
                                    default=None), build, any(m.missing for m in loaded),
                     cmdline)

    def diff_side(self, path):
        """One side of --diff, read on its own: a Module.symvers file, a module tree or
        archive, or a kernel image, container or dump (with the modules it holds loaded)."""
        lines = _symvers_file(path)
        if lines is not None:
            _log.info("%s: a Module.symvers file of %d lines", path, len(lines))
            return _Side(None, lines, [], None)
        if os.path.isdir(path):
            return self.side(None, [path])
        try:
            return self.side(path)
        except SymversError as e:
            if e.status != EXIT_FORMAT:
                raise
            try:
                archive = self.side(None, [path])
            except SymversError:
                raise e from None
            if not archive.modules:
                raise e from None
            return archive

    def diff(self, old_path, new_path, checked):
        """--diff OLD NEW [--check MODULES]: (status, the report)."""
        old, new = self.diff_side(old_path), self.diff_side(new_path)
        used = {name for m in checked for name, _ in m.module.undefined} if checked else None
        changes = kabi_changes(parse_symvers(old.all_lines), parse_symvers(new.all_lines), used)
        counts = collections.Counter(change.kind for change in changes)
        _log.info("%s", ", ".join("%d %s" % (counts[kind], kind) for kind, _ in KABI_CHANGES
                                  if counts[kind]) or "no change")
        causes = _causes(old, new, [c.name for c in changes if c.kind == "changed CRC"])
        status, verdicts, kernel = self.check(new, checked) if checked else (0, [], None)
        if not status and any(KABI_BREAKS[change.kind] for change in changes):
            status = EXIT_ABI_CHANGED
        if not status and (old.incomplete or new.incomplete):
            status = EXIT_INCOMPLETE
        if self.args.json:
            document = {"old": old_path, "new": new_path,
                        "changes": [change.json(causes) for change in changes],
                        "modules": [_verdict_json(v) for v in verdicts]}
            if kernel is not None:
                document["kernel"] = _kernel_json(kernel)
            if causes is not None:
                document["causes"] = {key: {"differences": causes.types[key],
                                            "reached_by": causes.reached[key]}
                                      for key in sorted(causes.types)}
            return status, _json(document)
        return status, "".join(line + "\n" for line in _kabi_report(
            old_path, new_path, changes, used, causes) + [v.line() for v in verdicts])

    def main(self):
        """(exit status, what goes to stdout)."""
        try:
            return self._main()
        finally:
            if self.memory is not None:
                self.memory.close()

    def _main(self):
        args = self.args
        if args.cmdline is not None and not args.check:
            _log.warning("--cmdline is read by --check only: ignored")
        checked = self.modules(args.check)
        if args.diff:
            return self.diff(*args.diff, checked)
        if args.config or args.decompress or args.btf:
            image, _, _ = self.image(args.kernel)
            saved = [(args.config, self.config(image))] if args.config else []
            if args.btf:
                saved.append((args.btf, self.btf(image)))
            if args.decompress:
                _log.info("saving unpacked kernel to %s", args.decompress)
                saved.append((args.decompress, self.relocated(image)[0]))
            for path, data in saved:        # each found before any is written
                write_file(path, data)
            return 0, ""
        side = self.side(args.kernel, args.modules or ())
        if args.check:
            status, verdicts, kernel = self.check(side, checked)
            status = status or (EXIT_INCOMPLETE if side.incomplete else 0)
            return status, _json({"modules": [_verdict_json(v) for v in verdicts],
                                  "kernel": _kernel_json(kernel)}) \
                if args.json else "".join(v.line() + "\n" for v in verdicts)
        _exported_twice(side.lines, side.modules)
        return EXIT_INCOMPLETE if side.incomplete else 0, \
            "".join(line + "\n" for line in side.all_lines)


class _ImageCmdline(NamedTuple):
    text: str
    path: str       # the boot.img or vendor_boot.img whose header says it


class _Side(NamedTuple):
    """A kernel as the command line reads it: its image (None: not given), the lines of
    vmlinux and of the modules loaded in it (a dump), the modules of its build, its release
    and Build."""
    image: Optional[bytes]
    lines: list
    modules: list
    version: Optional[tuple]
    build: Optional[Build] = None       # the kernel's (None: no image)
    incomplete: bool = False    # loaded modules that cannot be read whole (named)
    cmdline: Optional["_ImageCmdline"] = None   # the one its container (boot.img) gives

    @property
    def all_lines(self):
        return self.lines + (module_symvers(self.modules) if self.modules else [])


def _causes(old, new, changed):
    """crc_causes() of the `changed` CRCs between two _Sides, or None (said) where either
    has no BTF."""
    if not changed:
        return None
    blobs = [side.image is not None and btf_blob(side.image) for side in (old, new)]
    if not all(blobs):
        _log.info("why the CRCs changed is said where both kernels carry BTF "
                  "(CONFIG_DEBUG_INFO_BTF): %s", " and ".join(
                      side for side, blob in zip(("OLD", "NEW"), blobs) if not blob) +
                  " has none")
        return None
    try:
        return crc_causes(Btf(blobs[0]), Btf(blobs[1]), changed)
    except (ValueError, struct.error, IndexError) as e:
        _log.warning("why the CRCs changed is not said: a BTF does not parse (%s)", e)
        return None


def _loaded_lines(loaded, modules, version):
    """The Module.symvers lines, in the columns of the kernel's `version`, of the modules
    loaded in a dump (LoadedModules), but those that --modules gives too (whose column is
    their path): with the same exports, or an error naming both."""
    given = {_module_key(m.name): m for m in modules}
    lines = []
    for module in loaded:
        if module.missing:          # named, left out
            continue
        twin = given.get(_module_key(module.name))
        if twin is None:
            lines += format_symvers(module.exports, layout_for(version).columns)
        elif {s[:4] for s in module.exports} != {s[:4] for s in twin.module.exports}:
            raise SymversError("%s and the module %s loaded in the dump export other symbols "
                               "or CRCs: of another build?" % (twin.path, module.name),
                               EXIT_INCONSISTENT)
    return lines


def _symvers_file(path):
    """The lines of a Module.symvers file, or None for anything else."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
            if not SYMVERS_LINE.match(head):
                return None
            text = head + f.read()
    except OSError:
        return None
    return text.decode("latin-1").splitlines()


def _json(document):
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def _kernel_json(kernel):
    """What --check's verdicts on signatures rest on."""
    enforced, why = kernel.enforcement()
    locked, because = lockdown(kernel.config, kernel.cmdline)
    return {"signatures_enforced": enforced, "enforced_why": why, "locked_down": locked,
            "lockdown_why": because, "cmdline": kernel.cmdline and kernel.cmdline._asdict(),
            "protected_exports": sorted(kernel.gki.protected_exports) if kernel.gki else None,
            "kmi_symbols": len(kernel.gki.unprotected) if kernel.gki else None,
            "keys": None if kernel.keys is None else [
                {"subject": key.subject, "key_id": key.skid and key.skid.hex(),
                 "algorithm": key.algorithm} for key in kernel.keys]}


def _verdict_json(verdict):
    said = {"path": verdict.path, "loads": not verdict.refused, "refused": verdict.refused,
            "taints": verdict.taints, "warnings": list(verdict.warnings),
            "after": list(verdict.after),
            "protected_symbols": [r._asdict() for r in verdict.protected],
            "kcfi": dict(zip(("module", "kernel"), verdict.kcfi))}
    check = verdict.signature
    if check is not None:
        signer, key = check.signer, check.key
        said["signature"] = {
            "signed": check.error != "ENODATA", "verified": check.error is None,
            "error": check.error if check.error != "unknown" else None,
            "hash": signer and signer.hash, "signer": signer and signer.key_words,
            "key": key and key.subject, "key_id": key and key.skid and key.skid.hex(),
            "said": check.words}
    return said


def _kernel_build(image, found):
    """The Build of the kernel: its banner's release, the ELF class and byte order its tables
    were found with (or its header's), its header's machine."""
    header = image_header(image)
    release = _banner_release(image)
    return Build(release.decode("latin-1") if release else None,
                 found.mattered.bits or header.bits, found.options.big_endian, header.machine)


def _loaded_name(module_file):
    """The name the loader knows a ModuleFile by (.modinfo's, else its file's), as
    _module_key() gives a module column."""
    return _module_key(module_file.module.modinfo.get("name", [module_file.name])[0])


def _exports(lines, modules):
    """{name: Symbol} of Module.symvers `lines` and of ModuleFiles, the first of a name kept
    (as the loader finds vmlinux's first)."""
    exports = parse_symvers(lines)
    for _, name, module in modules:
        for symbol in module.exports:
            exports.setdefault(symbol.name, symbol._replace(module=name))
    return exports


def _exported_twice(vmlinux_lines, modules):
    """A module exporting what vmlinux exports is from another build: modpost stops there."""
    names = {line.split("\t")[1] for line in vmlinux_lines}
    for label, name, module in modules:
        twice = [symbol.name for symbol in module.exports if symbol.name in names]
        if twice:
            raise SymversError("%s exports %s, which vmlinux exports too (modpost: \"exported "
                               "twice\"): is it from another build?" % (label, twice[0]),
                               EXIT_INCONSISTENT)


class _Terminated(BaseException):
    """SIGTERM, raised where the program is, as Ctrl-C raises KeyboardInterrupt: what is half
    done is undone on the way out."""


def _terminate(signum, frame):
    raise _Terminated()


class _Diagnostics:
    """main()'s stderr handler on the logger, at the -q/-v level, for the duration of a
    run; SIGTERM raised as _Terminated.  Nothing is changed from a thread other than the
    main one, where signals cannot be handled."""

    def __init__(self, verbosity):
        self.handler = logging.StreamHandler(sys.stderr) if sys.stderr else \
            logging.NullHandler()           # started with 2>&-
        self.handler.setFormatter(_Formatter())
        self.level = LEVELS[verbosity]

    def __enter__(self):
        self.saved = _log.level, _log.propagate
        _log.addHandler(self.handler)
        _log.setLevel(self.level)
        _log.propagate = False
        try:
            self.sigterm = signal.signal(signal.SIGTERM, _terminate)
        except ValueError:                  # not the main thread
            self.sigterm = None
        return self

    def __exit__(self, *exc):
        if self.sigterm is not None:
            signal.signal(signal.SIGTERM, self.sigterm)
        _log.removeHandler(self.handler)
        _log.setLevel(self.saved[0])
        _log.propagate = self.saved[1]


def _written_onto(output, source):
    """Whether writing the file `output` writes onto the input `source`: the same file (by
    its path, through symlinks, or a hard link: the same device and inode), or a module file
    in the tree of a directory given as an input."""
    try:
        written, read = os.stat(output), os.stat(source)
        if (written.st_dev, written.st_ino) == (read.st_dev, read.st_ino):
            return True
    except OSError:             # a new file; an input that cannot be read is said later
        pass
    output, source = os.path.realpath(output), os.path.realpath(source)
    return output == source or (_module_suffix(output) is not None and os.path.isdir(source)
                                and output.startswith(os.path.join(source, "")))


def _outputs(args):
    """(option, FILE) of each output given: -o, -d, --config, --btf."""
    return [(option, getattr(args, OPTION_DESTS[option])) for option in ("-o", "-d", "--config",
                                                                         "--btf")]


def _onto_an_input(args):
    """The first (option, output, input) of an -o, -d, --config or --btf FILE that would be
    written onto an input (the kernel, --modules, --check, --diff), or None."""
    sources = [path for path in [args.kernel] + (args.modules or []) + (args.check or [])
               + list(args.diff or ()) if path not in (None, "-")]
    return next(((option, output, source)
                 for option, output in _outputs(args)
                 if output not in (None, "-") for source in sources
                 if _written_onto(output, source)), None)


def main(argv=None):
    """The command line: (exit status), with the Module.symvers lines (or the --check
    verdicts) on stdout and everything else on stderr; nothing on stdout on a failure."""
    parser = _parser()
    args = parser.parse_args(argv)
    combined = _combined(args)
    if combined:
        parser.error("%s and %s cannot be combined: %s" % combined)
    onto = _onto_an_input(args)
    if onto:
        parser.error("%s %s would write onto the input %s: give another FILE" % onto)
    saved = [(option, path) for option, path in _outputs(args)
             if option != "-o" and path is not None]
    twice = next(((one, other) for i, one in enumerate(saved) for other in saved[i + 1:]
                  if _written_onto(other[1], one[1])), None)
    if twice:
        parser.error("%s %s and %s %s are the same file: give two" % (*twice[0], *twice[1]))
    if args.kernel is None and not args.diff and (args.check or args.decompress or args.btf
                                                  or args.relocate or not args.modules):
        parser.error("KERNEL is needed, except to list the exports of --modules alone")
    elif args.json and not (args.check or args.diff):
        parser.error("--json is for --check and --diff")
    with _Diagnostics(args.verbosity):
        try:
            _sigint.phase = "running"
            status = _command(args)
            _sigint.phase = "decided"
        except KeyboardInterrupt:   # as a script raised once, wherever: in an error's line too
            _log.error("interrupted (SIGINT): nothing written")
            status = EXIT_SIGINT
        return status


def _command(args):
    """main()'s run, its result written and its failure said: the exit status."""
    try:
        status, text = _Run(args).main()
        if args.output:
            write_file(args.output, text.encode())
            _log.info("written to %s", args.output)
        else:
            write_stdout(text)
        return status
    except SymversError as e:
        _log.error("%s", e)
        return e.status
    except _Terminated:
        _log.error("terminated (SIGTERM): nothing written")
        return EXIT_SIGTERM
    except MemoryError:
        _log.error("out of memory")
        return EXIT_INPUT
    except Exception as e:      # a bug: still one line, and a status of its own
        _log.error("internal error (please report): %s: %s", type(e).__name__, e,
                   exc_info=_log.isEnabledFor(logging.DEBUG))     # -vv: where
        return EXIT_INTERNAL


def _script():
    """The script's end: main()'s status, the streams flushed, and os._exit() (see _sigint)."""
    try:
        status = main()
    except SystemExit as e:         # argparse: --help, --version, a usage error
        status = e.code
    _sigint.phase = "decided"
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):   # closed (>&-), or its reader gone
            pass
    os._exit(status)


if __name__ == "__main__":
    _script()
