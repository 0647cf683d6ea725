"""--modules from archives and containers (read in memory): cpio newc/odc plain, compressed
and concatenated, Android boot.img v0-v4 and vendor_boot.img v3/v4 ramdisks, tar, .deb,
zip; filesystem images refused with what to do; modules-only mode; duplicates; every bad
module reported at once, or left out with --skip-bad-modules."""

import bz2
import gzip
import lzma

import lz4.frame
import pytest
import zstandard

from archives import boot_img, cpio, deb, lz4_legacy, tar, vendor_boot_img, zip_of
from kernelimage import ERAS, build, make_exports
from kobuild import build_module, symvers_lines

USBNET = make_exports(ERAS["6.14"], count=6, seed=21)
CDC = make_exports(ERAS["6.14"], count=5, seed=22)
LINES = sorted(symvers_lines("6.14", USBNET, "drivers/net/usb/usbnet")
               + symvers_lines("6.14", CDC, "drivers/net/usb/cdc_ether"))
# an Android vendor ramdisk: flat lib/modules/, the base name is the module column
FLAT_LINES = sorted(symvers_lines("6.14", USBNET, "usbnet") + symvers_lines("6.14", CDC,
                                                                            "cdc_ether"))

COMPRESSIONS = {"plain": lambda d: d, "gzip": gzip.compress, "xz": lzma.compress,
                "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
                "zstd": zstandard.compress, "bzip2": bz2.compress,
                "lz4-frame": lz4.frame.compress, "lz4-legacy": lz4_legacy}


@pytest.fixture(scope="module")
def tree():
    """lib/modules/RELEASE/kernel/... as a distribution installs it: {path: bytes}."""
    return {"lib/modules/6.14.0-test/kernel/drivers/net/usb/usbnet.ko":
            build_module("6.14", USBNET),
            "lib/modules/6.14.0-test/kernel/drivers/net/usb/cdc_ether.ko":
            build_module("6.14", CDC),
            "lib/modules/6.14.0-test/modules.dep": b"kernel/drivers/net/usb/usbnet.ko:\n"}


@pytest.fixture(scope="module")
def flat(tree):
    """The same modules in a flat lib/modules/, as an Android vendor ramdisk holds them."""
    files = {"lib/modules/" + name.rsplit("/", 1)[-1]: data for name, data in tree.items()
             if name.endswith(".ko")}
    files["init"] = b"#!/bin/sh\n"
    return files


@pytest.fixture
def modules(tmp_path, run):
    """modules(archive bytes, name, *options): python extract_symvers.py --modules FILE
    (modules only); its lines, sorted."""
    def modules(data, name="archive", *options):
        path = tmp_path / name
        path.write_bytes(data)
        result = run(*options, "--modules", path)
        assert result.status == 0, result.err
        return sorted(result.lines)
    return modules


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("odc", [False, True], ids=["newc", "odc"])
def test_cpio(compression, odc, tree, modules):
    assert modules(COMPRESSIONS[compression](cpio(tree, odc=odc))) == LINES


def test_concatenated_initramfs(tree, flat, modules):
    """An initramfs: an uncompressed early cpio (microcode), then the compressed main one."""
    early = cpio({"kernel/x86/microcode/GenuineIntel.bin": b"\x01" * 100})
    assert modules(early + gzip.compress(cpio(tree))) == LINES
    assert modules(early + zstandard.compress(cpio(flat))) == FLAT_LINES


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_boot_img_ramdisk(version, flat, modules):
    assert modules(boot_img(bytes(5000), gzip.compress(cpio(flat)), version)) == FLAT_LINES


@pytest.mark.parametrize("compress", [gzip.compress, lz4_legacy], ids=["gzip", "lz4-legacy"])
def test_vendor_boot_v3(compress, flat, modules):
    assert modules(vendor_boot_img([compress(cpio(flat))], 3)) == FLAT_LINES


def test_vendor_boot_v4_fragments(flat, modules):
    """v4: the vendor ramdisk table's fragments, each its own compressed cpio."""
    first = {k: v for k, v in flat.items() if "usbnet" in k}
    second = {k: v for k, v in flat.items() if "usbnet" not in k}
    image = vendor_boot_img([lz4_legacy(cpio(first)), gzip.compress(cpio(second))], 4)
    assert modules(image) == FLAT_LINES


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:xz", "w:bz2", "zstd"])
def test_tar(mode, tree, modules):
    data = zstandard.compress(tar(tree)) if mode == "zstd" else tar(tree, mode)
    assert modules(data) == LINES


def test_deb(tree, modules):
    """A Debian package: ar, data.tar.xz, usr/lib/modules/RELEASE/kernel/..."""
    files = {"./usr/" + name: data for name, data in tree.items()}
    files["./usr/share/doc/linux-image/changelog.gz"] = gzip.compress(b"x")
    assert modules(deb(tar(files, "w:xz")), "linux-image.deb") == LINES


def test_zip(flat, modules):
    assert modules(zip_of({"modules/" + k: v for k, v in flat.items()})) == FLAT_LINES


def test_compressed_module_file_by_content(flat, modules):
    """A module file is known by its content, whatever its name."""
    ko = flat["lib/modules/usbnet.ko"]
    assert modules(lzma.compress(ko), "usbnet.ko.xz") == symvers_lines("6.14", USBNET, "usbnet")
    assert modules(ko, "usbnet.bin") == symvers_lines("6.14", USBNET, "usbnet")


@pytest.mark.parametrize("offset,magic,what,how", [
    (1080, b"\x53\xef", "an ext2/3/4 filesystem image", "debugfs -R 'rdump / DIR'"),
    (1024, b"\xe2\xe1\xf5\xe0", "an EROFS image", "fsck.erofs --extract=DIR"),
    (0, b"hsqs", "a squashfs image", "unsquashfs"),
    (0, b"\x3a\xff\x26\xed", "an Android sparse image", "simg2img")])
def test_filesystem_images_are_refused(offset, magic, what, how, tmp_path, run):
    image = bytearray(8192)
    image[offset:offset + len(magic)] = magic
    (tmp_path / "vendor_dlkm.img").write_bytes(bytes(image))
    result = run("--modules", tmp_path / "vendor_dlkm.img")
    assert result.status == 4 and what in result.err and how in result.err
    assert result.err.count("\n") == 1


@pytest.mark.parametrize("data,status,message", [
    (b"", 3, "broken is empty"),
    (b"not an archive" * 10, 4, "is not a kernel module, a directory or an archive"),
    (gzip.compress(b"plain text"), 4, "is not a kernel module, a directory or an archive"),
    (cpio({"lib/modules/m.ko": bytes(5000)})[:3000], 4, "cpio archive is truncated"),
    (b"!<arch>\n" + b"x" * 100, 4, "corrupt ar header"),
    (b"VNDRBOOT" + b"\0" * 20, 4, "Android boot image header is truncated")], ids=[
    "empty", "text", "gzip-text", "truncated-cpio", "broken-ar", "truncated-vendor-boot"])
def test_broken_archives(data, status, message, tmp_path, run):
    (tmp_path / "broken").write_bytes(data)
    result = run("--modules", tmp_path / "broken")
    assert result.status == status
    assert message in result.errors[0] and result.err.count("\n") == 1


def test_with_the_kernel(tmp_path, flat, run, assert_symvers, kernels, kernel_file):
    kernel = kernels("6.14", bits=64)
    (tmp_path / "ramdisk.lz4").write_bytes(lz4_legacy(cpio(flat)))
    assert_symvers(run("--modules", tmp_path / "ramdisk.lz4", kernel_file(kernel.data)),
                   kernel.symvers() + FLAT_LINES)


def test_duplicates(tmp_path, flat, run, assert_symvers, kernel_file):
    """The same module in the vendor ramdisk and vendor_dlkm: its lines once; one symbol of
    two modules: both lines, and said; a symbol of vmlinux and of a module: an error."""
    (tmp_path / "ramdisk.cpio").write_bytes(cpio(flat))
    (tmp_path / "dlkm.zip").write_bytes(zip_of(flat))
    assert_symvers(run("--modules", tmp_path / "ramdisk.cpio", "--modules",
                       tmp_path / "dlkm.zip"), FLAT_LINES)
    (tmp_path / "twin.cpio").write_bytes(cpio({"lib/modules/usbnet2.ko":
                                               flat["lib/modules/usbnet.ko"]}))
    result = run("--modules", tmp_path / "ramdisk.cpio", "--modules", tmp_path / "twin.cpio")
    assert_symvers(result, FLAT_LINES + symvers_lines("6.14", USBNET, "usbnet2"))
    assert "%s is exported by usbnet and by usbnet2: both lines kept" % USBNET[0].name \
        in result.err
    kernel = build("6.14", exports=USBNET + make_exports(ERAS["6.14"], count=30, seed=5))
    result = run("--modules", tmp_path / "ramdisk.cpio", kernel_file(kernel.data))
    assert result.status == 6 and "which vmlinux exports too" in result.errors[0]


def test_every_bad_module_at_once(tmp_path, tree, run, assert_symvers):
    files = dict(tree)
    for i in range(3):
        files["lib/modules/6.14.0-test/kernel/bad%d.ko" % i] = b"\x7fELF\x02\x01" + bytes(i)
    (tmp_path / "tree.tar").write_bytes(tar(files))
    result = run("--modules", tmp_path / "tree.tar")
    assert result.status == 6
    assert "3 of 5 modules cannot be read" in result.errors[0]
    assert ["bad%d.ko" % i in result.err for i in range(3)] == [True] * 3
    assert sum(".ko: " in line for line in result.err.splitlines()) == 3
    result = run("--skip-bad-modules", "--modules", tmp_path / "tree.tar")
    assert_symvers(result, LINES)
    assert result.err.count("warning: left out:") == 3


def test_no_kernel_needs_modules(run):
    result = run()
    assert result.status == 2 and "KERNEL is needed" in result.err


def test_cpio_header_with_a_sign(tmp_path, flat, run):
    """int() reads "-0000001" too: a negative size must not walk the archive backwards."""
    archive = bytearray(cpio(flat))
    archive[54:62] = b"-0000001"
    (tmp_path / "ramdisk.cpio").write_bytes(bytes(archive))
    result = run("--modules", tmp_path / "ramdisk.cpio")
    assert result.status == 4 and "corrupt cpio header at 0x0" in result.errors[0]
