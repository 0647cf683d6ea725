"""The user's data: outputs replaced whole or written through, never clobbered; every write
checked (a full disk is an error); Ctrl-C, SIGTERM and a gone reader stop cleanly; modules
of another build refused; options the image contradicts said; a banner-less file read raw
with -k.  With the real tools where there are some: a 100 KiB tmpfs, mkfifo, a device node,
unshare, lz4 -BD."""

import gzip
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest

import extract_symvers
from corpus import SHARED, kernel_image, not_shared, official_vmlinux_lines, shared_kernels
from kernelimage import ERAS, build, make_exports
from kobuild import build_module, module_tree, symvers_lines

TOOL = extract_symvers.__file__


def tool(*args, **kwargs):
    """The tool in a process of its own: (status, stdout, stderr)."""
    result = subprocess.run([sys.executable, TOOL, *map(str, args)], capture_output=True,
                            timeout=300, **kwargs)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


@pytest.fixture(scope="module")
def kernel():
    return build("6.14", bits=64)


@pytest.fixture
def image(kernel, tmp_path):
    path = tmp_path / "vmlinuz"
    path.write_bytes(gzip.compress(kernel.data))
    return path


def expected(kernel):
    return sorted(kernel.symvers())


# --- -o, -d and --config: what FILE is decides how it is written ---------------------------

def test_output_through_a_symlink(kernel, image, tmp_path, run):
    """-o link.symvers: the link stays a link, its target is replaced, keeping its mode."""
    real = tmp_path / "real.txt"
    real.write_text("old\n")
    real.chmod(0o640)
    (tmp_path / "link.symvers").symlink_to("real.txt")
    assert run("-o", tmp_path / "link.symvers", image)[:2] == (0, "")
    assert (tmp_path / "link.symvers").is_symlink()
    assert sorted(real.read_text().splitlines()) == expected(kernel)
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.symvers", "real.txt", "vmlinuz"]


def test_output_replaces_the_file(kernel, image, tmp_path, run):
    """-o Module.symvers replaces the file by a new one (renamed over it, its mode kept): a
    hard link to the old one (a backup made with ln) keeps the old lines."""
    target = tmp_path / "Module.symvers"
    target.write_text("old\n")
    target.chmod(0o604)
    os.link(target, tmp_path / "Module.symvers.orig")
    assert run("-o", target, image)[:2] == (0, "")
    assert sorted(target.read_text().splitlines()) == expected(kernel)
    assert stat.S_IMODE(target.stat().st_mode) == 0o604
    assert (tmp_path / "Module.symvers.orig").read_text() == "old\n"


def test_output_through_a_dangling_symlink(kernel, image, tmp_path, run):
    (tmp_path / "link.symvers").symlink_to("made.txt")
    assert run("-o", tmp_path / "link.symvers", image).status == 0
    assert (tmp_path / "link.symvers").is_symlink()
    assert sorted((tmp_path / "made.txt").read_text().splitlines()) == expected(kernel)


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_follows_the_umask(umask, mode, image, tmp_path, run):
    old = os.umask(umask)
    try:
        assert run("-o", tmp_path / "Module.symvers", image).status == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "Module.symvers").stat().st_mode) == mode


def test_an_existing_file_keeps_its_owner(image, tmp_path, run):
    """As root: the Module.symvers written into another user's tree stays theirs."""
    if os.getuid() != 0:
        pytest.skip("only root may give a file to another user")
    target = tmp_path / "Module.symvers"
    target.write_text("old\n")
    os.chown(target, 1234, 2345)
    target.chmod(0o664)
    assert run("-o", target, image).status == 0
    info = target.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (1234, 2345, 0o664)


def test_output_to_a_fifo(kernel, image, tmp_path):
    """-o f.fifo (mkfifo): written through to its reader; it stays a FIFO."""
    fifo = tmp_path / "f.fifo"
    subprocess.run(["mkfifo", str(fifo)], check=True)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    status, out, err = tool("-o", fifo, image)
    reader.join(timeout=60)
    assert (status, out) == (0, "")
    assert sorted(got[0].splitlines()) == expected(kernel)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_output_to_a_device(image, tmp_path, run):
    """-o DEVICE (a node of /dev/null's numbers: as root, made here rather than the system's
    own, which the tool once replaced): written through, still a device."""
    if os.getuid() != 0:
        pytest.skip("only root may make a device node")
    node = tmp_path / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    assert run("-o", node, image)[:2] == (0, "")
    assert stat.S_ISCHR(node.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null", "vmlinuz"]


def test_output_to_a_full_device(image, run):
    """/dev/full: every write fails with ENOSPC; the error says so."""
    result = run("-o", "/dev/full", image)
    assert result.status == 3
    assert "cannot write /dev/full: No space left on device" in result.errors[0]


def test_output_dash_is_stdout(kernel, image, run, assert_symvers):
    assert_symvers(run("-o", "-", image), kernel)


def test_decompress_through_a_symlink(kernel, image, tmp_path, run):
    (tmp_path / "link.raw").symlink_to("real.raw")
    assert run("-d", tmp_path / "link.raw", image).status == 0
    assert (tmp_path / "link.raw").is_symlink()
    assert (tmp_path / "real.raw").read_bytes() == kernel.data


# --- Never onto an input: -o, -d and --config FILE refuse a FILE that is an input ----------

def onto(option, output, source):
    return ("extract_symvers: error: %s %s would write onto the input %s: give another FILE"
            % (option, output, source))


@pytest.mark.parametrize("how", ["the same path", "a symlink", "a hard link"])
@pytest.mark.parametrize("option", ["-o", "-d", "--config"])
def test_never_onto_the_kernel(option, how, image, tmp_path, run):
    """extract_symvers.py -o vmlinuz vmlinuz (a slip): refused, the kernel as it was."""
    before = image.read_bytes()
    target = {"the same path": image, "a symlink": tmp_path / "link",
              "a hard link": tmp_path / "hard"}[how]
    if how == "a symlink":
        target.symlink_to("vmlinuz")
    elif how == "a hard link":
        os.link(image, target)
    result = run(option, target, image)
    assert result.status == 2
    assert result.err.splitlines()[-1] == onto(option, target, image)
    assert image.read_bytes() == before


def test_never_onto_the_kernel_as_typed(image):
    """The command as a user types it, in a process of its own."""
    before = image.read_bytes()
    status, out, err = tool("-o", image, image)
    assert (status, out, err.splitlines()[-1]) == (2, "", onto("-o", image, image))
    assert image.read_bytes() == before


def test_never_onto_a_module(image, tmp_path, run):
    """A module of a --modules or --check tree, a --modules archive, a --check module, a
    --diff side: each refused; a new file in the tree (not a module) is written."""
    ko = build_module("6.14", make_exports(ERAS["6.14"], count=3, seed=1))
    top = module_tree(tmp_path / "tree", {"drivers/m.ko": ko})
    module = os.path.join(top, "kernel", "drivers", "m.ko")
    (tmp_path / "m.ko").write_bytes(ko)
    (tmp_path / "old.symvers").write_text("0x12345678\tf\tvmlinux\tEXPORT_SYMBOL\t\n")
    for args, output, source in [
            (["--modules", top, image], module, top),
            (["--config", module, "--modules", top, image], module, top),
            (["--check", top, image], module, top),
            (["--check", tmp_path / "m.ko", image], tmp_path / "m.ko", tmp_path / "m.ko"),
            (["--diff", tmp_path / "old.symvers", image], tmp_path / "old.symvers",
             tmp_path / "old.symvers")]:
        option = args[0] if args[0] == "--config" else "-o"
        result = run(*(["-o", output] if option == "-o" else []) + args)
        assert (result.status, result.err.splitlines()[-1]) == (2, onto(option, output, source))
        assert open(module, "rb").read() == ko and (tmp_path / "m.ko").read_bytes() == ko
    assert run("-o", os.path.join(top, "Module.symvers"), "--modules", top, image).status == 0
    assert os.path.getsize(os.path.join(top, "Module.symvers")) > 0


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 100 KiB tmpfs (mount -t tmpfs, as root), unmounted after the test."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.getuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=100k", "tmpfs",
                                           str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root and CAP_SYS_ADMIN")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture(scope="module")
def large_kernel():
    """A kernel whose Module.symvers is some 200 KiB."""
    return build("6.14", bits=64, exports=make_exports(ERAS["6.14"], count=4000, seed=8))


def test_stdout_on_a_full_disk(large_kernel, tmp_path, small_tmpfs):
    """python extract_symvers.py vmlinux > /small-tmpfs/Module.symvers: exit 3, said."""
    (tmp_path / "vmlinux").write_bytes(large_kernel.data)
    with open(small_tmpfs / "Module.symvers", "wb") as out:
        result = subprocess.run([sys.executable, TOOL, str(tmp_path / "vmlinux")], stdout=out,
                                stderr=subprocess.PIPE, text=True, timeout=300)
    assert result.returncode == 3, result.stderr
    assert result.stderr.endswith(
        "extract_symvers: error: cannot write standard output: No space left on device\n")
    assert "Traceback" not in result.stderr


def test_output_file_on_a_full_disk(large_kernel, tmp_path, small_tmpfs):
    """-o on a full disk: exit 3, the old file as it was, no temporary file left."""
    (tmp_path / "vmlinux").write_bytes(large_kernel.data)
    (small_tmpfs / "Module.symvers").write_text("old\n")
    status, out, err = tool("-o", small_tmpfs / "Module.symvers", tmp_path / "vmlinux")
    assert (status, out) == (3, "")
    assert "No space left on device" in err
    assert (small_tmpfs / "Module.symvers").read_text() == "old\n"
    assert os.listdir(small_tmpfs) == ["Module.symvers"]


@pytest.mark.parametrize("redirect", ["/dev/full", "closed"])
def test_stdout_full_or_closed(image, redirect):
    """>/dev/full, >&-: exit 3 and one line, no traceback."""
    stdout = open("/dev/full", "wb") if redirect == "/dev/full" else None
    result = subprocess.run([sys.executable, TOOL, str(image)], stderr=subprocess.PIPE,
                            text=True, timeout=300, stdout=stdout,
                            **({} if stdout else {"pass_fds": (), "close_fds": True,
                                                  "preexec_fn": lambda: os.close(1)}))
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "extract_symvers: error: cannot write standard output: No space left on device"
        if stdout else "extract_symvers: error: cannot write standard output: it is closed")


def test_a_gone_reader(large_kernel, tmp_path):
    """python extract_symvers.py vmlinux | head -1: 141 (128 + SIGPIPE), one line."""
    (tmp_path / "vmlinux").write_bytes(large_kernel.data)
    result = subprocess.run("%s %s %s | head -1" % (sys.executable, TOOL, tmp_path / "vmlinux"),
                            shell=True, executable="/bin/bash", capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, SHELLOPTS="pipefail"))
    assert result.returncode == 141
    assert result.stderr.splitlines()[-1] == (
        "extract_symvers: error: cannot write standard output: the reader has gone (broken "
        "pipe)")
    assert len(result.stdout.splitlines()) == 1


# --- Signals: stopped where it is, nothing written, nothing left ---------------------------

def interrupt(argv, signum, wait, **kwargs):
    """Start the tool (SIGINT not ignored, as in a terminal), send `signum` after `wait`
    seconds: (status, stdout, stderr)."""
    process = subprocess.Popen([sys.executable, TOOL, *map(str, argv)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                               **kwargs)
    time.sleep(wait)
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("signum,status,said", [
    (signal.SIGINT, 130, "interrupted (SIGINT): nothing written"),
    (signal.SIGTERM, 143, "terminated (SIGTERM): nothing written")])
def test_signal_while_reading_a_slow_pipe(signum, status, said):
    """{ head -c 8M /dev/zero; sleep 20; } | extract_symvers.py -: the read stops."""
    feeder = subprocess.Popen("head -c 8M /dev/zero; sleep 20", shell=True,
                              stdout=subprocess.PIPE)
    try:
        got = interrupt(["-"], signum, 2, stdin=feeder.stdout)
    finally:
        feeder.kill()
        feeder.wait()
    assert got == (status, "", "extract_symvers: error: %s\n" % said)


def test_ctrl_c_at_a_terminal_while_reading_a_slow_pipe():
    """{ head -c 8M /dev/zero; sleep 20; } | extract_symvers.py - and Ctrl-C: SIGINT to the
    whole pipeline (its process group), the feeder dies too: still 130, not the 8 MiB read
    as the input ('not a kernel')."""
    # bash traps SIGINT (its children's is the default again): it says the tool's status
    # whichever of them it saw die of the signal first
    script = "trap true INT; { head -c 8M /dev/zero; sleep 20; } | %s %s -; " \
        "echo status=$? >&2" % (sys.executable, TOOL)
    pipeline = subprocess.Popen(["bash", "-c", script], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(2)
    os.killpg(pipeline.pid, signal.SIGINT)
    _, err = pipeline.communicate(timeout=60)
    assert err.decode().splitlines()[-2:] == [
        "extract_symvers: error: interrupted (SIGINT): nothing written", "status=130"]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: the modules are read "
                    "without a worker pool")
def test_signals_held_in_the_pools_code(monkeypatch, tmp_path):
    """While the modules are read by a worker pool, Ctrl-C and SIGTERM are held each time
    this process is in the pool's code (taken between the calls): raised in there, they
    could leave one of its locks taken, and its terminate() waiting forever."""
    import multiprocessing.pool
    masks, calls = [], (multiprocessing.pool.Pool.imap, multiprocessing.pool.IMapIterator.next)

    def held(call):
        def wrapped(*args, **kwargs):
            masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, []))
            return call(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(multiprocessing.pool.Pool, "imap", held(calls[0]))
    monkeypatch.setattr(multiprocessing.pool.IMapIterator, "next", held(calls[1]))
    files = {"drivers/m%03d.ko" % i: build_module(
        "6.14", make_exports(ERAS["6.14"], count=3, seed=2000 + i)) for i in range(70)}
    paths = [os.path.join(module_tree(tmp_path, files), "kernel", name) for name in sorted(files)]
    assert len(extract_symvers.read_modules(paths)) == 70
    assert len(masks) >= 3      # imap, and a wait for each of the 3 chunks
    assert all({signal.SIGINT, signal.SIGTERM} <= mask for mask in masks)
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_ctrl_c_stops_the_module_workers(kernel, tmp_path):
    """A worker blocked on a FIFO among the modules: Ctrl-C ends the run at once, with exit
    130, and no worker is left behind."""
    files = {"drivers/m%03d.ko" % i: build_module("6.14", make_exports(ERAS["6.14"], count=3,
                                                                          seed=i))
             for i in range(100)}
    top = module_tree(tmp_path, files)
    os.mkfifo(os.path.join(top, "kernel", "drivers", "m050.ko.blocking.ko"))
    (tmp_path / "vmlinux").write_bytes(kernel.data)
    status, out, err = interrupt(["--modules", top, tmp_path / "vmlinux"], signal.SIGINT, 3)
    assert (status, out) == (130, "")
    assert err.endswith("extract_symvers: error: interrupted (SIGINT): nothing written\n")
    assert "Traceback" not in err
    time.sleep(1)
    left = [pid for pid in os.listdir("/proc") if pid.isdigit() and os.path.exists(
        "/proc/%s/cmdline" % pid) and str(tmp_path).encode() in open(
        "/proc/%s/cmdline" % pid, "rb").read()]
    assert left == []


STARTUP_FRAME = re.compile(r'extract_symvers\.py", line (\d+)')


def test_ctrl_c_at_any_moment(kernel, tmp_path):
    """SIGINT at 20 moments from 0.01 s to past the end of a run with the module worker pool:
    exit 130 with the line, or (sent too late) the run's own result; never a traceback but
    Python's own, from before the file's first line (importing site, compiling the file: a
    frame of the file at line 0, or at its docstring under 3.8, before the line that takes
    SIGINT), or a silent death before Python takes SIGINT at all."""
    with open(TOOL) as f:
        first = next(number for number, line in enumerate(f, 1) if line.startswith("import "))
    files = {"drivers/m%03d.ko" % i: build_module(
        "6.14", make_exports(ERAS["6.14"], count=3, seed=1000 + i)) for i in range(150)}
    argv = ["--modules", module_tree(tmp_path, files), tmp_path / "vmlinux"]
    (tmp_path / "vmlinux").write_bytes(kernel.data)
    start = time.monotonic()
    status, whole, _ = tool(*argv)
    took = time.monotonic() - start
    assert status == 0 and len(whole.splitlines()) == 40 + 450
    stopped = 0
    for i in range(20):
        status, out, err = interrupt(argv, signal.SIGINT, 0.01 + took * 1.2 * i / 19)
        if "Traceback" in err:
            assert all(int(line) < first for line in STARTUP_FRAME.findall(err)), err
            continue
        if (status, err) == (-signal.SIGINT, ""):     # before Python took SIGINT at all
            continue
        assert (status, out) in ((130, ""), (0, whole)), err
        if status == 130:
            assert err.endswith("extract_symvers: error: interrupted (SIGINT): nothing "
                                "written\n")
            stopped += 1
    assert stopped


def test_the_library_leaves_ctrl_c_alone(image, run):
    """Imported (main() called in-process), the module takes no SIGINT of its caller's."""
    assert run(image).status == 0
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_leaves_no_temporary_file(tmp_path):
    """-o FILE from a slow pipe, stopped: the old FILE as it was, nothing else."""
    target = tmp_path / "Module.symvers"
    target.write_text("old\n")
    feeder = subprocess.Popen("head -c 1M /dev/zero; sleep 20", shell=True,
                              stdout=subprocess.PIPE)
    try:
        status, _, _ = interrupt(["-o", target, "-"], signal.SIGINT, 2, stdin=feeder.stdout)
    finally:
        feeder.kill()
        feeder.wait()
    assert status == 130
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["Module.symvers"]


# --- Module files: one process where there are no semaphores ------------------------------

def test_modules_without_posix_semaphores(kernel, tmp_path, monkeypatch, run, assert_symvers):
    """Termux and other Android Pythons have no sem_open: the modules are read in one
    process, with the same result."""
    import multiprocessing

    def no_sem_open(*args, **kwargs):
        raise ImportError("This platform lacks a functioning sem_open implementation")
    monkeypatch.setattr(multiprocessing, "Pool", no_sem_open)
    exports = {i: make_exports(ERAS["6.14"], count=3, seed=100 + i) for i in range(70)}
    top = module_tree(tmp_path, {"drivers/m%02d.ko" % i: build_module("6.14", x)
                                 for i, x in exports.items()})
    assert_symvers(run("--modules", top), [line for i, x in exports.items()
                                           for line in symvers_lines("6.14", x, "drivers/m%02d"
                                                                     % i)])


def test_read_only_dev_shm(kernel, tmp_path):
    """unshare -m with a read-only tmpfs over /dev/shm (where multiprocessing's semaphores
    live): the same complete file, from one process."""
    if os.getuid() != 0 or not shutil.which("unshare"):
        pytest.skip("unshare -m needs root")
    exports = {i: make_exports(ERAS["6.14"], count=3, seed=100 + i) for i in range(70)}
    top = module_tree(tmp_path, {"drivers/m%02d.ko" % i: build_module("6.14", x)
                                 for i, x in exports.items()})
    (tmp_path / "vmlinux").write_bytes(kernel.data)
    script = "mount -t tmpfs -o ro tmpfs /dev/shm && exec %s %s --modules %s %s" % (
        sys.executable, TOOL, top, tmp_path / "vmlinux")
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                            text=True, timeout=300)
    if "unshare failed" in result.stderr or "Operation not permitted" in result.stderr:
        pytest.skip("unshare -m is not permitted here: %s" % result.stderr.strip())
    assert result.returncode == 0, result.stderr
    assert "reading the modules in one process" in result.stderr
    assert sorted(result.stdout.splitlines()) == sorted(
        kernel.symvers() + [line for i, x in exports.items()
                            for line in symvers_lines("6.14", x, "drivers/m%02d" % i)])


# --- Modules of another build ---------------------------------------------------------------

def test_modules_of_another_release(kernel, tmp_path, run, assert_symvers, kernel_file):
    """The rescue system's own modules next to the device's kernel, built without
    __versions (same_magic() compares the release then): an error naming the module, its
    vermagic and the kernel's, exit 6; --skip-bad-modules leaves it out."""
    ours = make_exports(ERAS["6.14"], count=4, seed=31)
    theirs = make_exports(ERAS["6.14"], count=4, seed=32)
    top = module_tree(tmp_path, {
        "drivers/ours.ko": build_module("6.14", ours),
        "drivers/theirs.ko": build_module("6.14", theirs, modinfo=[
            "license=GPL", "vermagic=6.12.0-rescue SMP mod_unload modversions "])})
    image = kernel_file(kernel.data + b"\0" + b"6.14.0-test SMP mod_unload modversions \0")
    result = run("--modules", top, image)
    assert result.status == 6
    assert result.err.endswith(
        "extract_symvers: error: 1 of 2 modules are of another build (--skip-bad-modules "
        "leaves them out):\n  %s/kernel/drivers/theirs.ko: version magic '6.12.0-rescue SMP "
        "mod_unload modversions ' should be '6.14.0-test SMP mod_unload modversions ' (the "
        "release: module '6.12.0-rescue', kernel '6.14.0-test' (another version of the "
        "kernel))\n" % top)
    result = run("--skip-bad-modules", "--modules", top, image)
    assert_symvers(result, kernel.symvers() + symvers_lines("6.14", ours, "drivers/ours"))
    assert "warning: left out: %s/kernel/drivers/theirs.ko: version magic" % top in result.err


def test_modules_of_another_machine(kernel, tmp_path, run, kernel_file):
    """A 32-bit big-endian mips module next to an x86-64 vmlinux: its ELF header as the
    kernel reads it (little-endian: ET_REL reads 256)."""
    from formats import elf
    top = module_tree(tmp_path, {"drivers/other.ko": build_module(
        "6.14", make_exports(ERAS["6.14"], count=4, seed=33), bits=32, big=True,
        prel32=False)})
    vmlinux = elf(kernel.data + b"\0" + b"6.14.0-test SMP mod_unload modversions \0",
                  kernel.base, 64, False, 62)
    result = run("--modules", top, kernel_file(vmlinux))
    assert result.status == 6
    assert "drivers/other.ko: Invalid ELF header type: 256 != 1 (a 32-bit big-endian mips " \
           "module; the kernel is 64-bit little-endian x86-64)\n" in result.err


def test_modules_only_that_disagree(tmp_path, run, assert_symvers):
    """Without a kernel the build most modules are of is the reference."""
    exports = {i: make_exports(ERAS["6.14"], count=3, seed=40 + i) for i in range(3)}
    files = {"drivers/m%d.ko" % i: build_module("6.14", exports[i]) for i in range(2)}
    files["drivers/m2.ko"] = build_module("6.14", exports[2], modinfo=[
        "license=GPL", "vermagic=5.10.0 SMP mod_unload modversions "])
    top = module_tree(tmp_path, files)
    result = run("--modules", top)
    assert result.status == 6
    assert "1 of 3 modules are of another build than most" in result.err
    assert "drivers/m2.ko: version magic '5.10.0 SMP mod_unload modversions ' should be " \
           "'6.14.0-test SMP mod_unload modversions ' (the release: module '5.10.0', kernel " \
           "'6.14.0-test' (another version of the kernel))\n" in result.err
    assert_symvers(run("--skip-bad-modules", "--modules", top),
                   symvers_lines("6.14", exports[0], "drivers/m0")
                   + symvers_lines("6.14", exports[1], "drivers/m1"))


def test_a_built_module_next_to_an_old_kernel(tmp_path):
    """ppc64 5.4's usbserial.ko (../shared/corpus-built) with the ARM 3.18 kernel of the
    Raspberry Pi 2 (../shared/corpus-old): exit 6, nothing on stdout."""
    if "ppc64-5.4.286" not in shared_kernels("corpus-built"):
        pytest.skip(not_shared("corpus-built", "ppc64-5.4.286"))
    if "rpi2-rt-3.18.11" not in shared_kernels("corpus-old"):
        pytest.skip(not_shared("corpus-old", "rpi2-rt-3.18.11"))
    found = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(
        SHARED, "corpus-built", "ppc64-5.4.286", "modules")) for f in fs if f == "usbserial.ko"]
    shutil.copy(found[0], tmp_path / "usbserial.ko")
    kernel = os.path.join(SHARED, "corpus-old", "rpi2-rt-3.18.11", "zImage")
    status, out, err = tool("--modules", tmp_path, kernel)
    assert (status, out) == (6, "")
    assert 'usbserial.ko: Invalid module format (ENOEXEC: 3.18 logs no reason, 5.16 on say ' \
           '"Invalid ELF header type: 256 != 1"; a 64-bit big-endian ppc64 module; the kernel ' \
           'is 32-bit little-endian)\n' in err


# --- Options the image contradicts, and a file without a banner ----------------------------

def test_options_the_image_contradicts_are_warned_about(run, assert_symvers, kernel_file):
    kernel = build("5.4", bits=64)              # banner: 5.4.100
    result = run("-k", "5.4.20", kernel_file(kernel.data))
    assert result.status == 0
    assert "warning: -k 5.4.20: the banner says Linux 5.4; used as given" in result.err


def test_prel32_before_4_19_is_warned_about(run, assert_symvers, kernel_file):
    """-p y on a 4.10 kernel: PREL32 kernel_symbols came in 4.19; said, and not used."""
    kernel = build("4.10", bits=64)
    result = run("-p", "y", kernel_file(kernel.data))
    assert_symvers(result, kernel)
    assert "warning: -p y: Linux 4.10 has no PREL32 export tables (they came in 4.19); not " \
           "used" in result.err.splitlines()
    assert "warning" not in run("-p", "n", kernel_file(kernel.data)).err


def test_only_what_was_found_is_said(run, kernel_file):
    """Without -v, no base or table candidate tried is said; with -v, each."""
    from formats import vmlinuz
    cfe = build("2.6.18", bits=32, big=True, base=0x80020000)
    path = kernel_file(vmlinuz(gzip.compress(cfe.data)), "vmlinuz")
    quiet, verbose = run(path).err.splitlines(), run("-v", path).err.splitlines()
    assert [line for line in quiet if "trying" in line or "symsearch not" in line] == []
    assert any(line.startswith("trying base ") for line in verbose)
    assert quiet[-2:] == ["detected options: -B 80020000 -b 32 -e be -k 2.6.18 -p n",
                          "40 symbols"]


def test_an_old_kernel_read_with_another_version(tmp_path):
    """-k 2.6.12 on a 3.18 zImage: still the options win, and the warning says so."""
    if "rpi2-rt-3.18.11" not in shared_kernels("corpus-old"):
        pytest.skip(not_shared("corpus-old", "rpi2-rt-3.18.11"))
    directory = os.path.join(SHARED, "corpus-old", "rpi2-rt-3.18.11")
    status, out, err = tool("-k", "2.6.12", kernel_image(directory))
    assert "warning: -k 2.6.12: the banner says Linux 3.18; used as given" in err
    status, out, err = tool("-k", "3.18", kernel_image(directory))
    assert status == 0 and "warning" not in err
    assert sorted(out.splitlines()) == sorted(official_vmlinux_lines(directory))


def test_header_contradicted(run, kernel_file):
    from formats import arm64_image
    kernel = build("6.14", bits=64)
    result = run("-e", "be", "-b", "32", kernel_file(arm64_image(kernel.data), "Image"))
    assert "warning: -b 32: the arm64 Image header says 64-bit; used as given" in result.err
    assert "warning: -e be: the arm64 Image header says little endian; used as given" \
        in result.err


def test_a_file_without_a_banner_is_read_raw_with_k(run, assert_symvers, kernel_file):
    """A partial memory dump, a vendor image with its banner altered: with -k, read as it is
    (as the original tool does); without, the error says to give -k."""
    kernel = build("5.19", bits=64)
    data = kernel.data.replace(b"Linux version", b"Linux VERSION")
    path = kernel_file(data)
    result = run(path)
    assert result.status == 4 and "give -k to read it as a raw image" in result.errors[0]
    result = run("-k", "5.19", path)
    assert_symvers(result, kernel)
    assert "reading the file as a raw image, as -k says" in result.err



@pytest.mark.parametrize("container", ["vmlinuz", "u-boot"])
def test_a_compressed_kernel_without_a_banner_is_read_with_k(container, run, assert_symvers,
                                                              kernel_file):
    """A vmlinuz (or u-boot image) whose kernel's banner is altered: without -k, exit 4 (the
    payload holds no banner: not a kernel, or give -k); with -k, read."""
    from archives import uboot
    from formats import STUB
    kernel = build("5.19", bits=64)
    image = kernel.data.replace(b"Linux version", b"Linux VERSION") + bytes(1 << 16)
    payload = gzip.compress(image, mtime=0)
    path = kernel_file(STUB + payload if container == "vmlinuz" else uboot(payload, "gzip"))
    result = run(path)
    assert result.status == 4
    assert result.errors[0].endswith("decompresses to %d bytes with no Linux banner: not a "
                                     "kernel (give -k to read it as a raw image)" % len(image))
    assert_symvers(run("-k", "5.19", path), kernel)

# --- LZ4 frames with linked blocks ---------------------------------------------------------

@pytest.mark.parametrize("with_package", [True, False])
def test_lz4_linked_blocks(with_package, monkeypatch, run, assert_symvers, kernel_file):
    """lz4 -BD, python-lz4's default lz4.frame.compress: blocks reach into the 64 KiB before
    them."""
    import lz4.frame
    kernel = build("6.14", bits=64, exports=make_exports(ERAS["6.14"], count=2000, seed=9))
    data = lz4.frame.compress(kernel.data, block_linked=True,
                              block_size=lz4.frame.BLOCKSIZE_MAX64KB)
    if not with_package:
        monkeypatch.setitem(sys.modules, "lz4", None)
        monkeypatch.setitem(sys.modules, "lz4.block", None)
    assert_symvers(run(kernel_file(data, "vmlinux.lz4")), kernel)


def test_lz4_command_with_linked_blocks(tmp_path):
    """The lz4 command itself: lz4 -BD on a real kernel (../shared/corpus-old's x86 4.8)."""
    if "mc504-x86-4.8.6" not in shared_kernels("corpus-old"):
        pytest.skip(not_shared("corpus-old", "mc504-x86-4.8.6"))
    if not shutil.which("lz4"):
        pytest.skip("lz4 not installed (apt-get install lz4)")
    directory = os.path.join(SHARED, "corpus-old", "mc504-x86-4.8.6")
    status, _, err = tool("-d", tmp_path / "vmlinux", os.path.join(directory, "bzImage"))
    assert status == 0, err
    subprocess.run(["lz4", "-q", "-BD", "-B4", str(tmp_path / "vmlinux"),
                    str(tmp_path / "vmlinux.lz4")], check=True)
    status, out, err = tool(tmp_path / "vmlinux.lz4")
    assert status == 0, err
    assert sorted(out.splitlines()) == sorted(official_vmlinux_lines(directory))
