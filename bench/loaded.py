#!/usr/bin/env python3
"""Benchmark the loaded modules of memory dumps against the same kernel's image and drgn.

usage: bench/loaded.py [--runs N] [--sparse GIB] [--image VMLINUX] [--drgn-python PY] DUMP...
       (QEMU's dump-guest-memory files of one kernel; VMLINUX its decompressed image, e.g.
       the corpus' vmlinux.raw)

For each dump, side by side in one run: wall time (median of --runs, interpreter start
included) and peak RSS of
- `cat DUMP > /dev/null`: reading the file once;
- `extract_symvers.py VMLINUX > /dev/null`: the same kernel's image alone (vmlinux's lines);
- `extract_symvers.py DUMP > /dev/null`: the complete run (vmlinux and every loaded module),
  and its ratio to the image;
- drgn listing the loaded modules' exports (their kernel_symbol counts), where `--drgn-python`
  (default: this interpreter) imports drgn and drgn finds `struct module`: its released
  versions need the kernel's DWARF for that; its BTF type finder (pull request 625, not
  merged: refs/pull/625/head, a666d50b, "0.2.0+64") is built from its public source: `git
  clone` it, `git fetch origin refs/pull/625/head && git checkout FETCH_HEAD`, `apt-get
  install autoconf automake libtool pkgconf gawk libelf-dev libdw-dev libbpf-dev
  libkdumpfile-dev` (without libbpf 1.0+ the build leaves BTF out), then `python3 -m venv V
  && V/bin/pip install ./drgn`; it loads BTF by load_builtin_btf().  Otherwise the column
  says why not (bookworm's libkdumpfile 0.5.1 reads no flattened kdump file, nor QEMU's
  after makedumpfile -R: "KDUMP_ATTR_ARCH_NAME: Key has no value").
An ELF core is also measured grown to --sparse GiB (default 4) by a sparse segment of
physical memory after its own: the memory bound must not grow with the file."""

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile

from dumps import measure       # bench/ is this script's directory: on sys.path

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, "..", "extract_symvers.py")
# drgn on a dump: the exports of every loaded module, as this tool prints them
DRGN = """
import sys
import drgn
from drgn.helpers.linux.module import for_each_module
prog = drgn.Program()
prog.set_core_dump(sys.argv[1])
try:
    prog.load_default_debug_info()
except drgn.MissingDebugInfoError:
    pass
try:
    prog.type("struct module")
except LookupError:
    try:    # pull request 625's finder: BTF is loaded on its own, not by the call above
        from drgn.helpers.experimental.btf import load_builtin_btf
    except ImportError:
        sys.exit("no type information for struct module")
    load_builtin_btf(prog)
print(sum(int(m.num_syms) + int(m.num_gpl_syms) for m in for_each_module(prog)))
"""


def modules_found(path):
    err = subprocess.run([sys.executable, TOOL, path], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, check=True).stderr
    line = next((line for line in err.splitlines() if "on the module list" in line),
                "0 modules")
    return int(line.split()[0])


def sparse_copy(path, target, size):
    """`path` (a 64-bit ELF core, of either byte order: s390x's is big-endian, and QEMU 7.2
    writes ppc64le guests' big-endian) with a PT_LOAD of zeros after its own, the file `size`
    bytes, sparse: its program headers rewritten at the end of the copy; False where they are
    too many for one more (QEMU's x86-64 -p dumps: see PN_XNUM)."""
    with open(path, "rb") as f:
        head = f.read(64)
    e = ">" if head[5] == 2 else "<"        # EI_DATA: ELFDATA2MSB
    phoff, = struct.unpack_from(e + "Q", head, 32)
    phentsize, phnum = struct.unpack_from(e + "HH", head, 54)
    if phnum + 1 >= 0xFFFF:
        return False
    shutil.copyfile(path, target)
    with open(target, "r+b") as f:
        f.seek(phoff)
        headers = f.read(phentsize * phnum)
        loads = [struct.unpack_from(e + "IIQQQQQQ", headers, i * phentsize)
                 for i in range(phnum)]
        top = max(h[3] + h[5] for h in loads if h[0] == 1)          # p_paddr + p_filesz
        end = f.seek(0, 2)
        table = (end + 4095) & ~4095
        data = (table + phentsize * (phnum + 1) + 4095) & ~4095
        extra = struct.pack(e + "IIQQQQQQ", 1, 6, data, 0, top, size - data, size - data, 4096)
        f.seek(table)
        f.write(headers + extra)
        f.truncate(size)
        f.seek(32)
        f.write(struct.pack(e + "Q", table))
        f.seek(56)
        f.write(struct.pack(e + "H", phnum + 1))
    return True


def drgn_run(python, path, runs):
    """drgn's (seconds, peak RSS) on a dump, or why it cannot say."""
    probe = subprocess.run([python, "-c", DRGN, path], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    if probe.returncode:
        return (probe.stderr.strip().splitlines() or ["failed"])[-1]
    return measure([python, "-c", DRGN, path], runs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sparse", type=int, default=4, metavar="GIB")
    parser.add_argument("--image", metavar="VMLINUX", help="the same kernel's decompressed image")
    parser.add_argument("--drgn-python", default=sys.executable, metavar="PY")
    parser.add_argument("dumps", nargs="+", metavar="DUMP")
    args = parser.parse_args()
    image = measure([sys.executable, TOOL, args.image], args.runs) if args.image else None
    if image:
        print("the image alone (%s): %.2f s, peak RSS %d MB\n"
              % (os.path.basename(args.image), image[0], image[1] >> 20))
    print("| dump | size | modules | cat | complete | / image | peak RSS | drgn | drgn RSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(args.dumps[0]))) \
            as work:
        inputs = []
        for number, path in enumerate(args.dumps):
            inputs.append((path, path))
            with open(path, "rb") as f:
                if f.read(5) == b"\x7fELF\x02":
                    grown = os.path.join(work, "%d.elf" % number)
                    if sparse_copy(path, grown, args.sparse << 30):
                        inputs.append((path + " in %d GiB, sparse" % args.sparse, grown))
        for label, path in inputs:
            cat, _ = measure(["sh", "-c", 'cat "$0" > /dev/null', path], args.runs)
            took, peak = measure([sys.executable, TOOL, path], args.runs)
            drgn = drgn_run(args.drgn_python, path, args.runs)
            print("| %s | %.0f MiB | %d | %.2f s | %.2f s | %s | %d MB | %s | %s |"
                  % (label, os.path.getsize(path) / 2 ** 20, modules_found(path), cat, took,
                     "%.2f" % (took / image[0]) if image else "-", peak >> 20,
                     "%.2f s" % drgn[0] if isinstance(drgn, tuple) else drgn,
                     "%d MB" % (drgn[1] >> 20) if isinstance(drgn, tuple) else "-"))


if __name__ == "__main__":
    main()
