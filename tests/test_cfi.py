"""Clang's kCFI on one side only: a module built without it on a kernel built with it, or the
reverse, loads, then traps on the first indirect call across (what a real 6.1 kernel said
under QEMU: tests/data/cfi-kernel/README.md).  --check warns of it, for that module only.

The fixtures are modules laid out by kobuild, their machine code the bytes Clang 16 emits
(llvm-objdump of the modules in tests/data/cfi-kernel, and of `clang --target=aarch64-linux-gnu
-fsanitize=kcfi`), as the kernel's arch/x86/include/asm/cfi.h and arch/arm64 draw them."""

import gzip
import json
import lzma
import os
import shutil
import struct
import subprocess

import pytest

import extract_symvers
from kobuild import build_module, era_kernel, era_probe

EM_X86_64, EM_AARCH64 = 62, 183
# Clang 16's type hash of `int (void)`, the init function's type: before init_module in
# both real modules of tests/data/cfi-kernel built with kCFI, and in the kernel's check
INIT_HASH = struct.pack("<I", 0x36B1C5A6)
X86_INIT = bytes.fromhex("31c0 c3")                 # xorl %eax, %eax; ret
X86_PREAMBLE = b"\xb8" + INIT_HASH                  # __cfi_init_module: movl $hash, %eax
# the check before `call *%rax`: movl $-0x5b447521, %r10d (kstrtoint's type); addl -4(%rax),
# %r10d; je 1f; ud2; 1: call *%rax
X86_CHECK = bytes.fromhex("41badf8abba4 440350fc 7402 0f0b ffd0")
A64_INIT = bytes.fromhex("00008052 c0035fd6")       # mov w0, #0; ret
A64_RET = bytes.fromhex("c0035fd6")
A64_NOP = bytes.fromhex("1f2003d5")
# ldur w16, [x8, #-4]; movk w17, #0x7521; movk w17, #0x5b44, lsl #16; cmp w16, w17;
# b.eq 1f; brk #0x8228; 1: blr x8
A64_CHECK = bytes.fromhex("10c15fb8 31a48e72 9168ab72 1f02116b 40000054 004530d4 00013fd6")

WITHOUT = "built without kCFI, the kernel with it"
WITH = "built with kCFI (-fsanitize=kcfi), the kernel without it"
DATA = os.path.join(os.path.dirname(__file__), "data", "cfi-kernel")


def module(code=b"", functions=(), machine=EM_X86_64, section=".init.text", era="6.14",
           **kwargs):
    """A module of `era` whose `section` holds `code`, with `functions` [(name, offset,
    size)]."""
    return era_probe(era, machine=machine, code=[(section, code, functions)], **kwargs)


def kernel(config=None, code=b"", machine=EM_X86_64, era="6.14"):
    """A kernel of `era` (a vmlinux of `machine`; None: a raw image), `code` in it, and its
    embedded .config."""
    image, options = era_kernel(era, machine=machine, code=code)
    if config is not None:
        image += b"IKCFG_ST" + gzip.compress(config.encode(), mtime=0) + b"IKCFG_ED"
    return image, options


MODULES = {
    "x86-64 kCFI": (module(X86_PREAMBLE + X86_INIT, [("__cfi_init_module", 0, 5),
                                                     ("init_module", 5, 3)]), True),
    "x86-64 kCFI, no __cfi_ symbol": (module(X86_PREAMBLE + X86_INIT, [("init_module", 5, 3)]),
                                      True),
    "x86-64 without kCFI": (module(X86_INIT, [("init_module", 0, 3)]), False),
    "x86-64 exit function without kCFI": (module(X86_INIT, [("cleanup_module", 0, 3)],
                                                 section=".exit.text"), False),
    "x86-64 check of an indirect call": (module(X86_CHECK), True),
    "x86-64 check bytes in data": (module(X86_CHECK, section=".rodata"), None),
    "x86-64 __kcfi_traps": (module(extra_sections=[("__kcfi_traps", bytes(4))]), True),
    "x86-64 .kcfi_traps": (module(extra_sections=[(".kcfi_traps", bytes(4))]), True),
    "x86-64 __kcfi_typeid_": (module(absolute=[("__kcfi_typeid_kstrtoint", 0x5B447521)]), True),
    "x86-64 nothing to tell": (module(), None),
    "arm64 kCFI": (module(INIT_HASH + A64_INIT, [("init_module", 4, 8)], EM_AARCH64), True),
    "arm64 without kCFI": (module(A64_INIT, [("init_module", 0, 8)], EM_AARCH64), False),
    "arm64 after a function": (module(A64_RET + A64_INIT, [("helper", 0, 4),
                                                          ("init_module", 4, 8)], EM_AARCH64),
                               False),
    "arm64 after a nop": (module(A64_NOP + A64_INIT, [("init_module", 4, 8)], EM_AARCH64), False),
    "arm64 check of an indirect call": (module(A64_CHECK, machine=EM_AARCH64), True),
    "riscv": (module(INIT_HASH + A64_INIT, [("init_module", 4, 8)], 243), None),
}


@pytest.mark.parametrize("name", MODULES)
def test_module_marks(name):
    """Built with kCFI: True, without: False, cannot tell: None."""
    ko, expected = MODULES[name]
    assert extract_symvers.read_module(ko).kcfi is expected


@pytest.fixture
def check(tmp_path, run, kernel_file):
    """check(module, (image, options), *args): --check probe.ko -> (status, stdout, stderr)."""
    def check(ko, built, *args):
        image, options = built
        (tmp_path / "probe.ko").write_bytes(ko)
        result = run(*options, *args, "--check", tmp_path / "probe.ko", kernel_file(image))
        return tuple(text.replace(str(tmp_path) + "/", "") if isinstance(text, str) else text
                     for text in result[:3])
    return check


WITH_KCFI = MODULES["x86-64 kCFI"][0]
WITHOUT_KCFI = MODULES["x86-64 without kCFI"][0]


def test_kcfi_kernel_module_without(check):
    status, out, err = check(WITHOUT_KCFI, kernel("CONFIG_CFI_CLANG=y\n"))
    assert (status, out) == (0, "probe.ko: loads\n")
    assert "warning: probe.ko: %s (CONFIG_CFI_CLANG=y): it loads, then the kernel's first " \
           "indirect call into it (its init function, from do_one_initcall()) finds no type " \
           "hash before the function: an oops, \"CFI failure at do_one_initcall+...\" (a page " \
           "fault when the function starts the module's memory), insmod killed" % WITHOUT in err
    assert "build it with the kernel's clang and -fsanitize=kcfi" in err


def test_kcfi_kernel_module_with(check):
    status, out, err = check(WITH_KCFI, kernel("CONFIG_CFI_CLANG=y\n"))
    assert (status, out) == (0, "probe.ko: loads\n")
    assert "kCFI" not in err


def test_kernel_without_kcfi_module_with(check):
    status, out, err = check(WITH_KCFI, kernel("# CONFIG_CFI_CLANG is not set\n"))
    assert (status, out) == (0, "probe.ko: loads\n")
    assert "warning: probe.ko: %s (no CONFIG_CFI_CLANG): it loads, then its first indirect " \
           "call into the kernel finds no type hash before the function: its trap (ud2: " \
           "\"invalid opcode\")" % WITH in err
    assert "build it without -fsanitize=kcfi, as the kernel was" in err
    assert "kCFI" not in check(WITHOUT_KCFI, kernel("# CONFIG_CFI_CLANG is not set\n"))[2]


def test_refused_module(check):
    """A module the loader refuses never runs: its refusal only."""
    ko = build_module("6.14", [], versions={}, code=[(".init.text", X86_INIT,
                                                      [("init_module", 0, 3)])],
                      modinfo=["license=GPL", "vermagic=6.14.0-test SMP preempt mod_unload "
                               "modversions "])
    status, out, err = check(ko, kernel("CONFIG_CFI_CLANG=y\n"))
    assert (status, out[:45]) == (7, "probe.ko: refused: version magic '6.14.0-test")
    assert "kCFI" not in err


def test_permissive(check):
    """CONFIG_CFI_PERMISSIVE: the kernel warns, taints, and the call goes on."""
    err = check(WITHOUT_KCFI, kernel("CONFIG_CFI_CLANG=y\nCONFIG_CFI_PERMISSIVE=y\n"))[2]
    assert '"CFI failure at do_one_initcall+...", a warning (CONFIG_CFI_PERMISSIVE=y), the ' \
           'kernel tainted P (6.1 passes __warn() taint 0, TAINT_PROPRIETARY_MODULE), and the ' \
           'call goes on (a page fault and an oops when the function starts the module\'s ' \
           'memory)' in err


def test_renamed_config(check):
    """6.18 renamed CONFIG_CFI_CLANG to CONFIG_CFI."""
    assert "%s (CONFIG_CFI=y)" % WITHOUT in check(WITHOUT_KCFI, kernel("CONFIG_CFI=y\n"))[2]


def test_kernel_marks_without_a_config(check):
    """No .config: a kernel whose code holds kCFI checks was built with it, one without any
    was not; a raw image of no known machine is not judged."""
    assert "%s (kCFI checks in its code)" % WITHOUT in check(WITHOUT_KCFI,
                                                           kernel(code=X86_CHECK))[2]
    assert "%s (no kCFI check in its code)" % WITH in check(WITH_KCFI, kernel())[2]
    assert "kCFI" not in check(WITH_KCFI, kernel(machine=None))[2]
    assert "kCFI" not in check(WITH_KCFI, kernel(code=X86_CHECK))[2]


def test_before_6_1(check):
    """Before 6.1 CONFIG_CFI_CLANG was another scheme (LTO's jump tables): not judged."""
    status, out, err = check(module(X86_INIT, [("init_module", 0, 3)], era="5.12"),
                             kernel("CONFIG_CFI_CLANG=y\n", era="5.12"))
    assert (status, out) == (0, "probe.ko: loads\n")
    assert "kCFI" not in err


def test_arm64(check):
    image = kernel(code=A64_CHECK, machine=EM_AARCH64)
    assert WITHOUT in check(MODULES["arm64 without kCFI"][0], image)[2]
    assert "kCFI" not in check(MODULES["arm64 kCFI"][0], image)[2]
    err = check(MODULES["arm64 kCFI"][0], kernel(machine=EM_AARCH64))[2]
    assert WITH in err and 'its trap (brk: "Unexpected kernel BRK exception at EL1")' in err


def test_json(check):
    status, out, _ = check(WITHOUT_KCFI, kernel("CONFIG_CFI_CLANG=y\n"), "--json")
    verdict, = json.loads(out)["modules"]
    assert verdict["kcfi"] == {"module": False, "kernel": True}
    assert verdict["loads"] and verdict["warnings"][0].startswith(WITHOUT)


# --- The real kernels (tests/data/cfi-kernel) --------------------------------------------

@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """{"kcfi" | "plain": (bzImage, {module name: path})}, decompressed from the data."""
    where = tmp_path_factory.mktemp("cfi-kernel")
    found = {}
    for side in ("kcfi", "plain"):
        (where / side).mkdir()
        files = {}
        for name in sorted(os.listdir(os.path.join(DATA, side))):
            with lzma.open(os.path.join(DATA, side, name)) as f:
                path = where / side / name[:-len(".xz")]
                path.write_bytes(f.read())
            files[path.name[:-len(".ko")] if path.name.endswith(".ko") else path.name] = path
        found[side] = (files.pop("bzImage"), files)
    return found


def bzimage_payload(path):
    """The vmlinux (ELF) a bzImage carries: its xz payload at payload_offset (boot protocol
    2.08) after the setup sectors, as the decompressor finds it."""
    data = path.read_bytes()
    setup = (data[0x1F1] or 4) + 1
    offset, length = struct.unpack_from("<II", data, 0x248)
    start = setup * 512 + offset
    return lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(data[start:start + length])


@pytest.mark.parametrize("side,warned", [
    ("kcfi", {"cfi_nokcfi": WITHOUT, "cfi_nokcfi2": WITHOUT}),
    ("plain", {"cfi_kcfi": WITH})])
def test_real_kernel(real, run, side, warned, tmp_path):
    """Each module against the kernel it was built against: all load, the one built the
    other way is warned of, as the real kernel trapped; with the kernel's .config taken out
    of its image, its code says the same."""
    image, modules = real[side]
    bare = tmp_path / "vmlinux"
    vmlinux = bzimage_payload(image)
    assert vmlinux.count(b"IKCFG_ST") == 1
    bare.write_bytes(vmlinux.replace(b"IKCFG_ST", b"IKCFG_XX"))
    for kernel_path in (image, bare):
        checked = [arg for path in modules.values() for arg in ("--check", path)]
        result = run(*checked, "--json", kernel_path)
        assert result.status == 0, result.err
        verdicts = {os.path.basename(v["path"])[:-len(".ko")]: v
                    for v in json.loads(result.out)["modules"]}
        assert set(verdicts) == set(modules)
        for name, verdict in verdicts.items():
            assert verdict["loads"]
            assert [w[:len(warned.get(name, ""))] for w in verdict["warnings"]] == \
                ([warned[name]] if name in warned else []), (kernel_path, name)
            assert verdict["kcfi"] == {"module": name.startswith("cfi_kcfi"),
                                       "kernel": side == "kcfi"}


@pytest.mark.parametrize("path,expected", [
    ("arm64/kcfi/cfi_kcfi.ko.xz", True), ("arm64/kcfi/cfi_nokcfi.ko.xz", False),
    ("arm64/kcfi/cfi_nokcfi2.ko.xz", False), ("arm64/plain/cfi_kcfi.ko.xz", True),
    ("arm64/plain/cfi_plain.ko.xz", False)])
def test_real_arm64_modules(path, expected):
    """arm64 modules Clang 16 built against 6.1 trees with and without kCFI: no traps'
    section, no __cfi_ symbol; the hash word before init_module, or none (cfi_nokcfi2's word
    before it is the `ret` of the function before)."""
    with lzma.open(os.path.join(DATA, path)) as f:
        assert extract_symvers.read_module(f.read()).kcfi is expected


# What the real kernels said, booted under QEMU with a busybox initramfs (the README's)
BOOT_INIT = """#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
for m in %s; do /bin/busybox insmod /$m.ko; echo "insmod $m: exit $?"; done
/bin/busybox reboot -f
"""
SAID = {"kcfi": ["cfi_kcfi: kstrtoint returned 0, value 42", "insmod cfi_kcfi: exit 0",
                 "CFI failure at do_one_initcall+", "(target: init_module+0x0/",
                 "[cfi_nokcfi2]; expected type: 0x36b1c5a6)", "insmod cfi_nokcfi2: exit 139"],
        "plain": ["cfi_plain: kstrtoint returned 0, value 42", "insmod cfi_plain: exit 0",
                  "invalid opcode: 0000 [#1]", "RIP: 0010:init_module+0x42/0xffb [cfi_kcfi]",
                  "insmod cfi_kcfi: exit 139"]}


@pytest.mark.parametrize("side,order", [("kcfi", ["cfi_kcfi", "cfi_nokcfi2"]),
                                        ("plain", ["cfi_plain", "cfi_kcfi"])])
def test_the_kernel_traps(real, tmp_path, side, order):
    """The kernels themselves under QEMU (TCG): the module built as the kernel loads and
    runs; the other traps on the first indirect call across, as --check warns."""
    from archives import busybox_initramfs
    missing = [t for t in ("qemu-system-x86_64", "busybox", "cpio") if not shutil.which(t)]
    if missing:
        pytest.skip("%s not installed (qemu-system-x86, busybox-static, cpio): the kernel "
                    "cannot be booted" % ", ".join(missing))
    image, modules = real[side]
    busybox_initramfs(tmp_path / "initrd", BOOT_INIT % " ".join(order),
                      [(str(modules[name]), name + ".ko") for name in order])
    result = subprocess.run([shutil.which("qemu-system-x86_64"), "-m", "256", "-nographic",
                             "-no-reboot", "-kernel", str(image), "-initrd",
                             str(tmp_path / "initrd"), "-append", "console=ttyS0 panic=-1"],
                            capture_output=True, text=True, timeout=300)
    console = result.stdout.replace("\r", "")
    for words in SAID[side]:
        assert words in console, console[-3000:]
