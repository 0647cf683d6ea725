#!/usr/bin/env python3
"""Benchmark the loaded modules of memory dumps against vmlinux's lines alone.

usage: bench/loaded.py [--runs N] [--sparse GIB] DUMP...   (QEMU's dump-guest-memory files)

For each dump: wall time (median of --runs, interpreter start included) and peak RSS of
`extract_symvers.py DUMP > /dev/null` (vmlinux and every loaded module), and of the same
process stopped after vmlinux's lines (what the tool did before it read loaded modules:
read_kernel, extract, the lines written), with their ratio.  An ELF core is also
measured grown to --sparse GiB (default 4) by a sparse segment of physical memory after
its own: the memory bound must not grow with the file."""

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile

from dumps import measure       # bench/ is this script's directory: on sys.path

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
TOOL = os.path.join(ROOT, "extract_symvers.py")
# vmlinux's lines only: the tool's own steps up to its output, without loaded_modules()
VMLINUX_ONLY = """
import sys
sys.path.insert(0, %r)
import extract_symvers as es
data, base, memory = es.read_kernel(sys.argv[1])
found = es.extract(data, es.Options(base=base))     # memory: the kernel as it runs
es.write_stdout("".join(line + "\\n" for line in found.lines).encode())
""" % ROOT


def modules_found(path):
    err = subprocess.run([sys.executable, TOOL, path], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, check=True).stderr
    line = next((line for line in err.splitlines() if "on the module list" in line),
                "0 modules")
    return int(line.split()[0])


def sparse_copy(path, target, size):
    """`path` (a 64-bit ELF core, either byte order: QEMU 7.2 writes ppc64le guests'
    big-endian) with a PT_LOAD of zeros after its own, the file `size` bytes, sparse: its
    program headers rewritten at the end of the copy; False where they are too many for one
    more (QEMU's x86-64 -p dumps: see PN_XNUM)."""
    with open(path, "rb") as f:
        head = f.read(64)
    e = ">" if head[5] == 2 else "<"        # EI_DATA
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sparse", type=int, default=4, metavar="GIB")
    parser.add_argument("dumps", nargs="+", metavar="DUMP")
    args = parser.parse_args()
    print("| dump | size | modules | vmlinux only | complete | ratio | peak RSS (vmlinux "
          "only) | peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
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
            alone, alone_peak = measure([sys.executable, "-c", VMLINUX_ONLY, path], args.runs)
            took, peak = measure([sys.executable, TOOL, path], args.runs)
            print("| %s | %.0f MiB | %d | %.2f s | %.2f s | %.2f | %d MB | %d MB |"
                  % (label, os.path.getsize(path) / 2 ** 20, modules_found(path), alone, took,
                     took / alone, alone_peak >> 20, peak >> 20))


if __name__ == "__main__":
    main()
