"""Real kernels booted under QEMU (TCG) and dumped by its monitor, as a user makes a memory
dump of a virtual machine."""

import os
import shutil
import socket
import subprocess
import time

import pytest

from corpus import meta

# dump-guest-memory: ELF cores with paging (virtual addresses) and without (physical), and
# makedumpfile's kdump-compressed format with zlib pages (QEMU writes it flattened)
DUMPS = (("paging", "-p "), ("physical", ""), ("kdump-zlib", "-z "))
# arch -> (QEMU, machine options, console)
GUESTS = {"amd64": ("qemu-system-x86_64", [], "ttyS0"),
          "arm64": ("qemu-system-aarch64", ["-M", "virt", "-cpu", "cortex-a57"], "ttyAMA0")}


def boot_and_dump(directory, work, until=b"Kernel panic", append="", initrd=None):
    """Boot the corpus kernel in `directory` (no root: it stops at its panic with the whole
    kernel in memory; or `initrd`, whose init prints `until` when it is done), then dump it
    in each of DUMPS' forms: {dump name: path}."""
    qemu, machine, console_name = GUESTS[meta(directory)["arch"]]
    if not shutil.which(qemu):
        pytest.skip("%s is not installed (qemu-system-x86, qemu-system-arm)" % qemu)
    monitor, console = str(work / "monitor"), work / "console"
    vm = subprocess.Popen([qemu, *machine, "-m", "512", "-display", "none", "-no-reboot",
                           "-kernel", os.path.join(directory, meta(directory)["image"]),
                           *(["-initrd", str(initrd)] if initrd else []),
                           "-append", ("console=%s panic=0 " % console_name) + append,
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
            dumps = {}
            for dump, flags in DUMPS:
                dumps[dump] = work / (dump + ".elf")
                command("dump-guest-memory %s%s" % (flags, dumps[dump]))
            s.sendall(b"quit\n")
            vm.wait(timeout=60)
    finally:
        if vm.poll() is None:
            vm.kill()
    return dumps
