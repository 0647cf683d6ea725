"""kbuild accepts our Module.symvers: an out-of-tree module built against it gets the same
symbol versions as one built against the official file.

With Debian's own headers (linux-headers-<release>, linux-headers-<release>-common,
linux-kbuild-<major.minor>, fetched with apt into the corpus directory and unpacked with
dpkg-deb) for the bookworm amd64 kernel of EXTRACT_SYMVERS_CORPUS, tests/modpost/probe.c,
which uses an EXPORT_SYMBOL, an EXPORT_SYMBOL_GPL and a namespaced symbol of vmlinux, is
built twice: modpost must succeed without a warning both times, and the __versions tables
(symbol -> CRC) of the two modules must be identical."""

import os
import shutil
import struct
import subprocess
import sys

import pytest

from archives import busybox_initramfs
from kobuild import SHDR64, elf64_sections, patched_module
from qemu import apt_download
from corpus import CORPUS, NO_CORPUS, TOOL, corpus_kernels, meta, official_changes

PROBE = os.path.join(os.path.dirname(__file__), "modpost")


def bookworm_amd64():
    for name in corpus_kernels():
        directory = os.path.join(CORPUS, name)
        if meta(directory)["arch"] == "amd64" and meta(directory)["suite"] == "bookworm":
            return directory, meta(directory)
    pytest.fail("no bookworm amd64 kernel in %s" % CORPUS)


@pytest.fixture(scope="module")
def headers():
    """The unpacked headers tree of the bookworm amd64 kernel, made once per corpus."""
    if not CORPUS:
        pytest.skip(NO_CORPUS)
    missing = [t for t in ("apt-get", "dpkg-deb") if not shutil.which(t)]
    if missing:
        pytest.skip("%s not installed: Debian's kernel headers cannot be fetched"
                    % " and ".join(missing))
    kernel, meta = bookworm_amd64()
    release, version = meta["release"], meta["version"]
    flavour = meta["flavor"]
    common = release[:-len(flavour)] + "common"
    series = ".".join(release.split(".")[:2])
    work = os.path.join(CORPUS, ".modpost", release)
    root = os.path.join(work, "root")
    tree = os.path.join(root, "usr", "src", "linux-headers-" + release)
    if not os.path.exists(os.path.join(tree, "Module.symvers")):
        os.makedirs(work, exist_ok=True)
        apt_download(["linux-headers-%s:amd64=%s" % (release, version),
                      "linux-headers-%s:amd64=%s" % (common, version),
                      "linux-kbuild-%s:amd64=%s" % (series, version)], "amd64", work)
        for deb in os.listdir(work):
            if deb.endswith(".deb"):
                subprocess.run(["dpkg-deb", "-x", os.path.join(work, deb), root], check=True)
        makefile = os.path.join(tree, "Makefile")       # include /usr/src/...-common/Makefile
        text = open(makefile).read().replace("/usr/src/", root + "/usr/src/")
        open(makefile, "w").write(text)
    return kernel, meta, tree


def build(tree, symvers, directory, source=PROBE, kcflags=""):
    """Build `source` (tests/modpost/probe.c) in `directory` against `symvers`, with
    KCFLAGS (which genksyms' preprocessing sees too); (make output, versions)."""
    shutil.copytree(source, directory, ignore=shutil.ignore_patterns("abi"))
    shutil.copy(symvers, os.path.join(tree, "Module.symvers"))
    result = subprocess.run(["make", "-C", tree, "M=" + str(directory), "KCFLAGS=" + kcflags,
                             "modules"], capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    built = [name for name in os.listdir(directory) if name.endswith(".ko")]
    return output, versions(os.path.join(directory, built[0]))


def versions(ko):
    """{symbol: crc} of a module's __versions section (struct modversion_info: unsigned
    long crc; char name[64 - sizeof(unsigned long)])."""
    data = open(ko, "rb").read()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1      # 64-bit LE here
    at = elf64_sections(data).get("__versions")
    if at is None:
        return {}
    offset, size = SHDR64.unpack_from(data, at)[4:6]
    table = data[offset:offset + size]
    return {entry[8:].rstrip(b"\0").decode(): struct.unpack_from("<Q", entry)[0]
            for entry in (table[i:i + 64] for i in range(0, len(table), 64))}


def test_modpost_accepts_our_module_symvers(headers, tmp_path):
    kernel, meta, tree = headers
    official = os.path.join(kernel, "Module.symvers")
    ours = tmp_path / "Module.symvers"
    with open(ours, "w") as out:
        subprocess.run([sys.executable, TOOL, os.path.join(kernel, meta["image"])], stdout=out,
                       check=True, stderr=subprocess.DEVNULL)
    official_log, official_versions = build(tree, official, tmp_path / "official")
    our_log, our_versions = build(tree, ours, tmp_path / "ours")
    for log in (official_log, our_log):
        assert "WARNING" not in log and "ERROR" not in log, log
    assert our_versions == official_versions
    assert {"_printk", "platform_bus_type", "dma_buf_get"} <= set(our_versions)



@pytest.fixture(scope="module")
def probes(headers, tmp_path_factory):
    """The probe built against the official file with platform_bus_type's CRC altered,
    against ours, and ours with its struct module 64 bytes larger: (image, {"altered",
    "ours", "padded": directory}, official CRC)."""
    kernel, meta, tree = headers
    work = tmp_path_factory.mktemp("probes")
    image = os.path.join(kernel, meta["image"])
    ours = work / "Module.symvers"
    with open(ours, "w") as out:
        subprocess.run([sys.executable, TOOL, image], stdout=out, check=True,
                       stderr=subprocess.DEVNULL)
    altered = work / "altered.symvers"
    lines = open(os.path.join(kernel, "Module.symvers")).read().splitlines()
    crc = next(int(line.split("\t")[0], 16) for line in lines
               if line.split("\t")[1] == "platform_bus_type")
    altered.write_text("".join(
        ("0x%08x\t%s\n" % (crc ^ 0x10, line.split("\t", 1)[1]))
        if line.split("\t")[1] == "platform_bus_type" else line + "\n" for line in lines))
    build(tree, altered, work / "altered")
    build(tree, ours, work / "ours")
    (work / "padded").mkdir()
    (work / "padded" / "probe.ko").write_bytes(patched_module(
        (work / "ours" / "probe.ko").read_bytes(), this_module_growth=64))
    return image, {"altered": work / "altered", "ours": work / "ours",
                   "padded": work / "padded"}, crc


def check(image, directory):
    result = subprocess.run([sys.executable, TOOL, "--check", str(directory / "probe.ko"),
                             image], capture_output=True, text=True)
    return result.returncode, result.stdout.replace(str(directory) + "/", ""), \
        result.stderr.replace(str(directory) + "/", "")


def test_check_refuses_a_module_built_against_another_crc(probes):
    """--check refuses the altered probe for that symbol, with both CRCs; ours loads."""
    image, built, crc = probes
    assert check(image, built["altered"])[:2] == (
        7, "probe.ko: refused: disagrees about version of symbol platform_bus_type "
           "(module 0x%08x, kernel 0x%08x)\n" % (crc ^ 0x10, crc))
    assert check(image, built["ours"])[:2] == (0, "probe.ko: loads\n")


def test_check_warns_of_a_struct_module_of_another_size(probes):
    """6.1 does not compare the sizes (6.4 does): the padded probe loads, with the warning."""
    image, built, _ = probes
    status, out, err = check(image, built["padded"])
    assert (status, out) == (0, "probe.ko: loads\n")
    assert "probe.ko: its struct module is 960 bytes, the kernel's 896: 6.1 loads it " \
           "without checking" in err


INIT = """#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
for m in altered ours padded; do
    if /bin/busybox insmod /$m.ko; then echo "insmod $m: loaded"; /bin/busybox rmmod probe
    else echo "insmod $m: failed"; fi
done
/bin/busybox dmesg | /bin/busybox grep "probe:"
/bin/busybox poweroff -f
"""


def test_insmod_agrees_with_check(probes, tmp_path):
    """The Debian kernel itself, booted under QEMU with the probes in an initramfs: insmod
    refuses the altered one for the same symbol and loads ours, and (6.1) the padded one,
    as --check says."""
    qemu = shutil.which("qemu-system-x86_64")
    missing = [t for t in ("qemu-system-x86_64", "busybox", "cpio") if not shutil.which(t)]
    if missing:
        pytest.skip("%s not installed (qemu-system-x86, busybox-static, cpio): the kernel "
                    "cannot be booted" % ", ".join(missing))
    image, built, crc = probes
    busybox_initramfs(tmp_path / "initrd", INIT, [(directory / "probe.ko", name + ".ko")
                                                  for name, directory in built.items()])
    # TCG boots it in seconds; KVM is left out: nested, it can hang before the first line
    result = subprocess.run([qemu, "-m", "512", "-nographic", "-no-reboot",
                             "-kernel", image, "-initrd", str(tmp_path / "initrd"),
                             "-append", "console=ttyS0 rdinit=/init panic=-1 quiet"],
                            capture_output=True, text=True, timeout=300)
    console = result.stdout.replace("\r", "")
    assert "insmod altered: failed" in console, console[-3000:]
    assert "probe: disagrees about version of symbol platform_bus_type" in console
    assert "insmod ours: loaded" in console, console[-3000:]
    assert "insmod padded: loaded" in console, console[-3000:]     # 6.1: not compared


def test_diff_of_two_builds_of_one_source(headers, tmp_path):
    """tests/modpost/abi/abi.c built by Debian's kbuild as it is and with one more member in
    the structure its exports take: --diff of the two modules gives exactly the symbols
    whose types reach it as changed CRCs, the changes between the two Module.symvers kbuild
    wrote."""
    kernel, _, tree = headers
    official = os.path.join(kernel, "Module.symvers")
    source = os.path.join(PROBE, "abi")
    build(tree, official, tmp_path / "old", source)
    build(tree, official, tmp_path / "new", source, "-DABI_CHANGED")
    result = subprocess.run([sys.executable, TOOL, "--diff", str(tmp_path / "old" / "abi.ko"),
                             str(tmp_path / "new" / "abi.ko")], capture_output=True, text=True)
    assert result.returncode == 8, result.stderr
    assert result.stdout.splitlines()[2] == "changed CRC: 3 (breaks modules built for the " \
                                            "old side)"
    assert [line.split("\t")[0].strip() for line in result.stdout.splitlines()[3:]] == \
        ["abi_apply", "abi_configure", "abi_ops"]
    kbuild = [(tmp_path / side / "Module.symvers").read_text().splitlines()
              for side in ("old", "new")]
    assert official_changes(*kbuild) == {("changed CRC", name) for name in
                                         ("abi_apply", "abi_configure", "abi_ops")}
