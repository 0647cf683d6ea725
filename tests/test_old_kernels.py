"""Real old vendor kernels (../shared/corpus-old: 2.6.12 -> 4.9, ARM, MIPS le/be, x86) and
kernels built from stable sources for eras no distribution ships (../shared/corpus-built:
arm64 4.14 relocatable, ppc64 big-endian 5.4 with MODULE_REL_CRCS, x86-64 7.2 with
MODVERSIONS), each against the Module.symvers written by the same build, with no options:

    python extract_symvers.py DIR/IMAGE
    python extract_symvers.py --modules DIR/modules DIR/IMAGE
"""

import bz2
import lzma
import os
import re
import struct
import zlib

import pytest

import extract_symvers
from corpus import (CORPUS, SHARED, corpus_kernels, each, kernel_image, meta, module_vermagic,
                    not_in_corpus, not_shared, official_lines, official_vmlinux_lines,
                    shared_kernels, tool)

OLD, BUILT = shared_kernels("corpus-old"), shared_kernels("corpus-built")


def test_corpora_are_there():
    if not os.path.isdir(SHARED):
        pytest.skip(not_shared("corpus-old"))
    assert len(OLD) >= 9 and len(BUILT) >= 3, (OLD, BUILT)


STDERR_LINES = 12


@pytest.mark.parametrize("corpus", ["corpus-old", "corpus-built", "debian"])
def test_what_is_said_fits_a_screen(corpus):
    """python extract_symvers.py IMAGE on every kernel of a corpus: at most a dozen lines on
    stderr, what was found (no candidate tried, no sentence twice)."""
    if corpus == "debian":
        top, names = CORPUS, corpus_kernels()
        if not names:
            pytest.skip(not_in_corpus("the Debian kernels"))
    else:
        top, names = os.path.join(SHARED, corpus), shared_kernels(corpus)
        if not names:
            pytest.skip(not_shared(corpus, "the %s kernels" % corpus))
    said = {}
    for name in names:
        _, err = tool(kernel_image(os.path.join(top, name)))
        lines = err.splitlines()
        assert len(lines) == len(set(lines)), (name, err)
        said[name] = len(lines)
    assert max(said.values()) <= STDERR_LINES, said


@pytest.mark.parametrize("name", each(OLD, not_shared("corpus-old", "the old kernels")))
def test_old_kernel(name):
    directory = os.path.join(SHARED, "corpus-old", name)
    ours, _ = tool(kernel_image(directory))
    assert len(ours) == len(set(ours)) == meta(directory)["vmlinux_exports"]
    assert sorted(ours) == sorted(official_vmlinux_lines(directory))
    assert {line.count("\t") + 1 for line in ours} == {meta(directory)["symvers_columns"]}


@pytest.mark.parametrize("name", each(BUILT, not_shared("corpus-built", "the built kernels")))
def test_built_kernel_with_modules(name):
    directory = os.path.join(SHARED, "corpus-built", name)
    ours, err = tool("--modules", os.path.join(directory, "modules"),
                     kernel_image(directory))
    assert len(ours) == len(set(ours))
    assert sorted(ours) == sorted(official_lines(directory))
    assert len([line for line in ours if "\tvmlinux\t" in line]) == \
        meta(directory)["module_symvers_vmlinux_lines"]
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
        pytest.skip(not_shared("corpus-old", name))
    with open(os.path.join(SHARED, "corpus-old", name, "zImage"), "rb") as f:
        data, _ = extract_symvers.unpack(f.read())
    image = extract_symvers.Image(data, 0xC0008000, 4, "<")
    fmt = extract_symvers.TableFormat(image, extract_symvers.layout_for((2, 6, 18)), False)
    refs = next(extract_symvers.find_tables_direct(fmt))
    assert [(r.export_type.name, r.count) for r in refs] == [("EXPORT_SYMBOL", 1672),
                                                              ("EXPORT_SYMBOL_GPL", 171)]

    def names(ref):     # struct kernel_symbol {unsigned long value; const char *name;}
        for at in range(ref.start, ref.start + 8 * ref.count, 8):
            offset = struct.unpack_from("<I", data, at + 4)[0] - image.base
            yield data[offset:data.index(b"\0", offset)].decode()

    plain, gpl = (set(names(r)) for r in refs)
    assert set(GPL_2_6_12) <= gpl and set(PLAIN_2_6_12) <= plain


def ikconfig_in(path):
    """Whether the kernel in `path` embeds its .config (IKCFG_ST and a gzip stream), found
    as scripts/extract-ikconfig does, by the standard library alone: the first gzip, bzip2
    or lzma stream of the file that decompresses to more than 1 MiB is the kernel."""
    with open(path, "rb") as f:
        data = f.read()
    for m in re.finditer(rb"\x1f\x8b\x08|BZh|[\x5d\x6d]\x00\x00", data):
        try:
            if m.group() == b"\x1f\x8b\x08":
                image = zlib.decompressobj(31).decompress(data[m.start():], 200 << 20)
            elif m.group() == b"BZh":
                image = bz2.BZ2Decompressor().decompress(data[m.start():])
            else:
                image = lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(data[m.start():],
                                                                             200 << 20)
        except (zlib.error, OSError, lzma.LZMAError, EOFError):
            continue
        if len(image) > 1 << 20:
            return b"IKCFG_ST\x1f\x8b" in image
    raise AssertionError("no kernel found in %s" % path)


@pytest.mark.parametrize("name", each(OLD, not_shared("corpus-old", "the old kernels")))
def test_old_kernel_config(name, tmp_path):
    """--config on the old kernels: exit 5 and no file when the kernel embeds none (found as
    extract-ikconfig finds it); otherwise the .config, checked against what the same build
    shows: CONFIG_MODVERSIONS=y exactly when Module.symvers has CRCs, CONFIG_LOCALVERSION in
    the banner."""
    directory = os.path.join(SHARED, "corpus-old", name)
    image = kernel_image(directory)
    target = tmp_path / "config"
    if not ikconfig_in(image):
        _, err = tool("--config", target, image, status=5)
        assert "no embedded .config" in err and not target.exists()
        return
    tool("--config", target, image)
    config = target.read_text().splitlines()
    assert ("CONFIG_MODVERSIONS=y" in config) == (meta(directory)["nonzero_crcs"] > 0)
    local = [line.split("=", 1)[1].strip('"') for line in config
             if line.startswith("CONFIG_LOCALVERSION=")]
    assert local and local[0].split(")")[-1] in meta(directory)["banner"].split()[2]


def test_four_old_kernels_embed_their_config():
    """The count the closing notes give, so that the test above cannot pass by skipping."""
    if len(OLD) < 9:
        pytest.skip(not_shared("corpus-old", "the old kernels"))
    assert sum(ikconfig_in(os.path.join(SHARED, "corpus-old", name,
                                        meta(os.path.join(SHARED, "corpus-old", name))["image"]))
               for name in OLD) == 4
