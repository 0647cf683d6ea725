"""Android's protected symbols (CONFIG_MODULE_SIG_PROTECT): the two lists the generator of
the Android common kernel writes into gki_module.c, found in the image by their shape, and
the loader's rule on a module the kernel cannot verify.  Fixture kernels hold the arrays as
tests/kernelimage.gki_arrays() lays out the generator's output; modules are kobuild's."""

import gzip
import json
import lzma
import os
import shutil
import subprocess

import pytest

from archives import busybox_initramfs
from extract_symvers import gki_lists
from kernelimage import ERAS, GPL, PLAIN, Export, build, gki_arrays, make_exports
from kobuild import build_module, module_tree, sign, with_certificates

ERA = "5.19"        # the export tables of 5.19 to 7.0
VMLINUX = [Export("module_layout", 0x1234ABCD, PLAIN), Export("_printk", 0x11111111, PLAIN),
           Export("kstrtouint", 0x22222222, PLAIN), Export("kfree", 0x33333333, PLAIN)]
# libarc4, a GKI module (system_dlkm): its exports are protected, one of them is in the KMI
LIBARC4 = [Export("arc4_crypt", 0x44444444, GPL), Export("arc4_setkey", 0x55555555, GPL)]
CRC = {x.name: x.crc for x in VMLINUX + LIBARC4}
PROTECTED_EXPORTS = "arc4_crypt\narc4_setkey\n"
# android/abi_gki_aarch64*-like: the symbols vendor modules use (kstrtouint is not one)
KMI = "[abi_symbol_list]\n# core\n  _printk\n  kfree\n  module_layout\n" \
      "# libarc4\n  arc4_setkey\n"


def magic(release):
    return "%s SMP preempt mod_unload modversions aarch64" % release


def kernel(release="6.1.25-android14-11-g1234567", kmi=KMI, protected=PROTECTED_EXPORTS,
           config="CONFIG_MODULE_SIG=y\nCONFIG_MODULE_SIG_PROTECT=y\n", key=None):
    """An image of `release` exporting VMLINUX and 30 more (all in the KMI list), with
    gki_module.c's arrays generated from `protected` and `kmi`, its .config, and `key`'s
    certificate built in."""
    more = make_exports(ERAS[ERA], count=30, seed=3)
    kmi += "".join("  %s\n" % x.name for x in more) if kmi else ""
    image = build(ERA, exports=VMLINUX + more, release=release).data
    image += bytes(-len(image) % 64) + gki_arrays(protected, kmi) + bytes(64)
    if config is not None:
        image += b"IKCFG_ST" + gzip.compress(config.encode(), mtime=0) + b"IKCFG_ED"
    image += b"\0" + magic(release).encode() + b"\0" + b"\0" * 64
    return with_certificates(image, [key.certificate]) if key else image


def module(name, release, exports=(), uses=(), key=None):
    """A module `name` of `release`'s build exporting `exports`, using `uses`, signed by
    `key` (None: unsigned)."""
    ko = build_module(ERA, list(exports), imports=list(uses),
                      versions={n: CRC[n] for n in ["module_layout"] + list(uses)},
                      modinfo=["license=GPL", "vermagic=" + magic(release), "name=" + name])
    return sign(ko, key) if key else ko


@pytest.fixture
def check(tmp_path, run, kernel_file, build_key):
    """check(module, release=6.1's, libarc4_signed=True, image=None, *args): --check of the
    module beside libarc4 (--modules; signed by the build's key) -> (status, stdout,
    stderr); the kernel holds the build's key."""
    def check(ko, release="6.1.25-android14-11-g1234567", libarc4_signed=True, image=None,
              *args):
        tree = module_tree(tmp_path / "tree", {"lib/libarc4.ko": module(
            "libarc4", release, exports=LIBARC4, key=libarc4_signed and build_key)}, release)
        (tmp_path / "probe.ko").write_bytes(ko)
        result = run(*args, "--modules", tree, "--check", tmp_path / "probe.ko",
                     kernel_file(image or kernel(release, key=build_key)))
        return result.status, result.out.replace(str(tmp_path) + "/", ""), result.err
    return check


RELEASE = "6.1.25-android14-11-g1234567"
DENIED = "EACCES: insmod says Permission denied"


def test_unsigned_module_exporting_a_protected_symbol_is_refused(check):
    ko = module("exports_protected", RELEASE, exports=[Export("arc4_crypt", 1, GPL)])
    assert check(ko)[:2] == (7, "probe.ko: refused: exports protected symbol arc4_crypt (an "
                                "export of a signed GKI module; this module is not signed by "
                                "a key the kernel holds; %s)\n" % DENIED)


def test_signed_module_may_export_it(check, build_key):
    ko = module("exports_protected", RELEASE, exports=[Export("arc4_crypt", 1, GPL)],
                key=build_key)
    status, out, _ = check(ko)
    assert "protected" not in out      # a duplicate of libarc4's, as without the protection
    assert out == "probe.ko: refused: exports duplicate symbol arc4_crypt (owned by " \
                  "lib/libarc4)\n"


def test_unsigned_module_using_a_signed_modules_export_outside_the_kmi(check):
    ko = module("uses_protected", RELEASE, uses=["arc4_crypt"])
    assert check(ko)[:2] == (7, "probe.ko: refused: Protected symbol: arc4_crypt (err -13) "
                                "(not in the kernel's KMI list; exported by lib/libarc4, signed; "
                                "%s)\n" % DENIED)


def test_the_same_symbol_of_an_unsigned_module_is_free(check):
    ko = module("uses_protected", RELEASE, uses=["arc4_crypt"])
    assert check(ko, RELEASE, False)[:2] == (0, "probe.ko: loads after libarc4\n")


def test_kmi_symbols_load(check):
    ko = module("uses_kmi", RELEASE, uses=["_printk", "arc4_setkey"])
    status, out, err = check(ko)
    assert (status, out) == (0, "probe.ko: loads after libarc4\n")
    assert "CONFIG_MODULE_SIG_PROTECT: 2 protected exports, a KMI list of 34 symbols" in err


def test_signed_module_uses_anything(check, build_key):
    ko = module("uses_protected", RELEASE, uses=["arc4_crypt", "kstrtouint"], key=build_key)
    assert check(ko)[:2] == (0, "probe.ko: loads after libarc4\n")


def test_vmlinux_outside_the_kmi_by_release(check):
    """android13-5.15 and android14-6.1 guard the signed modules' exports only;
    android15-6.6 on, vmlinux's too."""
    for release, said in (("5.15.94-android13-8-g89abcde", None),
                          (RELEASE, None),
                          ("6.6.50-android15-8-g89abcde", "refused"),
                          ("6.12.23-android16-5-g89abcde", "refused")):
        ko = module("uses_core", release, uses=["kstrtouint"])
        assert check(ko, release)[:2] == ((7, "probe.ko: refused: Protected symbol: kstrtouint "
                                              "(err -13) (not in the kernel's KMI list; "
                                              "exported by vmlinux; %s)\n" % DENIED)
                                          if said else (0, "probe.ko: loads\n")), release


def test_json_carries_the_findings(check):
    ko = module("uses_protected", RELEASE, uses=["arc4_crypt"])
    status, out, _ = check(ko, RELEASE, True, None, "--json")
    document = json.loads(out)
    found = document["modules"][0]["protected_symbols"]
    assert (status, found) == (7, [{"symbol": "arc4_crypt", "exports": False,
                                    "owner": "lib/libarc4", "error": -13,
                                    "said": "Protected symbol: arc4_crypt (err -13)"}])
    kernel_said = document["kernel"]
    assert (kernel_said["protected_exports"], kernel_said["kmi_symbols"],
            kernel_said["signatures_enforced"]) == (["arc4_crypt", "arc4_setkey"], 34, False)


def test_without_a_kmi_list_nothing_is_protected(check):
    ko = module("exports_protected", RELEASE, exports=[Export("arc4_crypt", 1, GPL)],
                uses=["arc4_crypt"])
    image = kernel(kmi="", protected=PROTECTED_EXPORTS)
    status, out, err = check(ko, RELEASE, True, image)
    assert "protected" not in out.lower()
    assert "CONFIG_MODULE_SIG_PROTECT=y without a KMI list in the kernel (built without " \
           "one): nothing is protected" in err


def test_not_looked_for_when_the_config_says_off(check):
    ko = module("uses_protected", RELEASE, uses=["arc4_crypt"])
    image = kernel(config="CONFIG_MODULE_SIG=y\n# CONFIG_MODULE_SIG_PROTECT is not set\n")
    assert check(ko, RELEASE, True, image, "--cmdline", "")[:2] == (
        0, "probe.ko: loads after libarc4, tainting: module verification failed: signature "
           "and/or required key missing - tainting kernel\n")


def test_a_release_before_the_rules_read_is_said(check):
    release = "5.10.198-android13-4-g89abcde"
    ko = module("uses_kmi", release, uses=["_printk"])
    status, out, err = check(ko, release)
    assert (status, out) == (0, "probe.ko: loads\n")
    assert "the loader of 5.10 was not read: 5.15's rule on what a module not signed may use " \
           "is applied (android13-5.15's kernel/module.c" in err


# --- the lists' shape, as gki_lists() finds them ---

NAMES = ["kfree", "kmalloc", "_printk", "module_layout"] + ["sym_%02d" % i for i in range(20)]
EXPORTED = set(NAMES)


def test_lists_found_in_either_order():
    kmi, protected = "\n".join(NAMES), "arc4_crypt\narc4_setkey"
    for image in (bytes(100) + gki_arrays(protected, kmi) + bytes(100),
                  bytes(100) + gki_arrays(kmi, protected) + bytes(100)):
        lists = gki_lists(image, EXPORTED)
        assert lists.unprotected == set(NAMES)
        assert lists.protected_exports == {"arc4_crypt", "arc4_setkey"}


def test_one_protected_export():
    lists = gki_lists(bytes(64) + gki_arrays("rfkill_alloc", "\n".join(NAMES)), EXPORTED)
    assert lists.protected_exports == {"rfkill_alloc"}


def test_not_the_generators_shape():
    """Rows one byte wider than the longest name + 1, rows out of order, a string pool of
    single NULs (as __ksymtab_strings): none is a KMI table."""
    names = sorted(n.encode() for n in NAMES)
    width = max(map(len, names)) + 2
    wide = b"".join(name.ljust(width, b"\0") for name in names)
    unsorted = b"".join(name.ljust(width - 1, b"\0") for name in reversed(names))
    pool = b"\0".join(names) + b"\0"
    for data in (wide, unsorted, pool):
        assert gki_lists(bytes(64) + data + bytes(64), EXPORTED) is None


def test_a_table_not_of_exports_is_not_the_kmi():
    others = "\n".join("name_%02d" % i for i in range(24))
    assert gki_lists(bytes(64) + gki_arrays(others) + bytes(64), EXPORTED) is None


# --- a real kernel with the Android common kernel's protection (tests/data/gki-kernel) ---

GKI_KERNEL = os.path.join(os.path.dirname(__file__), "data", "gki-kernel")
# what the kernel said of each module under QEMU (README.md there): (insmod, dmesg)
SAID = {"signed_exports": ("loaded", None),
        "libarc4": ("loaded", None),
        "exports_protected": ("Permission denied",
                              "exports_protected: exports protected symbol arc4_crypt"),
        "uses_protected": ("Permission denied",
                           "uses_protected: Protected symbol: arc4_crypt (err -13)"),
        "uses_kmi": ("loaded", None),
        "uses_core": ("loaded", None)}
# signed_exports is loaded (and unloaded) before libarc4, whose arc4_crypt it also exports
ORDER = ("signed_exports", "libarc4", "exports_protected", "uses_protected", "uses_kmi",
         "uses_core")
INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /tmp; mount -t proc proc /proc
try() { if insmod /$1.ko 2>/tmp/err; then echo "insmod $1: loaded"; else
        echo "insmod $1: failed: $(cat /tmp/err)"; fi; }
try signed_exports
rmmod exports_protected
%s
echo "tainted: $(cat /proc/sys/kernel/tainted)"
reboot -f
""" % "\n".join("try " + name for name in ORDER[1:])


def gki_module(name):
    return os.path.join(GKI_KERNEL, "modules", name + ".ko.xz")


def gki_check(run, tmp_path, name):
    """--check of one module against the kernel, beside libarc4 when it is loaded then."""
    tree = tmp_path / "tree"
    tree.mkdir(exist_ok=True)
    shutil.copy(gki_module("libarc4"), tree)
    given = () if name == "signed_exports" else ("--modules", tree)
    result = run("-q", *given, "--check", gki_module(name),
                 os.path.join(GKI_KERNEL, "bzImage"))
    return result.status, result.out.replace(gki_module(name), name)


def test_check_says_what_the_kernel_said(run, tmp_path):
    """--check of each module of tests/data/gki-kernel: the verdicts the kernel gave under
    QEMU (test_the_kernel_under_qemu), in its words."""
    verdicts = {name: gki_check(run, tmp_path, name) for name in ORDER}
    assert verdicts == {
        "signed_exports": (0, "signed_exports: loads\n"),
        "libarc4": (0, "libarc4: loads\n"),
        "exports_protected": (7, "exports_protected: refused: exports protected symbol "
                                 "arc4_crypt (an export of a signed GKI module; this module "
                                 "is not signed by a key the kernel holds; %s)\n" % DENIED),
        "uses_protected": (7, "uses_protected: refused: Protected symbol: arc4_crypt (err -13) "
                              "(not in the kernel's KMI list; exported by libarc4, signed; "
                              "%s)\n" % DENIED),
        "uses_kmi": (0, "uses_kmi: loads after libarc4\n"),
        "uses_core": (0, "uses_core: loads\n")}


def test_the_kernel_under_qemu(run, tmp_path):
    """The kernel of tests/data/gki-kernel booted under QEMU, busybox's insmod of each module:
    what it loads and refuses, and why, is what --check says."""
    missing = [t for t in ("qemu-system-x86_64", "busybox", "cpio") if not shutil.which(t)]
    if missing:
        pytest.skip("%s not installed (qemu-system-x86, busybox-static, cpio): the kernel "
                    "cannot be booted" % ", ".join(missing))
    for name in ORDER:
        with lzma.open(gki_module(name)) as f:
            (tmp_path / (name + ".ko")).write_bytes(f.read())
    busybox_initramfs(tmp_path / "initrd", INIT, [(tmp_path / (name + ".ko"), name + ".ko")
                                                  for name in ORDER])
    result = subprocess.run([shutil.which("qemu-system-x86_64"), "-m", "256", "-nographic",
                             "-no-reboot", "-kernel", os.path.join(GKI_KERNEL, "bzImage"),
                             "-initrd", str(tmp_path / "initrd"),
                             "-append", "console=ttyS0 rdinit=/init panic=-1"],
                            capture_output=True, text=True, timeout=300)
    console = result.stdout.replace("\r", "")
    assert "tainted: 4096" in console, console[-3000:]     # O only: no E for unsigned ones
    for name in ORDER:
        insmod, dmesg = SAID[name]
        status, out = gki_check(run, tmp_path, name)
        if insmod == "loaded":
            assert "insmod %s: loaded" % name in console, console[-3000:]
            assert status == 0, out
        else:
            assert "insmod %s: failed: insmod: can't insert '/%s.ko': %s" % (
                name, name, insmod) in console, console[-3000:]
            assert dmesg in console
            assert status == 7 and dmesg.split(": ", 1)[1] in out and insmod in out


def test_what_lies_beside_the_kmi_must_not_be_vmlinux_s():
    """The protected exports are modules' exports: a name of vmlinux beside the KMI table
    (another array of .rodata) is not one; nor are eight rows a KMI table."""
    image = bytes(64) + gki_arrays("\n".join(NAMES)) + b"kfree\0" + bytes(64)
    assert gki_lists(image, EXPORTED).protected_exports == frozenset()
    few = "\n".join(["_printk", "kfree"] + NAMES[4:10])
    assert gki_lists(bytes(64) + gki_arrays(few) + bytes(64), EXPORTED) is None
