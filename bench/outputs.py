#!/usr/bin/env python3
"""A checksum of the tool's output on every kernel given: the proof that a change of the code
changed nothing users see.

usage: bench/outputs.py [--tool PATH] KERNEL_DIR...

KERNEL_DIR is a directory of fetch-debian-kernels.sh (meta.json names the image; its module
tree is lib/modules/RELEASE) or of ../shared/corpus-old and corpus-built (the image, and
modules/).  For each: `TOOL IMAGE` and, where there are modules, `TOOL --modules TREE IMAGE`,
as a line `name form status lines sha256-of-stdout`.  Run it with the old and the new file
and compare the two listings (diff)."""

import argparse
import hashlib
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def module_tree(directory, meta):
    """The kernel's modules: lib/modules/RELEASE of a fetched kernel, modules/ of a built one."""
    trees = [os.path.join(directory, "lib", "modules", meta["release"])] if "release" in meta \
        else []
    trees.append(os.path.join(directory, "modules"))
    return next((tree for tree in trees if os.path.isdir(tree)), None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tool", default=os.path.join(HERE, "..", "extract_symvers.py"))
    parser.add_argument("kernels", nargs="+", metavar="KERNEL_DIR")
    args = parser.parse_args()
    for directory in args.kernels:
        meta = json.load(open(os.path.join(directory, "meta.json")))
        image = os.path.join(directory, meta["image"])
        tree = module_tree(directory, meta)
        forms = [("image", [image])] + ([("modules", ["--modules", tree, image])] if tree else [])
        for form, argv in forms:
            result = subprocess.run([sys.executable, args.tool, *argv], capture_output=True)
            print("%s %s %d %d %s" % (os.path.basename(directory.rstrip("/")), form,
                                      result.returncode, result.stdout.count(b"\n"),
                                      hashlib.sha256(result.stdout).hexdigest()[:16]),
                  flush=True)


if __name__ == "__main__":
    main()
