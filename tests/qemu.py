"""Real kernels booted under QEMU (TCG) and dumped by its monitor, as a user makes a memory
dump of a virtual machine."""

import gzip
import lzma
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from typing import NamedTuple

import pytest
import zstandard

from archives import busybox_initramfs
from corpus import CORPUS, kernel_image, meta

# dump-guest-memory: ELF cores with paging (virtual addresses) and without (physical), and
# makedumpfile's kdump-compressed format with zlib pages (QEMU writes it flattened)
DUMPS = (("paging", "-p "), ("physical", ""), ("kdump-zlib", "-z "))
# arch -> (QEMU, machine options, console); `-device vmcoreinfo` lets the guest's qemu_fw_cfg
# driver hand QEMU its VMCOREINFO for the dumps
GUESTS = {"amd64": ("qemu-system-x86_64", [], "ttyS0"),
          "i386": ("qemu-system-i386", [], "ttyS0"),
          "arm64": ("qemu-system-aarch64", ["-M", "virt", "-cpu", "cortex-a57"], "ttyAMA0"),
          "armhf": ("qemu-system-arm", ["-M", "virt,highmem=off", "-cpu", "cortex-a15"],
                    "ttyAMA0"),
          # OpenSBI (QEMU's own -bios default) starts the kernel in S-mode
          "riscv64": ("qemu-system-riscv64", ["-M", "virt", "-bios", "default"], "ttyS0"),
          # the SCLP line-mode console; -cpu max for the facilities Debian's kernel asks
          "s390x": ("qemu-system-s390x", ["-M", "s390-ccw-virtio", "-cpu", "max"], "ttysclp0"),
          # SLOF boots the kernel; POWER9 has the radix MMU and the hash MMU (disable_radix)
          "ppc64el": ("qemu-system-ppc64", ["-M", "pseries", "-cpu", "power9"], "hvc0"),
          # the MIPS Malta board with a MIPS64 release 2 core (Debian's 5kc-malta flavour);
          # QEMU has no dump-guest-memory for MIPS: read through /proc/kcore in the guest
          "mips64el": ("qemu-system-mips64el", ["-M", "malta", "-cpu", "5KEc"], "ttyS0"),
          # LoongArch's virt machine with a 3A5000's core; `-audio none`: a QEMU run from
          # where it was unpacked would load the installed one's audio module (of another
          # build: an assertion fails)
          "loong64": ("qemu-system-loongarch64", ["-M", "virt", "-cpu", "la464", "-audio",
                                                  "none"], "ttyS0")}
# what a guest's kernel needs besides: QEMU's LoongArch loader reads ELF and the Linux image
# format, not an EFI zboot image's zstd (the decompressed image is booted); i8042_init probes
# ports QEMU's LoongArch virt machine does not have and oopses (init killed)
BOOT = {"loong64": ("vmlinux.raw", "initcall_blacklist=i8042_init")}
# QEMUs too old for a guest -> the release it needs, and the suite whose QEMU has it: QEMU
# 7.2's (bookworm's) LoongArch virt machine runs bare ELF programs only, Linux's direct boot
# (its EFI tables made by QEMU) came in 8.1; bookworm-backports' 10.0, downloaded once into
# the corpus and unpacked (not installed), run with its own firmware directory
NEWER_QEMU = {"qemu-system-loongarch64": ((8, 1), "bookworm-backports",
                                          ("qemu-system-misc", "qemu-system-common",
                                           "qemu-system-data"))}


class Guest(NamedTuple):
    command: list       # QEMU and the machine's options
    console: str        # the kernel's console there
    image: str          # the kernel file QEMU boots
    append: str         # the kernel's command line under this machine


def qemu_release(binary):
    """(major, minor) of a QEMU binary, or None where it does not run."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=60).stdout
    except OSError:
        return None
    found = re.search(r"version (\d+)\.(\d+)", out)
    return (int(found.group(1)), int(found.group(2))) if found else None


def qemu_command(binary):
    """The QEMU binary to run (with its options): the installed one, or a newer one
    (NEWER_QEMU) where it is too old; skips where none is."""
    need, suite, packages = NEWER_QEMU.get(binary, ((0, 0), None, ()))
    found = shutil.which(binary)
    if found and (not suite or (qemu_release(found) or (0, 0)) >= need):
        return [found]
    if not suite:
        pytest.skip("%s is not installed (qemu-system-x86, qemu-system-arm, qemu-system-misc, "
                    "qemu-system-ppc)" % binary)
    target = os.path.join(CORPUS, ".qemu-" + suite)
    unpacked = os.path.join(target, "usr", "bin", binary)
    if not os.path.exists(unpacked):
        missing = [t for t in ("apt-get", "dpkg-deb") if not shutil.which(t)]
        if missing:
            pytest.skip("%s older than %d.%d and %s not installed: no QEMU from %s"
                        % (binary, *need, " and ".join(missing), suite))
        with tempfile.TemporaryDirectory() as debs:
            apt_download(["%s/%s" % (p, suite) for p in packages], "amd64", debs, suite)
            shutil.rmtree(target, ignore_errors=True)
            for deb in sorted(os.listdir(debs)):
                subprocess.run(["dpkg-deb", "-x", os.path.join(debs, deb), target], check=True)
    if (qemu_release(unpacked) or (0, 0)) < need:
        pytest.skip("%s older than %d.%d, and %s's does not run here" % (binary, *need, suite))
    return [unpacked, "-L", os.path.join(target, "usr", "share", "qemu")]


def guest(directory):
    """How QEMU boots the corpus kernel in `directory`; skips where it cannot here."""
    arch = meta(directory)["arch"]
    binary, machine, console = GUESTS[arch]
    image, append = BOOT.get(arch, (None, ""))
    return Guest(qemu_command(binary) + machine, console,
                 os.path.join(directory, image) if image else kernel_image(directory), append)


def boot_and_dump(directory, work, until=b"Kernel panic", append="", initrd=None,
                  options=(), dumps=DUMPS):
    """Boot the corpus kernel in `directory` (no root: it stops at its panic with the whole
    kernel in memory; or `initrd`, whose init prints `until` when it is done), then dump it
    in each of `dumps`' forms: {dump name: path}."""
    machine = guest(directory)
    monitor, console = str(work / "monitor"), work / "console"
    vm = subprocess.Popen([*machine.command, *options, "-m", "512", "-display", "none",
                           "-no-reboot", "-kernel", machine.image,
                           *(["-initrd", str(initrd)] if initrd else []),
                           "-append", " ".join(w for w in ("console=%s panic=0"
                                                           % machine.console, machine.append,
                                                           append) if w),
                           "-serial", "file:%s" % console,
                           "-monitor", "unix:%s,server=on,wait=off" % monitor])
    try:
        deadline = time.monotonic() + 300
        while until not in (console.read_bytes() if console.exists() else b""):
            assert time.monotonic() < deadline and vm.poll() is None, "the guest did not boot"
            time.sleep(0.5)
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(monitor)
            s.settimeout(300)

            def command(text):
                s.sendall(text.encode() + b"\n")
                reply = b""
                while not reply.endswith(b"(qemu) "):
                    reply += s.recv(4096)
                return reply

            command("")
            paths = {}
            for dump, flags in dumps:
                paths[dump] = work / (dump + ".elf")
                command("dump-guest-memory %s%s" % (flags, paths[dump]))
            s.sendall(b"quit\n")
            vm.wait(timeout=60)
    finally:
        if vm.poll() is None:
            vm.kill()
    return paths


LOADED = b"extract-symvers: modules loaded"
# modules a guest loads (with what they depend on; those its tree lacks are left out): USB
# serial and storage, networking, filesystems, sound, input, with exports among them;
# crc32c_generic first: libcrc32c asks the crypto API for crc32c when it loads (a softdep)
LOAD = ("crc32c_generic", "usbserial", "ftdi_sio", "pl2303", "cp210x", "ch341", "option",
        "bridge", "8021q", "fuse", "dm_mod", "sunrpc", "usb_storage", "uas", "qemu_fw_cfg",
        "loop", "tun", "veth", "vxlan", "ext4", "nfsv4", "xfs", "nls_utf8", "nls_cp437", "vfat",
        "isofs", "udf", "snd_pcm", "cdc_acm", "hid_generic", "usbhid", "e1000", "virtio_net",
        "dummy", "bonding")
INIT = """#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mkdir -p /sys && /bin/busybox mount -t sysfs sysfs /sys
[ -e /sys/kernel/btf/vmlinux ] && echo "btf: $(/bin/busybox sha256sum /sys/kernel/btf/vmlinux)"
for m in %s; do /bin/busybox insmod /modules/$m.ko; echo "insmod $m: $?"; done
echo "%s: $(/bin/busybox cat /proc/modules | /bin/busybox wc -l)"
while true; do /bin/busybox sleep 3600; done
"""
MODINFO = re.compile(rb"(?:^|\0)(name|depends)=([^\0]*)")


def decompressed(path):
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".zst"):
        return zstandard.decompress(data, max_output_size=1 << 30)
    if path.endswith(".gz"):
        return gzip.decompress(data)
    return data


def apt_download(packages, arch, directory, suite=None):
    """apt-get download with the corpus's private apt state (as fetch-debian-kernels.sh);
    with `suite`, with a state of that suite and `arch` alone, updated from the corpus's
    mirror in a temporary directory (the corpus's lists are those its last fetch asked)."""
    state = os.path.join(CORPUS, ".apt")
    with tempfile.TemporaryDirectory() as private:
        if suite:
            with open(os.path.join(state, "sources.list")) as f:
                mirror = next(line.rsplit(None, 2)[0] for line in f if line.startswith("deb "))
            state = private
            os.makedirs(os.path.join(state, "lists", "partial"))
            with open(os.path.join(state, "sources.list"), "w") as f:
                f.write("%s %s main\n" % (mirror, suite))
        options = ["-o", "Dir::Etc::SourceList=%s/sources.list" % state,
                   "-o", "Dir::Etc::SourceParts=/dev/null",
                   "-o", "Dir::State::Lists=%s/lists" % state,
                   "-o", "Dir::Cache=%s/cache" % state, "-o", "Dir::State::status=/dev/null",
                   "-o", "APT::Architectures=%s" % arch, "-o", "Acquire::Languages=none",
                   "-o", "Debug::NoLocking=1"]
        if suite:
            subprocess.run(["apt-get", *options, "-q", "update"], check=True,
                           capture_output=True)
        subprocess.run(["apt-get", *options, "-q", "download", *packages], cwd=directory,
                       check=True, capture_output=True)


def busybox(arch):
    """A busybox-static binary for a guest of `arch` (Debian's name): Debian's package of
    that architecture, downloaded once into the corpus and unpacked with dpkg-deb."""
    target = os.path.join(CORPUS, ".busybox", arch)
    binary = os.path.join(target, "usr", "bin", "busybox")     # /bin in bookworm's
    if not os.path.exists(binary):
        missing = [t for t in ("apt-get", "dpkg-deb") if not shutil.which(t)]
        if missing:
            pytest.skip("%s not installed: no busybox for the %s guest"
                        % (" and ".join(missing), arch))
        os.makedirs(target, exist_ok=True)
        apt_download(["busybox-static:%s" % arch], arch, target)
        deb = next(f for f in os.listdir(target) if f.endswith(".deb"))
        subprocess.run(["dpkg-deb", "-x", os.path.join(target, deb), target], check=True)
        if not os.path.exists(binary):
            os.makedirs(os.path.dirname(binary), exist_ok=True)
            os.rename(os.path.join(target, "bin", "busybox"), binary)
    return binary


def module_initramfs(path, tree, names, arch):
    """insmod_initramfs() of the modules `names` of the module tree, each after those its
    .modinfo says it depends on.  The modules in load order."""
    files = load_order(tree, names)
    insmod_initramfs(path, files, arch)
    return list(files)


def load_order(tree, names):
    """{name: decompressed .ko} of the modules `names` of the module tree (those it lacks
    left out), each after those its .modinfo says it depends on, in load order."""
    files = {}
    for directory, _, found in os.walk(tree):
        for name in found:
            if re.search(r"\.ko(\.xz|\.zst|\.gz)?$", name):
                data = decompressed(os.path.join(directory, name))
                info = dict((k.decode(), v.decode()) for k, v in MODINFO.findall(data))
                files[info.get("name", name.split(".")[0]).replace("-", "_")] = (data, info)
    order = []

    def load(name):
        name = name.replace("-", "_")
        if name in order or name not in files:
            return
        for dependency in filter(None, files[name][1].get("depends", "").split(",")):
            load(dependency)
        order.append(name)

    for name in names:
        load(name)
    return {name: files[name][0] for name in order}


def insmod_initramfs(path, files, arch):
    """An initramfs (busybox-static, packed by cpio) whose /init insmods each of `files`
    ({name: decompressed .ko}, as busybox's insmod reads them) in turn, saying `insmod NAME:
    STATUS` (the kernel says why on the console), then LOADED and the count of /proc/modules,
    and waits to be dumped."""
    with tempfile.TemporaryDirectory() as staging:
        os.mkdir(os.path.join(staging, "modules"))
        for name, data in files.items():
            with open(os.path.join(staging, "modules", name + ".ko"), "wb") as f:
                f.write(data)
        busybox_initramfs(path, INIT % (" ".join(files), LOADED.decode()),
                          [(os.path.join(staging, "modules"), "modules")], busybox(arch))
