#!/usr/bin/env python3
"""Time and memory of damaged dumps whose headers claim what the file does not hold.

usage: bench/damaged.py [--runs N]

Builds, with the tests' builders (tests/memdump.py, tests/archives.py), in a temporary
directory: a kdump file whose header claims 8192 bitmap blocks of a 2^40-page machine, grown
sparse to 8 GiB (as it was, and with 16 MiB of its bitmap all ones: 128 million pages); a
flattened file without its end record grown sparse to 8 GiB; an ELF core whose PN_XNUM count
is 9 million (sparse to 1 GiB); page tables whose every entry leads to one table.  For each:
the exit status, wall time (median of --runs, interpreter start included) and peak RSS of
`extract_symvers.py FILE > /dev/null`.  Each must stay within seconds and ~200 MB."""

import argparse
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, "..", "extract_symvers.py")
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from archives import elf_core, kdump                                      # noqa: E402
from kernelimage import build                                             # noqa: E402
from memdump import (MMUS, kernel_with_modules, paged_memory, qemu_cpu_state,  # noqa: E402
                     virtual_dump)


def kdump_file(path, flattened=False):
    kernel = build("6.14", base=0xFFFFFFFF81000000)
    memory = bytearray(24 << 20)
    memory[16 << 20:(16 << 20) + len(kernel.data)] = kernel.data
    with open(path, "wb") as f:
        f.write(kdump(bytes(memory), lambda p: (zlib.compress(p), 1), b"OSRELEASE=6.14.0\n",
                      flattened=flattened))


def bitmap_blocks(path, ones):
    kdump_file(path)
    with open(path, "r+b") as f:
        f.seek(436)
        f.write(struct.pack("<I", 8192))
        f.seek(4096 + 96)
        f.write(struct.pack("<Q", 1 << 40))
        f.seek(2 * 4096 + 8192 * 4096 // 2)
        f.write(b"\xff" * ones)
        f.truncate(8 << 30)


def flattened_without_end(path):
    kdump_file(path, flattened=True)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 16)
        f.truncate(8 << 30)


def pn_xnum(path):
    virtual_dump(path, kernel_with_modules(count=1, stale=False))
    with open(path, "r+b") as f:
        end = os.path.getsize(path)
        f.seek(56)
        f.write(struct.pack("<H", 0xFFFF))
        f.seek(40)
        f.write(struct.pack("<Q", end))
        f.seek(end)
        f.write(struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 9000000, 0, 0))
        f.truncate(1 << 30)


def aliased_tables(path):
    memory = kernel_with_modules(stale=False)
    physical, root, _ = paged_memory(memory, MMUS["x86-64"], large=21)
    start, image = physical.image()
    image = bytearray(image)
    mask, va = 0x000FFFFFFFFFF000, 0xFFFFFFFFC0000000
    table = struct.unpack_from("<Q", image, root - start + 8 * 511)[0] & mask
    for shift in (30, 21):
        entry, = struct.unpack_from("<Q", image, table - start + 8 * (va >> shift & 511))
        struct.pack_into("<512Q", image, table - start, *[entry] * 512)
        table = entry & mask
    elf_core(path, [(start, start, len(image), bytes(image))],
             notes=[(b"QEMU", 0, qemu_cpu_state(root))])


CASES = (("kdump: 8192 bitmap blocks, 8 GiB sparse", lambda p: bitmap_blocks(p, 0)),
         ("kdump: 16 MiB of bitmap all ones, 8 GiB sparse", lambda p: bitmap_blocks(p, 16 << 20)),
         ("flattened without its end record, 8 GiB sparse", flattened_without_end),
         ("ELF core: PN_XNUM of 9 million, 1 GiB sparse", pn_xnum),
         ("page tables leading to one table", aliased_tables))


def measure(path, runs):
    """(exit status, median wall seconds, peak RSS in MB) of the tool on `path`."""
    times, peak = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, TOOL, path],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        times.append(time.perf_counter() - start)
        peak = max(peak, int(result.stderr.split()[-1]) >> 10)
    return result.returncode, statistics.median(times), peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print("| dump | exit | time | peak RSS |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        for label, make in CASES:
            path = os.path.join(work, "dump")
            make(path)
            status, seconds, peak = measure(path, args.runs)
            print("| %s | %d | %.2f s | %d MB |" % (label, status, seconds, peak), flush=True)
            os.unlink(path)


if __name__ == "__main__":
    main()
