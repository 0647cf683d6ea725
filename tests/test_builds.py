"""Builds as the loader judges them: which modules --modules reads beside a kernel (or among
themselves), the ELF header first, a --check module standing in for its namesake, Android
GKI releases.  A phone's GKI modules and its vendor's modules of an older sublevel, built
byte by byte (kobuild) against a fixture kernel whose vermagic and CRCs the tests choose."""

import struct

import pytest

from formats import elf
from kernelimage import ERAS, PLAIN, GPL, Export, build, make_exports
from kobuild import build_module, era_kernel, era_probe, module_tree, symvers_lines

GKI = "5.15.94-android13-8-00001-gabcdef-ab1234567"
VENDOR = "5.15.78-android13-8-00007-g1234567-ab7654321"
WORDS = " SMP preempt mod_unload modversions aarch64"
EXPORTS = [Export("module_layout", 0x1234ABCD, PLAIN, ""),
           Export("printk", 0x11111111, PLAIN, ""),
           Export("kmalloc", 0x22222222, PLAIN, "")]
ZSMALLOC = [Export("zs_malloc", 0x33333333, GPL, ""), Export("zs_free", 0x44444444, GPL, "")]
CRC = {x.name: x.crc for x in EXPORTS + ZSMALLOC}


def phone_kernel(release=GKI):
    """An arm64 vmlinux of `release` (banner and vermagic) exporting EXPORTS."""
    kernel = build("5.12", release=release,
                   exports=EXPORTS + make_exports(ERAS["5.12"], count=30, seed=5))
    data = kernel.data + b"\0" + (release + WORDS).encode() + b"\0" + bytes(64)
    return elf(data, kernel.base, 64, False, 183)


def phone_module(release, exports=(), uses=("printk",), versions=None, words=WORDS):
    """An arm64 module of `release` exporting `exports`, using `uses`, with modpost's
    __versions of them (`versions` changes some; None for none at all: "none")."""
    table = {name: CRC[name] for name in ("module_layout",) + tuple(uses)}
    table.update(versions if isinstance(versions, dict) else {})
    return build_module("5.12", list(exports), machine=183, imports=list(uses),
                        versions=None if versions == "none" else table,
                        modinfo=["license=GPL", "vermagic=%s%s" % (release, words)])


@pytest.fixture
def phone(tmp_path, kernel_file):
    """phone(vendor module bytes) -> (the kernel's path, the module tree): GKI's
    kernel/mm/zsmalloc.ko and the vendor's extra/wlan.ko beside it."""
    def phone(wlan):
        top = module_tree(tmp_path, {"mm/zsmalloc.ko": phone_module(GKI, ZSMALLOC),
                                     "../extra/wlan.ko": wlan}, release=GKI)
        return kernel_file(phone_kernel()), top
    return phone


def test_vendor_modules_of_an_older_sublevel(phone, run):
    """The phone loads a vendor module of 5.15.78 beside GKI's 5.15.94 (MODVERSIONS:
    same_magic() skips the release, the CRCs agree): read, the releases said."""
    kernel, top = phone(phone_module(VENDOR, uses=("printk", "zs_malloc")))
    result = run("--modules", top, kernel)
    assert result.status == 0, result.err
    assert "1 modules built against %s, the kernel is %s (KMI android13-5.15 generation 8, " \
           "sublevel 78, the kernel's 94): accepted by MODVERSIONS (same_magic() skips the " \
           "release; their CRCs agree)\n" % (VENDOR, GKI) in result.err
    assert sorted(line for line in result.lines if "\tvmlinux\t" not in line) == \
        symvers_lines("5.12", ZSMALLOC, "mm/zsmalloc")


@pytest.mark.parametrize("uses,versions,reason", [
    (("printk",), {"printk": 0x11111112}, "disagrees about version of symbol printk (module "
                                          "0x11111112, kernel 0x11111111)"),
    (("zs_malloc",), {"zs_malloc": 0x33333334}, "disagrees about version of symbol zs_malloc "
                                                "(module 0x33333334, kernel 0x33333333)"),
    (("printk",), "none", "version magic '%s%s' should be '%s%s' (the release: module '%s', "
                          "kernel '%s' (KMI android13-5.15 generation 8, sublevel 78, the "
                          "kernel's 94))" % (VENDOR, WORDS, GKI, WORDS, VENDOR, GKI)),
])
def test_vendor_module_of_another_build(uses, versions, reason, phone, run):
    """The CRCs decide: one that disagrees with vmlinux's or with another module's export is
    of another build; without __versions same_magic() compares the release too."""
    kernel, top = phone(phone_module(VENDOR, uses=uses, versions=versions))
    result = run("--modules", top, kernel)
    assert result.status == 6
    assert result.err.endswith("1 of 2 modules are of another build (--skip-bad-modules "
                               "leaves them out):\n  %s/extra/wlan.ko: %s\n" % (top, reason))


def test_vendor_module_of_another_configuration(phone, run):
    """vermagic past the release still counts: CONFIG_PREEMPT named."""
    kernel, top = phone(phone_module(VENDOR, words=" SMP mod_unload modversions aarch64"))
    result = run("--modules", top, kernel)
    assert result.status == 6
    assert "extra/wlan.ko: version magic '%s SMP mod_unload modversions aarch64' should be " \
           "'%s%s' (CONFIG_PREEMPT (or PREEMPT_DYNAMIC): module '', kernel 'preempt')\n" \
           % (VENDOR, GKI, WORDS) in result.err


def test_phone_modules_alone(tmp_path, run, assert_symvers):
    """Without a kernel the same rule holds among the modules: GKI's and the vendor's."""
    vendor = [Export("wlan_attach", 0x55555555, PLAIN, "")]
    top = tmp_path / "modules"
    top.mkdir()
    (top / "zsmalloc.ko").write_bytes(phone_module(GKI, ZSMALLOC))
    (top / "zram.ko").write_bytes(phone_module(GKI, uses=("zs_malloc",)))
    (top / "wlan.ko").write_bytes(phone_module(VENDOR, vendor, uses=("zs_free",)))
    result = run("--modules", top)
    assert_symvers(result, symvers_lines("5.12", ZSMALLOC, "zsmalloc")
                   + symvers_lines("5.12", vendor, "wlan"))
    assert "1 modules built against %s, most modules are %s (" % (VENDOR, GKI) in result.err
    (top / "wlan.ko").write_bytes(phone_module(VENDOR, vendor, uses=("zs_free",),
                                               versions={"zs_free": 1}))
    result = run("--modules", top)
    assert result.status == 6
    assert "1 of 3 modules are of another build than most" in result.err
    assert "wlan.ko: disagrees about version of symbol zs_free (module 0x00000001, kernel " \
           "0x44444444)\n" in result.err


@pytest.mark.parametrize("crc,said", [
    (0x33333333, "zs_malloc is exported by vendor/zsmalloc and by zsmalloc: both lines kept"),
    (0x3333AAAA, "warning: zs_malloc is exported by vendor/zsmalloc with CRC 0x33333333 and "
                 "by zsmalloc with CRC 0x3333aaaa: both lines kept")])
def test_a_symbol_two_modules_export(crc, said, tmp_path, run):
    """The vendor ramdisk's zsmalloc beside GKI's: the same CRC said once as information;
    other CRCs a warning naming both."""
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "zsmalloc.ko").write_bytes(phone_module(GKI, ZSMALLOC))
    (tmp_path / "zsmalloc.ko").write_bytes(phone_module(GKI, [Export("zs_malloc", crc, GPL, "")]))
    result = run("--modules", tmp_path)
    assert result.status == 0
    assert said + "\n" in result.err


# --- The ELF header first ------------------------------------------------------------------

def with_type(ko, e_type):
    return ko[:16] + struct.pack("<H", e_type) + ko[18:]


# (kernel: era, bits, big-endian, e_machine; module: bits, big-endian, e_machine, ET_*; verdict)
HEADER_CASES = [
    ("6.14", 64, False, 62, 64, False, 183, 1, "Invalid architecture in ELF header: 183 (a "
     "64-bit little-endian arm64 module; the kernel is 64-bit little-endian x86-64)"),
    ("6.14", 64, False, 243, 32, False, 243, 1, "Invalid architecture in ELF header: 243 (a "
     "32-bit little-endian riscv module; the kernel is 64-bit little-endian riscv)"),
    ("6.14", 64, False, 62, 32, False, 62, 1, "Invalid ELF section header size (a 32-bit "
     "little-endian x86-64 module; the kernel is 64-bit little-endian x86-64)"),
    ("6.14", 32, False, 8, 32, True, 8, 1, "Invalid ELF header type: 256 != 1 (a 32-bit "
     "big-endian mips module; the kernel is 32-bit little-endian mips)"),
    ("6.14", 64, False, 62, 64, False, 62, 3, "Invalid ELF header type: 3 != 1 (a 64-bit "
     "little-endian x86-64 module; the kernel is 64-bit little-endian x86-64)"),
    ("5.10", 64, False, 62, 64, False, 183, 1, 'Invalid module format (ENOEXEC: 5.10 logs no '
     'reason, 5.16 on say "Invalid architecture in ELF header: 183"; a 64-bit little-endian '
     'arm64 module; the kernel is 64-bit little-endian x86-64)'),
    ("6.14", 32, False, 3, 32, False, 6, 1, None),      # i386 takes EM_486 too
    ("6.14", 64, True, 22, 64, True, 22, 1, None),
]


@pytest.mark.parametrize("era,bits,big,machine,ko_bits,ko_big,ko_machine,e_type,verdict",
                         HEADER_CASES)
def test_elf_header_first(era, bits, big, machine, ko_bits, ko_big, ko_machine, e_type, verdict,
                          tmp_path, run, kernel_file):
    """The loader reads the ELF header in its own class and byte order before anything
    else: its refusal in its words (from 5.16; before, no reason logged), and nothing more
    (the unknown symbol the module uses is not judged)."""
    ko = era_probe(era, bits=ko_bits, big=ko_big, machine=ko_machine, imports=["nowhere"])
    if e_type != 1:
        ko = with_type(ko, e_type)
    image, options = era_kernel(era, bits=bits, big=big, machine=machine)
    (tmp_path / "probe.ko").write_bytes(ko)
    result = run(*options, "--check", tmp_path / "probe.ko", kernel_file(image))
    said = verdict or "Unknown symbol nowhere (exported by nothing given)"
    assert (result.status, result.out.replace(str(tmp_path) + "/", "")) == \
        (7, "probe.ko: refused: %s\n" % said)


def test_elf_header_beside_the_kernel(tmp_path, run):
    """--modules: an arm64 module beside an x86-64 kernel is of another build in the same
    words."""
    image, options = era_kernel("6.14", machine=62)
    (tmp_path / "vmlinux").write_bytes(image)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "probe.ko").write_bytes(era_probe("6.14", machine=183))
    result = run(*options, "--modules", tmp_path / "m", tmp_path / "vmlinux")
    assert result.status == 6
    assert "m/probe.ko: Invalid architecture in ELF header: 183 (a 64-bit little-endian arm64 " \
           "module; the kernel is 64-bit little-endian x86-64)\n" in result.err


# --- A checked module stands in for its namesake ------------------------------------------

SERIAL = [Export("usb_serial_resume", 0x66666666, GPL, ""),
          Export("usb_serial_probe", 0x77777777, GPL, "")]
MAGIC = ["license=GPL", "vermagic=6.14.0-test SMP mod_unload modversions "]


def serial_tree(tmp_path):
    """A tree of usbserial.ko and ftdi_sio.ko (which uses usb_serial_resume) of the kernel
    era_kernel("6.14") builds."""
    return module_tree(tmp_path, {
        "drivers/usb/serial/usbserial.ko": build_module("6.14", SERIAL, versions={},
                                                        modinfo=MAGIC),
        "drivers/usb/serial/ftdi_sio.ko": build_module(
            "6.14", [], imports=["usb_serial_resume"], modinfo=MAGIC,
            versions={"usb_serial_resume": 0x66666666})}, release="6.14.0-test")


def test_rebuilt_module_beside_its_tree(tmp_path, run):
    """The user's rebuild of usbserial.ko (its file named otherwise: the loader knows it by
    its .modinfo name) checked beside the tree that holds the stock one: it loads (no
    duplicate symbol with itself); rebuilt with another CRC, what depends on it (checked
    too) is judged against it."""
    image, options = era_kernel("6.14", machine=62)
    (tmp_path / "vmlinux").write_bytes(image)
    top = serial_tree(tmp_path)
    mine = tmp_path / "usbserial-rebuilt.ko"
    mine.write_bytes(build_module("6.14", SERIAL, versions={}, modinfo=MAGIC + [
        "name=usbserial"]))
    result = run(*options, "--modules", top, "--check", mine, tmp_path / "vmlinux")
    assert (result.status, result.out) == (0, "%s: loads\n" % mine)
    changed = [Export("usb_serial_resume", 0x66660000, GPL, ""), SERIAL[1]]
    mine.write_bytes(build_module("6.14", changed, versions={}, modinfo=MAGIC + [
        "name=usbserial"]))
    ftdi = top + "/kernel/drivers/usb/serial/ftdi_sio.ko"
    result = run(*options, "--modules", top, "--check", mine, "--check", ftdi,
                 tmp_path / "vmlinux")
    assert result.status == 7
    assert result.lines == ["%s: loads" % mine,
                            "%s: refused: disagrees about version of symbol usb_serial_resume "
                            "(module 0x66666666, kernel 0x66660000)" % ftdi]


def test_a_tree_checked_against_itself(tmp_path, run):
    """--modules X --check X: each module once, in the counts too."""
    image, options = era_kernel("6.14", machine=62)
    (tmp_path / "vmlinux").write_bytes(image)
    top = serial_tree(tmp_path)
    result = run(*options, "--modules", top, "--check", top, tmp_path / "vmlinux")
    assert result.status == 0, result.out
    assert "2 modules read, 1 export 2 symbols" in result.err
    assert "2 modules checked: 2 load, 0 refused" in result.err


# --- Android GKI releases ------------------------------------------------------------------

@pytest.mark.parametrize("module,said", [
    ("5.15.78-android13-8-00007-g1234567-ab7654321",
     "KMI android13-5.15 generation 8, sublevel 78, the kernel's 94"),
    ("5.15.94-android13-7-00001-gabcdef-ab1234567", "KMI android13-5.15, generation 7, the "
                                                    "kernel's 8"),
    ("5.10.198-android12-9-00085-g226a9632f13d-ab11136126",
     "another KMI: android12-5.10, the kernel's android13-5.15"),
    ("5.15.94-android13-8-00002-g0123456-ab1234999",
     "KMI android13-5.15 generation 8, sublevel 94, another build: '00002-g0123456-ab1234999', "
     "the kernel's '00001-gabcdef-ab1234567'"),
])
def test_gki_releases(module, said):
    """A GKI release read as its KMI, generation, sublevel and build."""
    from extract_symvers import vermagic_differences
    assert vermagic_differences(module + WORDS, GKI + WORDS) == [
        "the release: module '%s', kernel '%s' (%s)" % (module, GKI, said)]


def test_rebuilt_module_loaded_in_a_dump(tmp_path, run):
    """A rebuild of mod_1, which the dump has loaded, checked with a module built against it:
    the rebuild's exports are the ones resolved, not the loaded mod_1's."""
    from memdump import kernel_with_modules, module_btf, virtual_dump
    memory = kernel_with_modules()
    virtual_dump(tmp_path / "dump.elf", memory, module_btf("6.1", 8))
    loaded = memory.modules[1].exports
    rebuilt = [Export(loaded[0].name, loaded[0].crc ^ 1, loaded[0].export, loaded[0].namespace)]
    rebuilt += [Export(x.name, x.crc, x.export, x.namespace) for x in loaded[1:]]
    (tmp_path / "mod_1.ko").write_bytes(build_module("6.14", rebuilt, versions={},
                                                     modinfo=MAGIC))
    (tmp_path / "probe.ko").write_bytes(build_module(
        "6.14", [], imports=[rebuilt[0].name], versions={rebuilt[0].name: rebuilt[0].crc},
        modinfo=MAGIC))
    result = run("--check", tmp_path / "mod_1.ko", "--check", tmp_path / "probe.ko",
                 tmp_path / "dump.elf")
    assert (result.status, result.lines) == (0, [
        "%s: loads" % (tmp_path / "mod_1.ko"), "%s: loads after mod_1" % (tmp_path / "probe.ko")])
