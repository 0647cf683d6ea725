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
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, "..", "extract_symvers.py")
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from archives import kdump                                                # noqa: E402
from kernelimage import build                                             # noqa: E402
from memdump import (aliased_module_tables, bitmap_beyond, kernel_with_modules,  # noqa: E402
                     phnum_beyond, virtual_dump)


def kdump_file(path, flattened=False):
    kernel = build("6.14", base=0xFFFFFFFF81000000)
    memory = bytearray(24 << 20)
    memory[16 << 20:(16 << 20) + len(kernel.data)] = kernel.data
    with open(path, "wb") as f:
        f.write(kdump(bytes(memory), lambda p: (zlib.compress(p), 1), b"OSRELEASE=6.14.0\n",
                      flattened=flattened))


def bitmap_blocks(path, ones):
    kdump_file(path)
    bitmap_beyond(path, ones)


def flattened_without_end(path):
    kdump_file(path, flattened=True)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 16)
        f.truncate(8 << 30)


def pn_xnum(path):
    virtual_dump(path, kernel_with_modules(count=1, stale=False))
    phnum_beyond(path, 0xFFFF, 9000000)
    with open(path, "r+b") as f:
        f.truncate(1 << 30)


def aliased_tables(path):
    aliased_module_tables(path, kernel_with_modules(stale=False))


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
