"""Module exports (--modules): synthetic .ko objects of every era, width, byte order,
ksymtab form and relocation kind, plain and compressed."""

import gzip
import lzma
import os
import random
import subprocess

import pytest
import zstandard

import extract_symvers
from kernelimage import ERAS, Export, make_exports
from kobuild import build_module, module_tree, symvers_lines

MATRIX = [(era, bits, big, prel32, rela)
          for era in ERAS for bits in (32, 64) for big in (False, True)
          for prel32 in ((False, True) if ERAS[era].prel32 else (False,))
          for rela in ((True, False) if bits == 32 else (True,))]


def ident(case):
    era, bits, big, prel32, rela = case
    return "%s-%d-%s-%s-%s" % (era, bits, "be" if big else "le",
                               "prel32" if prel32 else "abs", "rela" if rela else "rel")


def module_lines(paths):
    """The library's Module.symvers lines of the modules in `paths`."""
    return sorted(extract_symvers.module_symvers(extract_symvers.read_modules(paths)))


@pytest.mark.parametrize("case", MATRIX, ids=[ident(c) for c in MATRIX])
def test_module_layout(case, tmp_path):
    era, bits, big, prel32, rela = case
    exports = make_exports(ERAS[era], count=12, seed=3)
    ko = build_module(era, exports, bits=bits, big=big, prel32=prel32, rela=rela)
    top = module_tree(tmp_path, {"drivers/usb/serial/usbserial.ko": ko})
    assert module_lines([top]) == symvers_lines(era, exports, "drivers/usb/serial/usbserial")


@pytest.mark.parametrize("suffix,compress", [(".ko.xz", lzma.compress), (".ko.gz", gzip.compress),
                                             (".ko.zst", zstandard.compress)])
def test_compressed_modules(suffix, compress, tmp_path):
    exports = make_exports(ERAS["6.14"], count=8, seed=4)
    top = module_tree(tmp_path, {"fs/fat/fat" + suffix: compress(build_module("6.14", exports))})
    assert module_lines([top]) == symvers_lines("6.14", exports, "fs/fat/fat")


def test_vmlinux_then_modules(tmp_path, run, assert_symvers, kernels, kernel_file):
    """python extract_symvers.py --modules /lib/modules/RELEASE vmlinuz > Module.symvers:
    vmlinux's lines, then the modules'."""
    kernel = kernels("6.14", bits=64)
    usb = [Export("usb_serial_register_drivers", 0x1234abcd, "EXPORT_SYMBOL_GPL"),
           Export("usb_stor_suspend", 0x5a5a5a5a, "EXPORT_SYMBOL_GPL", "USB_STORAGE")]
    drm = [Export("drm_dev_alloc", 0xdeadbeef, "EXPORT_SYMBOL"),
           Export("drm_dev_put", 0x0badcafe, "EXPORT_SYMBOL")]
    top = module_tree(tmp_path, {
        "drivers/usb/serial/usbserial.ko.xz": lzma.compress(build_module("6.14", usb)),
        "drivers/gpu/drm/drm.ko.zst": zstandard.compress(build_module("6.14", drm)),
        "drivers/misc/nothing.ko": build_module("6.14", []),
    })
    modules = symvers_lines("6.14", drm, "drivers/gpu/drm/drm") + \
        symvers_lines("6.14", usb, "drivers/usb/serial/usbserial")
    result = run("--modules", top, kernel_file(kernel.data))
    assert_symvers(result, kernel.symvers() + modules)
    assert sorted(result.lines[len(kernel.exports):]) == sorted(modules)


def test_single_module_file(tmp_path):
    exports = make_exports(ERAS["5.10"], count=5, seed=6)
    path = tmp_path / "vendor_driver.ko"
    path.write_bytes(build_module("5.10", exports))
    assert module_lines([str(path)]) == symvers_lines("5.10", exports, "vendor_driver")


def test_broken_module_is_an_error(tmp_path, run, kernels, kernel_file):
    ko = bytearray(build_module("6.14", make_exports(ERAS["6.14"], count=4)))
    ko[0x28:0x30] = b"\xff" * 8                         # section headers far outside
    top = module_tree(tmp_path, {"drivers/broken.ko": bytes(ko)})
    result = run("--modules", top, kernel_file(kernels("6.14", bits=64).data))
    assert result.status == 6
    assert "drivers/broken.ko: section headers outside the file" in result.err


def test_no_modules_found(tmp_path, run, kernels, kernel_file):
    result = run("--modules", tmp_path, kernel_file(kernels("6.14", bits=64).data))
    assert result.status == 3
    assert "no *.ko" in result.errors[0]


def test_mutated_modules_fail_cleanly():
    """Bit flips, truncations and zeroed runs in .ko files: a SymversError, or exports read
    from the file: each the seed's own, or named by a string the mutated file holds (a flip
    in a name); never another exception.  Both outcomes are met, and the exports of a
    module whose tables the mutation missed are the seed's exactly."""
    rng = random.Random(11)
    seeds = [(build_module(era, exports, bits=bits, big=big), exports)
             for era, bits, big, exports in (
                 (era, bits, big, make_exports(ERAS[era], count=6, seed=1))
                 for era, bits, big in (("4.10", 32, True), ("5.10", 64, False),
                                        ("7.2", 64, True)))]
    errors = same = 0
    for case in range(3000):
        seed, exports = rng.choice(seeds)
        data = bytearray(seed)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(data))
            kind = rng.randrange(3)
            if kind == 0:
                data[at] ^= 1 << rng.randrange(8)
            elif kind == 1:
                del data[at:]
                break
            else:
                data[at:at + 8] = bytes(len(data[at:at + 8]))
        try:
            symbols = extract_symvers.read_module(bytes(data)).exports
        except extract_symvers.SymversError:
            errors += 1
            continue
        names = {x.name for x in exports}
        assert all(s.name in names or s.name.encode() + b"\0" in data for s in symbols), case
        same += sorted((s.name, s.crc) for s in symbols) == sorted((x.name, x.crc)
                                                                   for x in exports)
    assert errors > 300 and same > 300, (errors, same)


def oldest_python():
    """An interpreter of the oldest Python the project supports (requires-python), if any."""
    import glob
    import shutil
    for python in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python"))) \
            + [shutil.which("python3.8")]:
        if python and subprocess.run([python, "-c", "import sys; assert sys.version_info[:2] "
                                      "== (3, 8)"], capture_output=True).returncode == 0:
            return python
    return None


def test_runs_on_the_oldest_supported_python(tmp_path, kernels, kernel_file):
    """requires-python >= 3.8: the whole CLI, modules read by the process pool (64+ files)
    and a failing module cancelling the rest, under Python 3.8."""
    python = oldest_python()
    if python is None:
        pytest.skip("no Python 3.8 interpreter on this machine (python3.8, pyenv)")
    kernel = kernels("6.14", bits=64)
    files = {"drivers/m%03d.ko" % i: build_module("6.14", make_exports(ERAS["6.14"], count=4,
                                                                          seed=100 + i))
             for i in range(80)}
    top = module_tree(tmp_path, files)
    result = subprocess.run([python, extract_symvers.__file__, "--modules", top,
                             kernel_file(kernel.data)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == len(kernel.symvers()) + 320
    with open(os.path.join(top, "kernel", "drivers", "m040.ko"), "wb") as f:
        f.write(b"\x7fELF broken")
    result = subprocess.run([python, extract_symvers.__file__, "--modules", top,
                             kernel_file(kernel.data)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 6 and result.stdout == "" and "m040.ko" in result.stderr
