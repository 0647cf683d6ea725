"""Synthetic kernel modules: relocatable ELF objects (ET_REL) laid out as the kernel's
include/linux/export.h, scripts/module.lds.S and modpost make them, independently of
extract_symvers.py.

Each export has a function in .text, its name (and namespace) in __ksymtab_strings, a
kernel_symbol in __ksymtab<suffix> whose fields are filled by relocations (R_*_PC32-like
for PREL32, R_*_ABS for pointers; RELA, or REL with the addend in place), and a CRC in
__kcrctab<suffix>: before 5.19 a relocation to the absolute symbol __crc_<name>, from 5.19
the value itself.  7.1+ has one __ksymtab and a __kflagstab byte per export."""

import gzip
import os
import struct
import subprocess
from typing import NamedTuple

from formats import elf
from kernelimage import ERAS, GPL, GPL_FUTURE, PLAIN, UNUSED, UNUSED_GPL, Export, build, \
    make_exports

SUFFIX = {PLAIN: "", GPL: "_gpl", GPL_FUTURE: "_gpl_future", UNUSED: "_unused",
          UNUSED_GPL: "_unused_gpl"}
SHN_ABS = 0xFFF1
SIGNATURE_MARK = b"~Module signature appended~\n"
# absolute pointers: riscv, s390, arm, mips (x86 and arm64 use PREL32 from 4.19)
EM = {(64, False): 243, (64, True): 22, (32, False): 40, (32, True): 8}


class Sections:
    def __init__(self):
        self.items = [("", 0, b"", 0, 0, 0, 0)]      # name, type, data, link, info, align, entsize

    def add(self, name, kind, data, link=0, info=0, align=1, entsize=0):
        self.items.append((name, kind, bytes(data), link, info, align, entsize))
        return len(self.items) - 1


def build_module(era_name, exports, bits=64, big=False, prel32=None, rela=True,
                 machine=None, imports=(), versions=None, modinfo=None,
                 relocations=(), this_module=None, modversions=True, btf=None, code=(),
                 absolute=(), extra_sections=()):
    """The bytes of a .ko exporting `exports` (kernelimage.Export) in this era's layout,
    using the symbols `imports` (undefined, global; a (name, "weak") pair is a weak one),
    with `versions` ({name: CRC}: modpost's __versions) and `modinfo` (.modinfo's
    key=value entries; by default a GPL licence and the era's vermagic); `relocations`:
    types of relocations in .text besides; `this_module`: the size of its
    .gnu.linkonce.this_module (modpost's struct module); without `modversions`, no
    __kcrctab sections (CONFIG_MODVERSIONS=n); `btf`: its .BTF section (split BTF);
    `code`: [(section name, bytes, [(function, offset, size)])], sections of machine code
    and their function symbols (global STT_FUNC); `absolute`: [(name, value)], weak absolute
    symbols; `extra_sections`: [(name, bytes)], more sections."""
    era = ERAS[era_name]
    prel32 = era.prel32 if prel32 is None else prel32 and era.prel32
    e = ">" if big else "<"
    P = bits // 8
    field = 4 if prel32 else P
    fields = 3 if era.namespace else 2
    step = field * fields
    crc_width = P if era.crc_long else 4
    machine = machine or (62 if prel32 and bits == 64 else 3 if prel32 else EM[(bits, big)])

    tables = {t: sorted((x for x in exports if x.export == t), key=lambda x: x.name.encode())
              for t in era.link_order}
    if era.flagstab:
        tables = {PLAIN: sorted(exports, key=lambda x: x.name.encode())}

    # strings; symbols: (name, value, section index, info); relocations per section
    strings, offsets = bytearray(b"\0"), {}
    for x in exports:
        for s in (x.name, x.namespace):
            if s not in offsets:
                offsets[s] = len(strings)
                strings += s.encode() + b"\0"
    sections = Sections()
    text = sections.add(".text", 1, bytes(16 * len(exports)) + b"\xc3", align=16)
    strtab_index = sections.add("__ksymtab_strings", 1, strings)
    symbols = [("", 0, 0, 0), ("", 0, strtab_index, 3)]      # null, section symbol
    index = {}
    for i, x in enumerate(exports):
        index[x.name] = len(symbols)
        symbols.append((x.name, 16 * i, text, 0x12))                          # global func
        index["__kstrtab_" + x.name] = len(symbols)
        symbols.append(("__kstrtab_" + x.name, offsets[x.name], strtab_index, 0x01))
        index["__crc_" + x.name] = len(symbols)
        symbols.append(("__crc_" + x.name, x.crc, SHN_ABS, 0x10))

    # before 5.19 a CRC slot is `.long __crc_<name>`, resolved when the module is loaded
    crc_by_relocation = era.crc_long or era.rel_crcs
    pending = []            # (section index, field size, [(offset, symbol index, addend)])
    for t, syms in tables.items():
        if not syms and t != PLAIN:
            continue
        suffix = SUFFIX[t]
        ksymtab = sections.add("__ksymtab" + suffix, 1, bytes(step * len(syms)), align=field)
        relocs = []
        for i, x in enumerate(syms):
            at = i * step
            relocs.append((at, index[x.name], 0))
            if i % 2:       # half the names through the section symbol and an addend
                relocs.append((at + field, 1, offsets[x.name]))
            else:
                relocs.append((at + field, index["__kstrtab_" + x.name], 0))
            if era.namespace == "string" or x.namespace:
                relocs.append((at + 2 * field, 1, offsets[x.namespace]))
        pending.append((ksymtab, field, relocs))
        if modversions and crc_by_relocation:
            kcrctab = sections.add("__kcrctab" + suffix, 1, bytes(crc_width * len(syms)),
                                   align=4)
            pending.append((kcrctab, crc_width, [(i * crc_width, index["__crc_" + x.name], 0)
                                                 for i, x in enumerate(syms)]))
        elif modversions:
            sections.add("__kcrctab" + suffix, 1,
                         b"".join(struct.pack(e + "I", x.crc) for x in syms), align=4)
        if era.flagstab:
            sections.add("__kflagstab", 1, bytes(x.export == GPL for x in syms))
    if modinfo is None:
        modinfo = ["license=GPL", "vermagic=%s-test SMP mod_unload modversions " % era.release]
    sections.add(".modinfo", 1, b"".join(entry.encode() + b"\0" for entry in modinfo))
    if btf is not None:
        sections.add(".BTF", 1, btf, align=4)
    if versions is not None:
        # struct modversion_info: unsigned long crc, char name[64 - sizeof(unsigned long)]
        sections.add("__versions", 1, b"".join(
            struct.pack(e + ("Q" if bits == 64 else "I"), crc) + name.encode().ljust(64 - P, b"\0")
            for name, crc in versions.items()), align=P)
    for name in imports:
        name, bind = (name[0], 2) if isinstance(name, tuple) else (name, 1)  # STB_WEAK, GLOBAL
        symbols.append((name, 0, 0, bind << 4))
    for name, data, functions in code:
        where = sections.add(name, 1, data, align=16)
        symbols.extend((function, offset, where, 0x12, size)       # STB_GLOBAL, STT_FUNC
                       for function, offset, size in functions)
    symbols.extend((name, value, SHN_ABS, 0x20) for name, value in absolute)     # STB_WEAK
    for name, data in extra_sections:
        sections.add(name, 1, data)

    # .symtab/.strtab, then the relocation sections (they link to .symtab)
    names = bytearray(b"\0")
    symtab = bytearray()
    for name, value, shndx, info, *size in symbols:
        name_at = len(names) if name else 0
        size = size[0] if size else 0
        if name:
            names += name.encode() + b"\0"
        if bits == 64:
            symtab += struct.pack(e + "IBBHQQ", name_at, info, 0, shndx, value, size)
        else:
            symtab += struct.pack(e + "IIIBBH", name_at, value, size, info, 0, shndx)
    strtab = sections.add(".strtab", 3, names)
    symtab_index = sections.add(".symtab", 2, symtab, link=strtab, info=2, align=P,
                                entsize=24 if bits == 64 else 16)
    for target, size, relocs in pending:
        data = bytearray(sections.items[target][2])
        out = bytearray()
        for offset, symbol, addend in relocs:
            kind = 2 if prel32 else 1
            info = (symbol << 32 | kind) if bits == 64 else (symbol << 8 | kind)
            if rela:
                out += struct.pack(e + ("QQq" if bits == 64 else "IIi"), offset, info, addend)
            else:           # REL: the addend goes in place
                out += struct.pack(e + ("QQ" if bits == 64 else "II"), offset, info)
                data[offset:offset + size] = addend.to_bytes(size, "big" if big else "little",
                                                             signed=True)
        name = sections.items[target][0]
        sections.items[target] = sections.items[target][:2] + (bytes(data),) \
            + sections.items[target][3:]
        sections.add((".rela" if rela else ".rel") + name, 4 if rela else 9, out,
                     link=symtab_index, info=target, align=P)
    if relocations:     # r_info: (symbol 0, type); MIPS64 keeps the type in its last byte
        record = e + ("QQq" if bits == 64 else "IIi")
        records = []
        for kind in relocations:
            info = kind << 56 if bits == 64 and machine == 8 and not big else kind
            records.append(struct.pack(record, 0, info, 0) if rela else
                           struct.pack(record[:3], 0, info))
        sections.add((".rela" if rela else ".rel") + ".text", 4 if rela else 9,
                     b"".join(records), link=symtab_index, info=text, align=P)
    if this_module is not None:
        sections.add(".gnu.linkonce.this_module", 1, bytes(this_module), align=64)
    ko = elf_object(sections, bits, big, machine)
    return ko


def flags(name, kind):
    """sh_flags: SHF_ALLOC for PROGBITS, and SHF_EXECINSTR for code (.text, .init.text)."""
    return (2 | (4 if name.endswith("text") else 0)) if kind == 1 else 0


def elf_object(sections, bits, big, machine):
    """Lay the sections out after the ELF header, section headers last (ET_REL)."""
    e = ">" if big else "<"
    shstr = bytearray(b"\0")
    name_at = []
    for item in sections.items + [(".shstrtab",)]:
        name_at.append(len(shstr) if item[0] else 0)
        if item[0]:
            shstr += item[0].encode() + b"\0"
    items = sections.items + [(".shstrtab", 3, bytes(shstr), 0, 0, 1, 0)]
    header_size = 64 if bits == 64 else 52
    body = bytearray(header_size)
    placed = []
    for name, kind, data, link, info, align, entsize in items:
        if not name:
            placed.append(0)
            continue
        body += bytes(-len(body) % max(align, 1))
        placed.append(len(body))
        body += data
    body += bytes(-len(body) % 8)
    shoff = len(body)
    for i, (name, kind, data, link, info, align, entsize) in enumerate(items):
        if bits == 64:
            body += struct.pack(e + "IIQQQQIIQQ", name_at[i], kind, flags(name, kind), 0,
                                placed[i], len(data), link, info, align, entsize)
        else:
            body += struct.pack(e + "IIIIIIIIII", name_at[i], kind, flags(name, kind), 0,
                                placed[i], len(data), link, info, align, entsize)
    ident = b"\x7fELF" + bytes([bits // 32, 2 if big else 1, 1]) + bytes(9)
    if bits == 64:
        header = ident + struct.pack(e + "HHIQQQIHHHHHH", 1, machine, 1, 0, 0, shoff, 0, 64,
                                     0, 0, 64, len(items), len(items) - 1)
    else:
        header = ident + struct.pack(e + "HHIIIIIHHHHHH", 1, machine, 1, 0, 0, shoff, 0, 52,
                                     0, 0, 40, len(items), len(items) - 1)
    body[:header_size] = header
    return bytes(body)


def symvers_lines(era_name, exports, module):
    """The Module.symvers lines modpost writes for `exports` of `module`, sorted."""
    columns = ERAS[era_name].columns
    return sorted("\t".join({"crc": "0x%08x" % x.crc, "name": x.name, "module": module,
                             "export": x.export, "namespace": x.namespace}[c] for c in columns)
                  for x in exports)


def module_tree(root, files, release="6.1.0-test"):
    """lib/modules/<release>/kernel/... under `root` (a pathlib.Path) holding the given
    {relative path: bytes}; its path, as --modules takes it."""
    top = root / "lib" / "modules" / release
    for relative, data in files.items():
        path = top / "kernel" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return str(top)


SHDR64 = struct.Struct("<IIQQQQIIQQ")  # name type flags addr offset size link info align entsize


def elf64_sections(ko):
    """{name: where its section header is} of a real 64-bit little-endian ELF file."""
    shoff, = struct.unpack_from("<Q", ko, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", ko, 0x3A)
    headers = [shoff + i * shentsize for i in range(shnum)]
    names = SHDR64.unpack_from(ko, headers[shstrndx])[4]
    found = {}
    for at in headers:
        start = names + SHDR64.unpack_from(ko, at)[0]
        found[bytes(ko[start:ko.index(b"\0", start)]).decode()] = at
    return found


def patched_module(ko, this_module_growth=0, relocation_type=None, vermagic=None,
                   versions=None):
    """A real 64-bit little-endian .ko changed: its .gnu.linkonce.this_module section
    `growth` bytes larger, or the first relocation of .rela.text of type `relocation_type`,
    or its .modinfo's vermagic made `vermagic` (no longer than it was: NULs fill the rest),
    or the CRCs of __versions entries ({name: CRC}); its signature, which no longer matches,
    taken off (struct module_signature: 12 bytes, the big-endian sig_len last, after the
    signature and before the mark)."""
    if ko.endswith(SIGNATURE_MARK):
        sig_len, = struct.unpack_from(">I", ko, len(ko) - len(SIGNATURE_MARK) - 4)
        ko = ko[:len(ko) - len(SIGNATURE_MARK) - 12 - sig_len]
    ko = bytearray(ko)
    sections = elf64_sections(ko)
    if this_module_growth:
        at = sections[".gnu.linkonce.this_module"] + 32       # sh_size
        struct.pack_into("<Q", ko, at, struct.unpack_from("<Q", ko, at)[0] + this_module_growth)
    if relocation_type is not None:
        offset = SHDR64.unpack_from(ko, sections[".rela.text"])[4]
        struct.pack_into("<I", ko, offset + 8, relocation_type)     # r_info's low half
    if vermagic is not None:
        offset, size = SHDR64.unpack_from(ko, sections[".modinfo"])[4:6]
        start = ko.index(b"vermagic=", offset, offset + size) + len(b"vermagic=")
        end = ko.index(b"\0", start)
        assert len(vermagic) <= end - start
        ko[start:end] = vermagic.encode().ljust(end - start, b"\0")
    for name, crc in (versions or {}).items():  # struct modversion_info: crc, then name
        offset, size = SHDR64.unpack_from(ko, sections["__versions"])[4:6]
        at = next(at for at in range(offset, offset + size, 64)
                  if ko[at + 8:at + 64].rstrip(b"\0") == name.encode())
        struct.pack_into("<Q", ko, at, crc)
    return bytes(ko)


def era_kernel(era, btf=b"", bits=64, big=False, machine=None, code=b""):
    """(image, its options) of a kernel of `era` without namespaced exports, its vermagic
    `<release>-test SMP mod_unload modversions `, and `btf` (the kernel's BTF) and `code`
    (machine code) after it; with `machine`, a vmlinux (ELF) of that e_machine, class and
    byte order."""
    kernel = build(era, bits=bits, big=big, exports=make_exports(ERAS[era], count=30, seed=5))
    data = kernel.data + btf + code + b"\0%s-test SMP mod_unload modversions \0" % \
        ERAS[era].release.encode() + bytes(64)
    if machine is None:
        return data, kernel.options
    options = kernel.options[:kernel.options.index("-B")] + \
        kernel.options[kernel.options.index("-B") + 2:]
    return elf(data, kernel.base, bits, big, machine), options


def era_probe(era, name="probe", **kwargs):
    """A module `name` of `era`'s build using nothing, with an empty __versions."""
    modinfo = ["license=GPL", "vermagic=%s-test SMP mod_unload modversions " %
               ERAS[era].release, "name=" + name]
    return build_module(era, [], versions={}, modinfo=modinfo, **kwargs)


# The build's signing key, as certs/Makefile has openssl make it from certs/default_x509.genkey
X509_GENKEY = """[ req ]
default_bits = 2048
distinguished_name = req_distinguished_name
prompt = no
string_mask = utf8only
x509_extensions = myexts
[ req_distinguished_name ]
CN = %s
[ myexts ]
basicConstraints=critical,CA:FALSE
keyUsage=digitalSignature
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
"""


class SigningKey(NamedTuple):
    pem: str            # the key and its certificate, PEM (what sign-file takes)
    certificate: bytes  # DER: what certs/system_certificates.S compiles in


def signing_key(directory, name="Build time autogenerated kernel key", curve=None):
    """A key and its self-signed certificate, made by openssl as a kernel build makes
    its own: RSA, or ECDSA on `curve` (secp384r1 with CONFIG_MODULE_SIG_KEY_TYPE_ECDSA)."""
    directory = str(directory)
    genkey = os.path.join(directory, "x509-%s.genkey" % len(os.listdir(directory)))
    with open(genkey, "w") as f:
        f.write(X509_GENKEY % name)
    pem = genkey[:-len(".genkey")] + ".pem"
    extra = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:" + curve] if curve else []
    subprocess.run(["openssl", "req", "-new", "-nodes", "-utf8", "-sha256", "-days", "36500",
                    "-batch", "-x509", "-config", genkey, "-outform", "PEM", "-out", pem,
                    "-keyout", pem] + extra, check=True, capture_output=True)
    der = subprocess.run(["openssl", "x509", "-in", pem, "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return SigningKey(pem, der)


def sign(ko, key, hash="sha256", keyid=False, attributes=False):
    """`ko` signed as scripts/sign-file signs it: a detached CMS (PKCS#7) message by openssl,
    without certificates and (by default) without attributes, naming the signer by issuer
    and serial (`keyid`: by its subject key identifier, sign-file -k); then struct
    module_signature (id_type 2, PKEY_ID_PKCS7; its big-endian sig_len) and the mark."""
    command = ["openssl", "cms", "-sign", "-signer", key.pem, "-inkey", key.pem, "-binary",
               "-outform", "DER", "-nocerts", "-md", hash] + (
        [] if attributes else ["-noattr"]) + (["-keyid"] if keyid else [])
    message = subprocess.run(command, input=ko, check=True, capture_output=True).stdout
    return ko + message + struct.pack(">BBBBB3xI", 0, 0, 2, 0, 0, len(message)) + SIGNATURE_MARK


def with_certificates(image, certificates, bits=64, big=False):
    """`image` with a system_certificate_list appended as certs/system_certificates.S lays it
    out: 8-aligned, the certificates, then 8-aligned system_certificate_list_size."""
    image = image + bytes(-len(image) % 8)
    listed = b"".join(certificates)
    size = struct.pack((">" if big else "<") + ("Q" if bits == 64 else "I"), len(listed))
    return image + listed + bytes(-len(listed) % 8) + size + bytes(64)


# The kernel and module --check's tests judge: a 6.14 fixture kernel with these exports
# (and its .config, when given, embedded as CONFIG_IKCONFIG embeds it), and a module using
# some of them with modpost's __versions of them
MAGIC = "6.14.0-test SMP preempt mod_unload modversions "
EXPORTS = [Export("module_layout", 0x1234ABCD, PLAIN, ""),
           Export("printk", 0x11111111, PLAIN, ""),
           Export("usb_register_driver", 0x22222222, GPL, ""),
           Export("usb_stor_probe1", 0x33333333, GPL, "USB_STORAGE"),
           Export("cxl_mem_probe", 0x44444444, GPL, "module:cxl_core,cxl_pmem*"),
           Export("cxl_pmem_probe", 0x55555555, GPL, "module:cxl-pmem")]
CRC = {x.name: x.crc for x in EXPORTS}
USES = ["printk", "usb_register_driver", "usb_stor_probe1"]
GOOD = ["license=GPL", "vermagic=6.14.0-test SMP preempt mod_unload modversions ",
        "import_ns=USB_STORAGE", "name=probe"]


def kernel(config=None, magic=MAGIC, era="6.14", modversions=True):
    image = build(era, exports=EXPORTS + make_exports(ERAS[era], count=30, seed=5),
                  modversions=modversions).data
    if config is not None:
        image += b"IKCFG_ST" + gzip.compress(config.encode(), mtime=0) + b"IKCFG_ED"
    return image + b"\0" + magic.encode() + b"\0" + b"\0" * 64


def probe(uses=USES, modinfo=GOOD, versions="all", **kwargs):
    """A module using `uses`, with modpost's __versions of them (and module_layout)."""
    if versions == "all":
        versions = {name: CRC[name] for name in ["module_layout"] + uses if name in CRC}
    return build_module("6.14", [], imports=uses, versions=versions, modinfo=modinfo, **kwargs)
