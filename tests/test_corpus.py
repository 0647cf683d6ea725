"""Real Debian kernels against their official Module.symvers.

EXTRACT_SYMVERS_CORPUS names a directory made by ../shared/corpus/fetch-debian-kernels.sh;
every kernel in it is run with the options of its meta.json (found by the script's oracle.py
without this project's code) and with no options at all, on the image as Debian ships it and
on the decompressed image.
The vmlinux lines must equal the official file's exactly."""

import json
import os
import subprocess
import sys

import pytest

CORPUS = os.environ.get("EXTRACT_SYMVERS_CORPUS")
TOOL = os.path.join(os.path.dirname(__file__), "..", "extract_symvers.py")


def corpus_kernels():
    if not CORPUS:
        return []
    found = []
    for name in sorted(os.listdir(CORPUS)):
        meta = os.path.join(CORPUS, name, "meta.json")
        if os.path.exists(meta) and "options" in json.load(open(meta)):
            found.append(name)
    return found


KERNELS = corpus_kernels()


def test_corpus_is_there():
    if not CORPUS:
        pytest.skip("EXTRACT_SYMVERS_CORPUS is not set: no real kernels to compare with "
                    "(fetch them with ../shared/corpus/fetch-debian-kernels.sh DIR)")
    assert KERNELS, "EXTRACT_SYMVERS_CORPUS=%s holds no fetched kernel" % CORPUS


def tool(*args, timeout=600):
    """extract_symvers.py run as a user runs it: (stdout lines, stderr); it must succeed."""
    result = subprocess.run([sys.executable, TOOL, *map(str, args)], capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines(), result.stderr


def official_lines(directory):
    """The lines of the Module.symvers of the kernel's own build."""
    with open(os.path.join(directory, "Module.symvers")) as f:
        return f.read().splitlines()


def official_vmlinux_lines(directory):
    return [line for line in official_lines(directory) if line.split("\t")[2:3] == ["vmlinux"]]


@pytest.mark.parametrize("options", ["given", "detected"])
@pytest.mark.parametrize("form", ["image", "raw"])
@pytest.mark.parametrize("name", KERNELS)
def test_real_kernel(name, form, options):
    """With the oracle's options, and with none: every option detected from the image."""
    directory = os.path.join(CORPUS, name)
    meta = json.load(open(os.path.join(directory, "meta.json")))
    image = os.path.join(directory, meta["image"] if form == "image" else "vmlinux.raw")
    options = [x for kv in meta["options"].items() for x in kv] if options == "given" else []
    ours, _ = tool(*options, image)
    official = official_vmlinux_lines(directory)
    assert len(ours) == len(set(ours)), "duplicate lines"
    assert sorted(ours) == sorted(official)


MODULE_KERNELS = [name for name in KERNELS if os.path.isdir(os.path.join(CORPUS, name, "lib"))]


@pytest.mark.parametrize("name", MODULE_KERNELS)
def test_real_kernel_with_modules(name):
    """The complete Module.symvers, vmlinux and every module, with no options: equal to the
    official file as a set of lines (modpost's order is its own)."""
    directory = os.path.join(CORPUS, name)
    meta = json.load(open(os.path.join(directory, "meta.json")))
    modules = os.path.join(directory, "lib", "modules", meta["release"])
    ours, err = tool("--modules", modules, os.path.join(directory, meta["image"]), timeout=1200)
    official = official_lines(directory)
    assert "vermagic: %s\n" % module_vermagic(modules) in err
    assert len(ours) == len(set(ours)), "duplicate lines"
    assert sorted(ours) == sorted(official)


def module_vermagic(top):
    """The vermagic= of the first module under `top` (.ko or .ko.xz), which modpost wrote with
    the kernel's own."""
    import lzma
    import re
    for directory, _, files in sorted(os.walk(top)):
        for name in sorted(files):
            if name.endswith((".ko", ".ko.xz")):
                with open(os.path.join(directory, name), "rb") as f:
                    data = f.read()
                data = lzma.decompress(data) if name.endswith(".xz") else data
                return re.search(rb"vermagic=([^\0]*)", data).group(1).decode()


@pytest.mark.parametrize("name", MODULE_KERNELS)
def test_real_module_tree_loads(name):
    """Every module Debian built with the kernel, --check'ed against its image and tree,
    loads: each __versions CRC it recorded equals the export recovered here."""
    directory = os.path.join(CORPUS, name)
    meta = json.load(open(os.path.join(directory, "meta.json")))
    modules = os.path.join(directory, "lib", "modules", meta["release"])
    count = sum(f.endswith((".ko", ".ko.xz", ".ko.zst", ".ko.gz"))
                for _, _, files in os.walk(modules) for f in files)
    result = subprocess.run([sys.executable, TOOL, "--modules", modules, "--check", modules,
                             os.path.join(directory, meta["image"])],
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == count
    assert [line for line in lines if not line.endswith(": loads")] == []
    assert "%d modules checked: %d load, 0 refused" % (count, count) in result.stderr


def modules_package(directory, meta):
    """The downloaded .deb holding lib/modules/RELEASE/kernel (fetch-debian-kernels.sh keeps
    them in .debs/): linux-image-* in bookworm, linux-modules-* later."""
    import glob
    debs = os.path.join(os.path.dirname(directory), ".debs")
    for prefix in ("linux-modules-", "linux-image-"):
        found = [d for d in glob.glob(os.path.join(debs, prefix + meta["release"] + "*.deb"))
                 if os.path.getsize(d) > 1 << 20]
        if found:
            return found[0]
    return None


def complete_symvers(directory, meta, modules):
    """Our complete Module.symvers with --modules `modules`, and the official one, sorted."""
    ours, _ = tool("--modules", modules, os.path.join(directory, meta["image"]), timeout=1200)
    return sorted(ours), sorted(official_lines(directory))


@pytest.mark.parametrize("name", MODULE_KERNELS)
def test_real_modules_from_the_package(name):
    """--modules THE.deb: the package as Debian ships it, read in memory, gives the same
    complete file as the unpacked tree."""
    directory = os.path.join(CORPUS, name)
    meta = json.load(open(os.path.join(directory, "meta.json")))
    deb = modules_package(directory, meta)
    if deb is None:
        pytest.skip("the package holding the modules is not in %s/.debs" % CORPUS)
    ours, official = complete_symvers(directory, meta, deb)
    assert ours == official


def test_real_modules_in_a_vendor_boot_image(tmp_path):
    """The smallest module tree of the corpus, packed as Android does: cpio newc (cpio),
    lz4 legacy (lz4 -l), vendor_boot.img v3 and "v4" by Debian's mkbootimg (29.0.6 writes
    the v3 layout under version 4, without a ramdisk table; a real v4 table is a fixture's,
    tests/test_archives.py)."""
    import shutil
    tools = ("cpio", "lz4", "mkbootimg")
    if not MODULE_KERNELS or not all(shutil.which(t) for t in tools):
        pytest.skip("needs a corpus with modules and %s" % ", ".join(tools))

    def size(name):
        top = os.path.join(CORPUS, name, "lib")
        return sum(os.lstat(os.path.join(d, f)).st_size for d, _, fs in os.walk(top) for f in fs)

    name = min(MODULE_KERNELS, key=size)
    directory = os.path.join(CORPUS, name)
    meta = json.load(open(os.path.join(directory, "meta.json")))
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
        ours, official = complete_symvers(directory, meta, str(image))
        assert ours == official, version


# dump-guest-memory: ELF cores with paging (virtual addresses) and without (physical), and
# makedumpfile's kdump-compressed format with zlib pages (QEMU writes it flattened)
DUMPS = (("paging", "-p "), ("physical", ""), ("kdump-zlib", "-z "))
# (arch, QEMU, machine options, console); QEMU dumps aarch64 guests only without paging
GUESTS = {"amd64": ("qemu-system-x86_64", [], "ttyS0", DUMPS),
          "arm64": ("qemu-system-aarch64", ["-M", "virt", "-cpu", "cortex-a57"], "ttyAMA0",
                    DUMPS)}
DUMPED = [n for n in KERNELS if n.split("-")[0] in GUESTS and "-6.1." in n]


@pytest.mark.parametrize("name", DUMPED)
def test_real_qemu_memory_dumps(name, tmp_path):
    """The kernel booted under QEMU (TCG, KASLR on, no root: it stops at its panic with the
    whole kernel in memory), dumped by the monitor's dump-guest-memory in each of its
    formats: each dump gives the official vmlinux lines with no options."""
    import shutil
    import socket
    import time
    qemu, machine, console_name, dumps = GUESTS[name.split("-")[0]]
    if not shutil.which(qemu):
        pytest.skip("%s is not installed (qemu-system-x86, qemu-system-arm)" % qemu)
    directory = os.path.join(CORPUS, name)
    meta = json.load(open(os.path.join(directory, "meta.json")))
    monitor, console = str(tmp_path / "monitor"), tmp_path / "console"
    vm = subprocess.Popen([qemu, *machine, "-m", "512", "-display", "none", "-no-reboot",
                           "-kernel", os.path.join(directory, meta["image"]),
                           "-append", "console=%s panic=0" % console_name,
                           "-serial", "file:%s" % console,
                           "-monitor", "unix:%s,server=on,wait=off" % monitor])
    try:
        deadline = time.monotonic() + 300
        while b"Kernel panic" not in (console.read_bytes() if console.exists() else b""):
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
            for dump, flags in dumps:
                command("dump-guest-memory %s%s" % (flags, tmp_path / (dump + ".elf")))
            s.sendall(b"quit\n")
            vm.wait(timeout=60)
    finally:
        if vm.poll() is None:
            vm.kill()
    official = sorted(official_vmlinux_lines(directory))
    for dump, _ in dumps:
        ours, _ = tool(tmp_path / (dump + ".elf"))
        assert sorted(ours) == official, dump

CONTAINED = [n for n in KERNELS if n.startswith(("armhf-", "arm64-"))]


@pytest.mark.parametrize("name", CONTAINED)
def test_real_kernel_in_containers(name, tmp_path):
    """The decompressed image with lz4 -l in a page-2048 boot.img v2 (mkbootimg), the image
    as shipped in a multi-file uImage (mkimage -T multi) and at 16 MiB in a 128 MiB flash
    dump of random bytes: each exact with no options."""
    import shutil
    missing = [t for t in ("lz4", "mkbootimg", "mkimage") if not shutil.which(t)]
    if missing:
        pytest.skip("%s not installed (lz4, mkbootimg, u-boot-tools)" % ", ".join(missing))
    directory = os.path.join(CORPUS, name)
    meta = json.load(open(os.path.join(directory, "meta.json")))
    image = os.path.join(directory, meta["image"])
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
    shipped = open(image, "rb").read()
    dump[16 << 20:(16 << 20) + len(shipped)] = shipped
    (tmp_path / "flash.bin").write_bytes(bytes(dump))
    official = sorted(official_vmlinux_lines(directory))
    for container in ("boot.img", "multi", "flash.bin"):
        ours, _ = tool(tmp_path / container)
        assert sorted(ours) == official, container
