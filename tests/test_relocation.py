"""Relocatable images whose absolute pointers the boot code fills in (arm64 Image with
--no-apply-dynamic-relocs): the tool applies the image's own .rela.dyn."""

import struct

import pytest

import extract_symvers
from formats import arm64_image, unrelocated, with_relr
from kernelimage import build


@pytest.mark.parametrize("era", ["3.10", "4.10", "5.10", "6.14"])
def test_zeroed_pointers_with_rela(era, run, kernel_file):
    """Absolute kernel_symbols (arm64 before 4.19) and the symsearch array are all zero in
    the file: only the relocations recover them.  No options needed."""
    kernel = build(era, bits=64, prel32=False)
    image = arm64_image(unrelocated(kernel))
    out = run(kernel_file(image, "Image"))
    assert sorted(out) == sorted(kernel.symvers())


def test_zeroed_pointers_with_given_options(run, kernel_file):
    kernel = build("4.10", bits=64, prel32=False)
    out = run(*kernel.options, kernel_file(unrelocated(kernel), "Image"))
    assert sorted(out) == sorted(kernel.symvers())


def test_relocation_base_and_count_are_reported(kernel_file, capsys):
    kernel = build("4.10", bits=64, prel32=False)
    assert extract_symvers.main([kernel_file(arm64_image(unrelocated(kernel)), "Image")]) == 0
    err = capsys.readouterr().err
    count = len(kernel.pointers)
    assert "applied %d of %d R_AARCH64_RELATIVE relocations (link base ffffffff81000000)" \
        % (count, count) in err


def test_relr_kernel_needs_nothing(run, kernel_file):
    """CONFIG_RELR keeps link-time values in place: read as it is."""
    kernel = build("5.10", bits=64, prel32=False)
    out = run(kernel_file(arm64_image(with_relr(kernel)), "Image"))
    assert sorted(out) == sorted(kernel.symvers())


def test_decompress_saves_the_relocated_image(tmp_path, run, kernel_file):
    kernel = build("4.10", bits=64, prel32=False)
    target = tmp_path / "Image.relocated"
    run("-r", "-d", target, kernel_file(unrelocated(kernel), "Image"))
    relocated = target.read_bytes()
    for offset, value in kernel.pointers:
        assert struct.unpack_from("<Q", relocated, offset)[0] == value
    out = run(*kernel.options, target)
    assert sorted(out) == sorted(kernel.symvers())


def test_input_file_is_not_modified(run, kernel_file):
    kernel = build("4.10", bits=64, prel32=False)
    image = unrelocated(kernel)
    path = kernel_file(image, "Image")
    run(path)
    assert open(path, "rb").read() == image


def test_relocate_without_relocations(fail, kernel_file):
    kernel = build("4.10", bits=64, prel32=False)
    status, err = fail("-r", "-d", "/tmp/nothing", kernel_file(kernel.data))
    assert status == 5
    assert "no relocations to apply" in err


KASLR_BASE = 0xFFFF800008000000 + 0x1E3A0000     # link address + a random KASLR offset


@pytest.mark.parametrize("era, prel32", [("4.10", False), ("5.10", True), ("6.14", True),
                                         ("7.2", True)])
def test_kaslr_memory_dump(era, prel32, run, kernel_file):
    """A dump of a running arm64 kernel: the pointers hold the randomized run-time addresses
    and the relocations are gone (freed with the init sections).  The base is found from the
    pointers; given, it is used as it is."""
    kernel = build(era, bits=64, prel32=prel32, base=KASLR_BASE)
    dump = kernel_file(arm64_image(kernel.data), "memory.dump")
    assert sorted(run(dump)) == sorted(kernel.symvers())
    assert sorted(run("-B", "%x" % KASLR_BASE, dump)) == sorted(kernel.symvers())
