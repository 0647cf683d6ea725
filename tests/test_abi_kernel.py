"""A real kernel built twice (tests/data/abi-kernel/README.md): 6.1.192, tinyconfig with
modversions and BTF, the second time with a member added in the middle of `struct __kfifo`.
Each build's own Module.symvers (modpost's, of genksyms' CRCs) is the oracle: of what the tool
reads from each vmlinux, of the CRCs --diff says changed; and the one structure changed is
the one cause it must name, with its member, for each of them."""

import json
import lzma
import os

import pytest

import extract_symvers

DATA = os.path.join(os.path.dirname(__file__), "data", "abi-kernel")
CAUSE = "struct __kfifo"
DIFFERENCES = ["member `flags` added at offset 0x8", "size 24 -> 32 bytes"]
# A variable whose CRC changed (its `struct console *` reaches the tty structures): pahole
# 1.24 gives BTF only to per-CPU variables.
NO_BTF_TYPE = {"console_drivers"}


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """{"old" | "new": (the vmlinux's path, its build's Module.symvers lines)}."""
    where = tmp_path_factory.mktemp("abi-kernel")
    found = {}
    for side in ("old", "new"):
        with lzma.open(os.path.join(DATA, side, "vmlinux.xz")) as f:
            (where / side).write_bytes(f.read())
        with lzma.open(os.path.join(DATA, side, "Module.symvers.xz"), "rt") as f:
            found[side] = (str(where / side), f.read().splitlines())
    return found


def crcs(lines):
    """{name: "0x…"} of Module.symvers lines, all of vmlinux."""
    columns = [line.split("\t") for line in lines]
    assert {column[2] for column in columns} == {"vmlinux"}
    return {column[1]: column[0] for column in columns}


@pytest.mark.parametrize("side", ["old", "new"])
def test_each_vmlinux_gives_its_builds_module_symvers(builds, run, side):
    """What the tool reads from each stripped vmlinux is its build's Module.symvers."""
    path, symvers = builds[side]
    result = run(path)
    assert result.status == 0, result.err
    assert len(result.lines) == len(symvers) == 2701
    assert set(result.lines) == set(symvers)


def changed_crcs(builds):
    """{name: (old CRC, new CRC)} of the exports whose CRC the two builds' Module.symvers
    differ in; the same exports on both sides."""
    old, new = (crcs(builds[side][1]) for side in ("old", "new"))
    assert old.keys() == new.keys()
    return {name: (old[name], new[name]) for name in old if old[name] != new[name]}


def test_the_changed_crcs_are_the_builds_and_each_says_the_structure(builds, run):
    """The report: the changed CRCs exactly (no other export named: no other kind of
    change), each with struct __kfifo as its cause (console_drivers: no BTF type), and in
    the why section that structure alone, with the member added and where."""
    changed = changed_crcs(builds)
    # lib/kfifo.c's exports all take a struct __kfifo but __kfifo_max_r(unsigned int,
    # size_t): its CRC did not change, and the report does not name it.  The 45 others
    # include kfifo.h through linux/tty.h (README.md).
    kfifo = {name for name in crcs(builds["old"][1]) if name.startswith("__kfifo_")}
    assert {name for name in changed if name.startswith("__kfifo_")} == \
        kfifo - {"__kfifo_max_r"}
    assert len(changed) == 66 and NO_BTF_TYPE <= changed.keys()
    old, new = builds["old"][0], builds["new"][0]
    result = run("--diff", old, new)
    assert result.status == extract_symvers.EXIT_ABI_CHANGED
    assert result.lines == [
        "--- %s" % old, "+++ %s" % new,
        "why the CRCs changed (the BTF of both kernels): 66 changed, 65 explained, 0 reach "
        "no type that differs, 1 have no BTF type (variables, and functions BTF leaves out)",
        "  %s: %s (the nearest cause of 65 exports, reached by 65)" % (
            CAUSE, "; ".join(DIFFERENCES)),
        "changed CRC: 66 (breaks modules built for the old side)"] + [
        "  %s\t%s -> %s\tvmlinux\t%s" % (name, was, now, "no BTF type" if name in NO_BTF_TYPE
                                         else CAUSE)
        for name, (was, now) in sorted(changed.items())]
    assert "__kfifo_max_r" not in result.out


def test_the_json_says_the_same(builds, run):
    """--json: each changed CRC with [struct __kfifo] (console_drivers: null); the causes,
    that structure's differences, and the pseudo-cause of an export's own prototype, which
    the document always lists (here the cause of none)."""
    changed = changed_crcs(builds)
    result = run("--json", "--diff", builds["old"][0], builds["new"][0])
    assert result.status == extract_symvers.EXIT_ABI_CHANGED
    document = json.loads(result.out)
    assert {(change["kind"], change["symbol"], change["old"]["crc"], change["new"]["crc"])
            for change in document["changes"]} == {
        ("changed CRC", name, was, now) for name, (was, now) in changed.items()}
    assert {change["symbol"]: change["types"] for change in document["changes"]} == {
        name: None if name in NO_BTF_TYPE else [CAUSE] for name in changed}
    assert document["causes"] == {CAUSE: {"differences": DIFFERENCES, "reached_by": 65}}


def test_btf_reaches_more_exports_than_genksyms_changed(builds):
    """In BTF, 1315 of the 2701 exports reach struct __kfifo (through struct task_struct,
    most do); genksyms changed 66 CRCs, those of the files that include kfifo.h, elsewhere
    struct tty_struct being only declared.  Why the CRCs changed is said of changed CRCs:
    BTF cannot say which will."""
    btfs = []
    for side in ("old", "new"):
        with open(builds[side][0], "rb") as f:
            btfs.append(extract_symvers.Btf(extract_symvers.btf_blob(f.read())))
    causes = extract_symvers.crc_causes(*btfs, list(crcs(builds["old"][1])))
    assert causes.reached == {CAUSE: 1315}
    assert changed_crcs(builds).keys() - NO_BTF_TYPE <= {
        name for name, found in causes.symbols.items() if found == [CAUSE]}
