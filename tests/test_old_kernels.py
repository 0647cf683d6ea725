"""Real old vendor kernels (../shared/corpus-old: 2.6.12 -> 4.9, ARM, MIPS le/be, x86) and
kernels built from stable sources for eras no distribution ships (../shared/corpus-built:
arm64 4.14 relocatable, ppc64 big-endian 5.4 with MODULE_REL_CRCS), each against the
Module.symvers written by the same build, with no options:

    python extract_symvers.py DIR/IMAGE
    python extract_symvers.py --modules DIR/modules DIR/IMAGE

EXTRACT_SYMVERS_SHARED names the shared directory (default: ../shared beside the checkout)."""

import json
import os
import struct
import subprocess
import sys

import pytest

from test_corpus import module_vermagic, official_lines, official_vmlinux_lines, tool

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SHARED = os.environ.get("EXTRACT_SYMVERS_SHARED", os.path.join(ROOT, "..", "shared"))
TOOL = os.path.join(ROOT, "extract_symvers.py")


def kernels(corpus):
    top = os.path.join(SHARED, corpus)
    if not os.path.isdir(top):
        return []
    return sorted(name for name in os.listdir(top)
                  if os.path.exists(os.path.join(top, name, "meta.json")))


OLD, BUILT = kernels("corpus-old"), kernels("corpus-built")


def test_corpora_are_there():
    if not os.path.isdir(SHARED):
        pytest.skip("no shared directory at %s (set EXTRACT_SYMVERS_SHARED): the old and "
                    "built kernels are not here to compare with" % SHARED)
    assert len(OLD) >= 9 and len(BUILT) >= 2, (OLD, BUILT)


@pytest.mark.parametrize("name", OLD)
def test_old_kernel(name):
    directory = os.path.join(SHARED, "corpus-old", name)
    meta = json.load(open(os.path.join(directory, "meta.json")))
    ours, _ = tool(os.path.join(directory, meta["image"]))
    official = official_vmlinux_lines(directory)
    assert len(ours) == len(set(ours)) == meta["vmlinux_exports"]
    assert sorted(ours) == sorted(official)
    assert {line.count("\t") + 1 for line in ours} == {meta["symvers_columns"]}


@pytest.mark.parametrize("name", BUILT)
def test_built_kernel_with_modules(name):
    directory = os.path.join(SHARED, "corpus-built", name)
    meta = json.load(open(os.path.join(directory, "meta.json")))
    ours, err = tool("--modules", os.path.join(directory, "modules"),
                     os.path.join(directory, meta["image"]))
    official = official_lines(directory)
    assert len(ours) == len(set(ours))
    assert sorted(ours) == sorted(official)
    assert len([line for line in ours if "\tvmlinux\t" in line]) == \
        meta["module_symvers_vmlinux_lines"]
    assert "vermagic: %s\n" % module_vermagic(os.path.join(directory, "modules")) in err


# Before 2.6.27 the tables are in link order; 2.6.12's Module.symvers has no export type, so
# the split between __ksymtab and __ksymtab_gpl (the words next to __start___ksymtab in
# find_symbol()'s literal pool) is checked by reading the kernel as a 2.6.18 one, against the
# EXPORT_SYMBOL_GPL()s of the 2.6.12 source: kernel/sched.c, kernel/fork.c, drivers/base.
GPL_2_6_12 = ["__wake_up_sync", "idle_cpu", "sched_setscheduler", "mmput", "get_task_mm",
              "kallsyms_lookup_name", "sysfs_create_file", "device_register", "class_register",
              "platform_device_register", "bus_register", "driver_register"]
PLAIN_2_6_12 = ["printk", "__kmalloc", "register_netdev", "schedule", "init_task", "sock_create"]


def test_old_kernel_split_by_its_literal_pool():
    name = "novanta-2.6.12.1"
    if name not in OLD:
        pytest.skip("%s is not in %s" % (name, SHARED))
    sys.path.insert(0, ROOT)
    import extract_symvers
    with open(os.path.join(SHARED, "corpus-old", name, "zImage"), "rb") as f:
        data, _ = extract_symvers.unpack(f.read())
    image = extract_symvers.Image(data, 0xC0008000, 4, "<")
    layout = extract_symvers.layout_for((2, 6, 18))
    refs = next(extract_symvers.find_tables_direct(image, layout, False))
    assert [(r.table.export, r.count) for r in refs] == [("EXPORT_SYMBOL", 1672),
                                                          ("EXPORT_SYMBOL_GPL", 171)]

    def names(ref):     # struct kernel_symbol {unsigned long value; const char *name;}
        for at in range(ref.start, ref.start + 8 * ref.count, 8):
            offset = struct.unpack_from("<I", data, at + 4)[0] - image.base
            yield data[offset:data.index(b"\0", offset)].decode()

    plain, gpl = (set(names(r)) for r in refs)
    assert set(GPL_2_6_12) <= gpl and set(PLAIN_2_6_12) <= plain


@pytest.mark.parametrize("name", OLD)
def test_old_kernel_config(name, tmp_path):
    """--config on the old kernels that embed one (CONFIG_IKCONFIG=y): no official .config
    is at hand, so it is checked against what the same build shows: CONFIG_MODVERSIONS=y
    exactly when Module.symvers has CRCs, and CONFIG_LOCALVERSION in the banner."""
    directory = os.path.join(SHARED, "corpus-old", name)
    meta = json.load(open(os.path.join(directory, "meta.json")))
    target = tmp_path / "config"
    result = subprocess.run([sys.executable, TOOL, "--config", str(target),
                             os.path.join(directory, meta["image"])],
                            capture_output=True, text=True, timeout=600)
    if result.returncode == 5:
        assert "no embedded .config" in result.stderr and not target.exists()
        return
    assert result.returncode == 0, result.stderr
    config = target.read_text().splitlines()
    assert ("CONFIG_MODVERSIONS=y" in config) == (meta["nonzero_crcs"] > 0)
    local = [line.split("=", 1)[1].strip('"') for line in config
             if line.startswith("CONFIG_LOCALVERSION=")]
    assert local and local[0].split(")")[-1] in meta["banner"].split()[2]    # -perf, -v7
