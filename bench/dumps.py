#!/usr/bin/env python3
"""Benchmark a kernel inside flash and memory dumps against the same kernel alone.

usage: bench/dumps.py [--runs N] KERNEL_DIR...   (made by fetch-debian-kernels.sh)

For each kernel: the image as shipped, then the same bytes at 16 MiB in 64 MiB and 128 MiB
dumps of random bytes (a flash or partition dump): wall time (median of --runs, interpreter
start included) and peak RSS of `extract_symvers.py FILE > /dev/null`, their ratios to the
kernel alone, and the memory bound input size + 2.5 x the decompressed image."""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, "..", "extract_symvers.py")


def measure(command, runs):
    """(median wall seconds, peak RSS in bytes) of `command`, measured by /usr/bin/time (a
    forked child's ru_maxrss starts at its parent's)."""
    times, peak = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(["/usr/bin/time", "-f", "%M", *command],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                check=True)
        times.append(time.perf_counter() - start)
        peak = max(peak, int(result.stderr.split()[-1]) * 1024)
    return statistics.median(times), peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("kernels", nargs="+", metavar="KERNEL_DIR")
    args = parser.parse_args()
    print("| kernel | input | size | time | x alone | peak RSS | bound (input + 2.5 x image) |")
    print("|---|---|---|---|---|---|---|")
    for directory in args.kernels:
        meta = json.load(open(os.path.join(directory, "meta.json")))
        shipped = os.path.join(directory, meta["image"])
        raw = os.path.getsize(os.path.join(directory, "vmlinux.raw"))
        name = os.path.basename(directory.rstrip("/"))
        with tempfile.TemporaryDirectory() as work:
            inputs = [("alone", shipped)]
            for size in (64, 128):      # written first: a child forked while this process
                dump = bytearray(os.urandom(size << 20))       # holds them counts them
                image = open(shipped, "rb").read()
                dump[16 << 20:(16 << 20) + len(image)] = image
                inputs.append(("at 16 MiB in a %d MiB dump" % size,
                               os.path.join(work, "dump%d" % size)))
                open(inputs[-1][1], "wb").write(dump)
                del dump, image
            alone = None
            for label, path in inputs:
                took, peak = measure([sys.executable, TOOL, path], args.runs)
                alone = alone or took
                size = os.path.getsize(path)
                print("| %s | %s | %.1f MB | %.2f s | %.2f | %d MB | %d MB |"
                      % (name, label, size / 1e6, took, took / alone, peak >> 20,
                         (size + 2.5 * raw) / 2 ** 20))


if __name__ == "__main__":
    main()
