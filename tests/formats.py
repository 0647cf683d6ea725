"""Boot and file formats wrapped around the synthetic images, built from their specs: a
compressed payload behind a decompressor stub, the ELF header (elf.h), the arm64 Image
header (Documentation/arch/arm64/booting.rst), the riscv Image header
(Documentation/arch/riscv/boot-image-header.rst), the x86 boot protocol's setup header
(Documentation/arch/x86/boot.rst), the arm zImage header, and relocation records."""

import bz2
import gzip
import lzma
import random
import struct

import zstandard

from kernelimage import randbytes

# a decompressor stub without magic numbers, and what may follow a payload in a vmlinuz
STUB = randbytes(random.Random(3), 0x2345).replace(b"\x1f\x8b", b"\x1f\x00") \
    .replace(b"\x5d\x00\x00", b"\x5d\x01\x00")
TRAILER = b"\xff" * 100 + b"trailing data after the payload"

COMPRESSORS = {
    "gzip": lambda data: gzip.compress(data, mtime=0),
    "xz": lambda data: lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32),
    "lzma": lambda data: lzma.compress(data, format=lzma.FORMAT_ALONE),
    "bzip2": bz2.compress,
    "zstd": lambda data: zstandard.ZstdCompressor(level=19).compress(data),
}


def vmlinuz(payload):
    """A compressed kernel as kbuild's boot wrappers hold it: code, the payload, more."""
    return STUB + payload + TRAILER


def elf(image, base, bits, big, machine, offset=0x1000):
    """An ELF executable whose one loaded segment is `image` at `base` (a second one, like
    x86-64's per-cpu segment, at address 0); -B is then base - offset."""
    e = ">" if big else "<"
    ident = b"\x7fELF" + bytes([bits // 32, 2 if big else 1, 1]) + bytes(9)
    if bits == 64:
        header = ident + struct.pack(e + "HHIQQQIHHHHHH", 2, machine, 1, base, 64, 0, 0, 64,
                                     56, 2, 64, 0, 0)
        segments = [struct.pack(e + "IIQQQQQQ", 1, 5, offset, base, base, len(image),
                                len(image), 0x1000),
                    struct.pack(e + "IIQQQQQQ", 1, 6, offset, 0, 0, 64, 64, 0x1000)]
    else:
        header = ident + struct.pack(e + "HHIIIIIHHHHHH", 2, machine, 1, base, 52, 0, 0, 52,
                                     32, 2, 40, 0, 0)
        segments = [struct.pack(e + "IIIIIIII", 1, offset, base, base, len(image), len(image),
                                5, 0x1000),
                    struct.pack(e + "IIIIIIII", 1, offset, 0, 0, 64, 64, 6, 0x1000)]
    return (header + b"".join(segments)).ljust(offset, b"\0") + image


def arm64_image(image, big=False):
    """The 64-byte arm64 Image header over the start of `image` (offset 0 is _text): code0,
    code1, text_offset, image_size, flags (bit 0: big endian), res2-4, magic, res5."""
    header = struct.pack("<IIQQQQQQ", 0x14000010, 0, 0, len(image), 1 if big else 0, 0, 0, 0)
    return header + b"ARM\x64" + bytes(4) + image[64:]


def riscv_image(image):
    """The 64-byte riscv Image header over the start of `image`."""
    header = struct.pack("<IIQQQIIQ", 0, 0, 0x200000, len(image), 0, 2, 0, 0) + b"RISCV\0\0\0"
    return header + b"RSC\x05" + struct.pack("<I", 0) + image[64:]


def bzimage(payload, release=b"6.1.0-test (fixture@build) #1 SMP"):
    """An x86 bzImage: boot sector and setup header, setup code, then the protected-mode
    part holding the compressed payload at payload_offset."""
    setup_sects = 3
    setup = bytearray((setup_sects + 1) * 512)
    setup[0x1F1] = setup_sects
    setup[0x1FE:0x200] = b"\x55\xaa"
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, 0x020F)
    struct.pack_into("<H", setup, 0x20E, 0x300)             # kernel_version string
    setup[0x500:0x500 + len(release)] = release
    decompressor = bytes(range(256)) * 8                     # stands for the decompressor
    struct.pack_into("<II", setup, 0x248, len(decompressor), len(payload))
    return bytes(setup) + decompressor + payload + bytes(64)


def zimage(payload):
    """An arm zImage: the decompressor's header (magic 0x016f2818 at 0x24), then code and
    the payload."""
    head = bytearray(0x400)
    struct.pack_into("<III", head, 0x24, 0x016F2818, 0, 0x400 + len(payload))
    return bytes(head) + payload


R_AARCH64_RELATIVE = 1027


def unrelocated(kernel, rela_type=R_AARCH64_RELATIVE):
    """The kernel as an arm64 Image linked with --no-apply-dynamic-relocs: every absolute
    pointer slot zero, and a .rela.dyn of Elf64_Rela {r_offset, r_info, r_addend} records
    (sorted by address) in the image, after the rest."""
    data = bytearray(kernel.data)
    e = ">" if kernel.options[kernel.options.index("-e") + 1] == "be" else "<"
    rela = b""
    for offset, value in sorted(kernel.pointers):
        data[offset:offset + 8] = bytes(8)
        rela += struct.pack(e + "QQQ", kernel.base + offset, rela_type, value)  # addend bits
    return bytes(data) + bytes(-len(data) % 8) + rela + bytes(64)


def with_relr(kernel):
    """The kernel with CONFIG_RELR: values stay in their slots (link-time addresses), and a
    .relr.dyn lists the slots: an address, then bitmaps of the 63 words after it."""
    words, at = [], None
    for offset, _ in sorted(kernel.pointers):
        address = kernel.base + offset
        if at is not None and 0 < (address - at) // 8 <= 63 and not (address - at) % 8:
            words[-1] |= 1 << ((address - at) // 8)
            continue
        words += [address, 1]
        at = address + 8
    relr = b"".join(struct.pack("<Q", w) for w in words)
    return kernel.data + bytes(-len(kernel.data) % 8) + relr
