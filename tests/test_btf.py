"""--btf FILE: the kernel's BTF, byte for byte, out of an image, a compressed one or a dump."""

import gzip

from formats import COMPRESSORS, vmlinuz
from kernelimage import ERAS, build, make_exports
from kobuild import build_module
from memdump import btf, kernel_with_modules, module_btf, virtual_dump

# a kernel's BTF as pahole writes it: the header, the types, the strings
KERNEL_BTF = btf({"sk_buff": (232, {"next": 0, "prev": 8, "len": 112}),
                  "module": (1024, {"state": 0, "list": 8, "name": 24})})


def test_btf_of_a_compressed_image(tmp_path, run, kernel_file):
    """The blob after the kernel's tables, in an xz vmlinuz; a copy cut short before it (its
    types overrun their section) is not it."""
    kernel = build("5.19", bits=64)
    cut = KERNEL_BTF[:24] + KERNEL_BTF[24:60]
    image = kernel.data + cut + bytes(4) + KERNEL_BTF + bytes(64)
    target = tmp_path / "vmlinux.btf"
    result = run("--btf", target, kernel_file(vmlinuz(COMPRESSORS["xz"](image)), "vmlinuz"))
    assert result[:2] == (0, "")
    assert target.read_bytes() == KERNEL_BTF
    assert "saving the kernel's BTF (%d bytes) to %s" % (len(KERNEL_BTF), target) in result.err


def test_big_endian_btf(tmp_path, run, kernel_file):
    kernel = build("5.19", bits=64, big=True)
    big = btf({"module": (512, {"state": 0})}, big=True)
    target = tmp_path / "vmlinux.btf"
    assert run("--btf", target, kernel_file(kernel.data + big))[:2] == (0, "")
    assert target.read_bytes() == big


def test_no_btf(tmp_path, run, kernel_file):
    """A kernel without CONFIG_DEBUG_INFO_BTF: exit 5 saying so, no file."""
    result = run("--btf", tmp_path / "vmlinux.btf", kernel_file(build("5.19", bits=64).data))
    assert result.status == 5
    assert result.errors == ["extract_symvers: error: no BTF in the kernel: it was built "
                             "without CONFIG_DEBUG_INFO_BTF"]
    assert not (tmp_path / "vmlinux.btf").exists()


def test_btf_of_a_dump(tmp_path, run):
    """From an ELF core: the blob in the kernel's memory."""
    memory = kernel_with_modules()
    blob = module_btf("6.1", 8)
    virtual_dump(tmp_path / "dump.elf", memory, blob)
    target = tmp_path / "vmlinux.btf"
    assert run("--btf", target, tmp_path / "dump.elf")[:2] == (0, "")
    assert target.read_bytes() == blob


def test_btf_with_config_and_kernel(tmp_path, run, kernel_file):
    """-d, --config and --btf given together: each saved."""
    kernel = build("5.19", bits=64)
    config = b"CONFIG_DEBUG_INFO_BTF=y\n" * 20
    image = kernel.data + b"IKCFG_ST" + gzip.compress(config, mtime=0) + b"IKCFG_ED" + \
        KERNEL_BTF
    result = run("-d", tmp_path / "vmlinux", "--config", tmp_path / "config", "--btf",
                 tmp_path / "btf", kernel_file(vmlinuz(COMPRESSORS["gzip"](image)), "vmlinuz"))
    assert result[:2] == (0, "")
    assert (tmp_path / "vmlinux").read_bytes() == image
    assert (tmp_path / "config").read_bytes() == config
    assert (tmp_path / "btf").read_bytes() == KERNEL_BTF


def test_modules_own_btf_said(tmp_path, run, kernel_file):
    """With --modules: how many carry their own .BTF (split on the kernel's)."""
    era = ERAS["5.19"]
    modules = tmp_path / "modules"
    modules.mkdir()
    for i in range(3):
        exports = make_exports(era, count=3, seed=10 + i)
        (modules / ("m%d.ko" % i)).write_bytes(build_module(
            "5.19", exports, btf=btf({"m%d_state" % i: (8, {"x": 0})}) if i else None))
    kernel = build("5.19", bits=64)
    target = tmp_path / "vmlinux.btf"
    result = run("--btf", target, "--modules", modules, kernel_file(kernel.data + KERNEL_BTF))
    assert result[:2] == (0, "")
    assert "2 of the 3 modules carry their own BTF, split on the kernel's: the .BTF section " \
           "of each .ko (bpftool btf dump file MODULE.ko base %s)" % target in result.err
    assert target.read_bytes() == KERNEL_BTF


def test_btf_onto_the_kernel_refused(tmp_path, run, kernel_file):
    path = kernel_file(build("5.19", bits=64).data + KERNEL_BTF)
    result = run("--btf", path, path)
    assert result.status == 2
    assert result.err.splitlines()[-1] == "extract_symvers: error: --btf %s would write onto " \
                                          "the input %s: give another FILE" % (path, path)
