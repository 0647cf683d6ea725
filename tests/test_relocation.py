"""Relocatable images whose absolute pointers the boot code fills in (arm64 Image with
--no-apply-dynamic-relocs): the tool applies the image's own .rela.dyn."""

import struct

import pytest

from formats import arm64_image, unrelocated, with_relr
from kernelimage import build


@pytest.mark.parametrize("era", ["3.10", "4.10", "5.10", "6.14"])
def test_zeroed_pointers_with_rela(era, run, assert_symvers, kernel_file):
    """Absolute kernel_symbols (arm64 before 4.19) and the symsearch array are all zero in
    the file: only the relocations recover them.  No options needed."""
    kernel = build(era, bits=64, prel32=False)
    assert_symvers(run(kernel_file(arm64_image(unrelocated(kernel)), "Image")), kernel)


def test_zeroed_pointers_with_given_options(run, assert_symvers, kernel_file):
    kernel = build("4.10", bits=64, prel32=False)
    assert_symvers(run(*kernel.options, kernel_file(unrelocated(kernel), "Image")), kernel)


def test_relocation_base_and_count_are_reported(run, assert_symvers, kernel_file):
    kernel = build("4.10", bits=64, prel32=False)
    result = run(kernel_file(arm64_image(unrelocated(kernel)), "Image"))
    assert_symvers(result, kernel)
    count = len(kernel.pointers)
    assert "applied %d of %d R_AARCH64_RELATIVE relocations (link base ffffffff81000000)" \
        % (count, count) in result.err


def test_relr_kernel_needs_nothing(run, assert_symvers, kernel_file):
    """CONFIG_RELR keeps link-time values in place: read as it is."""
    kernel = build("5.10", bits=64, prel32=False)
    assert_symvers(run(kernel_file(arm64_image(with_relr(kernel)), "Image")), kernel)


def test_decompress_saves_the_relocated_image(tmp_path, run, assert_symvers, kernel_file):
    """python extract_symvers.py -r -d Image.relocated Image"""
    kernel = build("4.10", bits=64, prel32=False)
    target = tmp_path / "Image.relocated"
    assert run("-r", "-d", target, kernel_file(unrelocated(kernel), "Image"))[:2] == (0, "")
    relocated = target.read_bytes()
    for offset, value in kernel.pointers:
        assert struct.unpack_from("<Q", relocated, offset)[0] == value
    assert_symvers(run(*kernel.options, target), kernel)


def test_input_file_is_not_modified(run, assert_symvers, kernel_file):
    kernel = build("4.10", bits=64, prel32=False)
    image = unrelocated(kernel)
    path = kernel_file(image, "Image")
    assert_symvers(run(path), kernel)
    with open(path, "rb") as f:
        assert f.read() == image


def test_relocate_without_relocations(tmp_path, run, assert_symvers, kernel_file):
    """-r on an image with nothing to relocate: said, and the image read (saved) as it is."""
    kernel = build("4.10", bits=64, prel32=False)
    warning = ("warning: -r: no relocations to apply (none found, or their slots are filled "
               "already): the image is read as it is")
    result = run("-r", "-d", tmp_path / "same", kernel_file(kernel.data))
    assert result.status == 0 and warning in result.err.splitlines()
    assert (tmp_path / "same").read_bytes() == kernel.data
    result = run("-r", kernel_file(kernel.data))
    assert_symvers(result, kernel)
    assert warning in result.err.splitlines()


KASLR_BASE = 0xFFFF800008000000 + 0x1E3A0000     # link address + a random KASLR offset


@pytest.mark.parametrize("era, prel32", [("4.10", False), ("5.10", True), ("6.14", True),
                                         ("7.2", True)])
def test_kaslr_memory_dump(era, prel32, run, assert_symvers, kernel_file):
    """A dump of a running arm64 kernel: the pointers hold the randomized run-time addresses
    and the relocations are gone (freed with the init sections).  The base is found from the
    pointers; given, it is used as it is."""
    kernel = build(era, bits=64, prel32=prel32, base=KASLR_BASE)
    dump = kernel_file(arm64_image(kernel.data), "memory.dump")
    assert_symvers(run(dump), kernel)
    assert_symvers(run("-B", "%x" % KASLR_BASE, dump), kernel)
