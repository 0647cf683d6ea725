"""Memory dumps of a running kernel with modules loaded, built from the kernel's own layouts
(include/linux/module.h's struct module and list_head, include/linux/export.h's
kernel_symbol, Documentation/bpf/btf.rst, the MMUs' translation-table formats), not from
extract_symvers.py: what QEMU cannot show (other eras of struct module, arm64 with 39-bit
VA, a stale copy beside the ring, a corrupt BTF copy)."""

import re
import struct
import zlib
from dataclasses import dataclass, field

from archives import elf_core, kdump
from kernelimage import ERAS, GPL, GPL_FUTURE, PLAIN, UNUSED, UNUSED_GPL, build, make_exports

MODULE_NAME_LEN = 64

# struct module's export-table fields, as offsets: (syms, crcs, count) of each table and,
# from 7.1, the flag table; the offsets of a 64-bit Debian 6.1 and 7.2 (their BTF's), a
# 2.6.24 one (each table {syms, num_syms, crcs}) and 32-bit ones
STRUCT_MODULE = {
    ("6.1", 8): dict(size=0x3c0, tables={PLAIN: (0xd0, 0xd8, 0xe0), GPL: (0x118, 0x120, 0x114)}),
    ("7.2", 8): dict(size=0x400, tables={PLAIN: (0xd8, 0xe0, 0xf0)}, flagstab=0xe8),
    ("2.6.24", 8): dict(size=0x300, tables={PLAIN: (0x60, 0x70, 0x68), GPL: (0x78, 0x88, 0x80)}),
    ("6.1", 4): dict(size=0x200, tables={PLAIN: (0x68, 0x6c, 0x70), GPL: (0x84, 0x88, 0x80)}),
    # 2.6.32 with CONFIG_UNUSED_SYMBOLS: {syms, crcs, num_syms}, kp, num_kp, {num_gpl_syms,
    # gpl_syms, gpl_crcs}, the unused ones alike, then {gpl_future_syms, .._crcs, num_..}
    ("2.6.32", 8): dict(size=0x300, tables={
        PLAIN: (0xd0, 0xd8, 0xe0), GPL: (0xf8, 0x100, 0xf4), UNUSED: (0x108, 0x110, 0x118),
        UNUSED_GPL: (0x120, 0x128, 0x11c), GPL_FUTURE: (0x130, 0x138, 0x140)}),
}


@dataclass
class LoadedModule:
    name: str
    exports: list
    address: int = 0        # of its struct module
    table: int = 0          # of its ksymtab


@dataclass
class Memory:
    """A kernel and its modules in virtual memory: {address: bytes} regions, and what the
    complete Module.symvers must say."""
    kernel: object                  # the kernelimage.Kernel
    regions: dict = field(default_factory=dict)
    modules: list = field(default_factory=list)
    btf: bytes = b""
    head: int = 0                   # of the list head (the kernel's `modules`)

    def symvers(self, era):
        columns = ERAS[era].columns
        lines = list(self.kernel.symvers())
        for m in self.modules:
            for x in m.exports:
                values = {"crc": "0x%08x" % x.crc, "name": x.name, "module": m.name,
                          "export": x.export, "namespace": x.namespace}
                lines.append("\t".join(values[c] for c in columns))
        return lines


def _export_tables(module, base, bits, big, era, prel32, names_first=False):
    """The ksymtab (sorted), kcrctab, kflagstab and strings of a module at `base`: bytes,
    and {export type: (table address, count, crc address, flag address)}.  The tables
    first, then the strings; with `names_first`, the strings (and the symbols' values) below
    the CRC and flag tables, the ksymtab last (as a module's sections may be laid out)."""
    e = ">" if big else "<"
    P = bits // 8
    info = ERAS[era]
    field_size = 4 if prel32 else P
    types = [PLAIN] if info.flagstab else [t for t in (PLAIN, GPL, UNUSED, UNUSED_GPL, GPL_FUTURE)
                                           if t in (PLAIN, GPL) or any(x.export == t for x in
                                                                       module.exports)]
    tables = {t: sorted((x for x in module.exports if info.flagstab or x.export == t),
                        key=lambda x: x.name.encode()) for t in types}
    strings_at, tables_at, values_at = (0, 0x2000, 0x1800) if names_first else (0x2000, 0, 0x3000)
    out = bytearray(0x4000)
    strings, offsets = bytearray(), {}
    for x in module.exports:
        for s in (x.name, x.namespace):
            if s not in offsets:
                offsets[s] = strings_at + len(strings)
                strings += s.encode() + b"\0"
    out[strings_at:strings_at + len(strings)] = strings
    crc_width = P if info.crc_long else 4
    entry_size = field_size * (3 if info.namespace else 2)
    sizes = {"syms": entry_size, "crcs": crc_width, "flags": 1 if info.flagstab else 0}
    placed, at = {t: {} for t in tables}, tables_at
    for kind in ("crcs", "flags", "syms") if names_first else ("syms", "crcs", "flags"):
        for t, syms in tables.items():
            placed[t][kind] = at if sizes[kind] else None
            at += sizes[kind] * len(syms)
        at = (at + 7) & ~7
    tables_end = at
    assert tables_end <= (0x4000 if names_first else strings_at)
    for t, syms in tables.items():
        at = placed[t]["syms"]
        for i, x in enumerate(syms):
            refs = [base + values_at + 16 * i, base + offsets[x.name]]
            if info.namespace:
                refs.append(base + offsets[x.namespace])
            for k, target in enumerate(refs):
                where = base + at + k * field_size
                out[at + k * field_size:at + (k + 1) * field_size] = \
                    struct.pack(e + "i", target - where) if prel32 else \
                    struct.pack(e + ("Q" if P == 8 else "I"), target)
            at += entry_size
        for i, x in enumerate(syms):
            at = placed[t]["crcs"] + i * crc_width
            out[at:at + crc_width] = struct.pack(e + ("Q" if crc_width == 8 else "I"), x.crc)
            if info.flagstab:
                out[placed[t]["flags"] + i] = x.export == GPL
    out = bytes(out[:max(strings_at + len(strings), tables_end)])
    return out, {t: (base + p["syms"], len(tables[t]), base + p["crcs"],
                     base + p["flags"] if p["flags"] is not None else None)
                 for t, p in placed.items()}


def struct_module(name, state, next_, prev, shape, tables, bits, big):
    """The bytes of a struct module: state, list, name, the export-table fields."""
    e = ">" if big else "<"
    P = bits // 8
    word = "Q" if P == 8 else "I"
    out = bytearray(shape["size"])
    struct.pack_into(e + "I", out, 0, state)
    struct.pack_into(e + word + word, out, P, next_, prev)
    out[3 * P:3 * P + len(name)] = name.encode()
    for t, (syms, crcs, count) in shape["tables"].items():
        if t in tables:
            address, n, crc, flags = tables[t]
            struct.pack_into(e + word, out, syms, address)
            struct.pack_into(e + word, out, crcs, crc)
            struct.pack_into(e + "I", out, count, n)
            if "flagstab" in shape:
                struct.pack_into(e + word, out, shape["flagstab"], flags)
    return bytes(out)


def kernel_with_modules(era="6.14", layout="6.1", bits=64, big=False, count=5, seed=50,
                        kernel_base=0xFFFFFFFF81000000, module_base=0xFFFFFFFFC0000000,
                        head=0xFFFFFFFF82000000, stale=True, module_bases=None, prel32=None,
                        unused=False, exports_each=3, names_first=False):
    """A kernel of `era` at `kernel_base` and `count` modules loaded in module memory from
    `module_base` (each a page-aligned region: its tables, then its struct module in the
    `layout` of STRUCT_MODULE), on a ring whose list head is at `head` (the kernel's
    `modules`); with `stale`, a copy of one struct module outside the ring.  `module_bases`:
    each module's region where it is given (64 KiB each), as far apart as module memory
    allows; with `unused`, the modules export EXPORT_UNUSED_SYMBOL(_GPL) and
    EXPORT_SYMBOL_GPL_FUTURE symbols too (2.6.18-5.11).  Module i exports `exports_each` + i
    symbols (every third none); `names_first`: see _export_tables()."""
    P = bits // 8
    word = "Q" if P == 8 else "I"
    e = ">" if big else "<"
    kernel = build(era, bits=bits, big=big, base=kernel_base, prel32=prel32)
    memory = Memory(kernel)
    memory.regions[kernel_base] = kernel.data
    prel32 = kernel.layout["prel32"]
    shape = STRUCT_MODULE[(layout, P)]
    modules = []
    bases = module_bases or [module_base + i * 0x10000 for i in range(count)]
    for i, base in enumerate(bases):
        exports = [x for x in make_exports(ERAS[era], count=exports_each + i, seed=seed + i,
                                           unused=unused)
                   if unused or x.export in (PLAIN, GPL)] if i % 3 != 2 else []
        modules.append(LoadedModule("mod_%d" % i, exports, base + 0x8000, base))
    lists = [head] + [m.address + P for m in modules]
    for i, m in enumerate(modules):
        tables_bytes, tables = _export_tables(m, m.table, bits, big, era, prel32, names_first)
        record = struct_module(m.name, 0, lists[(i + 2) % len(lists)], lists[i], shape, tables,
                               bits, big)
        memory.regions[m.table] = tables_bytes
        memory.regions[m.address] = record
    memory.regions[head] = struct.pack(e + word + word, lists[1 % len(lists)], lists[-1])
    if stale and modules:        # an unloaded copy: list pointers to where it once was
        copy = bytearray(memory.regions[modules[0].address])
        memory.regions[max(bases) + 0x10000] = bytes(copy)
    memory.modules = [m for m in modules]
    memory.head = head
    return memory


def stale_loop(memory, at, bits=64, big=False, heads=1):
    """A stale copy of the first module's struct module at `at` (a module unloaded, its
    memory not reused), whose list leads through `heads` stale list heads (32 bytes apart,
    after it) back to itself: with one, by next pointers alone (its prev the real list
    head); with two, every next->prev right, but a ring with two nodes that are no module
    (the module list has one: its head)."""
    P = bits // 8
    word = ("<>"[big]) + ("Q" if P == 8 else "I")
    copy = bytearray(memory.regions[memory.modules[0].address])
    nodes = [at + P] + [at + len(copy) + 16 + 32 * k for k in range(heads)]
    for i, node in enumerate(nodes):
        following, before = nodes[(i + 1) % len(nodes)], nodes[i - 1]
        if heads == 1 and i:
            before = memory.head
        links = struct.pack(word + word[1], following, before)
        if i:
            memory.regions[node] = links
        else:
            copy[P:3 * P] = links
    memory.regions[at] = bytes(copy)


# --- BTF (Documentation/bpf/btf.rst) --------------------------------------------------

def btf(structs, big=False):
    """A BTF blob describing `structs` ({name: (size, {member: byte offset})}): an int
    type, then one STRUCT per entry."""
    e = ">" if big else "<"
    strings = bytearray(b"\0")

    def name(text):
        at = len(strings)
        strings.extend(text.encode() + b"\0")
        return at

    types = struct.pack(e + "IIII", name("int"), 1 << 24, 4, 32)    # INT: 4 bytes, 32 bits
    for struct_name, (size, members) in structs.items():
        types += struct.pack(e + "III", name(struct_name), 4 << 24 | len(members), size)
        for member, offset in members.items():
            types += struct.pack(e + "III", name(member), 1, offset * 8)
    header = struct.pack(e + "HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types),
                         len(strings))
    return header + types + bytes(strings)


class BtfTypes:
    """A BTF blob written type by type (Documentation/bpf/btf.rst: struct btf_type, then
    what its kind adds); each method returns the new type's id (1 on; 0 is void), and
    `next_id` is the id the next one will have, for a pointer to a struct not yet written."""

    def __init__(self, big=False):
        self.e, self.types, self.strings, self.next_id = (">" if big else "<"), b"", \
            bytearray(b"\0"), 1

    def _name(self, text):
        if not text:
            return 0
        self.strings += text.encode() + b"\0"
        return len(self.strings) - len(text) - 1

    def _type(self, name, kind, vlen, size_or_type, extra=b""):
        self.types += struct.pack(self.e + "III", self._name(name), kind << 24 | vlen,
                                  size_or_type) + extra
        self.next_id += 1
        return self.next_id - 1

    def int(self, name, size):
        return self._type(name, 1, 0, size, struct.pack(self.e + "I", size * 8))

    def ptr(self, target):
        return self._type("", 2, 0, target)

    def struct(self, name, size, members, union=False):
        """`members`: (name, type id, byte offset)."""
        return self._type(name, 5 if union else 4, len(members), size, b"".join(
            struct.pack(self.e + "III", self._name(member), t, offset * 8)
            for member, t, offset in members))

    def enum(self, name, values):
        return self._type(name, 6, len(values), 4, b"".join(
            struct.pack(self.e + "Ii", self._name(value), number)
            for value, number in values.items()))

    def typedef(self, name, target):
        return self._type(name, 8, 0, target)

    def const(self, target):
        return self._type("", 10, 0, target)

    def func_proto(self, returns, params):
        """`params`: (name, type id)."""
        return self._type("", 13, len(params), returns, b"".join(
            struct.pack(self.e + "II", self._name(param), t) for param, t in params))

    def func(self, name, proto):
        return self._type(name, 12, 0, proto)

    def blob(self):
        header = struct.pack(self.e + "HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(self.types),
                             len(self.types), len(self.strings))
        return header + self.types + bytes(self.strings)


def module_btf(layout, pointer, big=False):
    shape = STRUCT_MODULE[(layout, pointer)]
    members = {"state": 0, "list": pointer, "name": 3 * pointer}
    names = {PLAIN: ("syms", "crcs", "num_syms"), GPL: ("gpl_syms", "gpl_crcs", "num_gpl_syms")}
    for t, offsets in shape["tables"].items():
        members.update(zip(names[t], offsets))
    if "flagstab" in shape:
        members["flagstab"] = shape["flagstab"]
    return btf({"task_struct": (64, {"state": 0}), "module": (shape["size"], members)}, big)


# --- Translation tables ----------------------------------------------------------------

class PhysicalMemory:
    """Physical pages handed out from `start`, and a page-table builder over them."""

    def __init__(self, start=0x40000000, big=False):
        self.pages, self.next, self.e = {}, start, ">" if big else "<"

    def page(self, size=4096, data=b"", align=1):
        address = self.next = -(-self.next // align) * align
        self.next += size
        self.pages[address] = bytearray(data.ljust(size, b"\0"))
        return address

    def put(self, address, data):
        """Write data at a physical address (inside a page given before)."""
        for base, page in self.pages.items():
            if base <= address < base + len(page):
                page[address - base:address - base + len(data)] = data
                return
        raise KeyError(hex(address))

    def image(self):
        """(start, bytes) of all pages, contiguous."""
        start = min(self.pages)
        end = max(a + len(p) for a, p in self.pages.items())
        out = bytearray(end - start)
        for a, p in self.pages.items():
            out[a - start:a - start + len(p)] = p
        return start, bytes(out)


def arm64_tables(physical, mappings, va_bits=39):
    """arm64 4 KiB-granule tables (VMSAv8-64: table descriptors 0b11, pages 0b11 at the last
    level) mapping each (virtual page, physical page): the root's physical address."""
    levels = [(s, 9) for s in range(12 + 9 * ((va_bits - 12 + 8) // 9 - 1), 11, -9)]
    top_bits = va_bits - levels[0][0]
    levels[0] = (levels[0][0], top_bits)
    root = physical.page()
    for va, pa in mappings:
        table = root
        for depth, (shift, bits) in enumerate(levels):
            index = va >> shift & (1 << bits) - 1
            slot = table + 8 * index
            entry = struct.unpack_from(physical.e + "Q", _read(physical, slot, 8))[0]
            if depth == len(levels) - 1:
                physical.put(slot, struct.pack(physical.e + "Q", pa | 0x703))   # page, AF
                break
            if not entry & 1:
                entry = physical.page() | 3
                physical.put(slot, struct.pack(physical.e + "Q", entry))
            table = entry & 0xFFFFFFFFF000
    return root


def x86_64_tables(physical, mappings, pti=False):
    """x86-64 4-level tables (present | writable) mapping each (virtual, physical) page; with
    `pti`, the root the first half of 8 KiB, the second (the user half) mapping nothing."""
    if pti and physical.next & 0x1000:
        physical.page()
    root = physical.page(8192 if pti else 4096)
    for va, pa in mappings:
        table = root
        for depth, shift in enumerate((39, 30, 21, 12)):
            slot = table + 8 * (va >> shift & 511)
            entry = struct.unpack_from("<Q", _read(physical, slot, 8))[0]
            if shift == 12:
                physical.put(slot, struct.pack("<Q", pa | 3))
                break
            if not entry & 1:
                entry = physical.page() | 3
                physical.put(slot, struct.pack("<Q", entry))
            table = entry & 0x000FFFFFFFFFF000
    return root


def _read(physical, address, size):
    for base, page in physical.pages.items():
        if base <= address < base + len(page):
            return bytes(page[address - base:address - base + size])
    raise KeyError(hex(address))


def qemu_cpu_state(cr3, cr4=0):
    """QEMU's "QEMU" ELF note for an x86 CPU (QEMUCPUState: version, size, 18 registers,
    10 segments, cr[5], kernel_gs_base)."""
    return struct.pack("<II", 1, 440) + bytes(144 + 240) + struct.pack("<5Q", 0, 0, 0, cr3,
                                                                        cr4) + bytes(8)


# --- Dumps -----------------------------------------------------------------------------

def virtual_dump(path, memory, btf=None, bits=64, machine=None):
    """An ELF core with virtual addresses (as QEMU's dump-guest-memory -p writes): each
    region of `memory` a segment; `btf` after the kernel image, in its window."""
    loads, physical = [], 0x1000000
    for address, data in sorted(memory.regions.items()):
        if address == memory.kernel.base and btf:
            data = data + bytes(-len(data) % 4096) + btf
        loads.append((address, physical, len(data), data))
        physical += (len(data) + 0xFFF) & ~0xFFF
    elf_core(path, loads, bits=bits, machine=machine)


def physical_dump(path, memory, tables, btf=None, notes=(), machine=None, big=False):
    """An ELF core of physical memory only (dump-guest-memory without -p): every region in
    physical pages, mapped by the page tables `tables(physical, mappings)` builds (of the
    kernel's byte order: `big`)."""
    physical = PhysicalMemory(big=big)
    mappings = []
    for address, data in sorted(memory.regions.items()):
        if address == memory.kernel.base and btf:
            data = data + bytes(-len(data) % 4096) + btf
        for at in range(0, len(data), 4096):
            page = physical.page(data=data[at:at + 4096])
            mappings.append((address + at, page))
    root = tables(physical, mappings)
    start, image = physical.image()
    elf_core(path, [(start, start, len(image), image)],
             notes=[(name, 0, desc(root)) for name, desc in notes], machine=machine)


# --- Every MMU's tables, over the whole module area --------------------------------------

@dataclass(frozen=True)
class Mmu:
    """A translation-table format, from the architecture manuals: the (shift, index bits)
    of each level from the top, bytes per entry, the bits a table entry, a page entry (last
    level) and a large page or block (a level above) carry; the top table's alignment and
    its place in the page it is in (i386 PAE's PDPT: 32 bytes anywhere 32-aligned), the
    lower tables' place (ARM's hardware second-level tables: the upper half of a page); how
    far right an entry holds the address (RISC-V: the PPN, the address >> 12, from bit 10);
    what an entry that maps nothing holds (0, or a value per level: s390x's invalid bits);
    how far left a page entry holds the address (MIPS: the PFN from _PFN_SHIFT, 12 below).
    `table` and `large` are one value or one per level (s390x's entries say their level;
    Book3S-64 radix's table entries the next level's index bits, NLS)."""
    levels: tuple
    entry: int
    table: object
    page: int
    large: object
    top_align: int = 4096
    top_at: int = 0
    lower_at: int = 0
    address_shift: int = 0
    empty: tuple = ()
    page_shift: int = 0

    def page_size(self):
        return 1 << self.levels[-1][0]

    def at_level(self, value, level):
        """`value` (table, large, empty) as the entries of `level` hold it."""
        return value[level] if isinstance(value, tuple) else value


PRESENT_RW, PSE = 0x3, 0x83      # x86: present | writable; with PS, a large page
BOOK3S_PRESENT, BOOK3S_KERNEL_RW = 1 << 63, 3 << 62 | 0x18E
MMUS = {
    "x86-64": Mmu(((39, 9), (30, 9), (21, 9), (12, 9)), 8, PRESENT_RW, PRESENT_RW, PSE),
    "x86-64 la57": Mmu(((48, 9), (39, 9), (30, 9), (21, 9), (12, 9)), 8, PRESENT_RW, PRESENT_RW,
                       PSE),
    # PAE's PDPTEs: present only (bits 1 and 2 are reserved)
    "i386 pae": Mmu(((30, 2), (21, 9), (12, 9)), 8, 0x1, PRESENT_RW, PSE, top_align=32,
                    top_at=0x20),
    "i386": Mmu(((22, 10), (12, 10)), 4, PRESENT_RW, PRESENT_RW, PSE),
    # short descriptors: a first-level table (16 KiB) of 1 MiB sections or second-level
    # tables (0b01) of 256 small pages (0b10); Linux puts these at 0x800 and 0xc00 of a page
    "arm": Mmu(((20, 12), (12, 8)), 4, 0x1, 0x2, 0x2, top_align=16384, lower_at=0x800),
    # VMSAv8-64: table 0b11, page 0b11 (AF, inner shareable), block 0b01
    "arm64 4k 48": Mmu(((39, 9), (30, 9), (21, 9), (12, 9)), 8, 0x3, 0x703, 0x701),
    "arm64 16k 47": Mmu(((36, 11), (25, 11), (14, 11)), 8, 0x3, 0x703, 0x701, top_align=16384),
    "arm64 64k 42": Mmu(((29, 13), (16, 13)), 8, 0x3, 0x703, 0x701, top_align=65536),
    "arm64 64k 48": Mmu(((42, 6), (29, 13), (16, 13)), 8, 0x3, 0x703, 0x701, top_align=65536),
    # z/Architecture DAT (Principles of Operation, "Dynamic Address Translation"): region
    # and segment tables of 2048 entries, page tables of 256; a region entry holds its
    # table's type (bits 60-61: 3 region-first, 2 second, 1 third) and the next table's
    # length (62-63: 3, all four 512-entry quarters), a segment entry type 0; an entry that
    # maps nothing is invalid (bit 58, 0x20, with its type; a page entry bit 53, 0x400: Linux's
    # _REGION*_ENTRY_EMPTY, _SEGMENT_ENTRY_EMPTY, _PAGE_INVALID); a large page: format control
    # (bit 53, 0x400) in a segment entry, 1 MiB (EDAT-1); big-endian, as the machine
    "s390x region-first": Mmu(((53, 11), (42, 11), (31, 11), (20, 11), (12, 8)), 8,
                              (0xF, 0xB, 0x7, 0x0), 0x0, (None, None, 0x404, 0x400),
                              empty=(0x2C, 0x28, 0x24, 0x20, 0x400)),
    "s390x region-second": Mmu(((42, 11), (31, 11), (20, 11), (12, 8)), 8, (0xB, 0x7, 0x0), 0x0,
                               (None, 0x404, 0x400), empty=(0x28, 0x24, 0x20, 0x400)),
    "s390x region-third": Mmu(((31, 11), (20, 11), (12, 8)), 8, (0x7, 0x0), 0x0, (0x404, 0x400),
                              empty=(0x24, 0x20, 0x400)),
    # RISC-V (the privileged spec, Sv39/Sv48/Sv57): V alone points to the next table; a leaf
    # has R, W or X: V|R|W|A|D a page, V|R|X|A|D a megapage (the kernel's text)
    "riscv sv39": Mmu(((30, 9), (21, 9), (12, 9)), 8, 0x1, 0xC7, 0xCB, address_shift=2),
    "riscv sv48": Mmu(((39, 9), (30, 9), (21, 9), (12, 9)), 8, 0x1, 0xC7, 0xCB,
                      address_shift=2),
    "riscv sv57": Mmu(((48, 9), (39, 9), (30, 9), (21, 9), (12, 9)), 8, 0x1, 0xC7, 0xCB,
                      address_shift=2),
    # Book3S-64 (arch/powerpc/include/asm/book3s/64/: pgtable.h's common bits, radix-64k.h,
    # radix-4k.h, hash-64k.h, hash-4k.h index sizes), entries __be64: _PAGE_PRESENT (63) on
    # a table entry with radix's NLS, the next level's index bits (RADIX_*_VAL_BITS), or
    # alone (HASH_*_VAL_BITS); a page PRESENT|PTE (62)|ACCESSED|DIRTY|PRIVILEGED|RW
    # (PAGE_KERNEL), a large one |EXEC (PAGE_KERNEL_X); the hash MMU's pages also carry
    # their slot in the hashed table: 64 KiB pages H_PAGE_HASHPTE (bit 55), 4 KiB ones
    # H_PAGE_HASHPTE (bit 60), H_PAGE_F_SECOND and H_PAGE_F_GIX (bits 56-53)
    "book3s radix 64k": Mmu(((39, 13), (30, 9), (21, 9), (16, 5)), 8,
                            tuple(BOOK3S_PRESENT | bits for bits in (9, 9, 5, 0)),
                            BOOK3S_KERNEL_RW, BOOK3S_KERNEL_RW | 1, top_align=65536),
    "book3s radix 4k": Mmu(((39, 13), (30, 9), (21, 9), (12, 9)), 8,
                           tuple(BOOK3S_PRESENT | bits for bits in (9, 9, 9, 0)),
                           BOOK3S_KERNEL_RW, BOOK3S_KERNEL_RW | 1, top_align=65536),
    "book3s hash 64k": Mmu(((44, 8), (34, 10), (24, 10), (16, 8)), 8, BOOK3S_PRESENT,
                           BOOK3S_KERNEL_RW | 1 << 55, None, top_align=65536),
    "book3s hash 4k": Mmu(((37, 9), (28, 9), (21, 7), (12, 9)), 8, BOOK3S_PRESENT,
                          BOOK3S_KERNEL_RW | 1 << 60 | 0xF << 53, None, top_align=65536),
    # Linux's MIPS tables (arch/mips/include/asm/pgtable-64.h, pgtable-32.h, pgtable-bits.h):
    # a pgd or pmd entry is the next table's kernel virtual address (here in XKPHYS, cached:
    # 0x9800000000000000 | its physical address; 32-bit, in KSEG0); a PTE is PAGE_KERNEL's
    # bits under the PFN: on a 64-bit R2 core with huge pages (Debian's 5kc-malta) present 0,
    # write 1, accessed 2, modified 3, huge 4, split 5, XI 6, RI 7 (a core without RIXI: its
    # _PAGE_READ), global 8, valid 9, dirty 10, cache 11-13 (3, cacheable noncoherent), the
    # PFN from bit 14 (the address << 2); huge 2 MiB pages: _PAGE_HUGE in a pmd entry.  A
    # 32-bit R2 core: present 0, write 1, accessed 2, modified 3, XI 4, RI 5, global 6,
    # valid 7, dirty 8, cache 9-11, the PFN from bit 12
    "mips64 r2 huge": Mmu(((30, 10), (21, 9), (12, 9)), 8, 0x9800000000000000, 0x1F8F, 0x1F9F,
                          top_align=8192, page_shift=2),
    "mips32 r2": Mmu(((22, 10), (12, 10)), 4, 0x80000000, 0x7EF, 0x7EF),
    # 64-bit with CONFIG_MIPS_VA_BITS_48 (four levels of 512 entries), 16 KiB pages (three of
    # 2048), 64 KiB pages (two of 8192): the same entries, the PFN from PAGE_SHIFT + 2 (the
    # address << 2 again)
    "mips64 r2 huge 48": Mmu(((39, 9), (30, 9), (21, 9), (12, 9)), 8, 0x9800000000000000, 0x1F8F,
                             0x1F9F, page_shift=2),
    "mips64 r2 huge 16k": Mmu(((36, 11), (25, 11), (14, 11)), 8, 0x9800000000000000, 0x1F8F,
                              0x1F9F, top_align=16384, page_shift=2),
    "mips64 r2 huge 64k": Mmu(((29, 13), (16, 13)), 8, 0x9800000000000000, 0x1F8F, 0x1F9F,
                              top_align=65536, page_shift=2),
    # Linux's LoongArch tables (arch/loongarch/include/asm/pgtable.h, pgtable-bits.h), 16 KiB
    # pages and 3 levels of 2048 entries (Debian's loong64): a pgd or pmd entry the next
    # table's address in DMW1 (0x9000000000000000 | physical); a PTE PAGE_KERNEL's bits,
    # valid 0, dirty 1, PLV 2-3 (0: the kernel's), cache 4-5 (1, coherent cached), global 6,
    # present 7, write 8, modified 9, the address from bit 14 as it is; a huge pmd entry
    # (32 MiB) huge at 6, its global at 12 (_PAGE_HGLOBAL)
    "loongarch 16k": Mmu(((36, 11), (25, 11), (14, 11)), 8, 0x9000000000000000, 0x3D3, 0x10D3,
                         top_align=16384),
}


def translation_tables(physical, mmu, mappings):
    """Tables in `physical` mapping each (virtual, physical, shift): a page of the last
    level's size, or a large page or block where `shift` is a level's above; the root's
    physical address."""
    word = physical.e + ("Q" if mmu.entry == 8 else "I")

    def empty(level):
        return mmu.at_level(mmu.empty, level) if mmu.empty else 0

    def table(level, align, at):
        count = 1 << mmu.levels[level][1]
        address = physical.page(max(count * mmu.entry + at, align), align=align) + at
        physical.put(address, struct.pack(physical.e + "%d%s" % (count, word[1]),
                                          *[empty(level)] * count))
        return address

    root = table(0, mmu.top_align, mmu.top_at)
    for va, pa, shift in mappings:
        at = root
        for level, (level_shift, bits) in enumerate(mmu.levels):
            slot = at + mmu.entry * (va >> level_shift & (1 << bits) - 1)
            if level_shift == shift:
                flags = mmu.page if level == len(mmu.levels) - 1 else \
                    mmu.at_level(mmu.large, level)
                physical.put(slot, struct.pack(word, pa >> mmu.address_shift << mmu.page_shift
                                               | flags))
                break
            entry = struct.unpack(word, _read(physical, slot, mmu.entry))[0]
            if entry == empty(level):
                entry = table(level + 1, max(mmu.page_size(), 4096), mmu.lower_at) \
                    >> mmu.address_shift | mmu.at_level(mmu.table, level)
                physical.put(slot, struct.pack(word, entry))
            at = (entry & ~mmu.at_level(mmu.table, level) & 0xFFFFFFFFFC00) << mmu.address_shift
    return root


def segment_dump(path, layout, mmu, kseg0, big, kcore=False, machine=8, uname=None, words=b"",
                 note=True):
    """A physical ELF core of a MIPS kernel (EM_MIPS; or of `machine`'s, whose kernel is in a
    segment mapped as KSEG0 is: LoongArch's DMW): its image and list head at their KSEG0
    addresses' physical ones, module memory mapped by `mmu`'s tables in its pages, the
    VMCOREINFO note (_stext the image's start, init_uts_ns its end); with `kcore`, as
    /proc/kcore of 64-bit MIPS gives it (fs/proc/kcore.c, arch/mips/mm/init.c): KSEG0 as its
    kernel text and RAM in XKPHYS, both at physical 0, and vmalloc (p_paddr -1, what no table
    maps zeros); with `uname`, a kdump-compressed file (zlib pages) whose utsname says that
    machine, the VMCOREINFO not in it but in a page of memory after the modules' (QEMU's
    -z without -device vmcoreinfo), as it is in an ELF core without `note`; with `words`, the vermagic the module loader keeps
    (VERMAGIC_STRING: the release, "SMP mod_unload " and the architecture's words) after
    the image, in its .rodata.  The Memory."""
    memory = kernel_with_modules(**layout)
    kernel, size = memory.kernel, MMUS[mmu].page_size()
    release = re.search(rb"Linux version (\S+)", kernel.data).group(1)    # the banner's
    rodata = kernel.data + (b"\0%s SMP mod_unload %s \0" % (release, words) if words else b"")
    physical = PhysicalMemory(kernel.base - kseg0, big=big)
    physical.page(len(rodata), rodata)
    physical.next = memory.head - kseg0
    physical.page(size, memory.regions[memory.head])
    pages = {}          # virtual page -> its bytes: regions that share a page, in one
    for address, data in sorted(memory.regions.items()):
        if address not in (kernel.base, memory.head):
            for at in range(address & -size, address + len(data), size):
                low, high = max(at, address), min(at + size, address + len(data))
                page = pages.setdefault(at, bytearray(size))
                page[low - at:high - at] = data[low - address:high - address]
    root = translation_tables(physical, MMUS[mmu], [
        (at, physical.page(size, bytes(page), size), MMUS[mmu].levels[-1][0])
        for at, page in pages.items()])
    info = b"OSRELEASE=%s\nPAGESIZE=%d\nSYMBOL(swapper_pg_dir)=%x\nSYMBOL(_stext)=%x\n" \
        b"SYMBOL(init_uts_ns)=%x\n" % (release, size, root + kseg0, kernel.base,
                                      kernel.base + len(rodata))
    if uname is not None or not note:
        physical.page(size, info)
    if uname is not None:
        start, image = physical.image()
        with open(path, "wb") as f:
            f.write(kdump(bytes(start) + image, lambda p: (zlib.compress(p), 1), page=size,
                          machine=uname))
        return memory
    start, image = physical.image()
    notes = [(b"VMCOREINFO", 0, info)] if note else []
    loads = [(start, start, len(image), image)]
    if kcore:
        ram = bytes(start) + image
        loads = [(kseg0, 0, len(ram), ram), (0xC000000000002000, (1 << 64) - 1, 0xFEFFFFE000, b""),
                 (0x9000000000000000, 0, len(ram), ram)]
    elf_core(path, loads, notes=notes, machine=machine, bits=layout.get("bits", 64), big=big)
    return memory


def napot_64k(physical, mmu, root, va, data):
    """Svnapot (the RISC-V privileged spec): the 64 KiB at `va` remapped to a new 64 KiB
    block holding `data` by its 16 last-level entries, each with N (bit 63) and the block's
    PPN with its low 4 bits 1000; the block's physical address."""
    block = physical.page(0x10000, data, align=0x10000)
    word = physical.e + "Q"
    for page in range(va, va + 0x10000, 0x1000):
        at = root
        for shift, bits in mmu.levels:
            slot = at + 8 * (page >> shift & (1 << bits) - 1)
            at = (struct.unpack(word, _read(physical, slot, 8))[0] & 0xFFFFFFFFFC00) \
                << mmu.address_shift
        physical.put(slot, struct.pack(word, 1 << 63 | (block >> 12 & ~0xF | 0x8) << 10
                                       | mmu.page))
    return block


def paged_memory(memory, mmu, btf=None, large=None, big=False, start=0x40000000):
    """(PhysicalMemory, root, offset) of `memory` in physical pages from `start`, mapped by
    `mmu`'s tables: the kernel first (its image and list head in pages of 1 << `large` bytes
    where given, as the kernel maps itself), then module memory in pages of the last level;
    `offset` the kernel's virtual minus physical address; `big`: a big-endian kernel's."""
    physical = PhysicalMemory(start, big=big)
    kernel = (memory.kernel.base, memory.head)
    pages = {}
    for address, data in memory.regions.items():
        if address == memory.kernel.base and btf:
            data = data + bytes(-len(data) % 4096) + btf
        size = 1 << large if large and address in kernel else mmu.page_size()
        for at in range(address & -size, address + len(data), size):
            page = pages.setdefault((at, size), bytearray(size))
            low, high = max(at, address), min(at + size, address + len(data))
            page[low - at:high - at] = data[low - address:high - address]
    mappings = []
    for (va, size), data in sorted(pages.items(), key=lambda p: (p[0][0] != memory.kernel.base
                                                                  & -p[0][1], p[0][0])):
        mappings.append((va, physical.page(size, bytes(data), align=size), size.bit_length() - 1))
    return physical, translation_tables(physical, mmu, mappings), \
        (mappings[0][0] - mappings[0][1]) & (1 << 64) - 1


def paged_dump(path, memory, mmu, btf=None, large=None, notes=(), info=None, machine=None,
               big=False):
    """An ELF core of paged_memory(): `notes` (name, desc(root)), `info(root, offset)` the
    VMCOREINFO text."""
    physical, root, offset = paged_memory(memory, mmu, btf, large, big)
    start, image = physical.image()
    notes = [(name, 0, desc(root)) for name, desc in notes]
    if info:
        notes.append((b"VMCOREINFO", 0, info(root, offset)))
    elf_core(path, [(start, start, len(image), image)], notes=notes, machine=machine)


PPC64_PAGE_OFFSET = 0xC000000000000000


def book3s_memory(memory, mmu, linear_end, map_linear):
    """(PhysicalMemory, root) of `memory` as a Book3S-64 kernel keeps itself: what is in its
    linear map (below `linear_end`: the kernel, its list head) at the virtual address minus
    PAGE_OFFSET, from physical 0; module memory in pages of the last level, mapped by
    `mmu`'s tables, whose root is 64 KiB-aligned (swapper_pg_dir).  With `map_linear`
    (radix) the tables map the linear map too, in 2 MiB pages (radix__early_init_mmu());
    the hash MMU's hold none of it (bolted in the hashed page table)."""
    physical = PhysicalMemory(0, big=True)      # table entries are __be64
    size = mmu.page_size()
    linear, pages = [], {}
    for address, data in sorted(memory.regions.items()):
        if address < linear_end:
            pa = address - PPC64_PAGE_OFFSET
            assert pa & -size >= physical.next, "two linear regions in one page"
            physical.next = pa & -size
            physical.page(-(-(pa + len(data)) // size) * size - (pa & -size))
            physical.put(pa, data)
            linear += [(at, at - PPC64_PAGE_OFFSET, 21)
                       for at in range(address & -(1 << 21), address + len(data), 1 << 21)]
            continue
        for at in range(address & -size, address + len(data), size):
            page = pages.setdefault(at, bytearray(size))
            low, high = max(at, address), min(at + size, address + len(data))
            page[low - at:high - at] = data[low - address:high - address]
    mappings = [(va, physical.page(size, bytes(data), align=size), size.bit_length() - 1)
                for va, data in sorted(pages.items())]
    if map_linear:
        mappings += sorted(set(linear))
    return physical, translation_tables(physical, mmu, mappings)


# --- Damage: dumps whose headers or tables claim what they should not --------------------

def phnum_beyond(path, phnum, shinfo=None):
    """An ELF core at `path` given e_phnum `phnum` and, with `shinfo`, a section header 0
    after its end whose sh_info says that many program headers (PN_XNUM's count)."""
    with open(path, "r+b") as f:
        f.seek(56)
        f.write(struct.pack("<H", phnum))
        if shinfo is not None:
            end = f.seek(0, 2)
            f.seek(40)
            f.write(struct.pack("<Q", end))
            f.seek(end)
            f.write(struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, shinfo, 0, 0))


def aliased_module_tables(path, memory):
    """A physical x86-64 dump of `memory` whose module memory's tables (0xffffffffc0000000)
    all alias one: each entry of its PUD leads to the PMD, each of the PMD to its page table
    (a walk that visits a table more than once visits 512^3 entries)."""
    physical, root, _ = paged_memory(memory, MMUS["x86-64"], large=21)
    start, image = physical.image()
    image = bytearray(image)
    mask, va = 0x000FFFFFFFFFF000, 0xFFFFFFFFC0000000
    table = struct.unpack_from("<Q", image, root - start + 8 * 511)[0] & mask
    for shift in (30, 21):
        entry, = struct.unpack_from("<Q", image, table - start + 8 * (va >> shift & 511))
        struct.pack_into("<512Q", image, table - start, *[entry] * 512)
        table = entry & mask
    elf_core(path, [(start, start, len(image), bytes(image))],
             notes=[(b"QEMU", 0, qemu_cpu_state(root))])


def bitmap_beyond(path, ones):
    """A kdump-compressed file at `path` (4 KiB blocks) made to claim 8192 bitmap blocks of a
    2^40-page machine, sparse to 8 GiB to hold them, `ones` bytes of its bitmap all ones."""
    with open(path, "r+b") as f:
        f.seek(436)                     # disk_dump_header.bitmap_blocks
        f.write(struct.pack("<I", 8192))
        f.seek(4096 + 96)               # kdump_sub_header.max_mapnr_64
        f.write(struct.pack("<Q", 1 << 40))
        f.seek(2 * 4096 + 8192 * 4096 // 2)
        f.write(b"\xff" * ones)
        f.truncate(8 << 30)
