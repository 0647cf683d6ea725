"""A fixed number of mutation-fuzzing cases in every test run (bench/fuzz.py runs it for
longer), and the cases long runs have found, replayed."""

import random
import struct

import pytest

import extract_symvers
from memdump import BtfTypes
from mutate import fuzz, mutate, replay, seeds

# Found by bench/fuzz.py --seconds 600: a voted base under which a corrupted symsearch
# array had only empty tables gave status 0 and no lines.
FOUND = [81573319, 4179623853, 1995851416]


def test_mutated_kernels_never_crash_hang_or_print_garbage():
    cases, failures = fuzz(cases=1000, seed=2026)
    assert (cases, failures) == (1000, [])


@pytest.mark.parametrize("case", FOUND)
def test_cases_found_by_long_runs(case, tmp_path):
    assert replay(case, seeds(), str(tmp_path)) is None


def test_mutated_btf_is_read_or_refused():
    """A BTF blob with a cycle of types, mutated 500 ways (and its counts made huge): Btf
    reads it or refuses it with ValueError, and why CRCs changed between it and the seed is
    worked out, whatever its types say."""
    types = BtfTypes()
    int_ = types.int("int", 4)
    node_ptr = types.ptr(types.next_id + 1)
    node = types.struct("node", 16, [("next", node_ptr, 0), ("v", int_, 8)])
    types.typedef("node_t", node)
    types.enum("state", {"A": 0, "B": 1})
    types.func("walk", types.func_proto(int_, [("head", node_ptr), ("", 0)]))
    seed = types.blob()
    good = extract_symvers.Btf(seed)
    rng = random.Random(29)
    huge = [seed[:8] + struct.pack("<IIII", 0, 0xFFFFFFF0, 0xFFFFFFF0, 0xFFFFFFFF) + seed[24:],
            seed[:24] + struct.pack("<III", 1, 4 << 24 | 0xFFFF, 16) + seed[36:]]
    for blob in huge + [mutate(seed, rng) for _ in range(500)]:
        try:
            btf = extract_symvers.Btf(blob)
        except (ValueError, struct.error):
            continue
        extract_symvers.crc_causes(good, btf, ["walk", "node_t"])
