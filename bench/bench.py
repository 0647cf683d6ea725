#!/usr/bin/env python3
"""Benchmark extract_symvers.py on real kernels against bare decompression.

usage: bench/bench.py [--runs N] KERNEL_DIR...   (directories made by fetch-debian-kernels.sh)

For each kernel, with the options of its meta.json: the image as shipped and the decompressed
vmlinux.raw.  Prints the decompressed size, the wall time of only decompressing the payload
with the same library (a fresh interpreter, as ours is), our end-to-end wall time
(`extract_symvers.py OPTIONS IMAGE > /dev/null`, interpreter start included) with the options
and with none (everything detected), their ratios, our peak RSS and its ratio to the
decompressed size (and that of the bare decompression), and the symbols found; times are the
median of --runs runs, taken in one session so the ratio holds on a noisy machine."""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, "..", "extract_symvers.py")

# Bare decompression of the payload at OFFSET of FILE, as a fresh interpreter does it.
DECOMPRESS = {
    "gzip": "import zlib; zlib.decompressobj(31).decompress(d[o:])",
    "xz": "import lzma; lzma.LZMADecompressor().decompress(d[o:])",
    "lzma": "import lzma; lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(d[o:])",
    "bzip2": "import bz2; bz2.BZ2Decompressor().decompress(d[o:])",
    "zstd": "import zstandard; zstandard.ZstdDecompressor().decompress(d[o:], "
            "max_output_size=1 << 29)",
    "none": "pass",
}


def timed(argv):
    """(wall seconds, peak RSS in bytes, stdout) of one run of argv."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = status
    if status:
        raise SystemExit("failed: %s" % " ".join(argv))
    return time.perf_counter() - start, usage.ru_maxrss * 1024, out


def payload_of(image):
    """(kind, offset, decompressed size), found in a child: a child's peak RSS starts at its
    parent's size, so this process must never hold an image."""
    probe = ("import json, sys; sys.path.insert(0, %r); import extract_symvers as e; "
             "raw, p = e.unpack(open(%r, 'rb').read()); print(json.dumps([p.kind, p.offset, "
             "len(raw)]))" % (os.path.join(HERE, ".."), image))
    return json.loads(subprocess.run([sys.executable, "-c", probe], check=True,
                                     capture_output=True, text=True).stdout)


def bench(image, options, runs):
    kind, offset, size = payload_of(image)
    script = "d = memoryview(open(%r, 'rb').read()); o = %d; %s" % (
        image, offset or 0, DECOMPRESS[kind])
    bare = [timed([sys.executable, "-c", script]) for _ in range(runs)]
    ours = [timed([sys.executable, TOOL, *options, image]) for _ in range(runs)]
    detected = [timed([sys.executable, TOOL, image]) for _ in range(runs)]
    decompress = statistics.median(t for t, _, _ in bare)
    total = statistics.median(t for t, _, _ in ours)
    auto = statistics.median(t for t, _, _ in detected)
    rss = max(r for _, r, _ in ours + detected)
    return dict(image=os.path.basename(image), kind=kind, size=size, decompress=decompress,
                ours=total, ratio=total / decompress, auto=auto, auto_ratio=auto / decompress,
                rss=rss, rss_ratio=rss / size, bare_rss_ratio=max(r for _, r, _ in bare) / size,
                symbols=ours[0][2].count(b"\n"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("kernels", nargs="+", metavar="KERNEL_DIR")
    args = parser.parse_args()
    print("| image | payload | decompressed | decompress only | ours, options | ratio "
          "| ours, no options | ratio | peak RSS | RSS / image | bare RSS / image | symbols |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for directory in args.kernels:
        meta = json.load(open(os.path.join(directory, "meta.json")))
        options = [x for kv in meta["options"].items() for x in kv]
        for name in (meta["image"], "vmlinux.raw"):
            r = bench(os.path.join(directory, name), options, args.runs)
            print("| %s | %s | %.1f MB | %.2f s | %.2f s | %.2f | %.2f s | %.2f | %.0f MB | %.2f "
                  "| %.2f | %d |" % (r["image"], r["kind"], r["size"] / 1e6, r["decompress"],
                                     r["ours"], r["ratio"], r["auto"], r["auto_ratio"],
                                     r["rss"] / 1e6, r["rss_ratio"], r["bare_rss_ratio"],
                                     r["symbols"]), flush=True)


if __name__ == "__main__":
    main()
