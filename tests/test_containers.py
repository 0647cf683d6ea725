"""Kernels in containers read by their headers: Android boot.img v0-v4, u-boot multi-file
images, FIT images, Android sparse images, fixtures from the formats' specifications and,
where Debian packages the ecosystem's own tool, the same made by it."""

import gzip
import shutil
import struct
import subprocess

import pytest

from archives import boot_img, fdt, sparse, uboot, vendor_boot_img
from formats import arm64_image, unrelocated
from kernelimage import build


@pytest.fixture(scope="module")
def kernel():
    return build("6.14", bits=32, base=0xC0008000)


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("compress", [gzip.compress, lambda d: d], ids=["gzip", "raw"])
def test_boot_img(kernel, version, compress, run, assert_symvers, kernel_file):
    image = boot_img(compress(kernel.data), gzip.compress(b"ramdisk"), version)
    assert_symvers(run(kernel_file(image)), kernel)


def test_boot_img_says_where_the_kernel_is(kernel, run, assert_symvers, kernel_file):
    payload = gzip.compress(kernel.data)
    result = run(kernel_file(boot_img(payload, b"", 2, page=2048)))
    assert_symvers(result, kernel)
    assert "Android boot image v2, page 2048: kernel at 0x800, %.1f MB, gzip" \
        % (len(payload) / 1e6) in result.err


def test_vendor_boot_has_no_kernel(kernel_file, run):
    result = run(kernel_file(vendor_boot_img([gzip.compress(b"x" * 100)], 3)))
    assert result.status == 4 and "give it to --modules" in result.errors[0]


def test_uboot_multi(kernel, run, assert_symvers, kernel_file):
    """mkimage -T multi: the sizes, a 0, then the images (4-aligned), the kernel first."""
    payload = gzip.compress(kernel.data)
    ramdisk = b"\x1f\x8b" + bytes(99)
    body = struct.pack(">III", len(payload), len(ramdisk), 0) + payload \
        + bytes(-len(payload) % 4) + ramdisk
    assert_symvers(run(kernel_file(uboot(body, "gzip", image_type=4))), kernel)


@pytest.mark.parametrize("compression", ["gzip", "none"])
@pytest.mark.parametrize("external", [False, True])
def test_fit(kernel, compression, external, run, assert_symvers, kernel_file):
    data = gzip.compress(kernel.data) if compression == "gzip" else kernel.data
    node = {"description": b"Linux\0", "type": b"kernel\0", "arch": b"arm\0",
            "os": b"linux\0", "compression": compression.encode() + b"\0",
            "load": struct.pack(">I", 0x80008000)}
    if external:
        node.update({"data-offset": struct.pack(">I", 0),
                     "data-size": struct.pack(">I", len(data))})
    else:
        node["data"] = data
    tree = {"description": b"fixture\0", "#address-cells": struct.pack(">I", 1),
            "images": {"fdt-1": {"type": b"flat_dt\0", "data": fdt({})},
                       "kernel-1": node},
            "configurations": {"default": b"conf-1\0", "conf-1": {"kernel": b"kernel-1\0"}}}
    image = fdt(tree)
    if external:
        image += bytes(-len(image) % 4) + data
    assert_symvers(run(kernel_file(image)), kernel)


def test_sparse(kernel, run, assert_symvers, kernel_file):
    raw = bytes(1 << 20) + gzip.compress(kernel.data)
    raw += b"\xff" * (-len(raw) % 4096 + 8192)
    assert_symvers(run(kernel_file(sparse(raw))), kernel)


def tool(name, package):
    if not shutil.which(name):
        pytest.skip("%s is not installed (Debian: apt-get install %s)" % (name, package))


def test_mkbootimg(kernel, tmp_path, run, assert_symvers):
    tool("mkbootimg", "mkbootimg")
    (tmp_path / "kernel").write_bytes(gzip.compress(kernel.data))
    (tmp_path / "ramdisk").write_bytes(gzip.compress(b"ramdisk"))
    for version in ("0", "2", "3"):
        out = tmp_path / ("boot-%s.img" % version)
        extra = ["--dtb", str(tmp_path / "ramdisk")] if version == "2" else []
        subprocess.run(["mkbootimg", "--kernel", str(tmp_path / "kernel"), "--ramdisk",
                        str(tmp_path / "ramdisk"), "--header_version", version,
                        "--pagesize", "2048", "-o", str(out)] + extra, check=True,
                       capture_output=True)
        assert_symvers(run(out), kernel)


def test_mkimage_multi_and_fit(kernel, tmp_path, run, assert_symvers):
    tool("mkimage", "u-boot-tools")
    (tmp_path / "zImage.gz").write_bytes(gzip.compress(kernel.data))
    (tmp_path / "initrd").write_bytes(b"initrd" * 100)
    multi = tmp_path / "multi.uImage"
    subprocess.run(["mkimage", "-A", "arm", "-O", "linux", "-T", "multi", "-C", "gzip",
                    "-a", "80008000", "-e", "80008000", "-n", "fixture", "-d",
                    "%s:%s" % (tmp_path / "zImage.gz", tmp_path / "initrd"), str(multi)],
                   check=True, capture_output=True)
    assert_symvers(run(multi), kernel)
    fit = tmp_path / "image.itb"
    subprocess.run(["mkimage", "-f", "auto", "-A", "arm", "-O", "linux", "-T", "kernel",
                    "-C", "gzip", "-a", "80008000", "-e", "80008000", "-d",
                    str(tmp_path / "zImage.gz"), str(fit)], check=True, capture_output=True)
    assert_symvers(run(fit), kernel)


def test_img2simg(kernel, tmp_path, run, assert_symvers):
    tool("img2simg", "android-sdk-libsparse-utils")
    raw = tmp_path / "boot.raw"
    raw.write_bytes(boot_img(gzip.compress(kernel.data), b"", 2) + bytes(1 << 20))
    subprocess.run(["img2simg", str(raw), str(tmp_path / "boot.simg")], check=True,
                   capture_output=True)
    assert (tmp_path / "boot.simg").read_bytes()[:4] == b"\x3a\xff\x26\xed"
    assert_symvers(run(tmp_path / "boot.simg"), kernel)


def test_unrelocated_arm64_image_inside_containers(run, assert_symvers, kernel_file):
    """An arm64 Image before 4.19 (absolute kernel_symbols left zero, filled by its RELA
    records), raw in a page-2048 boot.img and in a `-C none` uImage: its header is found
    where it is, and no option is needed."""
    kernel = build("4.10", bits=64, prel32=False)
    image = arm64_image(unrelocated(kernel))
    for container in (boot_img(image, b"", 2, page=2048), uboot(image, "none")):
        assert_symvers(run(kernel_file(container)), kernel)
