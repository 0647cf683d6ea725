"""Real old vendor kernels (../shared/corpus-old: 2.6.12 -> 4.9, ARM, MIPS le/be, x86) and
kernels built from stable sources for eras no distribution ships (../shared/corpus-built:
arm64 4.14 relocatable, ppc64 big-endian 5.4 with MODULE_REL_CRCS), each against the
Module.symvers written by the same build, with no options:

    python extract_symvers.py DIR/IMAGE
    python extract_symvers.py --modules DIR/modules DIR/IMAGE

EXTRACT_SYMVERS_SHARED names the shared directory (default: ../shared beside the checkout)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SHARED = os.environ.get("EXTRACT_SYMVERS_SHARED", os.path.join(ROOT, "..", "shared"))
TOOL = os.path.join(ROOT, "extract_symvers.py")


def kernels(corpus):
    top = os.path.join(SHARED, corpus)
    if not os.path.isdir(top):
        return []
    return sorted(name for name in os.listdir(top)
                  if os.path.exists(os.path.join(top, name, "meta.json")))


OLD, BUILT = kernels("corpus-old"), kernels("corpus-built")


def test_corpora_are_there():
    if not os.path.isdir(SHARED):
        pytest.skip("no shared directory at %s (set EXTRACT_SYMVERS_SHARED): the old and "
                    "built kernels are not here to compare with" % SHARED)
    assert len(OLD) >= 9 and len(BUILT) >= 2, (OLD, BUILT)


def symvers(path, vmlinux_only):
    with open(path) as f:
        lines = f.read().splitlines()
    return [line for line in lines if not vmlinux_only or line.split("\t")[2] == "vmlinux"]


@pytest.mark.parametrize("name", OLD)
def test_old_kernel(name):
    directory = os.path.join(SHARED, "corpus-old", name)
    meta = json.load(open(os.path.join(directory, "meta.json")))
    result = subprocess.run([sys.executable, TOOL, os.path.join(directory, meta["image"])],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    ours = result.stdout.splitlines()
    official = symvers(os.path.join(directory, "Module.symvers"), vmlinux_only=True)
    assert len(ours) == len(set(ours)) == meta["vmlinux_exports"]
    assert sorted(ours) == sorted(official)
    assert {line.count("\t") + 1 for line in ours} == {meta["symvers_columns"]}


@pytest.mark.parametrize("name", BUILT)
def test_built_kernel_with_modules(name):
    directory = os.path.join(SHARED, "corpus-built", name)
    meta = json.load(open(os.path.join(directory, "meta.json")))
    result = subprocess.run([sys.executable, TOOL, "--modules", os.path.join(directory, "modules"),
                             os.path.join(directory, meta["image"])],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    ours = result.stdout.splitlines()
    official = symvers(os.path.join(directory, "Module.symvers"), vmlinux_only=False)
    assert len(ours) == len(set(ours))
    assert sorted(ours) == sorted(official)
    assert len([line for line in ours if "\tvmlinux\t" in line]) == \
        meta["module_symvers_vmlinux_lines"]
