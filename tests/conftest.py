"""What the tests share: the command line run in-process, the check of what it printed, and
the synthetic kernels, each built once a session."""

import functools
from typing import NamedTuple

import pytest

import extract_symvers
import kobuild
from kernelimage import build


class Result(NamedTuple):
    status: int
    out: str
    err: str

    @property
    def lines(self):
        return self.out.splitlines()

    @property
    def errors(self):
        """The error lines of stderr."""
        return [line for line in self.err.splitlines()
                if line.startswith("extract_symvers: error:")]


@pytest.fixture
def run(capsys):
    """run(*args): `python extract_symvers.py ARGS` in-process -> Result(status, out, err).

    Whatever the input, nothing escapes (no traceback), and a failure (but --check's
    refusal and --diff's breakage, which come with their verdicts and report, and an
    incomplete dump's output, whose missing modules are warned of) prints nothing on stdout
    and one error line."""
    def run(*args):
        try:
            status = extract_symvers.main([str(a) for a in args])
        except SystemExit as e:        # argparse: --version, usage errors
            status = e.code
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        result = Result(status, out, err)
        if status == extract_symvers.EXIT_INCOMPLETE:
            assert not result.errors, err
        elif status not in (0, extract_symvers.EXIT_REFUSED, extract_symvers.EXIT_ABI_CHANGED):
            assert out == "", out[:500]
            assert len(result.errors) == 1 or status == extract_symvers.EXIT_USAGE, err
        return result
    return run


@pytest.fixture
def assert_symvers():
    """assert_symvers(result, expected): the run succeeded and printed exactly the expected
    lines (a kernelimage.Kernel's symvers(), or a list), in any order, each once."""
    def check(result, expected):
        assert result.status == 0, result.err
        lines = expected.symvers() if hasattr(expected, "symvers") else expected
        assert len(result.lines) == len(set(result.lines)), "duplicate lines"
        assert sorted(result.lines) == sorted(lines)
    return check


@pytest.fixture(scope="session")
def kernels():
    """kernels(era, **options): kernelimage.build(), each kernel built once a session (the
    options must be hashable: build(exports=...) is called directly)."""
    return functools.lru_cache(maxsize=None)(build)


@pytest.fixture
def kernel_file(tmp_path):
    """kernel_file(data, name='vmlinux'): write an image to a temporary file, return its path."""
    def write(data, name="vmlinux"):
        path = tmp_path / name
        path.write_bytes(data)
        return str(path)
    return write


@pytest.fixture
def check(tmp_path, run, kernel_file):
    """check(module bytes, image=None, *args): python extract_symvers.py ARGS --check
    probe.ko vmlinux -> (exit status, stdout without the directory, stderr)."""
    def check(ko, image=None, *args):
        (tmp_path / "probe.ko").write_bytes(ko)
        result = run(*args, "--check", tmp_path / "probe.ko",
                     kernel_file(image or kobuild.kernel()))
        return result.status, result.out.replace(str(tmp_path) + "/", ""), result.err
    return check


@pytest.fixture(scope="session")
def build_key(tmp_path_factory):
    """A kernel build's signing key and certificate, made by openssl as kbuild makes them."""
    return kobuild.signing_key(tmp_path_factory.mktemp("build-key"))
