"""Bad input and wrong options: one line on stderr, a distinct exit status, empty stdout."""

import gzip
import io
import os
import random
import struct
import zlib

import pytest

from kernelimage import build
from test_input import COMPRESSORS, STUB, uboot

KERNEL = build("6.14", bits=64)                     # PREL32, as on x86 and arm64
ABSOLUTE = build("6.14", bits=64, prel32=False)     # pointers, as everywhere else
OLD32 = build("4.10", bits=32)


def garbage_names():
    """KERNEL with the first name offsets of every table pointing at nothing valid."""
    data = bytearray(KERNEL.data)
    for at in KERNEL.layout["ksymtab"].values():
        for i in range(3):
            struct.pack_into("<i", data, at + 12 * i + 4, 5)
    return bytes(data)


def gzip_bomb():
    """600 MiB of zeros in a 600 KB gzip stream."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    return STUB + b"".join(z.compress(chunk) for _ in range(600)) + z.flush()


# (case, options, input: bytes to write or a path, exit status, text of the error line)
CASES = [
    ("missing file", ["-B", "c0008000"], "/nonexistent/vmlinuz", 3, "No such file"),
    ("directory", ["-B", "c0008000"], "/", 3, "Is a directory"),
    ("empty file", ["-B", "c0008000"], b"", 3, "input is empty"),
    ("empty device", ["-B", "c0008000"], "/dev/null", 3, "input is empty"),
    ("endless device", ["--max-size", "1", "-B", "c0008000"], "/dev/zero", 3,
     "larger than 1 MiB"),
    ("not a kernel", KERNEL.options, random.Random(5).randbytes(300000), 4,
     "not a kernel: found no kernel banner, no compressed kernel and no kernel image header"),
    ("text file", [], b"This is not a kernel.\n" * 1000, 4, "not a kernel"),
    ("ext4 image", [], bytes(1080) + b"\x53\xef" + bytes(8000), 4,
     "this is an ext2/3/4 filesystem image, not a kernel"),
    ("vendor_boot", [], b"VNDRBOOT" + bytes(4000), 4, "a vendor_boot image holds no kernel"),
    ("wrong base address", ABSOLUTE.options[:3] + ["ffffffff82000000"] + ABSOLUTE.options[4:],
     ABSOLUTE.data, 5, "-B ffffffff82000000"),
    ("wrong pointer size", ["-b", "64", "-B", "c0008000", "-k", "4.10"], OLD32.data, 5,
     "no export tables found"),
    ("wrong endianness", OLD32.options[:-1] + ["be"], OLD32.data, 5, "-e be"),
    ("wrong kernel version", ABSOLUTE.options[:5] + ["4.10"] + ABSOLUTE.options[6:],
     ABSOLUTE.data, 5, "-k 4.10 -p n: check the base address, pointer size, endianness, kernel "
     "version and PREL32 setting; the banner says Linux 6.14: try -k 6.14, or no -k"),
    ("base too wide for 32 bits", ["-b", "32", "-B", "ffffffff81000000", "-k", "6.14"],
     KERNEL.data, 2, "does not fit in 32 bits"),
    ("image at the top of the address space", ["-b", "32", "-B", "fffff000", "-k", "4.10"],
     KERNEL.data, 5, "no export tables found"),
    ("garbage in the tables", KERNEL.options, garbage_names(), 6, "not a valid string"),
    ("truncated gzip", KERNEL.options, STUB + gzip.compress(KERNEL.data)[:3000], 4,
     "gzip payload is truncated"),
    ("corrupt xz", KERNEL.options, STUB + COMPRESSORS["xz"](KERNEL.data)[:200] + bytes(5000), 4,
     "xz payload is corrupt"),
    ("gzip bomb", ["-B", "c0008000"], gzip_bomb(), 4,
     "expands past 512 MiB: refused as a decompression bomb"),
    ("u-boot image of a ramdisk", KERNEL.options, uboot(b"\0" * 100, "none", image_type=3), 4,
     "type 3 is not a kernel"),
    ("u-boot unknown compression", KERNEL.options, uboot(b"\0" * 100, "unknown"), 4,
     "unknown (9) compression is not supported"),
    ("u-boot corrupt lzo", KERNEL.options, uboot(b"\0" * 100, "lzo"), 4, "lzo payload is"),
    ("u-boot truncated", KERNEL.options, uboot(b"\0" * 100, "gzip")[:120], 4,
     "u-boot payload is truncated"),
] + [
    ("%s bomb" % method, ["--max-size", "2"] + KERNEL.options,
     STUB + COMPRESSORS[method](KERNEL.data + bytes(3 << 20)), 4, "payload")
    for method in ("gzip", "xz", "bzip2", "zstd")
]


@pytest.mark.parametrize("case,options,source,status,message", CASES,
                         ids=[c[0] for c in CASES])
def test_error(case, options, source, status, message, fail, kernel_file):
    path = kernel_file(source) if isinstance(source, bytes) else source
    got, err = fail(*options, path)
    assert got == status
    errors = [line for line in err.splitlines() if line.startswith("extract_symvers: error:")]
    assert len(errors) == 1, err
    assert message in errors[0]


@pytest.mark.parametrize("args", [
    ["-b", "16", "-B", "0"], ["-e", "middle", "-B", "0"], ["-k", "six", "-B", "0"],
    ["-B", "zz"], ["-p", "maybe", "-B", "0"], ["--max-size", "x", "-B", "0"],
    ["--max-size", "0"], ["--max-size", "-5"],
])
def test_usage_errors(args, fail, kernel_file):
    status, err = fail(*args, kernel_file(KERNEL.data))
    assert status == 2
    assert "usage:" in err


def test_prel32_tables_do_not_need_the_base(run, kernel_file):
    """PREL32 kernel_symbols are position-independent: a wrong -B still finds them."""
    out = run("-b", "64", "-B", "ffffffff82000000", "-k", "6.14", kernel_file(KERNEL.data))
    assert sorted(out) == sorted(KERNEL.symvers())


def test_unreadable_file(monkeypatch, fail, kernel_file):
    import extract_symvers

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    path = kernel_file(KERNEL.data)
    monkeypatch.setattr(extract_symvers, "open", denied, raising=False)
    status, err = fail("-B", "c0008000", path)
    assert status == 3
    assert "Permission denied" in err


def test_empty_stdin(monkeypatch, fail):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"")))
    status, err = fail("-B", "c0008000", "-")
    assert status == 3


def test_decompress_failure_leaves_nothing(tmp_path, fail, kernel_file):
    target = tmp_path / "out.raw"
    target.write_bytes(b"keep me")
    status, err = fail("-d", target, kernel_file(STUB + gzip.compress(KERNEL.data)[:3000]))
    assert status == 4
    assert target.read_bytes() == b"keep me"
    assert sorted(os.listdir(tmp_path)) == ["out.raw", "vmlinux"]


def test_decompress_into_missing_directory(tmp_path, fail, kernel_file):
    status, err = fail("-d", tmp_path / "no" / "out.raw", kernel_file(KERNEL.data))
    assert status == 3
    assert "cannot write" in err
