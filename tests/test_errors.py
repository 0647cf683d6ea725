"""Bad input and wrong options: one line on stderr, a distinct exit status, empty stdout."""

import gzip
import os
import random
import struct

import pytest

from kernelimage import build
from test_input import STUB, uboot

KERNEL = build("6.14", bits=64)


def error_line(err):
    lines = [line for line in err.splitlines() if line.startswith("extract_symvers: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_missing_file(fail, tmp_path):
    status, err = fail("-B", "c0008000", tmp_path / "nope")
    assert status == 3
    assert "cannot read" in error_line(err) and "No such file" in err


def test_directory(fail, tmp_path):
    status, err = fail("-B", "c0008000", tmp_path)
    assert status == 3


def test_empty_file(fail, kernel_file):
    status, err = fail("-B", "c0008000", kernel_file(b""))
    assert status == 3
    assert "empty" in error_line(err)


def test_not_a_kernel(fail, kernel_file):
    status, err = fail("-b", "64", "-B", "ffffffff81000000", "-k", "6.1",
                       kernel_file(random.Random(5).randbytes(300000)))
    assert status == 5
    assert "no export tables found" in error_line(err)


def test_wrong_base_address(fail, kernel_file):
    kernel = build("6.14", bits=64, prel32=False)       # absolute pointers depend on -B
    status, err = fail("-b", "64", "-B", "ffffffff82000000", "-k", "6.14", "-p", "n",
                       kernel_file(kernel.data))
    assert status == 5
    assert "-B ffffffff82000000" in error_line(err)


def test_prel32_tables_do_not_need_the_base(run, kernel_file):
    """PREL32 kernel_symbols are position-independent: a wrong -B still finds them."""
    out = run("-b", "64", "-B", "ffffffff82000000", "-k", "6.14", kernel_file(KERNEL.data))
    assert sorted(out) == sorted(KERNEL.symvers())


def test_wrong_pointer_size(fail, kernel_file):
    kernel = build("4.10", bits=32)
    status, err = fail("-b", "64", "-B", "c0008000", "-k", "4.10", kernel_file(kernel.data))
    assert status == 5


def test_base_does_not_fit_pointer_size(fail, kernel_file):
    status, err = fail("-b", "32", "-B", "ffffffff81000000", "-k", "6.14",
                       kernel_file(KERNEL.data))
    assert status == 2
    assert "does not fit in 32 bits" in error_line(err)


def test_truncated_gzip(fail, kernel_file):
    vmlinuz = STUB + gzip.compress(KERNEL.data)[:3000]
    status, err = fail(*KERNEL.options, kernel_file(vmlinuz, "vmlinuz"))
    assert status == 4
    assert "truncated" in error_line(err)


def test_uboot_not_a_kernel(fail, kernel_file):
    status, err = fail(*KERNEL.options, kernel_file(uboot(b"\0" * 100, "none", image_type=3)))
    assert status == 4
    assert "type 3 is not a kernel" in error_line(err)


def test_uboot_unsupported_compression(fail, kernel_file):
    status, err = fail(*KERNEL.options, kernel_file(uboot(b"\0" * 100, "lzo")))
    assert status == 4
    assert "lzo compression is not supported" in error_line(err)


def test_uboot_truncated(fail, kernel_file):
    status, err = fail(*KERNEL.options, kernel_file(uboot(b"\0" * 100, "gzip")[:120]))
    assert status == 4


@pytest.mark.parametrize("args", [
    ["-b", "16", "-B", "0"], ["-e", "middle", "-B", "0"], ["-k", "six", "-B", "0"],
    ["-B", "zz"], ["-p", "maybe", "-B", "0"], [],
])
def test_usage_errors(args, fail, kernel_file):
    status, err = fail(*args, kernel_file(KERNEL.data))
    assert status == 2
    assert "usage:" in err


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
    assert "cannot write" in error_line(err)


def test_garbage_names_are_an_error_not_output(fail, kernel_file):
    """A symsearch array whose tables hold garbage: stop, print nothing."""
    data = bytearray(KERNEL.data)
    for t, at in KERNEL.layout["ksymtab"].items():      # scramble every name offset
        for i in range(3):
            struct.pack_into("<i", data, at + 12 * i + 4, 5)
    status, err = fail(*KERNEL.options, kernel_file(bytes(data)))
    assert status == 6
    assert "not a valid string" in error_line(err)


def test_image_reaching_the_top_of_the_address_space(fail, kernel_file):
    status, err = fail("-b", "32", "-B", "fffff000", "-k", "4.10", "-p", "n",
                       kernel_file(KERNEL.data))
    assert status == 5


@pytest.mark.parametrize("method", ["gzip", "xz", "bzip2", "zstd"])
def test_decompression_bomb(method, fail, kernel_file):
    """A payload expanding past --max-size is refused, whatever the compression."""
    from test_input import COMPRESSORS
    bomb = COMPRESSORS[method](KERNEL.data + bytes(3 << 20))
    status, err = fail("--max-size", "2", *KERNEL.options, kernel_file(STUB + bomb))
    assert status == 4
    assert "decompression bomb" in error_line(err) or "corrupt" in error_line(err)


def test_default_bomb_limit(fail, kernel_file):
    """600 MiB of zeros in a 600 KB gzip stream: refused at 512 MiB, nothing printed."""
    import zlib
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    bomb = b"".join(z.compress(chunk) for _ in range(600)) + z.flush()
    status, err = fail("-B", "c0008000", kernel_file(STUB + bomb))
    assert status == 4
    assert "expands past 512 MiB: refused as a decompression bomb" in error_line(err)
