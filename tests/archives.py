"""Archive and container writers for the tests, from the formats' specifications (not from
extract_symvers.py): cpio newc/odc (the kernel's usr/gen_init_cpio.c, cpio(5)), ar (a Debian
package), tar and zip through the standard library, u-boot's image.h, AOSP's bootimg.h and
sparse_format.h, the devicetree specification (FIT), ELF core files and makedumpfile's
kdump-compressed format."""

import io
import struct
import tarfile
import zipfile
import zlib


def cpio(files, odc=False):
    """A cpio archive of {path: bytes} (regular files, mode 0644), with its TRAILER!!!."""
    out = bytearray()
    for ino, (name, data) in enumerate(list(files.items()) + [("TRAILER!!!", b"")], 1):
        mode = 0o100644 if name != "TRAILER!!!" else 0
        encoded = name.encode() + b"\0"
        if odc:         # 070707, octal fields, no padding
            out += b"070707" + b"".join(b"%0*o" % (width, value) for width, value in (
                (6, 0), (6, ino), (6, mode), (6, 0), (6, 0), (6, 1), (6, 0), (11, 0),
                (6, len(encoded)), (11, len(data))))
            out += encoded + data
        else:           # 070701, 13 hex fields; name and data 4-aligned
            out += b"070701" + b"".join(b"%08X" % v for v in (
                ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0))
            out += encoded + bytes(-(110 + len(encoded)) % 4) + data + bytes(-len(data) % 4)
    return bytes(out + bytes(-len(out) % 512))


def tar(files, mode="w"):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def ar(members):
    """An ar archive (the container of a .deb) of [(name, bytes)]."""
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        out += b"%-16s%-12d%-6d%-6d%-8s%-10d`\n" % (name.encode(), 0, 0, 0, b"100644", len(data))
        out += data + b"\n" * (len(data) % 2)
    return bytes(out)


def deb(data_tar_xz):
    return ar([("debian-binary", b"2.0\n"), ("control.tar.xz", b"\xfd7zXZ\0"),
               ("data.tar.xz", data_tar_xz)])


def zip_of(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buf.getvalue()


UBOOT_COMPRESSION = {"none": 0, "gzip": 1, "bzip2": 2, "lzma": 3, "lzo": 4, "lz4": 5, "zstd": 6,
                     "unknown": 9}


def uboot(payload, compression, image_type=2, load=0x80008000):
    """A u-boot legacy image header (include/image.h): 64 big-endian bytes, then the data."""
    header = struct.pack(">IIIIIIIBBBB32s", 0x27051956, 0, 0, len(payload), load, load,
                         zlib.crc32(payload), 5, 2, image_type, UBOOT_COMPRESSION[compression],
                         b"Linux-5.19.0-test")
    header = header[:4] + struct.pack(">I", zlib.crc32(header)) + header[8:]
    return header + payload


def pad(data, page):
    return data + bytes(-len(data) % page)


def boot_img(kernel, ramdisk, version, page=2048):
    """boot.img: v0-v2 (page_size chosen, header fields to header_version at 40), v3/v4
    (4096-byte pages); kernel then ramdisk, each page-aligned."""
    if version >= 3:
        page = 4096
        header = b"ANDROID!" + struct.pack("<IIII4II", len(kernel), len(ramdisk), 0,
                                           1580 if version == 3 else 1584, 0, 0, 0, 0, version)
    else:
        header = b"ANDROID!" + struct.pack("<10I", len(kernel), 0x10008000, len(ramdisk),
                                           0x11000000, 0, 0, 0x10000100, page, version, 0)
    return pad(pad(header, page) + pad(kernel, page) + ramdisk, page)


def vendor_boot_img(ramdisks, version, page=4096, dtb=b"\xd0\x0d\xfe\xed" + bytes(60)):
    """vendor_boot.img v3 (one vendor ramdisk) or v4 (fragments and their table of 108-byte
    entries: size, offset, type, name[32], board_id[16])."""
    total = b"".join(ramdisks)
    header_size = 2112 if version == 3 else 2128
    header = b"VNDRBOOT" + struct.pack("<IIIII", version, page, 0x10008000, 0x11000000,
                                       len(total))
    header += bytes(2048) + struct.pack("<I16sIIQ", 0x10000100, b"fixture", header_size,
                                        len(dtb), 0x1f00000)
    table = b""
    if version >= 4:
        offset = 0
        for i, ramdisk in enumerate(ramdisks):
            table += struct.pack("<III32s16I", len(ramdisk), offset, 1 if i == 0 else 3,
                                 b"fragment%d" % i, *([0] * 16))
            offset += len(ramdisk)
        header += struct.pack("<IIII", len(table), len(ramdisks), 108, 0)
    assert len(header) == header_size
    return pad(header, page) + pad(total, page) + pad(dtb, page) + pad(table, page)


def lz4_legacy(data):
    """lz4 -l: magic 0x184C2102, then blocks of at most 8 MiB input, each size-prefixed."""
    import lz4.block
    out = bytearray(b"\x02\x21\x4c\x18")
    for at in range(0, len(data), 8 << 20):
        block = lz4.block.compress(data[at:at + (8 << 20)], store_size=False)
        out += len(block).to_bytes(4, "little") + block
    return bytes(out)


def elf_core(path, loads, notes=(), bits=64, machine=None, big=False):
    """An ELF core file (ET_CORE) at `path`: `loads` are (vaddr, paddr, size, data) memory
    segments (data shorter than size leaves a hole; the file is sparse: segments are placed
    at increasing 1 MiB-aligned offsets after the headers), `notes` (name, type, desc);
    e_machine x86-64 (or i386 at 32 bits) unless `machine` says; `big`: ELFDATA2MSB (QEMU
    writes a big-endian machine's dump in its byte order)."""
    e, wide = ">" if big else "<", bits == 64
    phentsize = 56 if wide else 32
    count = len(loads) + (1 if notes else 0)
    note = b""
    for name, kind, desc in notes:
        name = name + b"\0"
        note += struct.pack(e + "III", len(name), len(desc), kind)
        note += name + bytes(-len(name) % 4) + desc + bytes(-len(desc) % 4)
    header_size = 64 if wide else 52
    offset = header_size + count * phentsize
    phdrs, placed = b"", []
    if notes:
        phdrs += struct.pack(e + "IIQQQQQQ" if wide else e + "IIIIIIII",
                             *((4, 0, offset, 0, 0, len(note), 0, 0) if wide else
                               (4, offset, 0, 0, len(note), 0, 0, 0)))
        offset += len(note)
    for vaddr, paddr, size, data in loads:
        offset = (offset + (1 << 20) - 1) & ~((1 << 20) - 1)
        fields = (1, 7, offset, vaddr, paddr, size, size, 4096) if wide else \
            (1, offset, vaddr, paddr, size, size, 7, 4096)
        phdrs += struct.pack(e + ("IIQQQQQQ" if wide else "IIIIIIII"), *fields)
        placed.append((offset, data))
        offset += size
    ident = b"\x7fELF" + bytes([bits // 32, 2 if big else 1, 1]) + bytes(9)
    machine = machine or (62 if wide else 3)
    header = ident + struct.pack(e + ("HHIQQQIHHHHHH" if wide else "HHIIIIIHHHHHH"), 4, machine, 1,
                                 0, header_size, 0, 0, header_size, phentsize, count, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(header + phdrs + note)
        for at, data in placed:
            f.seek(at)
            f.write(data)
        f.truncate(offset)


def fdt(tree):
    """A flattened device tree (devicetree specification v17) of nested {name: dict or
    bytes}: header, empty reservation map, structure block, strings block."""
    structure, strings, offsets = bytearray(), bytearray(), {}

    def node(name, body):
        structure.extend(struct.pack(">I", 1) + name.encode() + b"\0")
        structure.extend(bytes(-len(structure) % 4))
        for key, value in body.items():
            if isinstance(value, dict):
                continue
            if key not in offsets:
                offsets[key] = len(strings)
                strings.extend(key.encode() + b"\0")
            structure.extend(struct.pack(">III", 3, len(value), offsets[key]) + value)
            structure.extend(bytes(-len(structure) % 4))
        for key, value in body.items():
            if isinstance(value, dict):
                node(key, value)
        structure.extend(struct.pack(">I", 2))

    node("", tree)
    structure.extend(struct.pack(">I", 9))
    reserve = bytes(16)
    off_struct = 40 + len(reserve)
    off_strings = off_struct + len(structure)
    total = off_strings + len(strings)
    header = struct.pack(">10I", 0xD00DFEED, total, off_struct, off_strings, 40, 17, 16, 0,
                         len(strings), len(structure))
    return header + reserve + bytes(structure) + bytes(strings)


def sparse(raw, block=4096):
    """An Android sparse image of `raw` (a multiple of `block`): runs of zero blocks as
    don't-care chunks, runs of one repeated word as fill chunks, the rest raw."""
    chunks, at = [], 0
    blocks = [raw[i:i + block] for i in range(0, len(raw), block)]
    while at < len(blocks):
        data = blocks[at]
        kind = 0xCAC3 if data == bytes(block) else 0xCAC2 if data == data[:4] * (block // 4) \
            else 0xCAC1
        end = at + 1
        while end < len(blocks) and kind != 0xCAC1 and blocks[end] == data:
            end += 1
        while end < len(blocks) and kind == 0xCAC1 and blocks[end] != bytes(block):
            end += 1
        body = {0xCAC1: b"".join(blocks[at:end]), 0xCAC2: data[:4], 0xCAC3: b""}[kind]
        chunks.append(struct.pack("<HHII", kind, 0, end - at, 12 + len(body)) + body)
        at = end
    header = struct.pack("<IHHHHIIII", 0xED26FF3A, 1, 0, 28, 12, block, len(blocks),
                         len(chunks), 0)
    return header + b"".join(chunks)


def kdump(memory, compress, info=b"", page=4096, flattened=False, machine=b"", big=False,
          notes=b""):
    """makedumpfile's kdump-compressed file (diskdump_mod.h, header version 6, 64-bit) of
    `memory` (physical, from 0): zero pages left out, the others through `compress`
    (returning (bytes, flags)); with `flattened`, in makedumpfile -F's record form;
    `machine` its utsname's (uname -m); `big`: its header, sub-header and page descriptors
    big-endian (a big-endian machine's, as makedumpfile and QEMU write them; the flattened
    records are big-endian anyway); `notes` the ELF notes after the VMCOREINFO."""
    e = ">" if big else "<"
    mapnr = len(memory) // page
    dumped = [pfn for pfn in range(mapnr) if memory[pfn * page:(pfn + 1) * page] != bytes(page)]
    bitmap = bytearray(-(-mapnr // 8))
    for pfn in dumped:
        bitmap[pfn // 8] |= 1 << pfn % 8
    bitmap += bytes(-len(bitmap) % page)
    bitmap_blocks = 2 * len(bitmap) // page
    header = b"KDUMP   " + struct.pack(e + "i", 6) + b"Linux".ljust(260, b"\0") \
        + machine.ljust(130, b"\0") + bytes(6) + bytes(16) \
        + struct.pack(e + "IiiIIIIIIi", 0, page, 1, bitmap_blocks, mapnr, mapnr, 0, len(dumped),
                      0, 1)
    info_at = page + 104
    sub = struct.pack(e + "QiiQQQQQQQQQQQ", 0, 31, 0, 0, mapnr, info_at, len(info),
                      info_at + len(info), len(notes), 0, 0, 0, mapnr, mapnr) + info + notes
    descs_at = page * (2 + bitmap_blocks)
    data_at = descs_at + 24 * len(dumped)
    descs, pages = bytearray(), bytearray()
    for pfn in dumped:
        body, flags = compress(memory[pfn * page:(pfn + 1) * page])
        descs += struct.pack(e + "qIIQ", data_at + len(pages), len(body), flags, 0)
        pages += body
    out = header.ljust(page, b"\0") + sub.ljust(page, b"\0") + bytes(bitmap) + bytes(bitmap) \
        + bytes(descs) + bytes(pages)
    if not flattened:
        return out
    flat = b"makedumpfile".ljust(16, b"\0") + struct.pack(">qq", 1, 1)
    flat = flat.ljust(4096, b"\0")
    for at in range(0, len(out), 1 << 16):      # records of 64 KiB, written out of order
        piece = out[at:at + (1 << 16)]
        flat += struct.pack(">qq", at, len(piece)) + piece
    return flat + struct.pack(">qq", -1, -1)


def busybox_initramfs(path, init, files=(), busybox=None):
    """An initramfs at `path` (cpio newc, by cpio(1) itself): busybox-static (the machine's,
    or the `busybox` binary given: another architecture's) as /bin/busybox, `init` as
    /init, and the (source, name) files (or directories) given at the root."""
    import os
    import shutil
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as root:
        for directory in ("bin", "proc", "dev"):
            os.mkdir(os.path.join(root, directory))
        shutil.copy(busybox or shutil.which("busybox"), os.path.join(root, "bin", "busybox"))
        for source, name in files:      # links as they are: an absolute one (mips64el's
            if os.path.isdir(source):       # lib64/ld.so.1) names a file in the guest
                shutil.copytree(source, os.path.join(root, name), symlinks=True)
            else:
                shutil.copy(source, os.path.join(root, name))
        with open(os.path.join(root, "init"), "w") as f:
            f.write(init)
        os.chmod(os.path.join(root, "init"), 0o755)
        names = subprocess.run(["find", "."], cwd=root, capture_output=True, check=True).stdout
        with open(path, "wb") as out:
            subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root, input=names,
                           stdout=out, check=True)
