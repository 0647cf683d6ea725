"""--diff OLD NEW: a kABI report between two kernels, each side a Module.symvers file, a
kernel image or a module tree; with --check, only what the modules use and whether NEW
loads them; --json."""

import json

import extract_symvers
from kernelimage import ERAS, GPL, PLAIN, Export, build, make_exports
from kobuild import build_module
from memdump import BtfTypes

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


# --- Why the CRCs changed: both kernels' BTF ----------------------------------------------

STABLE = make_exports(ERAS["5.19"], seed=3)     # the same on both sides


def device_btf(flags):
    """A kernel's BTF: struct sk_buff points at struct device, which `flags` adds a member
    to; skb_len(struct sk_buff *), dev_id(const struct device *), twice(int) its functions;
    an enum and a typedef beside them."""
    types = BtfTypes()
    int_ = types.int("int", 4)
    device = types.next_id + 1
    device_ptr = types.ptr(device)
    members = [("id", int_, 0), ("parent", device_ptr, 8)] + ([("flags", int_, 16)] if flags
                                                            else [])
    types.struct("device", 24 if flags else 16, members)
    skb = types.struct("sk_buff", 16, [("len", int_, 0), ("dev", device_ptr, 8)])
    types.func("skb_len", types.func_proto(int_, [("skb", types.ptr(skb))]))
    types.func("dev_id", types.func_proto(int_, [("dev", types.ptr(types.const(device)))]))
    types.func("twice", types.func_proto(int_, [("x", int_)]))
    types.enum("colour", {"RED": 0, "GREEN": 1})
    types.typedef("u32", int_)
    return types.blob()


def device_kernel(flags):
    """A 5.19 kernel with that BTF: the CRCs of four of its exports change with `flags`."""
    crcs = {"skb_len": 0x1111, "dev_id": 0x2222, "twice": 0x3333, "jiffies_64": 0x4444,
            "stable": 0x5555}
    exports = [Export(name, crc + (0x10000 if flags and name != "stable" else 0), PLAIN)
               for name, crc in crcs.items()]
    return build("5.19", bits=64, exports=exports + STABLE).data + device_btf(flags)


def test_why_the_crcs_changed(tmp_path, run, kernel_file):
    """struct device gained a member: the one cause, of the two exports that reach it, each
    named with it; twice(int) reaches no type that differs; jiffies_64 (a variable) has no
    BTF type."""
    old = kernel_file(device_kernel(False), "old")
    new = kernel_file(device_kernel(True), "new")
    result = run("-q", "--diff", old, new)
    assert result.status == 8
    assert result.out.splitlines()[2:8] == [
        "why the CRCs changed (the BTF of both kernels): 4 changed, 2 explained, 1 reach no "
        "type that differs, 1 have no BTF type (variables, and functions BTF leaves out)",
        "  struct device: member `flags` added at offset 0x10; size 16 -> 24 bytes (the "
        "nearest cause of 2 exports, reached by 2)",
        "changed CRC: 4 (breaks modules built for the old side)",
        "  dev_id\t0x00002222 -> 0x00012222\tvmlinux\tstruct device",
        "  jiffies_64\t0x00004444 -> 0x00014444\tvmlinux\tno BTF type",
        "  skb_len\t0x00001111 -> 0x00011111\tvmlinux\tstruct device"]
    assert "  twice\t0x00003333 -> 0x00013333\tvmlinux\tno type differs in BTF" in \
        result.out.splitlines()
    document = json.loads(run("--json", "--diff", old, new).out)
    types = {change["symbol"]: change.get("types") for change in document["changes"]}
    assert types == {"dev_id": ["struct device"], "skb_len": ["struct device"], "twice": [],
                     "jiffies_64": None}
    assert document["causes"]["struct device"] == {
        "differences": ["member `flags` added at offset 0x10", "size 16 -> 24 bytes"],
        "reached_by": 2}


def test_without_btf_on_one_side(tmp_path, run, kernel_file):
    """OLD without BTF: the report as before, and why not said."""
    old = kernel_file(build("5.19", bits=64, exports=[Export("f", 1, PLAIN)] + STABLE).data,
                      "old")
    new = kernel_file(build("5.19", bits=64, exports=[Export("f", 2, PLAIN)] + STABLE).data +
                      device_btf(True), "new")
    result = run("--diff", old, new)
    assert "why the CRCs changed is said where both kernels carry BTF " \
           "(CONFIG_DEBUG_INFO_BTF): OLD has none" in result.err
    assert "why" not in result.out and "  f\t0x00000001 -> 0x00000002\tvmlinux\n" in result.out


def causes_of(old_types, new_types, symbols):
    return extract_symvers.crc_causes(extract_symvers.Btf(old_types.blob()),
                                      extract_symvers.Btf(new_types.blob()), symbols)


def test_each_kind_of_difference():
    """Members removed, retyped and reordered, enum values added, removed and changed, a
    typedef's type, a prototype's parameters: each said; a member only moved (by a type it
    embeds, which is reached itself) is no difference."""
    def kernel(new):
        types = BtfTypes()
        int_, long_ = types.int("int", 4), types.int("long", 8)
        mode = types.enum("mode", {"ON": 1, "OFF": 0, "AUTO": 3} if new else
                          {"ON": 1, "OFF": 2, "SLEEP": 4})
        size_t = types.typedef("size_t", long_ if new else int_)
        members = [("a", long_ if new else int_, 0), ("b", int_, 8 if new else 4),
                   ("m", mode, 12)] + ([] if new else [("gone", int_, 16)])
        state = types.struct("state", 24, members)
        moved = types.struct("moved", 16 if new else 12, [("a", long_ if new else int_, 0),
                                                          ("b", int_, 8 if new else 4)])
        holder = types.struct("holder", 24 if new else 16, [("inner", moved, 0),
                                                            ("after", int_, 16 if new else 12)])
        order = types.struct("order", 8, [("y", int_, 0), ("x", int_, 4)] if new else
                             [("x", int_, 0), ("y", int_, 4)])
        types.func("use", types.func_proto(int_, [("s", types.ptr(state)), ("n", size_t)]))
        types.func("hold", types.func_proto(int_, [("h", types.ptr(holder))]))
        types.func("sort", types.func_proto(int_, [("o", types.ptr(order))]))
        types.func("own", types.func_proto(int_, [("x", long_ if new else int_)]))
        return types

    causes = causes_of(kernel(False), kernel(True), ["use", "own", "hold", "sort"])
    assert causes.types["struct state"] == ["member `gone` removed",
                                            "member `a` retyped: `int` -> `long`"]
    assert causes.types["struct moved"] == ["member `a` retyped: `int` -> `long`",
                                            "size 12 -> 16 bytes"]
    assert causes.types["struct order"] == ["members reordered"]
    assert "struct holder" not in causes.types
    assert causes.types["enum mode"] == ["value `AUTO` added (= 3)", "value `SLEEP` removed",
                                         "value `OFF`: 2 -> 0"]
    assert causes.types["size_t"] == ["now `long` (was `int`)"]
    assert causes.symbols == {"use": ["size_t", "struct state"],
                              "own": [extract_symvers.OWN_PROTOTYPE],
                              "hold": ["struct moved"], "sort": ["struct order"]}


def test_the_nearest_cause_and_cycles():
    """A list whose nodes point at each other and at a changed struct two named types away,
    another changed one three away: the nearest is the cause, both are reached."""
    def kernel(new):
        types = BtfTypes()
        int_ = types.int("int", 4)
        far = types.struct("far", 8 if new else 4, [("x", int_, 0)] + [("z", int_, 4)] * new)
        near = types.struct("near", 8 if new else 4, [("y", int_, 0)] + [("z", int_, 4)] * new)
        middle = types.struct("middle", 16, [("f", types.ptr(far), 0)])
        near_ptr, middle_ptr = types.ptr(near), types.ptr(middle)
        node_ptr = types.ptr(types.next_id + 1)
        types.struct("node", 32, [("next", node_ptr, 0), ("prev", node_ptr, 8),
                                  ("n", near_ptr, 16), ("m", middle_ptr, 24)])
        types.func("walk", types.func_proto(int_, [("head", node_ptr)]))
        return types

    causes = causes_of(kernel(False), kernel(True), ["walk"])
    assert causes.symbols == {"walk": ["struct near"]}
    assert causes.reached == {"struct near": 1, "struct far": 1}


def test_only_named_types_are_steps():
    """`const struct a *` is one named type away, `struct holder *` holding a struct b two:
    a is the nearest cause (a pointer and a qualifier are on the way, not steps)."""
    def kernel(new):
        types = BtfTypes()
        int_ = types.int("int", 4)
        a = types.struct("a", 8, [("x", int_, 0)] + [("y", int_, 4)] * new)
        b = types.struct("b", 8, [("x", int_, 0)] + [("y", int_, 4)] * new)
        holder = types.struct("holder", 8, [("inner", b, 0)])
        types.func("use", types.func_proto(int_, [("p", types.ptr(types.const(a))),
                                                  ("h", types.ptr(holder))]))
        return types

    assert causes_of(kernel(False), kernel(True), ["use"]).symbols == {"use": ["struct a"]}
