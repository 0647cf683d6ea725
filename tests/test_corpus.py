"""Real Debian kernels against their official Module.symvers.

EXTRACT_SYMVERS_CORPUS names a directory made by ../shared/corpus/fetch-debian-kernels.sh;
every kernel in it is run with the options of its meta.json (found by the script's oracle.py
without this project's code) and with no options at all, on the image as Debian ships it and
on the decompressed image.  The vmlinux lines must equal the official file's exactly."""

import collections
import hashlib
import itertools
import json
import mmap
import os
import re
import shutil
import struct
import subprocess
import sys

import pytest

from corpus import (CORPUS, NO_CORPUS, TOOL, corpus_kernels, each, kernel_image, loaded_lines,
                    meta, module_tree, module_vermagic, modules_package, not_in_corpus,
                    official_changes, official_lines, official_vmlinux_lines, tool)
from kobuild import patched_module
from qemu import (DUMPS, LOAD, LOADED, boot_and_dump, decompressed, insmod_initramfs,
                  module_initramfs)

KERNELS = corpus_kernels()
MODULE_KERNELS = [name for name in KERNELS if module_tree(os.path.join(CORPUS, name))]
WITH_MODULES = each(MODULE_KERNELS, not_in_corpus("kernels with their module trees"))


def test_corpus_is_there():
    if not CORPUS:
        pytest.skip(NO_CORPUS)
    assert KERNELS, "EXTRACT_SYMVERS_CORPUS=%s holds no fetched kernel" % CORPUS


@pytest.mark.parametrize("name,form,options", each(
    list(itertools.product(KERNELS, ["image", "raw"], ["given", "detected"])),
    not_in_corpus("kernels"), width=3))
def test_real_kernel(name, form, options):
    """python extract_symvers.py [OPTIONS] vmlinuz: with the oracle's options, and with none
    (every option detected from the image)."""
    directory = os.path.join(CORPUS, name)
    info = meta(directory)
    image = os.path.join(directory, info["image"] if form == "image" else "vmlinux.raw")
    options = [x for kv in info["options"].items() for x in kv] if options == "given" else []
    ours, _ = tool(*options, image)
    assert len(ours) == len(set(ours)), "duplicate lines"
    assert sorted(ours) == sorted(official_vmlinux_lines(directory))


def complete_symvers(directory, modules):
    """Our complete Module.symvers with --modules `modules`, and the official one, sorted."""
    ours, err = tool("--modules", modules, kernel_image(directory))
    assert len(ours) == len(set(ours)), "duplicate lines"
    return sorted(ours), sorted(official_lines(directory)), err


@pytest.mark.parametrize("name", WITH_MODULES)
def test_real_kernel_with_modules(name):
    """python extract_symvers.py --modules /lib/modules/RELEASE vmlinuz: the complete
    Module.symvers, vmlinux and every module, with no options, equal to the official file as
    a set of lines (modpost's order is its own); the image's vermagic is the modules'."""
    directory = os.path.join(CORPUS, name)
    ours, official, err = complete_symvers(directory, module_tree(directory))
    assert ours == official
    assert "vermagic: %s\n" % module_vermagic(module_tree(directory)) in err


@pytest.mark.parametrize("name", WITH_MODULES)
def test_real_module_tree_loads(name):
    """Every module Debian built with the kernel, --check'ed against its image and tree,
    loads, with no warning: each __versions CRC it recorded equals the export recovered
    here, its struct module is the kernel's size, its relocations its loader's."""
    directory = os.path.join(CORPUS, name)
    modules = module_tree(directory)
    count = sum(f.endswith((".ko", ".ko.xz", ".ko.zst", ".ko.gz"))
                for _, _, files in os.walk(modules) for f in files)
    lines, err = tool("--modules", modules, "--check", modules,
                      kernel_image(directory))
    assert len(lines) == count
    assert [line for line in lines if not re.search(r": loads( after |$)", line)] == []
    assert "%d modules checked: %d load, 0 refused" % (count, count) in err
    assert [line for line in err.splitlines() if line.startswith("warning: /")] == []


@pytest.mark.parametrize("name", WITH_MODULES)
def test_real_modules_from_the_package(name):
    """--modules THE.deb: the package as Debian ships it, read in memory, gives the same
    complete file as the unpacked tree."""
    directory = os.path.join(CORPUS, name)
    deb = modules_package(directory)
    if deb is None:
        pytest.skip("the package holding the modules is not in %s/.debs" % CORPUS)
    ours, official, _ = complete_symvers(directory, deb)
    assert ours == official


def test_real_modules_in_a_vendor_boot_image(tmp_path):
    """The smallest module tree of the corpus, packed as Android does: cpio newc (cpio),
    lz4 legacy (lz4 -l), vendor_boot.img v3 and "v4" by Debian's mkbootimg (29.0.6 writes
    the v3 layout under version 4, without a ramdisk table; a real v4 table is a fixture's,
    tests/test_archives.py)."""
    if not MODULE_KERNELS:
        pytest.skip(not_in_corpus("kernels with their module trees"))
    missing = [t for t in ("cpio", "lz4", "mkbootimg") if not shutil.which(t)]
    if missing:
        pytest.skip("%s not installed (cpio, lz4, mkbootimg)" % ", ".join(missing))

    def size(name):
        top = os.path.join(CORPUS, name, "lib")
        return sum(os.lstat(os.path.join(d, f)).st_size for d, _, fs in os.walk(top) for f in fs)

    directory = os.path.join(CORPUS, min(MODULE_KERNELS, key=size))
    files = subprocess.run(["find", "lib"], cwd=directory, capture_output=True,
                           check=True).stdout
    with open(tmp_path / "ramdisk.cpio", "wb") as out:
        subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=directory, input=files,
                       stdout=out, check=True)
    subprocess.run(["lz4", "-l", "-q", str(tmp_path / "ramdisk.cpio"),
                    str(tmp_path / "ramdisk.lz4")], check=True)
    (tmp_path / "board.dtb").write_bytes(b"\xd0\x0d\xfe\xed" + bytes(60))   # required
    for version in (3, 4):
        image = tmp_path / ("vendor_boot-v%d.img" % version)
        subprocess.run(["mkbootimg", "--header_version", str(version), "--vendor_boot",
                        str(image), "--vendor_ramdisk", str(tmp_path / "ramdisk.lz4"),
                        "--dtb", str(tmp_path / "board.dtb")],
                       check=True, capture_output=True)
        ours, official, _ = complete_symvers(directory, str(image))
        assert ours == official, version


# the guests QEMU runs, each with modules of its own tree loaded: (kernel, KASLR, QEMU's
# vmcoreinfo device: the dumps carry the VMCOREINFO note, words of the kernel's command
# line); armhf has no KASLR, Debian's riscv64 none either; QEMU 7.2's riscv64 virt machine
# refuses the vmcoreinfo device ("requires fw_cfg with DMA"), its s390x has none, its pseries
# machine none either ("not a valid device model name").  s390x's KASLR needs the CPACF
# KMC-PRNG function, which QEMU 7.2's TCG lacks ("KASLR disabled: CPU has no PRNG", with or
# without nokaslr): its kernel is not randomized here; Debian's ppc64el and loong64 have no
# KASLR; loong64 boots under bookworm-backports' QEMU 10 (qemu.NEWER_QEMU), whose dumps of it
# carry no VMCOREINFO note with the device either.  Debian's arm64 6.12 is built for 52-bit
# VA with 4 KiB pages (CONFIG_ARM64_LPA2: five levels), which a CPU with FEAT_LPA2 gives it:
# QEMU's max (its cortex-a57 has 48 bits)
QEMU_OPTIONS = {"arm64-6.12.": ["-cpu", "max"]}
GUESTS_DUMPED = {"amd64-6.1.": [(True, True), (False, False)], "amd64-7.": [(False, True)],
                 "arm64-6.1.": [(True, False), (False, True)], "arm64-6.12.": [(True, True)],
                 "i386-6.1.": [(True, False)],
                 "armhf-6.1.": [(False, False)], "riscv64-6.12.": [(False, False)],
                 "riscv64-7.": [(False, False), (False, False, "no4lvl")],
                 "s390x-6.1.": [(False, False)], "s390x-7.": [(False, False)],
                 "ppc64el-6.1.": [(False, False), (False, False, "disable_radix")],
                 "ppc64el-7.": [(False, False), (False, False, "disable_radix")],
                 "loong64-7.": [(False, False)]}
# the tables each kernel chose under QEMU 7.2, and where its root comes from: riscv64's mode
# (no4lvl, 6.4+: Sv39; 7.x's VMCOREINFO says satp, 6.12's only swapper_pg_dir); s390x with
# 512 MiB: a region-third table (4 TiB), its ASCE in CR13 of the CPU notes (CR1 a user
# process's), the modules at its top (6.1) or below the kernel (7.x); POWER9's MMU (radix
# unless disable_radix: then the hash MMU's Linux tables; Debian's ppc64el has 64 KiB pages
# in bookworm, 4 KiB ones from trixie); loong64's 16 KiB pages, 3 levels
GUEST_TABLES = {("arm64-6.12.", ""): "arm64 4 KiB pages, 52-bit VA from VMCOREINFO "
                                    "SYMBOL(swapper_pg_dir)",
                ("riscv64-6.12.", ""): "RISC-V Sv57 from VMCOREINFO SYMBOL(swapper_pg_dir)",
                ("riscv64-7.", ""): "RISC-V Sv48 from VMCOREINFO's satp",
                ("riscv64-7.", "no4lvl"): "RISC-V Sv39 from VMCOREINFO's satp",
                ("s390x-6.1.", ""): "s390x DAT region-third table from CR13 of the dump's CPU "
                                    "note",
                ("s390x-7.", ""): "s390x DAT region-third table from CR13 of the dump's CPU "
                                  "note",
                ("ppc64el-6.1.", ""): "Book3S-64 radix, 64 KiB pages from VMCOREINFO "
                                      "SYMBOL(swapper_pg_dir)",
                ("ppc64el-6.1.", "disable_radix"): "Book3S-64 hash MMU's Linux tables, 64 KiB "
                                                   "pages from VMCOREINFO SYMBOL(swapper_pg_dir)",
                ("ppc64el-7.", ""): "Book3S-64 radix, 4 KiB pages from VMCOREINFO "
                                    "SYMBOL(swapper_pg_dir)",
                ("ppc64el-7.", "disable_radix"): "Book3S-64 hash MMU's Linux tables, 4 KiB "
                                                 "pages from VMCOREINFO SYMBOL(swapper_pg_dir)",
                ("loong64-7.", ""): "LoongArch 16 KiB pages, 3 levels from VMCOREINFO "
                                    "SYMBOL(swapper_pg_dir)"}
DUMPED = [pytest.param(name, kaslr, note, "".join(words),
                       id="%s-%s%s%s" % (name, "kaslr" if kaslr else "nokaslr",
                                         "-vmcoreinfo" if note else "",
                                         "".join("-" + w for w in words)))
          for name in MODULE_KERNELS for prefix, variants in GUESTS_DUMPED.items()
          if name.startswith(prefix) for kaslr, note, *words in variants]
# magic, version 1, flags 0, hdr_len 24: little- and big-endian (s390x)
BTF_HEADERS = (b"\x9f\xeb\x01\x00\x18\x00\x00\x00", b"\xeb\x9f\x01\x00\x00\x00\x00\x18")


@pytest.mark.parametrize("name,kaslr,note,words", each(DUMPED, not_in_corpus(
    "the kernels booted here (%s) with their module trees"
    % ", ".join(prefix + "*" for prefix in GUESTS_DUMPED)), width=4))
def test_real_qemu_memory_dumps(name, kaslr, note, words, tmp_path):
    """The kernel booted under QEMU (TCG) with an initramfs that insmods modules of its own
    tree, dumped by the monitor in each of dump-guest-memory's formats: each dump gives, with
    no options, the official lines of vmlinux and of every module loaded (named as the kernel
    names them; without the VMCOREINFO note, arm64's page tables from the kernel's own copy);
    with --modules and the tree, the official file, every loaded module agreeing with its file.
    With every BTF magic in the dump overwritten, the vote places struct module's export
    tables and gives the same."""
    directory = os.path.join(CORPUS, name)
    loaded = module_initramfs(tmp_path / "initrd", module_tree(directory), LOAD,
                              meta(directory)["arch"])
    dumps = boot_and_dump(directory, tmp_path, until=LOADED, initrd=tmp_path / "initrd",
                          append=" ".join(w for w in ("" if kaslr else "nokaslr", words) if w),
                          options=(["-device", "vmcoreinfo"] if note else []) + next(
                              (o for prefix, o in QEMU_OPTIONS.items()
                               if name.startswith(prefix)), []))
    console = (tmp_path / "console").read_bytes()
    assert all(b"insmod %s: 0" % name.encode() in console for name in loaded), console[-3000:]
    assert b"%s: %d" % (LOADED, len(loaded)) in console
    expected = sorted(loaded_lines(directory, loaded))
    for dump, _ in DUMPS:
        ours, err = tool(dumps[dump])
        assert sorted(ours) == expected, dump
        assert "%d modules on the module list" % len(loaded) in err, dump
    ours, _ = tool("--modules", module_tree(directory), dumps["kdump-zlib"])
    assert sorted(ours) == sorted(official_lines(directory))     # each loaded one agreed
    # --btf: what the booted kernel's /sys/kernel/btf/vmlinux holds (its sha256 said by the
    # guest), out of the image as Debian ships it and out of each dump
    guest_btf = re.search(rb"btf: ([0-9a-f]{64}) ", console)
    assert bool(guest_btf) == has_btf(directory)
    for source in [kernel_image(directory)] + [dumps[dump] for dump, _ in DUMPS] \
            if guest_btf else ():
        tool("--btf", tmp_path / "vmlinux.btf", source)
        with open(tmp_path / "vmlinux.btf", "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest().encode() == guest_btf.group(1), source
    if note:
        assert ("KERNELOFFSET=0," in err) != kaslr
    elif name.startswith(("arm64-", "riscv64-", "s390x-", "ppc64el-", "loong64-")):
        assert "no VMCOREINFO note: the kernel's own copy found" in err
    for (prefix, on), tables in GUEST_TABLES.items():
        if name.startswith(prefix) and words == on:
            assert "page tables: %s" % tables in err
    if "export tables from BTF" in err:
        with open(dumps["paging"], "r+b") as f, mmap.mmap(f.fileno(), 0) as view:
            for header in BTF_HEADERS:
                at = view.find(header)
                while at >= 0:
                    view[at:at + 4] = b"\0\0\0\0"
                    at = view.find(header, at + 4)
        ours, err = tool(dumps["paging"])
        assert sorted(ours) == expected
        assert "export tables from a vote of the %d modules" % len(loaded) in err


def has_btf(directory):
    """Whether the kernel's .config says CONFIG_DEBUG_INFO_BTF=y."""
    with open(os.path.join(directory, "config")) as f:
        return "CONFIG_DEBUG_INFO_BTF=y\n" in f.read()


@pytest.mark.parametrize("name", each(KERNELS, not_in_corpus("the Debian kernels")))
def test_btf(name, tmp_path):
    """--btf out of the image as Debian ships it: a blob bpftool reads back as C (where it is
    installed) exactly where the .config says CONFIG_DEBUG_INFO_BTF=y, else exit 5."""
    directory = os.path.join(CORPUS, name)
    target = tmp_path / "vmlinux.btf"
    if not has_btf(directory):
        _, err = tool("--btf", target, kernel_image(directory), status=5)
        assert "built without CONFIG_DEBUG_INFO_BTF" in err and not target.exists()
        return
    tool("--btf", target, kernel_image(directory))
    if shutil.which("bpftool"):
        header = subprocess.run(["bpftool", "btf", "dump", "file", str(target), "format", "c"],
                                check=True, capture_output=True, text=True).stdout
        assert re.search(r"^struct module \{$", header, re.M)


CONTAINED = [n for n in KERNELS if n.startswith(("armhf-", "arm64-"))]


@pytest.mark.parametrize("name", each(CONTAINED, not_in_corpus("armhf and arm64 kernels")))
def test_real_kernel_in_containers(name, tmp_path):
    """The decompressed image with lz4 -l in a page-2048 boot.img v2 (mkbootimg), the image
    as shipped in a multi-file uImage (mkimage -T multi) and at 16 MiB in a 128 MiB flash
    dump of random bytes: each exact with no options."""
    missing = [t for t in ("lz4", "mkbootimg", "mkimage") if not shutil.which(t)]
    if missing:
        pytest.skip("%s not installed (lz4, mkbootimg, u-boot-tools)" % ", ".join(missing))
    directory = os.path.join(CORPUS, name)
    image = kernel_image(directory)
    subprocess.run(["lz4", "-l", "-q", "-f", os.path.join(directory, "vmlinux.raw"),
                    str(tmp_path / "Image.lz4")], check=True)
    (tmp_path / "ramdisk").write_bytes(b"\x1f\x8b" + bytes(100))
    (tmp_path / "dtb").write_bytes(b"\xd0\x0d\xfe\xed" + bytes(60))
    subprocess.run(["mkbootimg", "--kernel", str(tmp_path / "Image.lz4"), "--ramdisk",
                    str(tmp_path / "ramdisk"), "--dtb", str(tmp_path / "dtb"),
                    "--header_version", "2", "--pagesize", "2048", "-o",
                    str(tmp_path / "boot.img")], check=True, capture_output=True)
    subprocess.run(["mkimage", "-A", "arm64" if name.startswith("arm64") else "arm", "-O",
                    "linux", "-T", "multi", "-C", "none", "-a", "0", "-e", "0", "-n", name,
                    "-d", "%s:%s" % (image, tmp_path / "ramdisk"), str(tmp_path / "multi")],
                   check=True, capture_output=True)
    dump = bytearray(os.urandom(128 << 20))
    with open(image, "rb") as f:
        shipped = f.read()
    dump[16 << 20:(16 << 20) + len(shipped)] = shipped
    (tmp_path / "flash.bin").write_bytes(bytes(dump))
    official = sorted(official_vmlinux_lines(directory))
    for container in ("boot.img", "multi", "flash.bin"):
        ours, _ = tool(tmp_path / container)
        assert sorted(ours) == official, container


def _named(prefix):
    return next((name for name in MODULE_KERNELS if name.startswith(prefix)), None)


def _pair(old, new):
    """The kernels named `old*` and `new*`, or a case skipped for their absence."""
    found = _named(old), _named(new)
    missing = pytest.mark.skip(reason=not_in_corpus("%s* and %s* with their module trees"
                                                    % (old, new)))
    return pytest.param(*found, id="%s..%s" % (old, new), marks=() if all(found) else missing)


# one series from two suites (bookworm-backports, trixie), and across series
PAIRS = [_pair("amd64-6.12.95", "amd64-6.12.117"), _pair("arm64-6.12.95", "arm64-6.12.117"),
         _pair("amd64-6.1.", "amd64-6.12.117")]


def _image(name):
    directory = os.path.join(CORPUS, name)
    return kernel_image(directory)


def _changes(*args):
    lines, _ = tool("--diff", *args, "--json", status=None)
    return {(change["kind"], change["symbol"]) for change in json.loads("".join(lines))["changes"]}


@pytest.mark.parametrize("old,new", PAIRS)
def test_real_kabi_report(old, new, tmp_path):
    """--diff OLD NEW from the two images equals the changes between the vmlinux lines of
    the official files, computed here; from the two complete files written with --modules,
    the changes between the two official files."""
    official = [official_lines(os.path.join(CORPUS, name)) for name in (old, new)]
    vmlinux = [[line for line in lines if line.split("\t")[2] == "vmlinux"]
               for lines in official]
    assert _changes(_image(old), _image(new)) == official_changes(*vmlinux)
    complete = []
    for name in (old, new):
        complete.append(tmp_path / (name + ".symvers"))
        tool("--modules", module_tree(os.path.join(CORPUS, name)), "-o", complete[-1],
             _image(name))
    assert _changes(*complete) == official_changes(*official)


@pytest.mark.parametrize("old,new", PAIRS[:1])
def test_real_kabi_check(old, new):
    """--diff OLD NEW --check OLD-TREE: the modules built for OLD that NEW refuses are
    those --check OLD-TREE against NEW refuses (6.12.95~bpo to 6.12.117: every one, as
    module_layout's CRC changed)."""
    tree = module_tree(os.path.join(CORPUS, old))
    lines, _ = tool("--diff", _image(old), _image(new), "--check", tree, "--json", status=None)
    refused = {m["path"] for m in json.loads("".join(lines))["modules"] if not m["loads"]}
    lines, _ = tool("--check", tree, _image(new), status=None)
    assert refused == {line.split(": refused: ")[0] for line in lines if ": refused: " in line}
    assert refused and ("changed CRC", "module_layout") in _changes(_image(old), _image(new))


def _bpftool_btf(image, tmp_path, name):
    """(C declarations, the raw listing) bpftool reads from --btf's blob of `image`."""
    tool("--btf", tmp_path / name, image)
    return [subprocess.run(["bpftool", "btf", "dump", "file", str(tmp_path / name), *form],
                           check=True, capture_output=True, text=True).stdout
            for form in (["format", "c"], [])]


def _declaration(header, key):
    """The C declaration of a named type in bpftool's header: a struct's, union's or enum's
    block, a typedef's line (None: not there)."""
    if key.startswith(("struct ", "union ", "enum ")):
        found = re.search(r"^%s \{\n.*?^\};$" % re.escape(key), header, re.M | re.S)
    else:       # of a type named there, of a prototype, or of an anonymous struct's block
        found = re.search(r"^typedef [^\n]*(\b%s;|\(\*%s\)\(|\b%s\()[^\n]*$" % ((key,) * 3),
                          header, re.M) or \
            re.search(r"^typedef \w+ \{\n(?:(?!^\}).*\n)*?^\} %s;$" % key, header, re.M)
    return found and found.group()


@pytest.mark.parametrize("old,new", PAIRS)
def test_why_real_crcs_changed(old, new, tmp_path):
    """--diff --json between two Debian kernels: every type named as a cause is declared
    otherwise in the two BTFs as bpftool reads them (its C header of each side); every
    changed CRC of a symbol bpftool lists as a FUNC or VAR on either side is explained or said
    to have no BTF difference, every other has no BTF type."""
    if not shutil.which("bpftool"):
        pytest.skip("bpftool is not installed (Debian's bpftool)")
    lines, _ = tool("--diff", _image(old), _image(new), "--json", status=None)
    document = json.loads("".join(lines))
    sides = [_bpftool_btf(_image(name), tmp_path, name + ".btf") for name in (old, new)]
    described = [set(re.findall(r"^\[\d+\] (?:FUNC|VAR) '([^']+)'", raw, re.M))
                 for _, raw in sides]
    named = set()
    for change in document["changes"]:
        if change["kind"] == "changed CRC" and change["new"]["module"] == "vmlinux":
            has_btf = any(change["symbol"] in names for names in described)
            assert (change["types"] is not None) == has_btf, change
            named.update(change["types"] or ())
    named.discard("(its own prototype)")
    assert named
    for key in sorted(named):
        declared = [_declaration(header, key) for header, _ in sides]
        assert declared[0] != declared[1], key


REFUSALS = [n for n in MODULE_KERNELS if n.startswith("amd64-7.")]


@pytest.mark.parametrize("name", each(REFUSALS, not_in_corpus("amd64 7.x with its module tree")))
def test_real_refusals_under_qemu(name, tmp_path):
    """A real module of the tree, its struct module made 64 bytes larger, or its first
    relocation of a type x86-64's loader does not apply (R_X86_64_GOT32): --check refuses
    each in the kernel's words, the kernel booted under QEMU refuses each with them, and
    loads the module as built."""
    directory = os.path.join(CORPUS, name)
    built = decompressed(os.path.join(module_tree(directory), "kernel", "drivers", "net",
                                      "dummy.ko.xz"))
    files = {"size": patched_module(built, this_module_growth=64),
             "rela": patched_module(built, relocation_type=3), "dummy": built}
    reasons = {"size": ".gnu.linkonce.this_module section size must match the kernel's "
                       "built struct module size at run time",
               "rela": "dummy: Unknown rela relocation: 3"}
    for file, data in files.items():
        (tmp_path / (file + ".ko")).write_bytes(data)
    lines, _ = tool(*(arg for file in files for arg in ("--check", tmp_path / (file + ".ko"))),
                    _image(name), status=7)
    verdicts = {line.split(": ", 1)[0].rsplit("/", 1)[-1][:-3]: line.split(": ", 1)[1]
                for line in lines}
    assert verdicts["dummy"] == "loads"
    for file, reason in reasons.items():
        assert verdicts[file].startswith("refused: " + reason), verdicts[file]
    insmod_initramfs(tmp_path / "initrd", files, meta(directory)["arch"])
    boot_and_dump(directory, tmp_path, until=LOADED, initrd=tmp_path / "initrd", dumps=())
    console = (tmp_path / "console").read_text(errors="replace")
    assert "insmod dummy: 0" in console
    for file, reason in reasons.items():
        assert "insmod %s: 8" % file in console and reason in console, file    # ENOEXEC


def test_real_vermagic_of_another_release():
    """The real 6.1 armhf usbserial.ko against the 7.2 armhf kernel: refused, the release
    named as what differs."""
    old, new = _named("armhf-6.1."), _named("armhf-7.")
    if not (old and new):
        pytest.skip(not_in_corpus("armhf 6.1 and 7.x with their module trees"))
    module = os.path.join(module_tree(os.path.join(CORPUS, old)), "kernel", "drivers", "usb",
                          "serial", "usbserial.ko")
    lines, _ = tool("--check", module, _image(new), status=7)
    assert "the release: module '6.1.0-50-armmp', kernel '7.2.13+deb14-armmp' (another " \
           "version of the kernel)" in lines[0]


MODULE_AREA = 0xFFFFFFFFA0000000     # x86-64's module mapping space, to the fixmap


def _phdrs(view):
    """(file offset of each ELF64 program header, its fields: type, flags, offset, vaddr,
    paddr, filesz) of an ELF core (e_phnum PN_XNUM: the count in section header 0)."""
    phoff, = struct.unpack_from("<Q", view, 32)
    phentsize, phnum = struct.unpack_from("<HH", view, 54)
    if phnum == 0xFFFF:
        shoff, = struct.unpack_from("<Q", view, 40)
        phnum, = struct.unpack_from("<I", view, shoff + 44)
    return [(phoff + i * phentsize, struct.unpack_from("<IIQQQQ", view, phoff + i * phentsize))
            for i in range(phnum)]


def _module_segments(view, offset):
    """(program header's offset, its fields) of each PT_LOAD of module memory holding a file
    offset (QEMU's -p dumps: a physical page's bytes once, each mapping of it a segment)."""
    return [(at, p) for at, p in _phdrs(view)
            if p[0] == 1 and p[2] <= offset < p[2] + p[5] and p[3] >= MODULE_AREA]


def _damaged_run(path, truth, loaded, status):
    """The tool on a damaged dump, exiting with one of `status`: every line printed a true
    one, each once; every loaded module missing from its lines named on stderr (or a gap of
    the list said)."""
    result = subprocess.run([sys.executable, TOOL, str(path)], capture_output=True, text=True,
                            timeout=1200)
    assert result.returncode in status, result.stderr[-3000:]
    ours, err = result.stdout.splitlines(), result.stderr
    assert len(ours) == len(set(ours)) and set(ours) <= truth, set(ours) - truth
    printed = {line.split("\t")[2] for line in ours}
    exporting = {line.split("\t")[2] for line in truth} - {"vmlinux"}
    unnamed = [name for name in exporting - printed if name not in err]
    assert len(unnamed) <= err.count("warning: the module at ") or \
        "the module list cannot be read whole" in err, (unnamed, err)
    return ours, err


@pytest.mark.parametrize("name", each([n for n in MODULE_KERNELS if n.startswith("amd64-6.1.")],
                                      not_in_corpus("an amd64 6.1 kernel with its module tree")))
def test_damaged_real_qemu_dump(name, tmp_path):
    """A real QEMU paging dump (-p) damaged: a module's CRC table not in the dump (its
    segment made PT_NULL), a module's list `next` to itself, the file truncated to half.
    Never a made-up line, the module(s) named, the others printed."""
    directory = os.path.join(CORPUS, name)
    loaded = module_initramfs(tmp_path / "initrd", module_tree(directory), LOAD,
                              meta(directory)["arch"])
    path = boot_and_dump(directory, tmp_path, until=LOADED, initrd=tmp_path / "initrd",
                         append="nokaslr", dumps=(("paging", "-p "),))["paging"]
    truth = set(loaded_lines(directory, loaded))
    by_module = collections.defaultdict(list)
    for line in truth:
        crc, symbol, module, kind = line.split("\t")[:4]
        by_module[module, kind].append((symbol.encode(), int(crc, 16)))
    # a module's EXPORT_SYMBOL_GPL CRCs, in its table's (name) order, found in the file
    (victim, kind), exports = max(((key, e) for key, e in by_module.items()
                                   if key[0] != "vmlinux" and len(e) >= 4),
                                  key=lambda item: len(item[1]))
    crcs = b"".join(struct.pack("<I", crc) for _, crc in sorted(exports))
    with open(path, "r+b") as f, mmap.mmap(f.fileno(), 0) as view:
        # its struct module (state, list, name) in module memory: (file offset, address)
        record = re.compile(rb"(?s)[\x00-\x03]\x00{7}(.{8})(.{8})%s\x00" % re.escape(
            victim.encode()))
        records = [(m.start(), segment[3] + m.start() - segment[2])
                   for m in record.finditer(view) if m.start() % 8 == 0
                   and struct.unpack("<Q", m.group(1))[0] >> 63
                   for _, segment in _module_segments(view, m.start())]
        assert len(records) == 1, (victim, records)
        # its CRCs in module memory (the .ko read by insmod may be in the page cache too)
        found = [at for m in re.finditer(re.escape(crcs), view)
                 for at, _ in _module_segments(view, m.start())]
        assert len(found) == 1, (victim, found)
        view[found[0]:found[0] + 4] = struct.pack("<I", 0)      # PT_NULL: not in the dump
        view.flush()
        ours, err = _damaged_run(path, truth, loaded, (9,))
        assert "warning: %s cannot be read whole" % victim in err or \
            "warning: the module at %#x cannot be read whole" % records[0][1] in err, err
        view[found[0]:found[0] + 4] = struct.pack("<I", 1)
        # its list `next` to itself: walked around, every module printed
        (at, address), = records
        view[at + 8:at + 16] = struct.pack("<Q", address + 8)
        view.flush()
        ours, err = _damaged_run(path, truth, loaded, (0,))
        assert sorted(ours) == sorted(truth)
        assert "the module list is broken" in err
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    _, err = _damaged_run(path, truth, loaded, (0, 9))
    assert "the ELF core dump is truncated" in err
