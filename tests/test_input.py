"""Input formats: compressed vmlinuz payloads behind a boot stub, u-boot images, stdin, -d,
-o, --config, the kernel's vermagic."""

import gzip
import importlib
import io
import lzma
import os
import struct
import sys
import types

import pytest
import zstandard

import extract_symvers
from archives import uboot
from compressible import compressible
from formats import COMPRESSORS, STUB, vmlinuz
from kernelimage import build

DATA = os.path.join(os.path.dirname(__file__), "data")


@pytest.fixture(scope="module")
def kernel():
    """The kernel tests/data was made from (tests/data/README.md)."""
    return build("5.19", bits=64)


def data_file(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


@pytest.mark.parametrize("method", COMPRESSORS)
def test_vmlinuz(method, kernel, run, assert_symvers, kernel_file):
    """A payload behind a boot stub and followed by trailing data, as in a bzImage."""
    path = kernel_file(vmlinuz(COMPRESSORS[method](kernel.data)), "vmlinuz")
    assert_symvers(run(*kernel.options, path), kernel)


def test_arm64_image_gz(kernel, run, assert_symvers, kernel_file):
    """Image.gz: the gzip stream starts at offset 0."""
    path = kernel_file(gzip.compress(kernel.data), "Image.gz")
    assert_symvers(run(*kernel.options, path), kernel)


def test_first_payload_that_is_a_kernel_wins(kernel, run, assert_symvers, kernel_file):
    """A small compressed blob (e.g. a built-in firmware or config) before the kernel."""
    other = gzip.compress(b"CONFIG_FOO=y\n" * 10000)
    path = kernel_file(STUB + other + STUB + COMPRESSORS["xz"](kernel.data), "vmlinuz")
    assert_symvers(run(*kernel.options, path), kernel)


def test_corrupt_candidate_is_skipped(kernel, run, assert_symvers, kernel_file):
    broken = gzip.compress(kernel.data)[:500]
    path = kernel_file(STUB + broken + STUB + COMPRESSORS["zstd"](kernel.data), "vmlinuz")
    assert_symvers(run(*kernel.options, path), kernel)


@pytest.mark.parametrize("method", ["gzip", "lzma", "bzip2", "zstd"])
def test_uboot_compressed(method, kernel, run, assert_symvers, kernel_file):
    path = kernel_file(uboot(COMPRESSORS[method](kernel.data), method), "uImage")
    assert_symvers(run(*kernel.options, path), kernel)


def test_uboot_prints_its_header(kernel, run, kernel_file):
    result = run(*kernel.options, kernel_file(uboot(gzip.compress(kernel.data), "gzip"),
                                              "uImage"))
    assert result.status == 0
    assert "u-boot image: compression 1 (gzip) arch 2 (arm) type 2 load_address 0x80008000" \
        in result.err
    assert "Linux-5.19.0-test" in result.err


def test_uboot_uncompressed_keeps_the_header(kernel, run, assert_symvers, kernel_file):
    """Uncompressed: the file is read as it is, so offset 0 (-B) is the header's address."""
    base = "%x" % (kernel.base - 64)
    assert_symvers(run("-b", "64", "-B", base, "-k", "5.19",
                       kernel_file(uboot(kernel.data, "none"), "uImage")), kernel)


def test_uboot_uncompressed_vmlinuz_inside(kernel, run, assert_symvers, kernel_file):
    path = kernel_file(uboot(STUB + gzip.compress(kernel.data), "none"), "uImage")
    assert_symvers(run(*kernel.options, path), kernel)


def test_decompress_to_file(kernel, tmp_path, run, kernel_file):
    """python extract_symvers.py -d vmlinux.raw vmlinuz: the image, and nothing else."""
    path = kernel_file(vmlinuz(COMPRESSORS["xz"](kernel.data)), "vmlinuz")
    target = tmp_path / "vmlinux.raw"
    assert run("-d", target, path)[:2] == (0, "")
    assert target.read_bytes() == kernel.data
    assert sorted(os.listdir(tmp_path)) == ["vmlinux.raw", "vmlinuz"]


def test_decompress_and_config_both_saved(kernel, tmp_path, run, kernel_file):
    """-d vmlinux.raw --config config vmlinuz: each saved."""
    config = b"CONFIG_IKCONFIG=y\n" * 50
    image = kernel.data + b"IKCFG_ST" + gzip.compress(config, mtime=0) + b"IKCFG_ED" + bytes(64)
    path = kernel_file(vmlinuz(COMPRESSORS["xz"](image)), "vmlinuz")
    result = run("-d", tmp_path / "vmlinux.raw", "--config", tmp_path / "config", path)
    assert result[:2] == (0, "")
    assert (tmp_path / "vmlinux.raw").read_bytes() == image
    assert (tmp_path / "config").read_bytes() == config


def test_decompress_and_config_to_one_file(kernel, tmp_path, run, kernel_file):
    result = run("-d", tmp_path / "out", "--config", tmp_path / "out", kernel_file(kernel.data))
    assert result.status == 2
    assert result.errors == ["extract_symvers: error: -d {0} and --config {0} are the same file: "
                             "give two".format(tmp_path / "out")]


def test_neither_saved_when_one_fails(kernel, tmp_path, run, kernel_file):
    """-d with --config of a kernel without one: the error, and no file."""
    result = run("-d", tmp_path / "vmlinux.raw", "--config", tmp_path / "config",
                 kernel_file(kernel.data))
    assert result.status == 5 and "no embedded .config" in result.errors[0]
    assert sorted(os.listdir(tmp_path)) == ["vmlinux"]


def test_stdin(kernel, monkeypatch, run, assert_symvers):
    """zcat vmlinuz.gz | python extract_symvers.py -"""
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(gzip.compress(kernel.data))))
    assert_symvers(run(*kernel.options, "-"), kernel)


@pytest.mark.parametrize("name", ["kernel-5.19.lzo", "kernel-5.19.lz4", "kernel-5.19.frame.lz4"])
def test_lzo_and_lz4_vmlinuz(name, kernel, run, assert_symvers, kernel_file):
    """Payloads made by lzop and lz4 themselves (tests/data/README.md), behind a boot stub."""
    assert_symvers(run(kernel_file(vmlinuz(data_file(name)), "vmlinuz")), kernel)


@pytest.mark.parametrize("with_package", [True, False])
@pytest.mark.parametrize("name,kind", [("compressible.lzo", "lzo"), ("compressible-1.lzo", "lzo"),
                                       ("compressible.lz4", "lz4")])
def test_lzo_and_lz4_decoders(name, kind, with_package, monkeypatch):
    """Every kind of match, with the lz4 package's block decoder and with ours."""
    if not with_package:
        monkeypatch.setitem(sys.modules, "lz4", None)        # import lz4 fails
        monkeypatch.setitem(sys.modules, "lz4.block", None)
    assert extract_symvers.decompress_payload(kind, memoryview(data_file(name))) == \
        compressible()


@pytest.mark.parametrize("method,name", [("lz4", "kernel-5.19.lz4"), ("lzo", "kernel-5.19.lzo")])
def test_uboot_lz4_and_lzo(method, name, kernel, run, assert_symvers, kernel_file):
    path = kernel_file(uboot(data_file(name), method), "uImage")
    assert_symvers(run(*kernel.options, path), kernel)


def lzma_alone(data, lc, lp, pb, dict_size=1 << 22):
    """An .lzma stream with other properties than kbuild's 0x5d (lc=3, lp=0, pb=2)."""
    return lzma.compress(data, format=lzma.FORMAT_ALONE, filters=[
        {"id": lzma.FILTER_LZMA1, "lc": lc, "lp": lp, "pb": pb, "dict_size": dict_size}])


@pytest.mark.parametrize("lc,lp,pb", [(0, 2, 2), (1, 2, 2), (3, 0, 0), (4, 0, 4)])
def test_lzma_any_properties(lc, lp, pb, kernel, run, assert_symvers, kernel_file):
    payload = lzma_alone(kernel.data, lc, lp, pb)
    assert payload[0] == (pb * 5 + lp) * 9 + lc
    assert_symvers(run(kernel_file(vmlinuz(payload), "vmlinuz")), kernel)


def test_broadcom_cfe_vmlinux_lz(run, assert_symvers, kernel_file):
    """CFE's vmlinux.lz: load address, entry point and length (big-endian), then an .lzma
    with properties 0x6d (lc=1, lp=2, pb=2); the load address is tried as -B first."""
    cfe = build("2.6.18", bits=32, big=True, base=0x80020000)
    payload = lzma_alone(cfe.data, 1, 2, 2)
    assert payload[0] == 0x6d
    lz = struct.pack(">III", 0x80020000, 0x80344220, len(payload)) + payload
    result = run(kernel_file(lz, "vmlinux.lz"))
    assert_symvers(result, cfe)
    assert "Broadcom CFE header: load address 0x80020000, entry point 0x80344220" in result.err
    assert "detected options: -B 80020000 -b 32 -e be -k 2.6.18 -p n" in result.err


def test_output_file(kernel, tmp_path, run, assert_symvers, kernel_file):
    """python extract_symvers.py -o Module.symvers vmlinuz: nothing on stdout, and a failed
    run leaves the file as it was (where `> Module.symvers` would have emptied it)."""
    path = kernel_file(vmlinuz(COMPRESSORS["xz"](kernel.data)), "vmlinuz")
    target = tmp_path / "Module.symvers"
    assert run("-o", target, path)[:2] == (0, "")
    assert sorted(target.read_text().splitlines()) == sorted(kernel.symvers())
    assert run("-o", target, kernel_file(b"not a kernel" * 100, "junk")).status == 4
    assert sorted(target.read_text().splitlines()) == sorted(kernel.symvers())
    assert sorted(os.listdir(tmp_path)) == ["Module.symvers", "junk", "vmlinuz"]


def test_version(run):
    assert run("--version")[:2] == (0, "extract_symvers.py %s\n" % extract_symvers.__version__)


@pytest.mark.parametrize("magic", [b"6.1.0-50-amd64 SMP preempt mod_unload modversions ",
                                   b"4.14.67 SMP mod_unload modversions aarch64",
                                   b"2.6.12.1 ARMv4 gcc-3.3"])
def test_vermagic(magic):
    """The loader's vermagic[]: the banner's release, then space-separated words."""
    release = magic.split(b" ")[0]
    image = (b"\0" * 64 + b"Linux version " + release + b" (builder@host) (gcc 12) #1 SMP\n\0"
             + release + b"\0" + magic + b"\0" + b"\0" * 64)
    assert extract_symvers.vermagic(image) == magic.decode()
    assert extract_symvers.vermagic(image.replace(magic, b"x" * len(magic))) is None


def test_vermagic_not_the_setup_codes_kernel_version():
    """A dump of low memory holds x86's setup code, whose kernel_version is the release, a
    space and "(builder@host) #1 SMP ...": not the vermagic the loader compares."""
    release = b"6.1.0-50-amd64"
    magic = release + b" SMP preempt mod_unload modversions "
    image = (b"\0" + release + b" (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC "
             b"Debian 6.1.176-1 (2026-07-02)\0" + b"Linux version " + release +
             b" (builder@host) (gcc 12) #1 SMP\n\0" + magic + b"\0")
    assert extract_symvers.vermagic(image) == magic.decode()


def test_vermagic_is_printed(kernel, run, kernel_file):
    magic = b"5.19.0-test SMP preempt mod_unload modversions "
    assert "vermagic: %s\n" % magic.decode() in \
        run(kernel_file(kernel.data + b"\0" + magic + b"\0")).err
    assert "vermagic: not found\n" in run(kernel_file(kernel.data)).err


def test_embedded_config(kernel, tmp_path, run, kernel_file):
    """--config FILE: kernel/configs.c's gzip stream between IKCFG_ST and IKCFG_ED."""
    config = b"#\n# Automatically generated file; DO NOT EDIT.\n#\nCONFIG_IKCONFIG=y\n" * 50
    image = kernel.data + b"IKCFG_ST" + gzip.compress(config, mtime=0) + b"IKCFG_ED" + bytes(64)
    target = tmp_path / "config"
    assert run("--config", target, kernel_file(image))[:2] == (0, "")
    assert target.read_bytes() == config
    result = run("--config", tmp_path / "none", kernel_file(kernel.data))
    assert result.status == 5 and "no embedded .config" in result.errors[0]
    assert not (tmp_path / "none").exists()


class StdlibZstdError(Exception):
    """compression.zstd.ZstdError: an Exception, not a ValueError."""


class StdlibZstdDecompressor:
    """Python 3.14's compression.zstd.ZstdDecompressor as this tool uses it (one frame;
    decompress(data, max_length) keeping the rest; eof, needs_input; ZstdError on what it
    cannot decode), over zstandard: for interpreters before 3.14."""

    def __init__(self):
        self._inner = zstandard.ZstdDecompressor().decompressobj()
        self._pending, self.eof, self.needs_input = b"", False, True

    def decompress(self, data, max_length=-1):
        if data:
            try:
                self._pending += self._inner.decompress(bytes(data))
            except zstandard.ZstdError as e:
                raise StdlibZstdError(e) from None
        size = len(self._pending) if max_length < 0 else max_length
        out, self._pending = self._pending[:size], self._pending[size:]
        self.needs_input = not self._pending
        self.eof = self._inner.eof and not self._pending
        return out


def without_zstandard(monkeypatch):
    """No zstandard package: Python 3.14's compression.zstd, else the stand-in above."""
    monkeypatch.setitem(sys.modules, "zstandard", None)            # import fails
    try:
        importlib.import_module("compression.zstd")     # Python 3.14: the real one
    except ImportError:
        stdlib = types.ModuleType("compression.zstd")
        stdlib.ZstdDecompressor, stdlib.ZstdError = StdlibZstdDecompressor, StdlibZstdError
        package = types.ModuleType("compression")
        package.zstd = stdlib
        monkeypatch.setitem(sys.modules, "compression", package)
        monkeypatch.setitem(sys.modules, "compression.zstd", stdlib)


def test_zstd_without_zstandard(kernel, monkeypatch, run, assert_symvers, kernel_file):
    """Without the zstandard package: compression.zstd (Python 3.14+), else a clear error."""
    payload = kernel_file(vmlinuz(zstandard.compress(kernel.data)))
    without_zstandard(monkeypatch)
    assert_symvers(run(*kernel.options, payload), kernel)
    monkeypatch.setitem(sys.modules, "compression.zstd", None)
    monkeypatch.setitem(sys.modules, "compression", None)
    result = run(*kernel.options, payload)     # the banner is a literal in the frame
    assert result.status == 5
    assert "warning: zstd at %#x: zstd payload needs the zstandard package (pip install " \
           "zstandard) or Python 3.14+" % len(STUB) in result.err


def test_zstd_chance_magic_without_zstandard(kernel, monkeypatch, run, assert_symvers,
                                             kernel_file):
    """compression.zstd's ZstdError on a chance zstd magic in the boot code (here a frame
    header with the reserved bit of its descriptor set: RFC 8878 3.1.1.1.1.5) is a failed
    probe, not an internal error: the real frame after it decodes (s390x 7.2's vmlinuz)."""
    chance = b"\x28\xb5\x2f\xfd\x08" + bytes(32)
    payload = kernel_file(vmlinuz(chance + zstandard.compress(kernel.data)))
    without_zstandard(monkeypatch)
    assert_symvers(run(*kernel.options, payload), kernel)


def test_a_missing_package_is_said_once(kernel, monkeypatch, run, kernel_file):
    """A zstd kernel (its banner not a literal in the frame) without any zstd decoder: the
    error says the package is missing, and nothing says it before."""
    payload = zstandard.compress(kernel.data.replace(b"Linux version", b"Linux VERSION"))
    path = kernel_file(vmlinuz(payload))
    for name in ("zstandard", "compression", "compression.zstd"):
        monkeypatch.setitem(sys.modules, name, None)
    result = run("-k", "6.14", path)
    assert result.status == 4
    assert result.err == ("extract_symvers: error: no payload decompressed to a kernel (zstd at "
                          "%#x: zstd payload needs the zstandard package (pip install zstandard) "
                          "or Python 3.14+)\n" % len(STUB))
