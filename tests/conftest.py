import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

import extract_symvers  # noqa: E402


@pytest.fixture
def run(capsys):
    """run(*args): extract_symvers's CLI in-process; asserts success, returns stdout lines."""
    def run(*args):
        status = extract_symvers.main([str(a) for a in args])
        out, err = capsys.readouterr()
        assert status == 0, err
        return out.splitlines()
    return run


@pytest.fixture
def fail(capsys):
    """fail(*args): the CLI must fail; returns (exit status, stderr). stdout must be empty."""
    def fail(*args):
        try:
            status = extract_symvers.main([str(a) for a in args])
        except SystemExit as e:        # argparse usage errors
            status = e.code
        out, err = capsys.readouterr()
        assert status != 0
        assert out == ""
        assert "Traceback" not in err
        return status, err
    return fail


@pytest.fixture
def kernel_file(tmp_path):
    """kernel_file(data, name='vmlinux'): write an image to a temporary file, return its path."""
    def write(data, name="vmlinux"):
        path = tmp_path / name
        path.write_bytes(data)
        return str(path)
    return write
