"""Bad input and wrong options: one line on stderr, a distinct exit status, empty stdout."""

import functools
import gzip
import io
import os
import shutil
import subprocess
import random
import struct
import zlib

import pytest

from archives import cpio, deb, lz4_legacy, tar, uboot, zip_of
from formats import COMPRESSORS, STUB
from kernelimage import ERAS, make_exports, randbytes
from kobuild import build_module

# python extract_symvers.py OPTIONS vmlinux, for kernelimage's 6.14 kernels (PREL32, as on
# x86 and arm64; absolute pointers, as everywhere else) and a 32-bit 4.10 one
PREL32 = ["-b", "64", "-B", "ffffffff81000000", "-k", "6.14", "-e", "le", "-p", "y"]
ABSOLUTE = PREL32[:-1] + ["n"]
OLD32 = ["-b", "32", "-B", "c0008000", "-k", "4.10", "-e", "le"]


def prel32(kernels):
    return kernels("6.14", bits=64).data


def absolute(kernels):
    return kernels("6.14", bits=64, prel32=False).data


def old32(kernels):
    return kernels("4.10", bits=32).data


def garbage_names(kernels):
    """The PREL32 kernel with the first name offsets of every table pointing at nothing."""
    kernel = kernels("6.14", bits=64)
    data = bytearray(kernel.data)
    for at in kernel.layout["ksymtab"].values():
        for i in range(3):
            struct.pack_into("<i", data, at + 12 * i + 4, 5)
    return bytes(data)


@functools.lru_cache(maxsize=None)
def gzip_bomb(kernels):
    """600 MiB of zeros in a 600 KB gzip stream."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    return STUB + b"".join(z.compress(chunk) for _ in range(600)) + z.flush()


def fixed(data):
    return lambda kernels: data


# a banner, then noise: no header, no identifiers, no name pointers
NOISE = b"Linux version 6.14.0-x (a@b) #1\0" + randbytes(random.Random(5), 300000)
INITRAMFS = cpio({"init": b"#!/bin/sh\n", "lib/modules/6.1.0/kernel/m.ko": bytes(100000)})


# (case, options, input: a path, or bytes made from the session's kernels, exit status, text
# of the error line)
CASES = [
    ("missing file", ["-B", "c0008000"], "/nonexistent/vmlinuz", 3, "No such file"),
    ("directory", ["-B", "c0008000"], "/", 3, "Is a directory"),
    ("empty file", ["-B", "c0008000"], fixed(b""), 3, "input is empty"),
    ("empty device", ["-B", "c0008000"], "/dev/null", 3, "input is empty"),
    ("endless device", ["--max-size", "1", "-B", "c0008000"], "/dev/zero", 3,
     "larger than 1 MiB"),
    ("not a kernel", ["-b", "64", "-e", "le"], fixed(randbytes(random.Random(5), 300000)), 4,
     "not a kernel: found no kernel banner, no compressed kernel and no kernel image header"),
    ("not a kernel, read raw as -k says", PREL32, fixed(randbytes(random.Random(5), 300000)), 5,
     "no export tables found with -B ffffffff81000000 -b 64 -e le -k 6.14 -p y"),
    ("text file", [], fixed(b"This is not a kernel.\n" * 1000), 4, "not a kernel"),
    ("ext4 image", [], fixed(bytes(1080) + b"\x53\xef" + bytes(8000)), 4,
     "this is an ext2/3/4 filesystem image, not a kernel: get the kernel and the modules out "
     "of it (mount -o loop,ro IMAGE DIR, or debugfs -R 'rdump / DIR' IMAGE), then give the "
     "kernel, and the modules to --modules DIR"),
    ("ext4 image, gzip-compressed", [],
     fixed(COMPRESSORS["gzip"](bytes(1080) + b"\x53\xef" + bytes(80000))), 4,
     "this is an ext2/3/4 filesystem image, gzip-compressed, not a kernel"),
    ("squashfs image", [], fixed(b"hsqs" + bytes(8000)), 4, "this is a squashfs image, not a "
     "kernel: get the kernel and the modules out of it (unsquashfs -d DIR IMAGE)"),
    ("big-endian squashfs image", [], fixed(b"sqsh" + bytes(8000)), 4,
     "this is a squashfs image, not a kernel"),
    ("erofs image", [], fixed(bytes(1024) + b"\xe2\xe1\xf5\xe0" + bytes(8000)), 4,
     "this is an EROFS image, not a kernel"),
    ("cramfs image", [], fixed(b"\x45\x3d\xcd\x28" + bytes(8000)), 4,
     "this is a cramfs image, not a kernel: get the kernel and the modules out of it "
     "(cramfsck -x DIR IMAGE)"),
    ("cramfs image after a boot block", [], fixed(bytes(512) + b"\x45\x3d\xcd\x28" + bytes(8000)),
     4, "this is a cramfs image, not a kernel"),
    ("big-endian cramfs image", [], fixed(b"\x28\xcd\x3d\x45" + bytes(8000)), 4,
     "this is a cramfs image, not a kernel"),
    ("initramfs", [], fixed(INITRAMFS), 4, "this is a cpio archive (an initramfs?), not a "
     "kernel: give it to --modules for the modules it holds"),
    ("odc cpio", [], fixed(cpio({"lib/modules/m.ko": bytes(100)}, odc=True)), 4,
     "this is a cpio archive (an initramfs?), not a kernel"),
    ("tar of modules", [], fixed(tar({"lib/modules/m.ko": bytes(100)})), 4,
     "this is a tar archive, not a kernel: give it to --modules for the modules it holds"),
    ("tar.gz of modules", [], fixed(tar({"lib/modules/m.ko": bytes(100)}, "w:gz")), 4,
     "this is a tar archive, gzip-compressed, not a kernel: give it to --modules"),
    ("zip of modules", [], fixed(zip_of({"lib/modules/m.ko": bytes(100)})), 4,
     "this is a zip archive, not a kernel: give it to --modules for the modules it holds"),
    ("Debian package of modules", [],
     fixed(deb(COMPRESSORS["xz"](tar({"lib/modules/m.ko": bytes(100)})))), 4,
     "this is a Debian package, not a kernel: give it to --modules for the modules it holds"),
    ("gzip of zeros", [], fixed(COMPRESSORS["gzip"](bytes(1 << 20))), 4,
     "gzip payload at 0x0 decompresses to 1048576 bytes with no Linux banner: not a kernel "
     "(give -k to read it as a raw image)"),
    ("vendor_boot", [], fixed(b"VNDRBOOT" + bytes(4000)), 4,
     "a vendor_boot image holds no kernel"),
    ("wrong base address", ABSOLUTE[:3] + ["ffffffff82000000"] + ABSOLUTE[4:], absolute, 5,
     "-B ffffffff82000000"),
    ("wrong pointer size", ["-b", "64", "-B", "c0008000", "-k", "4.10"], old32, 5,
     "-b 64 finds no export tables; the image says -b 32 (40 symbols found with it): give "
     "that, or leave -b out"),
    ("wrong endianness", OLD32[:-1] + ["be"], old32, 5,
     "-e be finds no export tables; the image says -e le (40 symbols found with it): give "
     "that, or leave -e out"),
    ("wrong kernel version", ABSOLUTE[:5] + ["4.10"] + ABSOLUTE[6:], absolute, 5,
     "-k 4.10 finds no export tables; the image says -k 6.14 (40 symbols found with it): "
     "give that, or leave -k out"),
    ("wrong base address, PREL32 wrong", ABSOLUTE[:3] + ["ffffffff82000000"] + ABSOLUTE[4:-1]
     + ["y"], absolute, 5, "-B ffffffff82000000 and -p y find no export tables; the image says "
     "-B ffffffff81000000 -p n (40 symbols found with them): give those, or leave -B and -p "
     "out"),
    ("four options wrong", ["-b", "64", "-e", "be", "-k", "9.9", "-B", "0"], old32, 5,
     "-B 0, -b 64, -e be and -k 9.9 find no export tables; the image says -B c0008000 -b 32 "
     "-e le -k 4.10 (40 symbols found with them): give those, or leave -B, -b, -e and -k out"),
    ("no base address to try", ["-p", "n"], fixed(NOISE), 5, "no export tables found with -k "
     "6.14 -p n: no base address to try (none in a header, none the name pointers point "
     "from): give -B -b -e"),
    ("every option set tried", [], fixed(NOISE), 5, "no export tables found with any of the 4 "
     "option sets tried from what the image says (-v lists them): give -B -b -e -p"),
    ("base too wide for 32 bits", ["-b", "32", "-B", "ffffffff81000000", "-k", "6.14"], prel32,
     2, "does not fit in 32 bits"),
    ("image at the top of the address space", ["-b", "32", "-B", "fffff000", "-k", "4.10"],
     prel32, 5, "-k 4.10 finds no export tables; the image says -k 6.14 (40 symbols found "
     "with it): give that, or leave -k out"),
    ("wrong base", ["-b", "32", "-B", "fffff000", "-k", "4.10"], old32, 5,
     "-B fffff000 finds no export tables; the image says -B c0008000 (40 symbols found with "
     "it): give that, or leave -B out"),
    ("garbage in the tables", PREL32, garbage_names, 6, "not a valid string"),
    ("truncated gzip", PREL32, lambda k: STUB + gzip.compress(prel32(k))[:3000], 4,
     "gzip payload is truncated"),
    ("corrupt xz", PREL32, lambda k: STUB + COMPRESSORS["xz"](prel32(k))[:200] + bytes(5000), 4,
     "xz payload is corrupt"),
    ("gzip bomb", ["-B", "c0008000"], gzip_bomb, 4,
     "expands past 512 MiB: refused as a decompression bomb"),
    ("u-boot image of a ramdisk", PREL32, fixed(uboot(bytes(100), "none", image_type=3)), 4,
     "type 3 is not a kernel"),
    ("u-boot unknown compression", PREL32, fixed(uboot(bytes(100), "unknown")), 4,
     "unknown (9) compression is not supported"),
    ("u-boot corrupt lzo", PREL32, fixed(uboot(bytes(100), "lzo")), 4,
     "lzo payload is corrupt"),
    ("u-boot truncated", PREL32, fixed(uboot(bytes(100), "gzip")[:120]), 4,
     "u-boot payload is truncated"),
] + [
    ("initramfs, %s-compressed" % method, [], fixed(COMPRESSORS[method](INITRAMFS)), 4,
     "this is a cpio archive (an initramfs?), %s-compressed, not a kernel: give it to "
     "--modules for the modules it holds" % method) for method in ("gzip", "xz", "zstd")
] + [
    ("initramfs, lz4-compressed", [], fixed(lz4_legacy(INITRAMFS)), 4,
     "this is a cpio archive (an initramfs?), lz4-compressed, not a kernel"),
] + [
    ("%s bomb" % method, ["--max-size", "2"] + PREL32,
     lambda k, method=method: STUB + COMPRESSORS[method](prel32(k) + bytes(3 << 20)), 4,
     "payload expands past 2 MiB: refused as a decompression bomb")
    for method in ("gzip", "xz", "bzip2", "zstd")
]


@pytest.mark.parametrize("case,options,source,status,message", CASES,
                         ids=[c[0] for c in CASES])
def test_error(case, options, source, status, message, run, kernels, kernel_file):
    path = source if isinstance(source, str) else kernel_file(source(kernels))
    result = run(*options, path)
    assert result.status == status
    assert message in result.errors[0]


def test_an_initramfs_made_by_cpio_and_gzip(tmp_path, run):
    """find . | cpio -o -H newc | gzip > initramfs.cpio.gz, given as the kernel: exit 4, and
    --modules reads it."""
    if not (shutil.which("cpio") and shutil.which("gzip")):
        pytest.skip("cpio or gzip is not installed")
    root = tmp_path / "root"
    (root / "lib/modules/6.14.0/kernel/drivers").mkdir(parents=True)
    (root / "init").write_text("#!/bin/sh\n")
    (root / "lib/modules/6.14.0/kernel/drivers/m.ko").write_bytes(
        build_module("6.14", make_exports(ERAS["6.14"], count=3, seed=7)))
    subprocess.run("find . | cpio -o -H newc --quiet | gzip > ../initramfs.cpio.gz", shell=True,
                   cwd=root, check=True)
    result = run(tmp_path / "initramfs.cpio.gz")
    assert result.status == 4
    assert result.errors == ["extract_symvers: error: this is a cpio archive (an initramfs?), "
                             "gzip-compressed, not a kernel: give it to --modules for the "
                             "modules it holds"]
    assert run("--modules", tmp_path / "initramfs.cpio.gz").status == 0


@pytest.mark.parametrize("args", [
    ["-b", "16", "-B", "0"], ["-e", "middle", "-B", "0"], ["-k", "six", "-B", "0"],
    ["-k", "2.4", "-B", "0"], ["-B", "zz"], ["-p", "maybe", "-B", "0"],
    ["--max-size", "x", "-B", "0"], ["--max-size", "0"], ["--max-size", "-5"],
])
def test_usage_errors(args, run, kernels, kernel_file):
    result = run(*args, kernel_file(prel32(kernels)))
    assert result.status == 2
    assert "usage:" in result.err


def test_prel32_tables_do_not_need_the_base(run, assert_symvers, kernels, kernel_file):
    """PREL32 kernel_symbols are position-independent: a wrong -B still finds them."""
    assert_symvers(run("-b", "64", "-B", "ffffffff82000000", "-k", "6.14",
                       kernel_file(prel32(kernels))), kernels("6.14", bits=64))


def test_unreadable_file(monkeypatch, run, kernels, kernel_file):
    import extract_symvers

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    path = kernel_file(prel32(kernels))
    monkeypatch.setattr(extract_symvers, "open", denied, raising=False)
    result = run("-B", "c0008000", path)
    assert result.status == 3
    assert "Permission denied" in result.errors[0]


def test_empty_stdin(monkeypatch, run):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"")))
    result = run("-B", "c0008000", "-")
    assert result.status == 3 and "input is empty" in result.errors[0]


def test_decompress_failure_leaves_nothing(tmp_path, run, kernels, kernel_file):
    target = tmp_path / "out.raw"
    target.write_bytes(b"keep me")
    result = run("-d", target, kernel_file(STUB + gzip.compress(prel32(kernels))[:3000]))
    assert result.status == 4
    assert target.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.raw", "vmlinux"]


def test_decompress_into_missing_directory(tmp_path, run, kernels, kernel_file):
    result = run("-d", tmp_path / "no" / "out.raw", kernel_file(prel32(kernels)))
    assert result.status == 3
    assert "cannot write" in result.errors[0]


def test_usage_errors_say_error_as_every_other(run):
    result = run("-b", "16", "vmlinux")
    assert result.status == 2
    assert result.err.splitlines()[-1] == ("extract_symvers: error: argument -b/--bits: "
                                           "invalid choice: 16 (choose from 32, 64)")


# Options that cannot be combined (the README's list): -d and --config save a file and exit
COMBINATIONS = [("-d", "-o", "-d saves the kernel and exits"),
                ("-d", "--check", "-d saves the kernel and exits"),
                ("-d", "--diff", "-d saves the kernel and exits"),
                ("-d", "--json", "-d saves the kernel and exits"),
                ("--config", "-o", "--config saves the .config and exits"),
                ("--config", "--check", "--config saves the .config and exits"),
                ("--config", "--diff", "--config saves the .config and exits"),
                ("--config", "--json", "--config saves the .config and exits"),
                ("--btf", "-o", "--btf saves the kernel's BTF and exits"),
                ("--btf", "--check", "--btf saves the kernel's BTF and exits"),
                ("--btf", "--diff", "--btf saves the kernel's BTF and exits"),
                ("--btf", "--json", "--btf saves the kernel's BTF and exits"),
                ("-d", "--modules", "-d saves the kernel alone"),
                ("--diff", "KERNEL", "--diff OLD NEW reads both kernels itself"),
                ("--diff", "--modules", "--diff OLD NEW reads both sides' modules itself")]


@pytest.mark.parametrize("one,other,why", COMBINATIONS,
                         ids=["%s %s" % c[:2] for c in COMBINATIONS])
def test_options_that_cannot_be_combined(one, other, why, tmp_path, run, kernels, kernel_file):
    """Each pair: exit 2 naming both, nothing written."""
    image = kernel_file(prel32(kernels))
    (tmp_path / "old.symvers").write_text("0x12345678\tf\tvmlinux\tEXPORT_SYMBOL\t\n")
    given = {"-o": ["-o", tmp_path / "out"], "-d": ["-d", tmp_path / "raw"],
             "--config": ["--config", tmp_path / "config"], "--btf": ["--btf", tmp_path / "btf"],
             "--check": ["--check", image],
             "--diff": ["--diff", tmp_path / "old.symvers", tmp_path / "old.symvers"],
             "--json": ["--json"], "--modules": ["--modules", tmp_path], "KERNEL": [image]}
    args = given[one] + given[other] + ([] if "--diff" in (one, other) else [image])
    result = run(*args)
    assert result.status == 2
    assert result.err.splitlines()[-1] == "extract_symvers: error: %s and %s cannot be " \
                                          "combined: %s" % (one, other, why)
    assert sorted(os.listdir(tmp_path)) == ["old.symvers", "vmlinux"]


def test_help_lists_the_options_that_cannot_be_combined(run):
    text = run("-h").out.split("options that cannot be combined:\n")[1].split("examples:")[0]
    assert [line.split(None, 3) for line in text.splitlines()] == [
        [one, "and", other, why] for one, other, why in COMBINATIONS]


def test_help_lists_every_exit_status(run):
    import extract_symvers
    result = run("-h")
    assert result.status == 0
    statuses = [int(line.split()[0]) for line in result.out.split("exit status:\n")[1]
                .split("examples:")[0].splitlines() if line[:5].strip().isdigit()]
    assert statuses == [status for status, _ in extract_symvers.EXIT_STATUSES]
    assert "-o, -d, --config FILE, stdout" in result.out.replace("\n       ", " ")


def test_the_installed_command_says_its_name(monkeypatch, run):
    """pip install . gives extract-symvers: its usage and --version say so."""
    import extract_symvers
    monkeypatch.setattr("sys.argv", ["/usr/local/bin/extract-symvers"])
    assert run("--version")[:2] == (0, "extract-symvers %s\n" % extract_symvers.__version__)
    assert run("-b", "16", "x").err.startswith("usage: extract-symvers ")


def test_an_input_over_max_size_says_how_to_read_it(tmp_path, run):
    (tmp_path / "dump").write_bytes(bytes(3 << 20))
    result = run("--max-size", "2", tmp_path / "dump")
    assert result.status == 3
    assert result.errors[0].endswith("dump is larger than 2 MiB: give a larger --max-size to "
                                     "read it")
