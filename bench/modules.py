#!/usr/bin/env python3
"""Benchmark --modules from archives against the same modules from a directory.

usage: bench/modules.py [--runs N] KERNEL_DIR...   (made by fetch-debian-kernels.sh --modules;
                                                   the .deb files are in its .debs/)

For each kernel whose package holding the modules is in .debs: the wall time of
`extract_symvers.py --modules TREE` (the unpacked lib/modules/RELEASE), of the bare
`tar -xJf data.tar.xz` of that package (the member taken out beforehand, untimed), and of
`extract_symvers.py --modules PACKAGE.deb`; the ratio deb / (tree + tar) is the cost of
reading the archive in memory.  Then a vendor ramdisk: 400 of the kernel's modules in a flat
lib/modules/ cpio compressed with `lz4 -l` (as Android's vendor_boot ramdisks), read with
`--modules`.  Times are medians of --runs runs taken in one session."""

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
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from corpus import modules_package  # noqa: E402


def wall(argv, runs, **kwargs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       **kwargs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("kernels", nargs="+", metavar="KERNEL_DIR")
    args = parser.parse_args()
    print("| kernel | modules | tree | tar -xJf | .deb | .deb / (tree + tar) "
          "| ramdisk (400 modules, lz4) | ramdisk size |")
    print("|---|---|---|---|---|---|---|---|")
    for directory in args.kernels:
        meta = json.load(open(os.path.join(directory, "meta.json")))
        tree = os.path.join(directory, "lib", "modules", meta["release"])
        deb = modules_package(directory)
        if not os.path.isdir(tree) or deb is None:
            continue
        modules = sorted(os.path.join(d, f) for d, _, fs in os.walk(tree) for f in fs
                         if f.endswith((".ko", ".ko.xz")))
        with tempfile.TemporaryDirectory() as work:
            member = subprocess.run(["ar", "t", deb], capture_output=True, text=True,
                                    check=True).stdout.split()
            data = next(m for m in member if m.startswith("data.tar"))
            subprocess.run(["ar", "x", deb, data], cwd=work, check=True)
            os.mkdir(os.path.join(work, "out"))
            t_tar = wall(["tar", "-xf", data, "-C", "out"], args.runs, cwd=work)
            t_tree = wall([sys.executable, TOOL, "--modules", tree], args.runs)
            t_deb = wall([sys.executable, TOOL, "--modules", deb], args.runs)
            # a vendor ramdisk: 400 modules, the largest holding 60 MB at most (about 30 MB
            # once compressed), flat, cpio newc, lz4 legacy
            from archives import cpio
            import lzma
            files = {}
            for path in modules:
                data_ = open(path, "rb").read()
                files["lib/modules/" + os.path.basename(path).split(".ko")[0] + ".ko"] = \
                    lzma.decompress(data_) if path.endswith(".xz") else data_
            by_size = sorted(files, key=lambda name: len(files[name]))
            end = len(by_size)
            while sum(len(files[n]) for n in by_size[end - 400:end]) > 60e6:
                end -= 10
            files = {name: files[name] for name in by_size[end - 400:end]}
            ramdisk = os.path.join(work, "vendor_ramdisk.cpio")
            open(ramdisk, "wb").write(cpio(files))
            subprocess.run(["lz4", "-l", "-9", "-q", "-f", ramdisk, ramdisk + ".lz4"], check=True)
            t_ramdisk = wall([sys.executable, TOOL, "--modules", ramdisk + ".lz4"], args.runs)
            size = os.path.getsize(ramdisk + ".lz4")
        print("| %s | %d | %.2f s | %.2f s | %.2f s | %.2f | %.2f s | %.1f MB |" % (
            os.path.basename(directory.rstrip("/")), len(modules), t_tree, t_tar, t_deb,
            t_deb / (t_tree + t_tar), t_ramdisk, size / 1e6))


if __name__ == "__main__":
    main()
