"""/proc/kcore of a running kernel, read inside it: a real corpus kernel booted under QEMU
(TCG) with 1 GiB and its modules loaded, the tool run by Debian's own python3 of that suite
(without zstandard) on /proc/kcore and on /boot's image with the module tree, as a user on
a rescue box runs it; wall time and peak RSS measured inside the guest."""

import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from archives import busybox_initramfs
from corpus import (CORPUS, TOOL, corpus_kernels, each, kernel_image, loaded_lines, meta,
                    module_tree, not_in_corpus, official_lines)
from qemu import LOAD, apt_download, busybox, guest, load_order

# the kernels, each with VMCOREINFO's KERNELOFFSET in the guest: amd64 6.1 randomized (KASLR,
# Debian's default; "kaslr" said too), arm64 6.1 too (QEMU's virt gives the kaslr-seed);
# ppc64el 6.1 (radix under -cpu power9) and riscv64 7.2 0 (Debian's have no
# CONFIG_RANDOMIZE_BASE); s390x 7.2 its virtual offset not randomized (its KASLR needs CPACF's
# PRNG, which QEMU's TCG lacks); mips64el 6.1 (5kc-malta, CONFIG_RANDOMIZE_BASE: the kernel
# relocates itself within 16 MiB) says none: its _stext, not the image's, says it moved;
# loong64 7.2 (no CONFIG_RANDOMIZE_BASE) none either.  QEMU cannot dump MIPS memory: kcore is
# where its modules are read
KERNELOFFSETS = {"amd64-6.1.": "random", "arm64-6.1.": "random", "ppc64el-6.1.": "0",
                 "riscv64-7.2.": "0", "s390x-7.2.": "3fffe3a8000", "mips64el-6.1.": "_stext",
                 "loong64-7.2.": None}
LIVE = [name for name in corpus_kernels() if name.startswith(tuple(KERNELOFFSETS))]
# each suite's own python3 and the libraries of what the tool imports (lzma, bz2, zlib, ...;
# sid's python3.14 also its compression.zstd): no zstandard, as on a Debian box where nothing
# was installed with pip
PYTHONS = {"bookworm": ("python3.11", ("python3.11-minimal", "libpython3.11-minimal",
                                       "libpython3.11-stdlib", "libc6", "zlib1g", "libexpat1",
                                       "liblzma5", "libbz2-1.0", "libffi8", "libssl3")),
           "sid": ("python3.14", ("python3.14-minimal", "libpython3.14-minimal",
                                  "libpython3.14-stdlib", "libc6", "zlib1g", "libexpat1",
                                  "liblzma5", "libbz2-1.0", "libffi8", "libssl3t64",
                                  "libzstd1"))}
DONE = "extract-symvers: live done"
INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t devtmpfs dev /dev
mkdir -p /sys && mount -t sysfs sys /sys
mkdir -p /tmp
for m in %(modules)s; do insmod /modules/$m.ko; echo "insmod $m: $?"; done
echo "modules loaded: $(cat /proc/modules | wc -l)"
rm -r /modules
/usr/bin/%(python)s /live.py %(release)s
echo "%(done)s"
poweroff -f
"""
# run inside the guest: each command in a child whose own rusage (os.wait4) gives its peak
# RSS; its output compared there with what it must be (the console is slow)
LIVE_PY = r"""
import os, subprocess, sys, time
release = sys.argv[1]
runs = (("kcore", ["-v", "/proc/kcore"]),
        ("image+modules", ["--modules", "/lib/modules/" + release, "/boot/vmlinuz"]))
for name, args in runs:
    with open("/expected." + name) as f:
        expected = set(f.read().splitlines())
    start = time.monotonic()
    with open("/tmp/out", "wb") as out, open("/tmp/err", "wb") as err:
        child = subprocess.Popen([sys.executable, "/extract_symvers.py"] + args, stdout=out,
                                 stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - start
    with open("/tmp/out") as f:
        lines = f.read().splitlines()
    with open("/tmp/err") as f:
        for line in f.read().splitlines()[-40:]:
            print("live %s stderr: %s" % (name, line))
    print("live %s: status %d, %.1f s, peak RSS %d KiB, %d lines, %d missing, %d extra"
          % (name, child.returncode, seconds, usage.ru_maxrss, len(lines),
             len(expected - set(lines)), len(set(lines) - expected)), flush=True)
    for line in sorted(expected - set(lines))[:5]:
        print("live %s missing: %s" % (name, line))
    for line in sorted(set(lines) - expected)[:5]:
        print("live %s extra: %s" % (name, line))
if os.path.exists("/sys/kernel/btf/vmlinux"):
    status = subprocess.call([sys.executable, "/extract_symvers.py", "-q", "--btf", "/tmp/btf",
                              "/proc/kcore"])
    with open("/sys/kernel/btf/vmlinux", "rb") as f:
        kernel = f.read()
    same = os.path.exists("/tmp/btf") and open("/tmp/btf", "rb").read() == kernel
    print("live btf: status %d, %s" % (status, "the bytes of /sys/kernel/btf/vmlinux" if same
                                       else "not the bytes of /sys/kernel/btf/vmlinux"))
else:
    print("live btf: none in this kernel")
"""
FIGURES = re.compile(r"live (\S+): status (\d+), ([\d.]+) s, peak RSS (\d+) KiB, (\d+) lines, "
                     r"(\d+) missing, (\d+) extra")


def python_root(arch, suite):
    """A directory holding `suite`'s python3 for `arch` and its libraries (Debian's packages
    unpacked with dpkg-deb), downloaded once into the corpus; the python's name."""
    python, packages = PYTHONS[suite]
    target = os.path.join(CORPUS, "." + python, arch)
    if not os.path.exists(os.path.join(target, "usr", "bin", python)):
        missing = [t for t in ("apt-get", "dpkg-deb") if not shutil.which(t)]
        if missing:
            pytest.skip("%s not installed: no %s for the %s guest"
                        % (" and ".join(missing), python, arch))
        with tempfile.TemporaryDirectory() as debs:
            apt_download(["%s:%s/%s" % (p, arch, suite) for p in packages], arch, debs,
                         suite)
            shutil.rmtree(target, ignore_errors=True)
            os.makedirs(target)
            for deb in sorted(os.listdir(debs)):
                subprocess.run(["dpkg-deb", "-x", os.path.join(debs, deb), target], check=True)
            # a merged /usr (sid's libc6 ships its loader in /usr/lib only): the links of
            # the root base-files makes, which the python's program interpreter goes through
            for top in ("lib", "lib64"):
                if not os.path.lexists(os.path.join(target, top)) \
                        and os.path.isdir(os.path.join(target, "usr", top)):
                    os.symlink("usr/" + top, os.path.join(target, top))
    return target, python


def live_initramfs(path, directory, modules):
    """A gzip initramfs: busybox, the `modules` ({name: .ko}) to insmod, the suite's python3,
    the tool, /boot/vmlinuz and /lib/modules/RELEASE (the tree as shipped), what each run must
    print, and the init that runs it all."""
    arch, release, suite = (meta(directory)[key] for key in ("arch", "release", "suite"))
    with tempfile.TemporaryDirectory() as staging:
        os.mkdir(os.path.join(staging, "modules"))
        for name, data in modules.items():
            with open(os.path.join(staging, "modules", name + ".ko"), "wb") as f:
                f.write(data)
        tree = module_tree(directory)
        os.mkdir(os.path.join(staging, "boot"))
        files = [(os.path.join(staging, "modules"), "modules"), (TOOL, "extract_symvers.py"),
                 (os.path.join(staging, "boot"), "boot"),
                 (kernel_image(directory), "boot/vmlinuz")]
        root, python = python_root(arch, suite)
        files += [(os.path.join(root, top), top) for top in sorted(os.listdir(root))]
        # the tree as shipped, its directories first (they make lib/modules/RELEASE), not
        # its build and source links
        entries = sorted((not os.path.isdir(os.path.join(tree, entry)), entry)
                         for entry in os.listdir(tree)
                         if not os.path.islink(os.path.join(tree, entry)))
        files += [(os.path.join(tree, entry), "lib/modules/%s/%s" % (release, entry))
                  for _, entry in entries]
        expected = {"kcore": loaded_lines(directory, modules),
                    "image+modules": official_lines(directory)}
        for name, lines in expected.items():
            with open(os.path.join(staging, "expected." + name), "w") as f:
                f.write("\n".join(lines) + "\n")
            files.append((os.path.join(staging, "expected." + name), "expected." + name))
        with open(os.path.join(staging, "live.py"), "w") as f:
            f.write(LIVE_PY)
        files.append((os.path.join(staging, "live.py"), "live.py"))
        init = INIT % {"modules": " ".join(modules), "python": python, "release": release,
                       "done": DONE}
        cpio = os.path.join(staging, "initrd.cpio")
        busybox_initramfs(cpio, init, files, busybox(arch))
        with open(cpio, "rb") as source, open(path, "wb") as out:
            subprocess.run(["gzip", "-1", "-c"], stdin=source, stdout=out, check=True)


def boot(directory, initrd, console, timeout=3600):
    """Boot the kernel with 1 GiB and the initramfs until its init is done; the console.
    The initramfs in ramfs: tmpfs would hold half the memory at most, less than the tree."""
    machine = guest(directory)
    append = " ".join(w for w in ("console=%s panic=0 quiet kaslr rootfstype=ramfs"
                                  % machine.console, machine.append) if w)
    vm = subprocess.Popen([*machine.command, "-m", "1024", "-smp", "1", "-display", "none",
                           "-no-reboot", "-kernel", machine.image, "-initrd",
                           str(initrd), "-append", append, "-serial", "file:%s" % console],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while DONE.encode() not in (console.read_bytes() if console.exists() else b""):
            assert time.monotonic() < deadline and vm.poll() is None, \
                (console.read_bytes() if console.exists() else b"")[-3000:]
            time.sleep(1)
    finally:
        if vm.poll() is None:
            vm.kill()
        vm.wait()
    return console.read_text(errors="replace")


def stext_moved(directory, console):
    """Whether the console's -v run says VMCOREINFO's _stext is not the image's (kallsyms.txt):
    KASLR moved a kernel that writes no KERNELOFFSET (MIPS)."""
    with open(os.path.join(directory, "kallsyms.txt")) as f:
        linked = next(line.split()[0] for line in f if line.split()[2:] == ["_stext"])
    return "SYMBOL(_stext)=" in console and "SYMBOL(_stext)=%s" % linked not in console


@pytest.mark.parametrize("name", each(LIVE, not_in_corpus("the amd64, arm64, ppc64el, mips64el "
                                                          "6.1 and riscv64, s390x, loong64 7.2 "
                                                          "kernels with their module trees")))
def test_live_kcore(name, tmp_path):
    """/proc/kcore inside the running kernel gives, with no options, the official lines of
    vmlinux and of every module loaded (the suite's python3, no zstandard, 1 GiB: nothing
    in memory is taken for a compressed kernel, nothing runs out of memory); /boot's image
    with --modules the official file; --btf the bytes of /sys/kernel/btf/vmlinux (where
    the kernel has BTF: not ppc64el's or mips64el's 6.1).  Time and peak RSS inside the
    guest are printed."""
    directory = os.path.join(CORPUS, name)
    guest(directory)    # skips where QEMU cannot boot it here
    missing = [t for t in ("cpio", "gzip") if not shutil.which(t)]
    if missing:
        pytest.skip("%s not installed" % " and ".join(missing))
    modules = load_order(module_tree(directory), LOAD)
    live_initramfs(tmp_path / "initrd", directory, modules)
    console = boot(directory, tmp_path / "initrd", tmp_path / "console")
    assert all("insmod %s: 0" % m in console for m in modules), console[-3000:]
    assert "modules loaded: %d" % len(modules) in console, console[-3000:]
    figures = {m.group(1): m.groups()[1:] for m in FIGURES.finditer(console)}
    assert set(figures) == {"kcore", "image+modules"}, console[-5000:]
    for run, (status, seconds, peak, lines, missing, extra) in figures.items():
        print("%s %s: %s s, peak RSS %d MB, %s lines" % (name, run, seconds,
                                                         int(peak) * 1024 // 10 ** 6, lines))
        assert (status, missing, extra) == ("0", "0", "0"), console[-5000:]
    assert "%d modules on the module list" % len(modules) in console
    expected = next(v for prefix, v in KERNELOFFSETS.items() if name.startswith(prefix))
    if expected == "_stext":
        assert stext_moved(directory, console)
    elif expected is None:
        assert "KERNELOFFSET=" not in console
    else:
        offset = re.search(r"KERNELOFFSET=([0-9a-f]+),", console).group(1)
        assert offset != "0" if expected == "random" else offset == expected
    with open(os.path.join(directory, "config")) as f:
        btf = "CONFIG_DEBUG_INFO_BTF=y" in f.read().splitlines()
    assert ("live btf: status 0, the bytes of /sys/kernel/btf/vmlinux" if btf
            else "live btf: none in this kernel") in console, console[-3000:]
