"""Synthetic kernel images, built byte by byte from the export-table layouts of each kernel era.

Written from the kernel's own definitions (struct symsearch, struct kernel_symbol, the
__ksymtab*/__kcrctab*/__kflagstab/__ksymtab_strings sections of vmlinux.lds.h, modpost's
Module.symvers format), independently of extract_symvers.py: the tests compare the tool's
output with the lines this module says the kernel's own build would have written.
"""

import dataclasses
import random
import struct
from dataclasses import dataclass, field

PLAIN, GPL, GPL_FUTURE = "EXPORT_SYMBOL", "EXPORT_SYMBOL_GPL", "EXPORT_SYMBOL_GPL_FUTURE"
UNUSED, UNUSED_GPL = "EXPORT_UNUSED_SYMBOL", "EXPORT_UNUSED_SYMBOL_GPL"

# symsearch licence value and `unused` flag of each export type
LICENCE = {PLAIN: (0, 0), GPL: (1, 0), GPL_FUTURE: (2, 0), UNUSED: (0, 1), UNUSED_GPL: (1, 1)}


@dataclass(frozen=True)
class Era:
    kver: str                   # what the user passes as -k
    release: str                # what the banner says
    symsearch: tuple            # export types in symsearch array order; () = no array
    unused_field: bool          # symsearch entry has `bool unused`
    link_order: tuple           # ksymtab/kcrctab sections as the linker script lays them out
    crc_long: bool              # kcrctab slots are unsigned long (before 4.10)
    rel_crcs: bool              # CONFIG_MODULE_REL_CRCS exists (4.10 - 5.18)
    prel32: bool                # CONFIG_HAVE_ARCH_PREL32_RELOCATIONS exists (4.19+)
    namespace: str              # "" none, "null" (5.4: NULL when none), "string" (5.5+: "")
    sorted: bool                # SORT() in the linker script (3.0+)
    flagstab: bool              # 7.1+: one ksymtab, __kflagstab bit 0 = GPL-only
    columns: tuple              # modpost's Module.symvers columns
    modpost_adds: tuple = ()    # what modpost lists for vmlinux (CRC 0) when it is not exported


OLD_TABLES = (PLAIN, GPL, GPL_FUTURE)
PLAIN_COLS = ("crc", "name", "module")
OLD_LINK = (PLAIN, GPL, UNUSED, UNUSED_GPL, GPL_FUTURE)
EXPORT_COLS = ("crc", "name", "module", "export")
NS_MIDDLE = ("crc", "name", "namespace", "module", "export")
NS_LAST = ("crc", "name", "module", "export", "namespace")

def _history(first, *changes):
    """The eras: the first in full, then each as what changed from the one before (its
    -k spelling is its name, but where given)."""
    eras, era = {first.kver: first}, first
    for name, change in changes:
        era = eras[name] = dataclasses.replace(era, **{"kver": name, **change})
    return eras


ERAS = _history(
    # before 2.6.27 no symsearch array: find_symbol()'s code refers to each table's bounds
    Era(kver="2.6.0", release="2.6.0", symsearch=(), unused_field=False, link_order=(PLAIN, GPL),
        crc_long=True, rel_crcs=False, prel32=False, namespace="", sorted=False, flagstab=False,
        columns=PLAIN_COLS, modpost_adds=("cleanup_module", "struct_module")),
    ("2.6.9", dict(release="2.6.9", modpost_adds=("struct_module",))),
    ("2.6.12", dict(release="2.6.12")),
    ("2.6.17", dict(release="2.6.17", link_order=OLD_TABLES, modpost_adds=())),
    ("2.6.18", dict(release="2.6.18", link_order=OLD_LINK, columns=EXPORT_COLS)),
    ("2.6.25", dict(release="2.6.25.20")),
    ("2.6.27", dict(release="2.6.27", symsearch=OLD_TABLES, unused_field=True)),
    ("2.6.32", dict(kver="old", release="2.6.32")),
    ("3.10", dict(release="3.10.0", sorted=True)),
    ("4.10", dict(release="4.10.0", crc_long=False, rel_crcs=True)),
    ("4.19", dict(release="4.19.0", prel32=True)),
    ("5.4.20", dict(release="5.4.20", namespace="null", columns=NS_MIDDLE)),
    ("5.4.28", dict(release="5.4.28", columns=NS_LAST)),
    ("5.4", dict(release="5.4.100")),
    ("5.5.0", dict(release="5.5.0", namespace="string", columns=NS_MIDDLE)),
    ("5.5.12", dict(release="5.5.12")),
    ("5.5.13", dict(release="5.5.13", columns=NS_LAST)),
    ("5.10", dict(release="5.10.0")),
    ("5.12", dict(release="5.12.0", symsearch=(PLAIN, GPL), unused_field=False,
                  link_order=(PLAIN, GPL))),
    ("5.19", dict(release="5.19.0", rel_crcs=False)),
    ("6.14", dict(release="6.14.0")),
    ("7.1", dict(release="7.1.0", symsearch=(), link_order=(PLAIN,), flagstab=True)),
    ("7.2", dict(release="7.2.0")),
)
# the releases a row of the layout history starts at, where no era above shows it: the
# image of each is read as its row says (tests/test_layouts.py, outside the full matrix)
ROW_STARTS = ("2.6.9", "2.6.17", "2.6.27", "5.4.28", "5.5.0", "5.5.12", "5.5.13")


@dataclass
class Export:
    name: str
    crc: int
    export: str
    namespace: str = ""


@dataclass
class Kernel:
    """A built image and what its Module.symvers must say."""
    data: bytes
    base: int
    options: list               # the CLI options a user who knows this kernel would give
    exports: list
    era: Era
    symsearch_offset: int = None
    layout: dict = field(default_factory=dict)
    pointers: list = field(default_factory=list)    # (offset, value) of every address slot

    def symvers(self):
        """The expected Module.symvers lines, as modpost formats them for this era."""
        lines = []
        for e in self.exports:
            values = {"crc": "0x%08x" % (e.crc if self.modversions else 0), "name": e.name,
                      "module": "vmlinux", "export": e.export, "namespace": e.namespace}
            lines.append("\t".join(values[c] for c in self.era.columns))
        names = {e.name for e in self.exports}
        return lines + ["\t".join({"crc": "0x00000000", "name": name, "module": "vmlinux"}[c]
                                  for c in self.era.columns)
                        for name in self.era.modpost_adds if name not in names]

    @property
    def modversions(self):
        return self.layout.get("modversions", True)


def randbytes(rng, size):
    """rng.randbytes(size), the same bytes, on Python 3.8 (Random.randbytes is 3.9+)."""
    return rng.getrandbits(8 * size).to_bytes(size, "little") if size else b""


def make_exports(era, count=40, unused=False, seed=1):
    """Exports with distinct identifier names, spread over the era's export types."""
    rng = random.Random(seed)
    types = [PLAIN, GPL]
    if GPL_FUTURE in era.link_order:
        types.append(GPL_FUTURE)
    if unused and UNUSED in era.link_order:
        types += [UNUSED, UNUSED_GPL]
    names = set()
    while len(names) < count:
        names.add(rng.choice("abcdefghijklmnopqrstuvwxyz_") + "".join(
            rng.choice("abcdefghijklmnopqrstuvwxyz0123456789_") for _ in range(rng.randint(3, 24))))
    names = sorted(names)
    names[1] = "__" + names[2]          # a name that is the suffix of another: merged strings
    exports = []
    for i, name in enumerate(names):
        export = types[i % len(types)]
        namespace = ""
        if era.namespace and i % 7 == 3:
            namespace = rng.choice(["USB_STORAGE", "CRYPTO_INTERNAL", "module:cxl_core,cxl-pmem"])
        exports.append(Export(name, rng.getrandbits(32), export, namespace))
    return exports


class Writer:
    """A growing image whose offsets are also virtual addresses (base + offset)."""

    def __init__(self, base, ptr_size, big, rng):
        self.buf = bytearray()
        self.base, self.ptr_size, self.rng = base, ptr_size, rng
        self.e = ">" if big else "<"
        self.pointers = []      # what a relocatable kernel leaves for its boot code to fill

    def addr(self, offset):
        return self.base + offset

    def align(self, n):
        self.buf += bytes(-len(self.buf) % n)

    def put(self, data, align=1):
        self.align(align)
        offset = len(self.buf)
        self.buf += data
        return offset

    def noise(self, size):
        return self.put(randbytes(self.rng, size))

    def ptr(self, value):
        return struct.pack(self.e + ("I" if self.ptr_size == 4 else "Q"), value)

    def u32(self, value):
        return struct.pack(self.e + "I", value & 0xFFFFFFFF)

    def patch(self, offset, data):
        self.buf[offset:offset + len(data)] = data

    def patch_address(self, offset, target):
        """An absolute pointer to image offset `target`, which relocation would fill in."""
        self.patch(offset, self.ptr(self.addr(target)))
        self.pointers.append((offset, self.addr(target)))


def build(era_name, bits=64, big=False, prel32=None, exports=None, modversions=True,
          rel_crcs=False, unused=False, base=None, seed=7, release=None):
    """A kernel image of this era holding `exports`, laid out as vmlinux.lds.h lays it out:
    text, banner (of `release`; by default the era's, -test), .rodata with the symsearch
    array, then __ksymtab*, __kcrctab*, [__kflagstab], __ksymtab_strings, with decoys
    around them."""
    era = ERAS[era_name]
    prel32 = era.prel32 if prel32 is None else prel32 and era.prel32
    rel_crcs = rel_crcs and era.rel_crcs and modversions
    rng = random.Random(seed)
    P = bits // 8
    if base is None:
        base = 0xFFFFFFFF81000000 if bits == 64 else 0xC0008000
    exports = exports or make_exports(era, unused=unused, seed=seed)
    w = Writer(base, P, big, rng)

    # .text: what the exported values point at
    text = w.noise(0x1800)
    w.put(b"Linux version %s (fixture@build) (gcc 12) #1 SMP\n\0"
          % (release or era.release + "-test").encode())
    w.noise(0x300)
    _decoy_symsearch(w, era, P)
    w.noise(0x200)

    # find_symbol() before 2.6.27: a literal pool of the tables' bounds, filled in below
    pool_at = None if era.symsearch or era.flagstab else w.put(bytes(P * 20), align=P)
    w.noise(0x100)

    symsearch_at = None
    if era.symsearch:
        entries = len(era.symsearch) + (2 if unused else 0)
        entry_size = _symsearch_entry_size(era, P)
        symsearch_at = w.put(bytes(entries * entry_size), align=P)
    w.noise(0x500)
    _decoy_strings(w, rng)
    w.noise(0x100)

    # the tables, each sorted by name (3.0+), in link order
    tables = {t: [e for e in exports if e.export == t] for t in era.link_order}
    if era.flagstab:
        tables = {PLAIN: list(exports)}
    for t in tables:
        if era.sorted:
            tables[t].sort(key=lambda e: e.name.encode())
        else:
            rng.shuffle(tables[t])
    fields = 3 if era.namespace else 2
    entry = (4 if prel32 else P) * fields
    ksymtab, at = {}, None
    for t, syms in tables.items():
        at = w.put(bytes(entry * len(syms)), align=4 if prel32 else P)
        ksymtab[t] = at
    ksymtab_stop = len(w.buf)
    crc_width = P if era.crc_long else 4
    kcrctab = {}
    w.align(crc_width)
    for t, syms in tables.items():
        kcrctab[t] = len(w.buf)
        if modversions:
            w.put(bytes(crc_width * len(syms)))
    flagstab = None
    if era.flagstab:
        flagstab = w.put(bytes(1 if e.export == GPL else 0 for e in tables[PLAIN]))

    # __ksymtab_strings: names, namespaces; "" is shared (merged strings, 5.5+)
    strings = {}

    def string(s):
        if s not in strings:
            strings[s] = w.put(s.encode() + b"\0")
        return strings[s]

    for syms in tables.values():
        for e in syms:
            if e.name.startswith("__") and e.name[2:] in {x.name for x in exports}:
                strings.setdefault(e.name[2:], string(e.name) + 2)     # suffix merge
            string(e.name)
            if era.namespace == "string" or e.namespace:
                string(e.namespace)
    w.noise(0x40)
    rel_area = w.put(bytes(4 * len(exports) * rel_crcs), align=4)
    w.noise(0x400)
    if pool_at is not None:
        _kallsyms_decoy(w, [ksymtab[t] + i * entry for t, syms in tables.items()
                            for i in range(len(syms) + 1)], [text, ksymtab_stop])
        w.noise(0x100)

    # fill in kernel_symbols and CRCs
    rel_next = rel_area
    for t, syms in tables.items():
        for i, e in enumerate(syms):
            at = ksymtab[t] + i * entry
            value = text + rng.randrange(0, 0x1800, 4)
            refs = [value, string(e.name)]
            if era.namespace:
                named = e.namespace or era.namespace == "string"
                refs.append(string(e.namespace) if named else None)
            for k, target in enumerate(refs):
                where = at + k * (entry // fields)
                if prel32:
                    w.patch(where, struct.pack(w.e + "i", 0 if target is None else target - where))
                elif target is None:
                    w.patch(where, w.ptr(0))
                else:
                    w.patch_address(where, target)
            if modversions:
                slot = kcrctab[t] + i * crc_width
                if rel_crcs:
                    w.patch(rel_next, w.u32(e.crc))
                    w.patch(slot, struct.pack(w.e + "i", rel_next - slot))
                    rel_next += 4
                else:
                    w.patch(slot, w.u32(e.crc) if crc_width == 4 else w.ptr(e.crc))

    if pool_at is not None:
        # {start, stop, crcs} of each table in lookup order, with instructions between
        lookup = [PLAIN, GPL, GPL_FUTURE, UNUSED, UNUSED_GPL]
        bounds = [(ksymtab[t], ksymtab[t] + entry * len(tables[t]), kcrctab[t])
                  for t in lookup if t in tables]
        words = [target for triple in bounds for target in triple]
        for i, target in enumerate(words):
            w.patch_address(pool_at + i * P, target)
    if era.symsearch:
        order = list(era.symsearch) + ([UNUSED, UNUSED_GPL] if unused else [])
        entry_size = _symsearch_entry_size(era, P)
        for i, t in enumerate(order):
            start = ksymtab[t] if t in ksymtab else ksymtab_stop
            stop = start + entry * len(tables.get(t, ()))
            crcs = kcrctab[t]
            licence, is_unused = LICENCE[t]
            record = w.u32(licence) + (bytes([is_unused]) if era.unused_field else b"")
            at = symsearch_at + i * entry_size
            w.patch(at + 3 * P, record + bytes(entry_size - 3 * P - len(record)))
            for k, target in enumerate((start, stop, crcs)):
                w.patch_address(at + k * P, target)

    options = ["-b", str(bits), "-B", "%x" % base, "-k", era.kver, "-e", "be" if big else "le"]
    if era.prel32:
        options += ["-p", "y" if prel32 else "n"]
    kernel = Kernel(bytes(w.buf), base, options, exports, era, symsearch_at,
                    dict(modversions=modversions, prel32=prel32, rel_crcs=rel_crcs,
                         flagstab=flagstab, ksymtab=ksymtab, pool=pool_at), w.pointers)
    return kernel


def _symsearch_entry_size(era, P):
    raw = 3 * P + 4 + (1 if era.unused_field else 0)
    return -(-raw // P) * P


def _decoy_symsearch(w, era, P):
    """Near-matches of the symsearch array: the right licence values, pointers just outside
    the image; then the right pointers to nowhere in particular with a wrong licence."""
    if not era.symsearch:
        return
    size = _symsearch_entry_size(era, P)
    w.align(P)
    for i, t in enumerate(era.symsearch):
        licence, unused = LICENCE[t]
        outside = w.base - 0x1000 * (i + 1)
        record = w.ptr(outside) * 3 + w.u32(licence) + (b"\0" if era.unused_field else b"")
        w.put(record + bytes(size - len(record)))
    for i, t in enumerate(era.symsearch):
        record = w.ptr(w.addr(64 * i)) * 3 + w.u32(7) + (b"\0" if era.unused_field else b"")
        w.put(record + bytes(size - len(record)))
    # right licences, pointers into .text: passes a pattern search, fails the walk
    for i, t in enumerate(era.symsearch):
        licence, unused = LICENCE[t]
        start = w.addr(0x100 * (i + 1))
        record = w.ptr(start) + w.ptr(start + 0x30) + w.ptr(start + 0x400) + w.u32(licence) \
            + (b"\0" if era.unused_field else b"")
        w.put(record + bytes(size - len(record)))


def _kallsyms_decoy(w, entries, others):
    """kallsyms_addresses: every ksymtab entry is a symbol (__ksymtab_NAME), listed in address
    order among others: words pointing at every table entry, not only at the bounds."""
    w.align(w.ptr_size)
    for target in sorted(entries + others):
        w.put(w.ptr(w.addr(target)))


def _decoy_strings(w, rng):
    """A block of identifiers that no ksymtab refers to (like BTF's string section)."""
    names = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rng.randint(4, 20)))
             for _ in range(120)]
    w.put(b"\0".join(n.encode() for n in names) + b"\0")


def gki_arrays(*symbol_lists, align=32):
    """What scripts/gen_gki_modules_headers.sh of the Android common kernel makes of symbol
    lists (the text of android/abi_gki_* files), as the compiler lays out each generated
    `static const char gki_..._symbols[][MAX_..._NAME_LEN]` of gki_module.c, one after the
    other, each `align`ed: the names (lines stripped; comments, empty lines and the
    [abi_symbol_list] header dropped) in byte order without repeats (LC_ALL=C sort -u), each
    NUL-padded to the longest's length + 1."""
    data = b""
    for text in symbol_lists:
        names = sorted({line.strip().encode() for line in text.splitlines()} -
                       {b"", b"[abi_symbol_list]"})
        names = [name for name in names if not name.startswith(b"#")]
        width = max(map(len, names), default=0) + 1
        data += bytes(-len(data) % align) + b"".join(name.ljust(width, b"\0")
                                                     for name in names)
    return data
