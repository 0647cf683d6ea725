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
from kobuild import SHDR64, elf64_sections, patched_module, sign, signing_key
from qemu import apt_download
from corpus import CORPUS, NO_CORPUS, TOOL, corpus_kernels, meta, not_in_corpus, \
    official_changes

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


# what --check and the kernel say of a module not signed by the kernel's key (these are built
# here, or edited and their signature taken off): the kernel holds a key and enforces nothing
UNSIGNED = "module verification failed: signature and/or required key missing - tainting " \
    "kernel"


def test_check_refuses_a_module_built_against_another_crc(probes):
    """--check refuses the altered probe for that symbol, with both CRCs; ours loads."""
    image, built, crc = probes
    assert check(image, built["altered"])[:2] == (
        7, "probe.ko: refused: disagrees about version of symbol platform_bus_type "
           "(module 0x%08x, kernel 0x%08x)\n" % (crc ^ 0x10, crc))
    assert check(image, built["ours"])[:2] == (0, "probe.ko: loads, tainting: %s\n" % UNSIGNED)


def test_check_warns_of_a_struct_module_of_another_size(probes):
    """6.1 does not compare the sizes (6.4 does): the padded probe loads, with the warning."""
    image, built, _ = probes
    status, out, err = check(image, built["padded"])
    assert (status, out) == (0, "probe.ko: loads, tainting: %s\n" % UNSIGNED)
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


# --- A phone's vendor modules, and a rebuilt module beside its tree ------------------------

PHONE_INIT = """#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox insmod /usb-common.ko && /bin/busybox insmod /usbcore.ko
for m in usbserial-altered usbserial; do
    if /bin/busybox insmod /$m.ko; then echo "insmod $m: loaded"; /bin/busybox rmmod usbserial
    else echo "insmod $m: failed"; fi
done
for m in older-release other-vermagic arm64; do
    if /bin/busybox insmod /$m.ko; then echo "insmod $m: loaded"; /bin/busybox rmmod crc_itu_t
    else echo "insmod $m: failed"; fi
done
/bin/busybox dmesg | /bin/busybox grep -E "usbserial:|crc_itu_t:|ELF header"
/bin/busybox poweroff -f
"""


def meta_of(name):
    return meta(os.path.join(CORPUS, name))


def test_builds_as_the_loader_judges_them(tmp_path):
    """Debian's amd64 6.1: its crc-itu-t.ko with the vermagic of the release before
    (6.1.0-49: the phone's vendor modules of an older sublevel), read by --modules (exit 0)
    and loaded by the real kernel; with vermagic past the release changed (no preempt),
    refused by both, in the same words; arm64's crc-itu-t.ko refused by both for its ELF
    header.  Its usbserial.ko, as the user's rebuild, checked
    beside its tree: loads; with one CRC of __versions changed, refused by both naming the
    symbol.  The kernel booted under QEMU with them in an initramfs."""
    if not CORPUS:
        pytest.skip(NO_CORPUS)
    missing = [t for t in ("qemu-system-x86_64", "busybox", "cpio") if not shutil.which(t)]
    if missing:
        pytest.skip("%s not installed (qemu-system-x86, busybox-static, cpio): the kernel "
                    "cannot be booted" % ", ".join(missing))
    kernel, meta = bookworm_amd64()
    image = os.path.join(kernel, meta["image"])
    release = meta["release"]
    tree = os.path.join(kernel, "lib", "modules", release)
    stock = {name: open(os.path.join(tree, "kernel", path), "rb").read() for name, path in (
        ("usb-common", "drivers/usb/common/usb-common.ko"),
        ("usbcore", "drivers/usb/core/usbcore.ko"),
        ("usbserial", "drivers/usb/serial/usbserial.ko"), ("crc", "lib/crc-itu-t.ko"))}
    magic = "%s SMP preempt mod_unload modversions " % release
    older = "%s-%d-%s" % (release.split("-")[0], int(release.split("-")[1]) - 1,
                          release.split("-", 2)[2])
    crc = versions(os.path.join(tree, "kernel", "drivers/usb/serial/usbserial.ko"))
    arm64 = [name for name in corpus_kernels() if meta_of(name)["arch"] == "arm64"
             and meta_of(name)["suite"] == "bookworm"]
    if not arm64:
        pytest.skip(not_in_corpus("bookworm's arm64 kernel"))
    arm64_crc = open(os.path.join(CORPUS, arm64[0], "lib", "modules", meta_of(arm64[0])[
        "release"], "kernel", "lib", "crc-itu-t.ko"), "rb").read()
    files = {"usb-common": stock["usb-common"], "usbcore": stock["usbcore"],
             "usbserial": patched_module(stock["usbserial"]),
             "usbserial-altered": patched_module(stock["usbserial"], versions={
                 "usb_register_driver": crc["usb_register_driver"] ^ 0x10}),
             "older-release": patched_module(stock["crc"], vermagic=magic.replace(
                 release, older)),
             "other-vermagic": patched_module(stock["crc"], vermagic=magic.replace(
                 " preempt", "")),
             "arm64": patched_module(arm64_crc)}
    for name, data in files.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / (name + ".ko")).write_bytes(data)

    def run(*args):
        result = subprocess.run([sys.executable, TOOL, "-q"] + [str(a) for a in args],
                                capture_output=True, text=True)
        return result.returncode, result.stdout.replace(str(tmp_path) + "/", "")

    assert run("--modules", tmp_path / "older-release", image)[0] == 0
    assert run("--modules", tmp_path / "other-vermagic", image)[0] == 6
    refusal = "version magic '%s' should be '%s'" % (magic.replace(" preempt", ""), magic)
    assert run("--check", tmp_path / "older-release", image) == (
        0, "older-release/older-release.ko: loads, tainting: %s\n" % UNSIGNED)
    assert run("--check", tmp_path / "other-vermagic", image) == (
        7, "other-vermagic/other-vermagic.ko: refused: %s (CONFIG_PREEMPT (or "
           "PREEMPT_DYNAMIC): module '', kernel 'preempt')\n" % refusal)
    assert run("--check", tmp_path / "arm64", image) == (
        7, "arm64/arm64.ko: refused: Invalid architecture in ELF header: 183 (a 64-bit "
           "little-endian arm64 module; the kernel is 64-bit little-endian x86-64)\n")
    assert run("--modules", tree, "--check", tmp_path / "usbserial", image) == (
        0, "usbserial/usbserial.ko: loads after usb-common, usbcore, tainting: %s\n"
           % UNSIGNED)
    assert run("--modules", tree, "--check", tmp_path / "usbserial-altered", image) == (
        7, "usbserial-altered/usbserial-altered.ko: refused: disagrees about version of symbol "
           "usb_register_driver (module 0x%08x, kernel 0x%08x)\n" % (
               crc["usb_register_driver"] ^ 0x10, crc["usb_register_driver"]))

    busybox_initramfs(tmp_path / "initrd", PHONE_INIT, [
        (tmp_path / name / (name + ".ko"), name + ".ko") for name in files])
    result = subprocess.run([shutil.which("qemu-system-x86_64"), "-m", "512", "-nographic",
                             "-no-reboot", "-kernel", image, "-initrd", str(tmp_path / "initrd"),
                             "-append", "console=ttyS0 rdinit=/init panic=-1 quiet"],
                            capture_output=True, text=True, timeout=300)
    console = result.stdout.replace("\r", "")
    for said in ("insmod usbserial-altered: failed", "insmod usbserial: loaded",
                 "insmod older-release: loaded", "insmod other-vermagic: failed",
                 "insmod arm64: failed", "Invalid architecture in ELF header: 183",
                 "usbserial: disagrees about version of symbol usb_register_driver",
                 "usbserial: " + UNSIGNED,
                 "crc_itu_t: " + refusal):
        assert said in console, console[-3000:]


SIGNATURE_INIT = """#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
for m in shipped stripped resigned changed; do
    if /bin/busybox insmod /$m.ko 2>/insmod.err; then echo "insmod $m: loaded"
        /bin/busybox rmmod crc_itu_t
    else echo "insmod $m: failed: $(/bin/busybox cat /insmod.err)"; fi
done
echo "tainted: $(/bin/busybox cat /proc/sys/kernel/tainted)"
/bin/busybox dmesg | /bin/busybox grep -E "Loading of|module verification|crc_itu_t"
/bin/busybox poweroff -f
"""


def test_signatures_as_the_loader_judges_them(tmp_path):
    """Debian's amd64 6.1 (the signed package's image decompresses to the same vmlinux, its
    modules are the same files): its crc-itu-t.ko as shipped, signed by the build's key;
    with its signature stripped; re-signed with a key of our own (openssl, as sign-file);
    signed, then one byte of .comment changed.  Booted with module.sig_enforce=1 and
    without, the kernel's verdicts are --check's with the same --cmdline, in the same
    words."""
    if not CORPUS:
        pytest.skip(NO_CORPUS)
    missing = [t for t in ("qemu-system-x86_64", "busybox", "cpio", "openssl")
               if not shutil.which(t)]
    if missing:
        pytest.skip("%s not installed (qemu-system-x86, busybox-static, cpio, openssl): the "
                    "kernel cannot be booted or the module signed" % ", ".join(missing))
    kernel, meta = bookworm_amd64()
    image = os.path.join(kernel, meta["image"])
    tree = os.path.join(kernel, "lib", "modules", meta["release"])
    shipped = open(os.path.join(tree, "kernel", "lib", "crc-itu-t.ko"), "rb").read()
    changed = bytearray(shipped)
    comment = SHDR64.unpack_from(changed, elf64_sections(changed)[".comment"])[4]
    changed[comment] ^= 1
    files = {"shipped": shipped, "stripped": patched_module(shipped),
             "resigned": sign(patched_module(shipped), signing_key(tmp_path, "Our own key")),
             "changed": bytes(changed)}
    for name, data in files.items():
        (tmp_path / (name + ".ko")).write_bytes(data)
    busybox_initramfs(tmp_path / "initrd", SIGNATURE_INIT, [
        (tmp_path / (name + ".ko"), name + ".ko") for name in files])

    def check(name, cmdline):
        result = subprocess.run([sys.executable, TOOL, "-q", "--cmdline", cmdline, "--check",
                                 tmp_path / (name + ".ko"), image], capture_output=True,
                                text=True)
        return result.returncode, result.stdout.replace(str(tmp_path) + "/", "")

    rejected = 'insmod says "Key was rejected by service"'
    bad = ("changed.ko: refused: signed (sha256) by 'Build time autogenerated kernel key' "
           "(key id %s), a key the kernel holds, but the signature does not match the "
           "module's bytes (changed after signing?) (EKEYREJECTED: %s; refused whether or "
           "not signatures are enforced)\n")
    for append, expected in (
            ("module.sig_enforce=1", {
                "shipped": (0, "shipped.ko: loads\n"),
                "stripped": (7, "stripped.ko: refused: Loading of unsigned module is rejected "
                                "(module.sig_enforce=1 on --cmdline; %s)\n" % rejected),
                "resigned": (7, "resigned.ko: refused: Loading of module with unavailable key "
                                "is rejected (module.sig_enforce=1 on --cmdline; %s)\n"
                             % rejected)}),
            ("", {"shipped": (0, "shipped.ko: loads\n"),
                  "stripped": (0, "stripped.ko: loads, tainting: %s\n" % UNSIGNED),
                  "resigned": (0, "resigned.ko: loads, tainting: %s\n" % UNSIGNED)})):
        cmdline = "console=ttyS0 rdinit=/init panic=-1 " + append
        verdicts = {name: check(name, cmdline) for name in files}
        status, out = verdicts.pop("changed")
        assert status == 7 and out.startswith(bad.split("(key id")[0]), out
        assert verdicts == expected
        result = subprocess.run([shutil.which("qemu-system-x86_64"), "-m", "512", "-nographic",
                                 "-no-reboot", "-kernel", image, "-initrd",
                                 str(tmp_path / "initrd"), "-append", cmdline],
                                capture_output=True, text=True, timeout=300)
        console = result.stdout.replace("\r", "")
        said = ["insmod shipped: loaded",
                "insmod changed: failed: insmod: can't insert '/changed.ko': Key was rejected "
                "by service"]
        if append:
            said += ["insmod %s: failed: insmod: can't insert '/%s.ko': Key was rejected by "
                     "service" % (name, name) for name in ("stripped", "resigned")]
            said += ["Loading of unsigned module is rejected",
                     "Loading of module with unavailable key is rejected"]
        else:
            said += ["insmod stripped: loaded", "insmod resigned: loaded",
                     "crc_itu_t: " + UNSIGNED, "tainted: 8192"]
        for words in said:
            assert words in console, console[-3000:]
