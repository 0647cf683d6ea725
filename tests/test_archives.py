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
from kobuild import build_module
from test_modules import expected

USBNET = make_exports(ERAS["6.14"], count=6, seed=21)
CDC = make_exports(ERAS["6.14"], count=5, seed=22)
TREE = {"lib/modules/6.14.0-test/kernel/drivers/net/usb/usbnet.ko": build_module("6.14", USBNET),
        "lib/modules/6.14.0-test/kernel/drivers/net/usb/cdc_ether.ko": build_module("6.14", CDC),
        "lib/modules/6.14.0-test/modules.dep": b"kernel/drivers/net/usb/usbnet.ko:\n"}
LINES = sorted(expected("6.14", USBNET, "drivers/net/usb/usbnet")
               + expected("6.14", CDC, "drivers/net/usb/cdc_ether"))
# an Android vendor ramdisk: flat lib/modules/, the base name is the module column
FLAT = {"lib/modules/usbnet.ko": TREE["lib/modules/6.14.0-test/kernel/drivers/net/usb/usbnet.ko"],
        "lib/modules/cdc_ether.ko":
            TREE["lib/modules/6.14.0-test/kernel/drivers/net/usb/cdc_ether.ko"],
        "init": b"#!/bin/sh\n"}
FLAT_LINES = sorted(expected("6.14", USBNET, "usbnet") + expected("6.14", CDC, "cdc_ether"))


COMPRESSIONS = {"plain": lambda d: d, "gzip": gzip.compress, "xz": lzma.compress,
                "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
                "zstd": zstandard.compress, "bzip2": bz2.compress,
                "lz4-frame": lz4.frame.compress, "lz4-legacy": lz4_legacy}


@pytest.fixture
def modules(tmp_path, run):
    """modules(archive bytes, name): the CLI's lines for --modules FILE, modules only."""
    def modules(data, name="archive", *options):
        path = tmp_path / name
        path.write_bytes(data)
        return sorted(run(*options, "--modules", path))
    return modules


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("odc", [False, True], ids=["newc", "odc"])
def test_cpio(compression, odc, modules):
    assert modules(COMPRESSIONS[compression](cpio(TREE, odc=odc))) == LINES


def test_concatenated_initramfs(modules):
    """An initramfs: an uncompressed early cpio (microcode), then the compressed main one."""
    early = cpio({"kernel/x86/microcode/GenuineIntel.bin": b"\x01" * 100})
    assert modules(early + gzip.compress(cpio(TREE))) == LINES
    assert modules(early + zstandard.compress(cpio(FLAT))) == FLAT_LINES


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_boot_img_ramdisk(version, modules):
    kernel = b"\x00" * 5000
    assert modules(boot_img(kernel, gzip.compress(cpio(FLAT)), version)) == FLAT_LINES


@pytest.mark.parametrize("compress", [gzip.compress, lz4_legacy], ids=["gzip", "lz4-legacy"])
def test_vendor_boot_v3(compress, modules):
    assert modules(vendor_boot_img([compress(cpio(FLAT))], 3)) == FLAT_LINES


def test_vendor_boot_v4_fragments(modules):
    """v4: the vendor ramdisk table's fragments, each its own compressed cpio."""
    first = {k: v for k, v in FLAT.items() if "usbnet" in k}
    second = {k: v for k, v in FLAT.items() if "usbnet" not in k}
    image = vendor_boot_img([lz4_legacy(cpio(first)), gzip.compress(cpio(second))], 4)
    assert modules(image) == FLAT_LINES


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:xz", "w:bz2", "zstd"])
def test_tar(mode, modules):
    data = zstandard.compress(tar(TREE)) if mode == "zstd" else tar(TREE, mode)
    assert modules(data) == LINES


def test_deb(modules):
    """A Debian package: ar, data.tar.xz, usr/lib/modules/RELEASE/kernel/..."""
    files = {"./usr/" + name: data for name, data in TREE.items()}
    files["./usr/share/doc/linux-image/changelog.gz"] = gzip.compress(b"x")
    assert modules(deb(tar(files, "w:xz")), "linux-image.deb") == LINES


def test_zip(modules):
    assert modules(zip_of({"modules/" + k: v for k, v in FLAT.items()})) == FLAT_LINES


def test_compressed_module_file_by_content(modules):
    """A module file is known by its content, whatever its name."""
    ko = TREE["lib/modules/6.14.0-test/kernel/drivers/net/usb/usbnet.ko"]
    assert modules(lzma.compress(ko), "usbnet.ko.xz") == expected("6.14", USBNET, "usbnet")
    assert modules(ko, "usbnet.bin") == expected("6.14", USBNET, "usbnet")


@pytest.mark.parametrize("offset,magic,what,how", [
    (1080, b"\x53\xef", "an ext2/3/4 filesystem image", "debugfs -R 'rdump / DIR'"),
    (1024, b"\xe2\xe1\xf5\xe0", "an EROFS image", "fsck.erofs --extract=DIR"),
    (0, b"hsqs", "a squashfs image", "unsquashfs"),
    (0, b"\x3a\xff\x26\xed", "an Android sparse image", "simg2img")])
def test_filesystem_images_are_refused(offset, magic, what, how, tmp_path, fail):
    image = bytearray(8192)
    image[offset:offset + len(magic)] = magic
    (tmp_path / "vendor_dlkm.img").write_bytes(bytes(image))
    status, err = fail("--modules", tmp_path / "vendor_dlkm.img")
    assert status == 4 and what in err and how in err and err.count("\n") == 1


@pytest.mark.parametrize("data", [b"", b"not an archive" * 10, gzip.compress(b"plain text"),
                                  cpio(TREE)[:3000], b"!<arch>\n" + b"x" * 100,
                                  b"VNDRBOOT" + b"\0" * 20], ids=[
    "empty", "text", "gzip-text", "truncated-cpio", "broken-ar", "truncated-vendor-boot"])
def test_broken_archives(data, tmp_path, fail):
    (tmp_path / "broken").write_bytes(data)
    status, err = fail("--modules", tmp_path / "broken")
    assert status in (3, 4, 6) and err.startswith("extract_symvers: error:") \
        and err.count("\n") == 1


def test_with_the_kernel(tmp_path, run, kernel_file):
    kernel = build("6.14")
    (tmp_path / "ramdisk.lz4").write_bytes(lz4_legacy(cpio(FLAT)))
    lines = run("--modules", tmp_path / "ramdisk.lz4", kernel_file(kernel.data))
    assert sorted(lines) == sorted(kernel.symvers() + FLAT_LINES)


def test_duplicates(tmp_path, run, fail, capsys, kernel_file):
    """The same module in the vendor ramdisk and vendor_dlkm: its lines once; one symbol of
    two modules: both lines, and said; a symbol of vmlinux and of a module: an error."""
    (tmp_path / "ramdisk.cpio").write_bytes(cpio(FLAT))
    (tmp_path / "dlkm.zip").write_bytes(zip_of(FLAT))
    assert sorted(run("--modules", tmp_path / "ramdisk.cpio", "--modules",
                      tmp_path / "dlkm.zip")) == FLAT_LINES
    twin = {"lib/modules/usbnet2.ko": FLAT["lib/modules/usbnet.ko"]}
    (tmp_path / "twin.cpio").write_bytes(cpio(twin))
    status = __import__("extract_symvers").main(
        ["--modules", str(tmp_path / "ramdisk.cpio"), "--modules", str(tmp_path / "twin.cpio")])
    out, err = capsys.readouterr()
    assert status == 0
    assert sorted(out.splitlines()) == sorted(FLAT_LINES + expected("6.14", USBNET, "usbnet2"))
    assert "%s is exported by usbnet and by usbnet2: both lines kept" % USBNET[0].name in err
    kernel = build("6.14", exports=USBNET + make_exports(ERAS["6.14"], count=30, seed=5))
    status, err = fail("--modules", tmp_path / "ramdisk.cpio", kernel_file(kernel.data))
    assert status == 6 and "which vmlinux exports too" in err


def test_every_bad_module_at_once(tmp_path, fail, capsys):
    files = dict(TREE)
    for i in range(3):
        files["lib/modules/6.14.0-test/kernel/bad%d.ko" % i] = b"\x7fELF\x02\x01" + bytes(i)
    (tmp_path / "tree.tar").write_bytes(tar(files))
    status, err = fail("--modules", tmp_path / "tree.tar")
    assert status == 6
    assert "3 of 5 modules cannot be read" in err
    assert [line for line in err.splitlines() if "bad" in line and ".ko:" in line] != []
    assert sum(".ko: " in line for line in err.splitlines()) == 3
    status = __import__("extract_symvers").main(["--skip-bad-modules", "--modules",
                                                 str(tmp_path / "tree.tar")])
    out, err = capsys.readouterr()
    assert status == 0 and sorted(out.splitlines()) == LINES
    assert err.count("warning: left out:") == 3


def test_no_kernel_needs_modules(fail):
    status, err = fail()
    assert status == 2 and "KERNEL is needed" in err


def test_cpio_header_with_a_sign(tmp_path, fail):
    """int() reads "-0000001" too: a negative size must not walk the archive backwards."""
    archive = bytearray(cpio(FLAT))
    archive[54:62] = b"-0000001"
    (tmp_path / "ramdisk.cpio").write_bytes(bytes(archive))
    status, err = fail("--modules", tmp_path / "ramdisk.cpio")
    assert status == 4 and "corrupt cpio header at 0x0" in err
