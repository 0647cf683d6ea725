"""The real kernels the tests compare with, and the tool run on them as a user runs it.

EXTRACT_SYMVERS_CORPUS names a directory made by ../shared/corpus/fetch-debian-kernels.sh
(each kernel with its official Module.symvers and meta.json); EXTRACT_SYMVERS_SHARED the
shared directory with corpus-old/ and corpus-built/ (default: ../shared beside the
checkout)."""

import glob
import json
import lzma
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "extract_symvers.py")
CORPUS = os.environ.get("EXTRACT_SYMVERS_CORPUS")
SHARED = os.environ.get("EXTRACT_SYMVERS_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
FETCH = "../shared/corpus/fetch-debian-kernels.sh --modules"
NO_CORPUS = "no corpus: set EXTRACT_SYMVERS_CORPUS to a directory fetched by " + FETCH


def not_in_corpus(what):
    """Why a test of `what` (kernels of the corpus) is skipped: no corpus given, or one
    without them."""
    return "%s not in %s (fetch with %s)" % (what, CORPUS, FETCH) if CORPUS else NO_CORPUS


def not_shared(corpus, *names):
    """Why a test of the kernels `names` of SHARED/`corpus` is skipped."""
    top = os.path.join(SHARED, corpus)
    if not os.path.isdir(top):
        return "no %s: set EXTRACT_SYMVERS_SHARED to the directory holding corpus-old and " \
               "corpus-built (%s is not one)" % (corpus, SHARED)
    return "%s not in %s" % (" and ".join(names), top)


def each(values, reason, width=1):
    """pytest.mark.parametrize's values (of `width` names), or where there are none, one
    case skipped for `reason` (pytest would skip it as "got empty parameter set")."""
    return values or [pytest.param(*(None,) * width, marks=pytest.mark.skip(reason=reason),
                                   id="none")]


def meta(directory):
    with open(os.path.join(directory, "meta.json")) as f:
        return json.load(f)


def corpus_kernels():
    """The names of the fetched kernels in EXTRACT_SYMVERS_CORPUS (none without it)."""
    if not CORPUS:
        return []
    return [name for name in sorted(os.listdir(CORPUS))
            if os.path.exists(os.path.join(CORPUS, name, "meta.json"))
            and "options" in meta(os.path.join(CORPUS, name))]


def shared_kernels(corpus):
    """The names of the kernels in SHARED/corpus (corpus-old, corpus-built)."""
    top = os.path.join(SHARED, corpus)
    if not os.path.isdir(top):
        return []
    return sorted(name for name in os.listdir(top)
                  if os.path.exists(os.path.join(top, name, "meta.json")))


def kernel_image(directory):
    """The image a fetched kernel's meta.json names, as shipped."""
    return os.path.join(directory, meta(directory)["image"])


def module_tree(directory):
    """lib/modules/RELEASE of a fetched kernel, or None."""
    tree = os.path.join(directory, "lib", "modules", meta(directory)["release"])
    return tree if os.path.isdir(tree) else None


def tool(*args, timeout=1200, status=0):
    """extract_symvers.py run as a user runs it: (stdout lines, stderr); the exit status
    must be `status` (None: a verdict, 0, 7 or 8)."""
    result = subprocess.run([sys.executable, TOOL, *map(str, args)], capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode in ((0, 7, 8) if status is None else (status,)), \
        result.stderr[-3000:]
    return result.stdout.splitlines(), result.stderr


def official_lines(directory):
    """The lines of the Module.symvers of the kernel's own build."""
    with open(os.path.join(directory, "Module.symvers")) as f:
        return f.read().splitlines()


def official_vmlinux_lines(directory):
    return [line for line in official_lines(directory) if line.split("\t")[2:3] == ["vmlinux"]]


def loaded_lines(directory, loaded):
    """The official lines of vmlinux and of the modules `loaded`, each module's column its
    name as the kernel holds it (the file's, with _ for -), as a dump of it gives them."""
    lines = []
    for line in official_lines(directory):
        fields = line.split("\t")
        name = fields[2].rsplit("/", 1)[-1].replace("-", "_")
        if fields[2] == "vmlinux" or name in loaded:
            lines.append("\t".join(fields[:2] + [fields[2] if fields[2] == "vmlinux" else name]
                                   + fields[3:]))
    return lines


def module_vermagic(top):
    """The vermagic= of the first module under `top` (.ko or .ko.xz), which modpost wrote with
    the kernel's own."""
    for directory, _, files in sorted(os.walk(top)):
        for name in sorted(files):
            if name.endswith((".ko", ".ko.xz")):
                with open(os.path.join(directory, name), "rb") as f:
                    data = f.read()
                data = lzma.decompress(data) if name.endswith(".xz") else data
                return re.search(rb"vermagic=([^\0]*)", data).group(1).decode()
    return None


def modules_package(directory):
    """The downloaded .deb holding lib/modules/RELEASE/kernel (fetch-debian-kernels.sh keeps
    them in .debs/): linux-image-* in bookworm, linux-modules-* later; or None."""
    debs = os.path.join(os.path.dirname(directory), ".debs")
    release = meta(directory)["release"]
    for prefix in ("linux-modules-", "linux-image-"):
        found = [d for d in glob.glob(os.path.join(debs, prefix + release + "*.deb"))
                 if os.path.getsize(d) > 1 << 20]
        if found:
            return found[0]
    return None


# kinds of change -> whether it is one, from the official lines' fields (crc, name, module,
# export type, namespace): what --diff must report, computed here on its own
def _gpl(export_type):
    return export_type.endswith("_GPL")


def _module(column):
    return column.rsplit("/", 1)[-1].replace("-", "_")


OFFICIAL_KINDS = (
    ("changed CRC", lambda old, new: old[0] != new[0]),
    ("became GPL-only", lambda old, new: not _gpl(old[3]) and _gpl(new[3])),
    ("no longer GPL-only", lambda old, new: _gpl(old[3]) and not _gpl(new[3])),
    ("changed namespace", lambda old, new: old[4] != new[4]),
    ("moved", lambda old, new: _module(old[2]) != _module(new[2])))


def official_changes(old_lines, new_lines):
    """{(kind, symbol)} between two official Module.symvers files (their first line of a
    name: vmlinux's first)."""
    def exports(lines):
        found = {}
        for line in lines:
            fields = (line.split("\t") + [""])[:5]
            found.setdefault(fields[1], (int(fields[0], 16), *fields[1:]))
        return found

    old, new = exports(old_lines), exports(new_lines)
    changes = {("removed", name) for name in old.keys() - new.keys()}
    changes |= {("added", name) for name in new.keys() - old.keys()}
    for name in old.keys() & new.keys():
        changes |= {(kind, name) for kind, differs in OFFICIAL_KINDS
                    if differs(old[name], new[name])}
    return changes
