"""Input formats: compressed vmlinuz payloads behind a boot stub, u-boot images, stdin, -d."""

import bz2
import gzip
import io
import lzma
import os
import random
import struct
import zlib

import pytest
import zstandard

from kernelimage import build

KERNEL = build("5.19", bits=64)
STUB = random.Random(3).randbytes(0x2345).replace(b"\x1f\x8b", b"\x1f\x00") \
    .replace(b"\x5d\x00\x00", b"\x5d\x01\x00")      # a decompressor stub without magic numbers
TRAILER = b"\xff" * 100 + b"trailing data after the payload"

COMPRESSORS = {
    "gzip": lambda data: gzip.compress(data, mtime=0),
    "xz": lambda data: lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32),
    "lzma": lambda data: lzma.compress(data, format=lzma.FORMAT_ALONE),
    "bzip2": bz2.compress,
    "zstd": lambda data: zstandard.ZstdCompressor(level=19).compress(data),
}
UBOOT_COMPRESSION = {"none": 0, "gzip": 1, "bzip2": 2, "lzma": 3, "lzo": 4, "lz4": 5, "zstd": 6,
                     "unknown": 9}


def uboot(payload, compression, image_type=2, load=0x80008000):
    """A u-boot legacy image header (include/image.h): 64 big-endian bytes, then the data."""
    header = struct.pack(">IIIIIIIBBBB32s", 0x27051956, 0, 0, len(payload), load, load,
                         zlib.crc32(payload), 5, 2, image_type, UBOOT_COMPRESSION[compression],
                         b"Linux-5.19.0-test")
    header = header[:4] + struct.pack(">I", zlib.crc32(header)) + header[8:]
    return header + payload


@pytest.mark.parametrize("method", COMPRESSORS)
def test_vmlinuz(method, run, kernel_file):
    """A payload behind a boot stub and followed by trailing data, as in a bzImage."""
    vmlinuz = STUB + COMPRESSORS[method](KERNEL.data) + TRAILER
    out = run(*KERNEL.options, kernel_file(vmlinuz, "vmlinuz"))
    assert sorted(out) == sorted(KERNEL.symvers())


def test_arm64_image_gz(run, kernel_file):
    """Image.gz: the gzip stream starts at offset 0."""
    out = run(*KERNEL.options, kernel_file(gzip.compress(KERNEL.data), "Image.gz"))
    assert sorted(out) == sorted(KERNEL.symvers())


def test_first_payload_that_is_a_kernel_wins(run, kernel_file):
    """A small compressed blob (e.g. a built-in firmware or config) before the kernel."""
    other = gzip.compress(b"CONFIG_FOO=y\n" * 10000)
    vmlinuz = STUB + other + STUB + COMPRESSORS["xz"](KERNEL.data)
    out = run(*KERNEL.options, kernel_file(vmlinuz, "vmlinuz"))
    assert sorted(out) == sorted(KERNEL.symvers())


def test_corrupt_candidate_is_skipped(run, kernel_file):
    broken = gzip.compress(KERNEL.data)[:500]
    vmlinuz = STUB + broken + STUB + COMPRESSORS["zstd"](KERNEL.data)
    out = run(*KERNEL.options, kernel_file(vmlinuz, "vmlinuz"))
    assert sorted(out) == sorted(KERNEL.symvers())


@pytest.mark.parametrize("method", ["gzip", "lzma", "bzip2", "zstd"])
def test_uboot_compressed(method, run, kernel_file, capsys):
    image = uboot(COMPRESSORS[method](KERNEL.data), method)
    out = run(*KERNEL.options, kernel_file(image, "uImage"))
    assert sorted(out) == sorted(KERNEL.symvers())


def test_uboot_prints_its_header(kernel_file, capsys):
    import extract_symvers
    path = kernel_file(uboot(gzip.compress(KERNEL.data), "gzip"), "uImage")
    assert extract_symvers.main(KERNEL.options + [path]) == 0
    err = capsys.readouterr().err
    assert "u-boot image: compression 1 (gzip) arch 2 (arm) type 2 load_address 0x80008000" in err
    assert "Linux-5.19.0-test" in err


def test_uboot_uncompressed_keeps_the_header(run, kernel_file):
    """Uncompressed: the file is read as it is, so offset 0 (-B) is the header's address."""
    image = uboot(KERNEL.data, "none")
    base = "%x" % (KERNEL.base - 64)
    out = run("-b", "64", "-B", base, "-k", "5.19", kernel_file(image, "uImage"))
    assert sorted(out) == sorted(KERNEL.symvers())


def test_uboot_uncompressed_vmlinuz_inside(run, kernel_file):
    image = uboot(STUB + gzip.compress(KERNEL.data), "none")
    out = run(*KERNEL.options, kernel_file(image, "uImage"))
    assert sorted(out) == sorted(KERNEL.symvers())


def test_decompress_to_file(tmp_path, run, kernel_file):
    vmlinuz = kernel_file(STUB + COMPRESSORS["xz"](KERNEL.data) + TRAILER, "vmlinuz")
    target = tmp_path / "vmlinux.raw"
    assert run("-d", target, vmlinuz) == []
    assert target.read_bytes() == KERNEL.data
    assert sorted(os.listdir(tmp_path)) == ["vmlinux.raw", "vmlinuz"]


def test_stdin(monkeypatch, run):
    stdin = io.TextIOWrapper(io.BytesIO(gzip.compress(KERNEL.data)))
    monkeypatch.setattr("sys.stdin", stdin)
    out = run(*KERNEL.options, "-")
    assert sorted(out) == sorted(KERNEL.symvers())


DATA = os.path.join(os.path.dirname(__file__), "data")


def data_file(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


@pytest.mark.parametrize("name", ["kernel-5.19.lzo", "kernel-5.19.lz4", "kernel-5.19.frame.lz4"])
def test_lzo_and_lz4_vmlinuz(name, run, kernel_file):
    """Payloads made by lzop and lz4 themselves (tests/data/README.md), behind a boot stub."""
    assert build("5.19", bits=64).data == KERNEL.data       # what tests/data was made from
    out = run(kernel_file(STUB + data_file(name) + TRAILER, "vmlinuz"))
    assert sorted(out) == sorted(KERNEL.symvers())


@pytest.mark.parametrize("with_package", [True, False])
@pytest.mark.parametrize("name,kind", [("compressible.lzo", "lzo"), ("compressible-1.lzo", "lzo"),
                                       ("compressible.lz4", "lz4")])
def test_lzo_and_lz4_decoders(name, kind, with_package, monkeypatch):
    """Every kind of match, with the lz4 package's block decoder and with ours."""
    import sys
    import extract_symvers
    from compressible import compressible
    if not with_package:
        monkeypatch.setitem(sys.modules, "lz4", None)        # import lz4 fails
        monkeypatch.setitem(sys.modules, "lz4.block", None)
    out = extract_symvers.decompress_payload(kind, memoryview(data_file(name)))
    assert out == compressible()


@pytest.mark.parametrize("method,name", [("lz4", "kernel-5.19.lz4"), ("lzo", "kernel-5.19.lzo")])
def test_uboot_lz4_and_lzo(method, name, run, kernel_file):
    out = run(*KERNEL.options, kernel_file(uboot(data_file(name), method), "uImage"))
    assert sorted(out) == sorted(KERNEL.symvers())


def lzma_alone(data, lc, lp, pb, dict_size=1 << 22):
    """An .lzma stream with other properties than kbuild's 0x5d (lc=3, lp=0, pb=2)."""
    return lzma.compress(data, format=lzma.FORMAT_ALONE, filters=[
        {"id": lzma.FILTER_LZMA1, "lc": lc, "lp": lp, "pb": pb, "dict_size": dict_size}])


@pytest.mark.parametrize("lc,lp,pb", [(0, 2, 2), (1, 2, 2), (3, 0, 0), (4, 0, 4)])
def test_lzma_any_properties(lc, lp, pb, run, kernel_file):
    payload = lzma_alone(KERNEL.data, lc, lp, pb)
    assert payload[0] == (pb * 5 + lp) * 9 + lc
    out = run(kernel_file(STUB + payload + TRAILER, "vmlinuz"))
    assert sorted(out) == sorted(KERNEL.symvers())


def test_broadcom_cfe_vmlinux_lz(kernel_file, capsys):
    """CFE's vmlinux.lz: load address, entry point and length (big-endian), then an .lzma
    with properties 0x6d (lc=1, lp=2, pb=2); the load address is tried as -B first."""
    import extract_symvers
    kernel = build("2.6.18", bits=32, big=True, base=0x80020000)
    payload = lzma_alone(kernel.data, 1, 2, 2)
    assert payload[0] == 0x6d
    lz = struct.pack(">III", 0x80020000, 0x80344220, len(payload)) + payload
    assert extract_symvers.main([kernel_file(lz, "vmlinux.lz")]) == 0
    out, err = capsys.readouterr()
    assert sorted(out.splitlines()) == sorted(kernel.symvers())
    assert "Broadcom CFE header: load address 0x80020000, entry point 0x80344220" in err
    assert "trying base 80020000 from the loader header" in err


def test_output_file(tmp_path, run, fail, kernel_file):
    """python extract_symvers.py -o Module.symvers vmlinuz: nothing on stdout, and a failed
    run leaves the file as it was (where `> Module.symvers` would have emptied it)."""
    vmlinuz = kernel_file(STUB + COMPRESSORS["xz"](KERNEL.data), "vmlinuz")
    target = tmp_path / "Module.symvers"
    assert run("-o", target, vmlinuz) == []
    assert sorted(target.read_text().splitlines()) == sorted(KERNEL.symvers())
    status, err = fail("-o", target, kernel_file(b"not a kernel" * 100, "junk"))
    assert sorted(target.read_text().splitlines()) == sorted(KERNEL.symvers())
    assert sorted(os.listdir(tmp_path)) == ["Module.symvers", "junk", "vmlinuz"]


def test_version(capsys):
    import extract_symvers
    with pytest.raises(SystemExit) as e:
        extract_symvers.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == "extract_symvers.py %s\n" % extract_symvers.__version__


@pytest.mark.parametrize("magic", [b"6.1.0-50-amd64 SMP preempt mod_unload modversions ",
                                   b"4.14.67 SMP mod_unload modversions aarch64",
                                   b"2.6.12.1 ARMv4 gcc-3.3"])
def test_vermagic(magic):
    """The loader's vermagic[]: the banner's release, then space-separated words."""
    import extract_symvers
    release = magic.split(b" ")[0]
    image = (b"\0" * 64 + b"Linux version " + release + b" (builder@host) (gcc 12) #1 SMP\n\0"
             + release + b"\0" + magic + b"\0" + b"\0" * 64)
    assert extract_symvers.vermagic(image) == magic.decode()
    assert extract_symvers.vermagic(image.replace(magic, b"x" * len(magic))) is None


def test_vermagic_is_printed(capsys, kernel_file):
    import extract_symvers
    magic = b"5.19.0-test SMP preempt mod_unload modversions "
    assert extract_symvers.main([kernel_file(KERNEL.data + b"\0" + magic + b"\0")]) == 0
    assert "vermagic: %s\n" % magic.decode() in capsys.readouterr().err
    assert extract_symvers.main([kernel_file(KERNEL.data)]) == 0
    assert "vermagic: not found\n" in capsys.readouterr().err


def test_embedded_config(tmp_path, run, fail, kernel_file):
    """--config FILE: kernel/configs.c's gzip stream between IKCFG_ST and IKCFG_ED."""
    config = b"#\n# Automatically generated file; DO NOT EDIT.\n#\nCONFIG_IKCONFIG=y\n" * 50
    image = KERNEL.data + b"IKCFG_ST" + gzip.compress(config, mtime=0) + b"IKCFG_ED" + b"\0" * 64
    target = tmp_path / "config"
    assert run("--config", target, kernel_file(image)) == []
    assert target.read_bytes() == config
    status, err = fail("--config", tmp_path / "none", kernel_file(KERNEL.data))
    assert status == 5 and "no embedded .config" in err
    assert not (tmp_path / "none").exists()


class StdlibZstdDecompressor:
    """Python 3.14's compression.zstd.ZstdDecompressor as this tool uses it (one frame;
    decompress(data, max_length) keeping the rest; eof, needs_input), over zstandard: for
    interpreters before 3.14."""

    def __init__(self):
        self._inner = zstandard.ZstdDecompressor().decompressobj()
        self._pending, self.eof, self.needs_input = b"", False, True

    def decompress(self, data, max_length=-1):
        if data:
            self._pending += self._inner.decompress(bytes(data))
        size = len(self._pending) if max_length < 0 else max_length
        out, self._pending = self._pending[:size], self._pending[size:]
        self.needs_input = not self._pending
        self.eof = self._inner.eof and not self._pending
        return out


def test_zstd_without_zstandard(monkeypatch, run, fail, kernel_file):
    """Without the zstandard package: compression.zstd (Python 3.14+), else a clear error."""
    import sys
    import types
    payload = kernel_file(STUB + zstandard.compress(KERNEL.data) + TRAILER)
    monkeypatch.setitem(sys.modules, "zstandard", None)            # import fails
    import importlib
    try:
        importlib.import_module("compression.zstd")     # Python 3.14: the real one
    except ImportError:
        stdlib = types.ModuleType("compression.zstd")
        stdlib.ZstdDecompressor = StdlibZstdDecompressor
        package = types.ModuleType("compression")
        package.zstd = stdlib
        monkeypatch.setitem(sys.modules, "compression", package)
        monkeypatch.setitem(sys.modules, "compression.zstd", stdlib)
    assert sorted(run(*KERNEL.options, payload)) == sorted(KERNEL.symvers())
    monkeypatch.setitem(sys.modules, "compression.zstd", None)
    monkeypatch.setitem(sys.modules, "compression", None)
    status, err = fail(*KERNEL.options, payload)     # the banner is a literal in the frame
    assert "warning: zstd at %#x: zstd payload needs the zstandard package (pip install " \
           "zstandard) or Python 3.14+" % len(STUB) in err
