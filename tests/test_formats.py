"""Each file format, with no options: the header and the statistics of the image tell
everything else (python extract_symvers.py vmlinuz > Module.symvers)."""

import gzip
import lzma
import os
import random
import shutil
import struct
import subprocess

import pytest

from corpus import SHARED, not_shared
from formats import arm64_image, bzimage, elf, riscv_image, zimage
from kernelimage import build

EM_X86_64, EM_MIPS, EM_PPC64 = 62, 8, 21


def test_elf_vmlinux_x86_64(run, assert_symvers, kernel_file):
    kernel = build("6.14", bits=64)
    assert_symvers(run(kernel_file(elf(kernel.data, kernel.base, 64, False, EM_X86_64))), kernel)


@pytest.mark.parametrize("bits,big,era", [(32, True, "5.10"), (64, True, "4.10"),
                                          (32, False, "7.2")])
def test_elf_vmlinux_absolute(bits, big, era, run, assert_symvers, kernel_file):
    """-B comes from the loaded segment (its address minus its file offset)."""
    kernel = build(era, bits=bits, big=big, prel32=False)
    image = elf(kernel.data, kernel.base, bits, big, EM_MIPS if bits == 32 else EM_PPC64)
    assert_symvers(run(kernel_file(image)), kernel)


@pytest.mark.parametrize("big", [False, True])
def test_arm64_image(big, run, assert_symvers, kernel_file):
    kernel = build("6.14", bits=64, big=big)
    assert_symvers(run(kernel_file(arm64_image(kernel.data, big), "Image")), kernel)


def test_arm64_image_gz(run, assert_symvers, kernel_file):
    kernel = build("5.10", bits=64)
    assert_symvers(run(kernel_file(gzip.compress(arm64_image(kernel.data)), "Image.gz")), kernel)


def test_riscv_image(run, assert_symvers, kernel_file):
    kernel = build("7.2", bits=64, prel32=False)
    assert_symvers(run(kernel_file(riscv_image(kernel.data), "Image")), kernel)


def test_bzimage(run, assert_symvers, kernel_file):
    """The setup header's payload_offset points at an xz-compressed ELF vmlinux."""
    kernel = build("6.14", bits=64)
    payload = lzma.compress(elf(kernel.data, kernel.base, 64, False, EM_X86_64),
                            check=lzma.CHECK_CRC32)
    result = run(kernel_file(bzimage(payload), "vmlinuz"))
    assert_symvers(result, kernel)
    assert "x86 bzImage, boot protocol 2.15: 6.1.0-test (fixture@build) #1 SMP" in result.err


def test_arm_zimage(run, assert_symvers, kernel_file):
    kernel = build("5.10", bits=32, prel32=False)
    assert_symvers(run(kernel_file(zimage(lzma.compress(kernel.data)), "zImage")), kernel)


def test_vmlinux_with_debug_info(tmp_path, run, assert_symvers):
    """A vmlinux as `make` leaves it in the build tree: the 7.2 x86-64 kernel of
    ../shared/corpus-built (a small one: its __ksymtab_strings is 85 KB) with eleven larger
    blocks of identifiers in non-allocated sections (as .debug_str holds; objcopy
    --add-section): the tables are looked for where the kernel is."""
    directory = os.path.join(SHARED, "corpus-built", "x86_64-7.2.13")
    if not os.path.isdir(directory):
        pytest.skip(not_shared("corpus-built", "x86_64-7.2.13"))
    if not shutil.which("objcopy"):
        pytest.skip("objcopy not installed (binutils)")
    with open(os.path.join(directory, "bzImage"), "rb") as f:
        bzimage = f.read()
    setup = (bzimage[0x1F1] + 1) * 512          # boot protocol 2.08+: payload_offset at 0x248
    offset, length = struct.unpack_from("<II", bzimage, 0x248)
    (tmp_path / "vmlinux").write_bytes(lzma.decompress(bzimage[setup + offset:][:length]))
    rng = random.Random(1)
    sections = []
    for i in range(11):
        names = {"".join(rng.choice("abcdefghijklmnopqrstuvwxyz_0123456789")
                         for _ in range(rng.randint(5, 30))) for _ in range(9000 + 500 * i)}
        separator = b"/ " * 64 + b"\0"             # paths and flags between the names
        (tmp_path / ("debug%d" % i)).write_bytes(separator + b"\0".join(
            n.encode() for n in sorted(names)) + b"\0" + separator)
        sections += ["--add-section", ".debug_str%d=%s" % (i, tmp_path / ("debug%d" % i))]
    subprocess.run(["objcopy", *sections, str(tmp_path / "vmlinux"), str(tmp_path / "debug")],
                   check=True)
    official = [line for line in open(os.path.join(directory, "Module.symvers")).read()
                .splitlines() if line.split("\t")[2] == "vmlinux"]
    assert_symvers(run(tmp_path / "debug"), official)
    assert_symvers(run("-p", "y", "-k", "7.2", tmp_path / "debug"), official)
