"""--diff OLD NEW: a kABI report between two kernels, each side a Module.symvers file, a
kernel image or a module tree; with --check, only what the modules use and whether NEW
loads them; --json."""

import json

from kernelimage import ERAS, GPL, PLAIN, Export, build
from kobuild import build_module

OLD = """\
0x11111111\tkept\tvmlinux\tEXPORT_SYMBOL\t
0x22222222\tgone\tvmlinux\tEXPORT_SYMBOL_GPL\t
0x33333333\trecrc\tvmlinux\tEXPORT_SYMBOL\t
0x44444444\ttightened\tvmlinux\tEXPORT_SYMBOL\t
0x55555555\trenamespaced\tdrivers/usb/storage/usb-storage\tEXPORT_SYMBOL_GPL\tUSB_STORAGE
0x66666666\tmoving\tvmlinux\tEXPORT_SYMBOL_GPL\t
0x77777777\tloosened\tvmlinux\tEXPORT_SYMBOL_GPL\t
"""
NEW = """\
0x11111111\tkept\tvmlinux\tEXPORT_SYMBOL\t
0x3333aaaa\trecrc\tvmlinux\tEXPORT_SYMBOL\t
0x44444444\ttightened\tvmlinux\tEXPORT_SYMBOL_GPL\t
0x55555555\trenamespaced\tdrivers/usb/storage/usb-storage\tEXPORT_SYMBOL_GPL\tUSB_STORAGE_CORE
0x66666666\tmoving\tdrivers/base/moved\tEXPORT_SYMBOL_GPL\t
0x77777777\tloosened\tvmlinux\tEXPORT_SYMBOL\t
0x88888888\tfresh\tvmlinux\tEXPORT_SYMBOL\t
"""
REPORT = """\
--- {old}
+++ {new}
removed: 1 (breaks modules built for the old side)
  gone\tvmlinux\tEXPORT_SYMBOL_GPL
changed CRC: 1 (breaks modules built for the old side)
  recrc\t0x33333333 -> 0x3333aaaa\tvmlinux
became GPL-only: 1 (breaks modules built for the old side)
  tightened\tEXPORT_SYMBOL -> EXPORT_SYMBOL_GPL\tvmlinux
changed namespace: 1 (breaks modules built for the old side)
  renamespaced\t'USB_STORAGE' -> 'USB_STORAGE_CORE'\tdrivers/usb/storage/usb-storage
moved: 1
  moving\tvmlinux -> drivers/base/moved
no longer GPL-only: 1
  loosened\tEXPORT_SYMBOL_GPL -> EXPORT_SYMBOL\tvmlinux
added: 1
  fresh\tvmlinux\tEXPORT_SYMBOL
"""


def sides(tmp_path, old=OLD, new=NEW):
    (tmp_path / "old.symvers").write_text(old)
    (tmp_path / "new.symvers").write_text(new)
    return tmp_path / "old.symvers", tmp_path / "new.symvers"


def test_every_kind_of_change(tmp_path, run):
    """Each kind once, in the report's order; a removal among them: exit 8."""
    old, new = sides(tmp_path)
    result = run("--diff", old, new)
    assert (result.status, result.out) == (8, REPORT.format(old=old, new=new))


def test_only_additions_break_nothing(tmp_path, run):
    old, new = sides(tmp_path, old=OLD, new=OLD + "0x88888888\tfresh\tvmlinux\tEXPORT_SYMBOL\t\n")
    result = run("--diff", old, new)
    assert (result.status, result.out) == (0, "--- %s\n+++ %s\nadded: 1\n  fresh\tvmlinux\t"
                                              "EXPORT_SYMBOL\n" % (old, new))


def test_json(tmp_path, run):
    old, new = sides(tmp_path)
    result = run("--diff", old, new, "--json")
    document = json.loads(result.out)
    assert result.status == 8
    assert [(c["kind"], c["symbol"], c["breaks"]) for c in document["changes"]] == [
        ("removed", "gone", True), ("changed CRC", "recrc", True),
        ("became GPL-only", "tightened", True), ("changed namespace", "renamespaced", True),
        ("moved", "moving", False), ("no longer GPL-only", "loosened", False),
        ("added", "fresh", False)]
    assert document["changes"][1]["old"] == {"crc": "0x33333333", "module": "vmlinux",
                                             "export_type": "EXPORT_SYMBOL", "namespace": ""}
    assert document["modules"] == []


def test_a_kernel_image_against_its_module_symvers(tmp_path, run, kernel_file):
    """A side may be an image: against the Module.symvers of its build, no change."""
    kernel = build("6.14", exports=[Export("kept", 0x11111111, PLAIN, ""),
                                    Export("gone", 0x22222222, GPL, "")])
    (tmp_path / "Module.symvers").write_text("".join(line + "\n" for line in kernel.symvers()))
    result = run("--diff", kernel_file(kernel.data), tmp_path / "Module.symvers",
                 *kernel.options)
    assert (result.status, result.out.splitlines()[2:]) == (0, ["no change"])


def test_check_against_the_new_side(tmp_path, run):
    """--diff OLD NEW --check probe.ko: only the symbols the module uses, and whether NEW
    (here a Module.symvers: its vermagic unknown) loads it."""
    old, new = sides(tmp_path)
    probe = build_module("6.14", [], imports=["kept", "recrc"],
                         versions={"kept": 0x11111111, "recrc": 0x33333333},
                         modinfo=["license=GPL", "vermagic=6.14.0 SMP mod_unload modversions ",
                                  "name=probe"])
    (tmp_path / "probe.ko").write_bytes(probe)
    result = run("--diff", old, new, "--check", tmp_path / "probe.ko")
    assert (result.status, result.out) == (7, (
        "--- {old}\n+++ {new}\n(the 2 symbols the modules checked use)\n"
        "changed CRC: 1 (breaks modules built for the old side)\n"
        "  recrc\t0x33333333 -> 0x3333aaaa\tvmlinux\n"
        "{probe}: refused: disagrees about version of symbol recrc (module 0x33333333, "
        "kernel 0x3333aaaa)\n").format(old=old, new=new, probe=tmp_path / "probe.ko"))


def test_modules_alone_as_a_side(tmp_path, run):
    """A module tree is a side of its own: the exports of its modules."""
    for side, crc in (("old", 0x12345678), ("new", 0x0badf00d)):
        tree = tmp_path / side / "lib/modules/6.14.0/kernel/drivers/usb/serial"
        tree.mkdir(parents=True)
        (tree / "usbserial.ko").write_bytes(
            build_module("6.14", [Export("usb_serial_register", crc, GPL, "")]))
    result = run("--diff", tmp_path / "old/lib/modules/6.14.0",
                 tmp_path / "new/lib/modules/6.14.0")
    assert result.status == 8
    assert result.out.splitlines()[2:] == [
        "changed CRC: 1 (breaks modules built for the old side)",
        "  usb_serial_register\t0x12345678 -> 0x0badf00d\tdrivers/usb/serial/usbserial"]


def test_diff_takes_no_kernel(tmp_path, run):
    old, new = sides(tmp_path)
    result = run("--diff", old, new, "--modules", tmp_path)
    assert result.status == 2
    assert result.errors == ["extract_symvers: error: --diff and --modules cannot be combined: "
                             "--diff OLD NEW reads both sides' modules itself"]


def test_report_to_a_file(tmp_path, run):
    """--diff OLD NEW -o report: the report in the file, nothing on stdout, the status."""
    old, new = sides(tmp_path)
    result = run("--diff", old, new, "-o", tmp_path / "report")
    assert (result.status, result.out) == (8, "")
    assert (tmp_path / "report").read_text() == REPORT.format(old=old, new=new)
    assert run("--diff", old, new, "--json", "-o", tmp_path / "report.json")[:2] == (8, "")
    assert json.loads((tmp_path / "report.json").read_text())["new"] == str(new)


def test_eras_columns_compare(tmp_path, run):
    """5.4.0-5.4.y's namespace-in-the-middle columns against 5.10's: the same symbols."""
    assert ERAS["5.4.20"].columns != ERAS["5.10"].columns
    old, new = sides(tmp_path, old="0x11111111\tkept\tNS\tvmlinux\tEXPORT_SYMBOL\n",
                     new="0x11111111\tkept\tvmlinux\tEXPORT_SYMBOL\tNS\n")
    assert run("--diff", old, new).out.splitlines()[2:] == ["no change"]


def test_a_dump_and_a_tree_name_a_module_alike(tmp_path, run):
    """A dump names a loaded module as the kernel does (usb_storage), a tree by its path
    (drivers/usb/storage/usb-storage): the same module, nothing moved."""
    old, new = sides(tmp_path, old="0x55555555\tusb_stor_probe1\tdrivers/usb/storage/"
                                   "usb-storage\tEXPORT_SYMBOL_GPL\tUSB_STORAGE\n",
                     new="0x55555555\tusb_stor_probe1\tusb_storage\tEXPORT_SYMBOL_GPL\t"
                         "USB_STORAGE\n")
    assert run("--diff", old, new).out.splitlines()[2:] == ["no change"]


def test_a_symbol_that_moves_and_changes_its_crc(tmp_path, run):
    """Both said: its CRC changed (it breaks) and it moved to another module."""
    old, new = sides(tmp_path, old="0x66666666\tmoving\tvmlinux\tEXPORT_SYMBOL_GPL\t\n",
                     new="0x6666aaaa\tmoving\tdrivers/base/moved\tEXPORT_SYMBOL_GPL\t\n")
    result = run("--diff", old, new)
    assert (result.status, result.out.splitlines()[2:]) == (8, [
        "changed CRC: 1 (breaks modules built for the old side)",
        "  moving\t0x66666666 -> 0x6666aaaa\tdrivers/base/moved",
        "moved: 1",
        "  moving\tvmlinux -> drivers/base/moved"])


def test_unused_gpl_exports_are_gpl_only(tmp_path, run):
    """EXPORT_UNUSED_SYMBOL_GPL is GPL-only as EXPORT_SYMBOL_GPL is: from one to the other
    nothing changes for a module; to EXPORT_UNUSED_SYMBOL it is no longer GPL-only."""
    old, new = sides(tmp_path, old="0x11111111\tstill\tvmlinux\tEXPORT_UNUSED_SYMBOL_GPL\n"
                                   "0x22222222\tfreed\tvmlinux\tEXPORT_UNUSED_SYMBOL_GPL\n",
                     new="0x11111111\tstill\tvmlinux\tEXPORT_SYMBOL_GPL\n"
                         "0x22222222\tfreed\tvmlinux\tEXPORT_UNUSED_SYMBOL\n")
    result = run("--diff", old, new)
    assert (result.status, result.out.splitlines()[2:]) == (0, [
        "no longer GPL-only: 1",
        "  freed\tEXPORT_UNUSED_SYMBOL_GPL -> EXPORT_UNUSED_SYMBOL\tvmlinux"])
