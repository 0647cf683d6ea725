"""--check MODULE: would the kernel load it?  Modules built by kobuild against a fixture
kernel whose exports, CRCs and vermagic the tests choose: each loader check, in its words."""

import gzip
import json

import pytest

from kernelimage import GPL, Export
from kobuild import CRC, GOOD, MAGIC, USES, build_module, era_kernel, era_probe, kernel, probe
from memdump import module_btf

def test_loads(check):
    status, out, err = check(probe())
    assert (status, out) == (0, "probe.ko: loads\n")
    assert "1 modules checked: 1 load, 0 refused" in err


def test_changed_crc(check):
    versions = {"module_layout": CRC["module_layout"], "printk": 0x11111112,
                "usb_register_driver": CRC["usb_register_driver"],
                "usb_stor_probe1": CRC["usb_stor_probe1"]}
    assert check(probe(versions=versions))[:2] == (
        7, "probe.ko: refused: disagrees about version of symbol printk "
           "(module 0x11111112, kernel 0x11111111)\n")


def test_struct_module_changed(check):
    versions = {name: CRC[name] for name in USES}
    versions["module_layout"] = 0xDEADBEEF
    assert check(probe(versions=versions))[:2] == (
        7, "probe.ko: refused: disagrees about version of symbol module_layout "
           "(module 0xdeadbeef, kernel 0x1234abcd)\n")


def test_unexported_symbol(check):
    assert check(probe(uses=USES + ["kallsyms_lookup_name"]))[:2] == (
        7, "probe.ko: refused: Unknown symbol kallsyms_lookup_name (exported by nothing given)\n")


def test_weak_symbol_may_stay_unresolved(check):
    assert check(probe(uses=USES + [("kallsyms_lookup_name", "weak")]))[:2] == \
        (0, "probe.ko: loads\n")


def test_other_vermagic(check):
    modinfo = ["license=GPL", "vermagic=6.14.0 SMP mod_unload modversions ",
               "import_ns=USB_STORAGE"]
    assert check(probe(modinfo=modinfo))[:2] == (
        7, "probe.ko: refused: version magic '6.14.0 SMP mod_unload modversions ' should be "
           "'6.14.0-test SMP preempt mod_unload modversions ' (CONFIG_PREEMPT (or "
           "PREEMPT_DYNAMIC): module '', kernel 'preempt')\n")


def test_release_may_differ_only_with_modversions(check):
    """same_magic(): with CRCs on both sides the release is not compared, else it is."""
    modinfo = ["license=GPL", "vermagic=7.2.0 SMP preempt mod_unload "]
    image = kernel(magic="7.2.0-test SMP preempt mod_unload ", era="7.2", modversions=False)
    assert check(probe(modinfo=modinfo, uses=["printk"], versions=None), image)[:2] == (
        7, "probe.ko: refused: version magic '7.2.0 SMP preempt mod_unload ' should be "
           "'7.2.0-test SMP preempt mod_unload ' (the release: module '7.2.0', kernel "
           "'7.2.0-test' (CONFIG_LOCALVERSION, LOCALVERSION_AUTO's -g<commit>, or make "
           "KERNELRELEASE=))\n")
    modinfo[1] = "vermagic=7.2.0-test SMP preempt mod_unload "
    assert check(probe(modinfo=modinfo, uses=["printk"], versions=None), image)[:2] == \
        (0, "probe.ko: loads\n")


def test_proprietary_module_using_gpl_only_export(check):
    modinfo = ["license=Proprietary"] + GOOD[1:]
    assert check(probe(modinfo=modinfo))[:2] == (
        7, "probe.ko: refused: Unknown symbol usb_register_driver (GPL-only, exported by "
           "vmlinux; licence 'Proprietary'); Unknown symbol usb_stor_probe1 (GPL-only, "
           "exported by vmlinux; licence 'Proprietary')\n")
    assert check(probe(modinfo=modinfo, uses=["printk"]))[:2] == (
        0, "probe.ko: loads, tainting: module license 'Proprietary' taints kernel\n")


def test_missing_namespace_import(check):
    modinfo = [entry for entry in GOOD if not entry.startswith("import_ns=")]
    assert check(probe(modinfo=modinfo))[:2] == (
        7, "probe.ko: refused: module uses symbol (usb_stor_probe1) from namespace "
           "USB_STORAGE, but does not import it\n")
    config = "CONFIG_MODULE_ALLOW_MISSING_NAMESPACE_IMPORTS=y\n"
    assert check(probe(modinfo=modinfo), kernel(config))[:2] == (
        0, "probe.ko: loads, tainting: module uses symbol (usb_stor_probe1) from namespace "
           "USB_STORAGE, but does not import it\n")


def test_module_namespace(check):
    """6.16's "module:" namespace: only the modules it names (tail glob, - as _) may use it."""
    assert check(probe(uses=["cxl_mem_probe"], modinfo=GOOD[:2] + ["name=cxl_pmem_x"]))[:2] \
        == (0, "probe.ko: loads\n")
    assert check(probe(uses=["cxl_mem_probe"]))[:2] == (
        7, "probe.ko: refused: module uses symbol (cxl_mem_probe) from namespace "
           "module:cxl_core,cxl_pmem*, but does not import it\n")


@pytest.mark.parametrize("ko,uses,verdict", [
    ("cxl-pmem-x.ko", "cxl_mem_probe", "loads"),        # its file's - as _: cxl_pmem*
    ("cxl_pmem.ko", "cxl_pmem_probe", "loads"),         # module:cxl-pmem names it
    ("cxl_core_x.ko", "cxl_mem_probe", "refused"),      # cxl_core is no prefix (no *)
])
def test_module_namespace_names(ko, uses, verdict, tmp_path, run, kernel_file):
    """python extract_symvers.py --check cxl-pmem-x.ko vmlinux: a module without a name in
    its .modinfo is named by its file, and - and _ are the same character in module names."""
    (tmp_path / ko).write_bytes(probe(uses=[uses], modinfo=GOOD[:2]))
    result = run("--check", tmp_path / ko, kernel_file(kernel()))
    said = "loads" if verdict == "loads" else "refused: module uses symbol (%s) from " \
        "namespace module:cxl_core,cxl_pmem*, but does not import it" % uses
    assert (result.status, result.out) == (0 if verdict == "loads" else 7,
                                           "%s: %s\n" % (tmp_path / ko, said))


def test_release_may_differ_with_modversions(check):
    """same_magic(): with CRCs on both sides only the words after the release are compared:
    a module of 6.14.0-2 loads into 6.14.0-test when its CRCs agree."""
    modinfo = ["license=GPL", "vermagic=6.14.0-2 SMP preempt mod_unload modversions ",
               "import_ns=USB_STORAGE"]
    assert check(probe(modinfo=modinfo))[:2] == (0, "probe.ko: loads\n")


def test_an_export_without_a_crc(check, tmp_path):
    """A module given with --modules built without CONFIG_MODVERSIONS has no CRCs: a module
    using its exports loads whatever CRC its __versions holds ("exporting module didn't
    supply crcs": check_version() accepts)."""
    (tmp_path / "helper.ko").write_bytes(build_module(
        "6.14", [Export("helper_probe", 0x77777777, GPL, "")], modinfo=GOOD[:2] + [
            "name=helper"], modversions=False))
    ko = probe(uses=USES + ["helper_probe"], versions=dict(CRC, helper_probe=0x12345678))
    assert check(ko, None, "--modules", tmp_path / "helper.ko")[:2] == (
        0, "probe.ko: loads after helper\n")


def test_every_reason(check):
    modinfo = ["license=Proprietary", "vermagic=6.13.0 SMP mod_unload modversions "]
    versions = {"module_layout": 1, "printk": 2}
    status, out, _ = check(probe(modinfo=modinfo, versions=versions,
                                 uses=["printk", "usb_register_driver", "nosuch"]))
    assert status == 7
    assert out == ("probe.ko: refused: version magic '6.13.0 SMP mod_unload modversions ' "
                   "should be '6.14.0-test SMP preempt mod_unload modversions ' "
                   "(CONFIG_PREEMPT (or PREEMPT_DYNAMIC): module '', kernel 'preempt'); "
                   "disagrees about version of symbol module_layout (module 0x00000001, "
                   "kernel 0x1234abcd); disagrees about version of symbol printk (module "
                   "0x00000002, kernel 0x11111111); Unknown symbol usb_register_driver "
                   "(GPL-only, exported by vmlinux; licence 'Proprietary'); Unknown symbol "
                   "nosuch (exported by nothing given)\n")


def test_no_versions(check):
    """No __versions on a modversions kernel: try_to_force_load(), which the .config decides
    (and same_magic() compares the release too)."""
    ko = probe(versions=None, modinfo=["license=GPL", "vermagic=" + MAGIC,
                                       "import_ns=USB_STORAGE"])
    status, out, err = check(ko)
    assert (status, out) == (7, "probe.ko: refused: no versions for imported symbols (loads "
                                "only with CONFIG_MODULE_FORCE_LOAD=y: the kernel's .config is "
                                "unknown)\n")
    assert "no embedded .config" in err
    assert check(ko, kernel("CONFIG_MODULE_FORCE_LOAD=y\n"))[:2] == (
        0, "probe.ko: loads, tainting: no versions for imported symbols: kernel tainted\n")


def test_exports_of_modules(check, tmp_path):
    """Symbols of other modules resolve when those are given with --modules (or --check)."""
    usbcore = build_module("6.14", [Export("usb_submit_urb", 0x55555555, GPL, "")],
                           versions={"module_layout": CRC["module_layout"]}, modinfo=GOOD[:2])
    (tmp_path / "usbcore.ko").write_bytes(usbcore)
    ko = probe(uses=USES + ["usb_submit_urb"])
    assert check(ko)[:2] == (7, "probe.ko: refused: Unknown symbol usb_submit_urb (exported "
                                "by nothing given)\n")
    assert check(ko, None, "--modules", tmp_path / "usbcore.ko")[:2] == \
        (0, "probe.ko: loads after usbcore\n")
    status, out, _ = check(ko, None, "--check", tmp_path / "usbcore.ko")
    assert (status, sorted(out.splitlines())) == (0, ["probe.ko: loads after usbcore",
                                                      "usbcore.ko: loads"])


def test_configs_ko(tmp_path, run, kernel_file, check):
    """CONFIG_IKCONFIG=m: the .config is in kernel/configs.ko, found among --modules."""
    config = "CONFIG_IKCONFIG=m\nCONFIG_MODULE_SIG=y\nCONFIG_MODULE_SIG_FORCE=y\n"
    configs = build_module("6.14", [], modinfo=GOOD[:2]) + b"IKCFG_ST" + \
        gzip.compress(config.encode(), mtime=0) + b"IKCFG_ED"
    tree = tmp_path / "lib" / "modules" / "6.14.0-test" / "kernel" / "kernel"
    tree.mkdir(parents=True)
    (tree / "configs.ko").write_bytes(configs)
    image = kernel_file(kernel())
    assert run("--config", tmp_path / "config", "--modules", tree, image)[:2] == (0, "")
    assert (tmp_path / "config").read_text() == config
    assert check(probe(), None, "--modules", tree)[:2] == (
        7, "probe.ko: refused: Loading of unsigned module is rejected "
           "(CONFIG_MODULE_SIG_FORCE=y; insmod says \"Key was rejected by service\")\n")


def test_verdicts_to_a_file(tmp_path, run, kernel_file):
    """-o FILE --check: the verdicts (or --json's document) in FILE, nothing on stdout."""
    (tmp_path / "probe.ko").write_bytes(probe())
    image = kernel_file(kernel())
    result = run("-o", tmp_path / "verdicts", "--check", tmp_path / "probe.ko", image)
    assert (result.status, result.out) == (0, "")
    assert (tmp_path / "verdicts").read_text() == "%s: loads\n" % (tmp_path / "probe.ko")
    result = run("-o", tmp_path / "verdicts.json", "--json", "--check", tmp_path / "probe.ko",
                 image)
    assert (result.status, result.out) == (0, "")
    assert json.loads((tmp_path / "verdicts.json").read_text())["modules"][0]["loads"] is True


def test_refusals_to_a_file(tmp_path, run, kernel_file):
    """A refusal is the run's result too: in FILE, with exit 7."""
    (tmp_path / "probe.ko").write_bytes(probe(uses=["nowhere_exported"], versions={}))
    result = run("-o", tmp_path / "verdicts", "--check", tmp_path / "probe.ko",
                 kernel_file(kernel()))
    assert (result.status, result.out) == (7, "")
    assert (tmp_path / "verdicts").read_text().startswith(
        "%s: refused: " % (tmp_path / "probe.ko"))


def test_check_errors(tmp_path, run, kernel_file):
    image = kernel_file(kernel())
    result = run("--check", tmp_path, image)
    assert result.status == 3 and "no *.ko" in result.errors[0]
    (tmp_path / "broken.ko").write_bytes(b"\x7fELF" + b"\0" * 60)
    result = run("--check", tmp_path / "broken.ko", image)
    assert result.status == 6
    assert "broken.ko: not an ELF file" in result.err


# --- struct module's size, relocations, vermagic word by word -------------------------

@pytest.mark.parametrize("size,expected", [
    (0x3c0, "probe.ko: loads\n"),
    (0x400, "probe.ko: refused: .gnu.linkonce.this_module section size must match the "
            "kernel's built struct module size at run time (1024 bytes, the kernel's 960)\n")])
def test_struct_module_size_from_btf(size, expected, check):
    """6.4+: the module's struct module (modpost's .gnu.linkonce.this_module) must be the
    size of the kernel's, which its BTF says."""
    image, options = era_kernel("6.14", module_btf("6.1", 8))
    assert check(era_probe("6.14", this_module=size), image, *options)[:2] == \
        (7 if "refused" in expected else 0, expected)


def test_struct_module_size_before_6_4(check):
    """Before 6.4 the loader does not compare the sizes: it loads, and the warning says what
    the kernel then reads."""
    image, options = era_kernel("5.10", module_btf("6.1", 8))
    status, out, err = check(era_probe("5.10", this_module=0x400), image, *options)
    assert (status, out) == (0, "probe.ko: loads\n")
    assert "probe.ko: its struct module is 1024 bytes, the kernel's 960: 5.10 loads it " \
           "without checking (the check came in 6.4) and reads its fields in the wrong " \
           "places\n" in err


def test_struct_module_size_from_a_module_of_the_build(check, tmp_path):
    """Without BTF, the size of a module of the same build given with --modules."""
    (tmp_path / "other.ko").write_bytes(era_probe("6.14", "other", this_module=0x3c0))
    image, options = era_kernel("6.14")
    status, out, _ = check(era_probe("6.14", this_module=0x400), image, *options,
                           "--modules", tmp_path / "other.ko")
    assert (status, out) == (7, "probe.ko: refused: .gnu.linkonce.this_module section size "
                                "must match the kernel's built struct module size at run "
                                "time (1024 bytes, the kernel's 960)\n")


# (era, e_machine, bits, big-endian, RELA, relocation type, the loader's refusal or None)
RELOCATION_CASES = [
    ("4.10", 62, 64, False, True, 4, "probe: Unknown rela relocation: 4"),   # PLT32 < 4.16
    ("5.10", 62, 64, False, True, 4, None),
    ("6.14", 3, 32, False, False, 10, "probe: Unknown relocation: 10"),
    ("6.14", 183, 64, False, True, 1027, "module probe: unsupported RELA relocation: 1027"),
    ("6.14", 183, 64, False, True, 275, None),
    ("5.10", 40, 32, False, False, 3, "probe: unknown relocation: 3"),      # REL32 from 6.1
    ("6.14", 40, 32, False, False, 3, None),
    ("6.14", 243, 64, False, True, 3, "probe: Unknown relocation type 3"),
    ("6.14", 20, 32, True, True, 2, "probe: unknown ADD relocation: 2"),
    ("6.14", 21, 64, True, True, 2, "probe: Unknown ADD relocation: 2"),
    ("6.14", 22, 64, True, True, 60, "module probe: unknown relocation: 60"),
    ("6.14", 8, 32, True, False, 1, "probe: Unknown relocation type 1"),
    ("6.14", 8, 64, False, True, 1, "probe: Unknown relocation type 1"),    # mips64el r_info
    ("6.14", 8, 64, False, True, 2, None),
    ("6.14", 258, 64, False, True, 3, "probe: Unknown relocation type 3"),
]


@pytest.mark.parametrize("era,machine,bits,big,rela,kind,refusal", RELOCATION_CASES)
def test_relocation_types(era, machine, bits, big, rela, kind, refusal, check):
    """A relocation type the architecture's loader of that release does not apply: refused
    in its words."""
    ko = era_probe(era, machine=machine, bits=bits, big=big, rela=rela, relocations=[kind])
    image, options = era_kernel(era, bits=bits, big=big, machine=machine)
    status, out, _ = check(ko, image, *options)
    assert (status, out) == ((7, "probe.ko: refused: %s\n" % refusal) if refusal else
                             (0, "probe.ko: loads\n"))


def test_relocation_type_between_the_sources_read(check):
    """ARM's R_ARM_REL32 came after 5.10 and by 6.1: a 5.12 kernel may refuse it."""
    ko = era_probe("5.12", machine=40, bits=32, rela=False, relocations=[3])
    image, options = era_kernel("5.12", bits=32, machine=40)
    status, out, err = check(ko, image, *options)
    assert (status, out) == (0, "probe.ko: loads\n")
    assert "probe.ko: relocation type 3: accepted by 6.1, not by 5.10; this release may " \
           "refuse it" in err


@pytest.mark.parametrize("module,kernel_magic,said", [
    ("6.1.0-50-armmp SMP mod_unload modversions ARMv7 p2v8 ",
     "7.2.13+deb14-armmp SMP mod_unload modversions ARMv7 p2v8 ",
     ["the release: module '6.1.0-50-armmp', kernel '7.2.13+deb14-armmp' (another version of "
      "the kernel)"]),
    ("6.1.0-49-amd64 SMP preempt mod_unload ", "6.1.0-50-amd64 SMP preempt mod_unload ",
     ["the release: module '6.1.0-49-amd64', kernel '6.1.0-50-amd64' (the same version, "
      "another number after it: a distribution's ABI or build number (Debian's "
      "6.1.0-49-amd64 and 6.1.0-50-amd64))"]),
    ("6.1.0 SMP mod_unload ", "6.1.0+ SMP mod_unload ",
     ["the release: module '6.1.0', kernel '6.1.0+' (the + a tree with uncommitted changes "
      "adds (scripts/setlocalversion))"]),
    ("6.1.0-1 SMP preempt_rt mod_unload ", "6.1.0-1 SMP preempt mod_unload ",
     ["CONFIG_PREEMPT_RT: module 'preempt_rt', kernel ''",
      "CONFIG_PREEMPT (or PREEMPT_DYNAMIC): module '', kernel 'preempt'"]),
    ("5.4.0 mod_unload modversions ARMv6 p2v8 ", "5.4.0 SMP mod_unload ARMv7 p2v8 thumb2 ",
     ["CONFIG_MODVERSIONS: module 'modversions', kernel ''",
      "the ARM architecture level (CONFIG_CPU_V6, CONFIG_CPU_V7...): module 'ARMv6', "
      "kernel 'ARMv7'", "CONFIG_SMP: module '', kernel 'SMP'",
      "CONFIG_THUMB2_KERNEL: module '', kernel 'thumb2'"]),
    ("4.9.0 SMP mod_unload MIPS32_R2 32BIT ", "4.9.0 SMP mod_unload MIPS32_R1 32BIT ",
     ["the MIPS CPU (CONFIG_CPU_*): module 'MIPS32_R2', kernel 'MIPS32_R1'"]),
    ("6.1.0 SMP mod_unload RANDSTRUCT_0a1b", "6.1.0 SMP mod_unload RANDSTRUCT_ffee",
     ["CONFIG_RANDSTRUCT's per-build seed: module 'RANDSTRUCT_0a1b', kernel 'RANDSTRUCT_ffee'"]),
    ("2.6.9 SMP 686 REGPARM gcc-3.4", "2.6.9 SMP 686 REGPARM gcc-4.1",
     ["the compiler's version (2.6 kernels): module 'gcc-3.4', kernel 'gcc-4.1'"]),
    ("6.1.0 SMP mod_unload 686 ", "6.1.0 SMP mod_unload K7 ",
     ["the processor family or architecture (CONFIG_M686, aarch64...): module '686', "
      "kernel 'K7'"]),
])
def test_vermagic_differences(module, kernel_magic, said):
    """Each word of vermagic named with what sets it."""
    from extract_symvers import vermagic_differences
    assert vermagic_differences(module, kernel_magic) == said


def test_load_order_as_modprobe(check, tmp_path):
    """ftdi_sio needs usbserial, which needs usbcore: it loads after both, usbcore first."""
    def module(name, exports, uses):
        (tmp_path / (name + ".ko")).write_bytes(build_module(
            "6.14", [Export(e, 0x1000 + i, GPL, "") for i, e in enumerate(exports)],
            imports=uses, versions={}, modinfo=GOOD[:2] + ["name=" + name]))
        return tmp_path / (name + ".ko")

    given = [module("usbcore", ["usb_submit_urb"], []),
             module("usbserial", ["usb_serial_register"], ["usb_submit_urb"])]
    ko = probe(uses=USES + ["usb_serial_register"], versions=None)
    status, out, _ = check(ko, kernel("CONFIG_MODULE_FORCE_LOAD=y\n"),
                           *(arg for path in given for arg in ("--modules", path)))
    assert (status, out) == (0, "probe.ko: loads after usbcore, usbserial, tainting: no "
                                "versions for imported symbols: kernel tainted\n")
