"""A fixed number of mutation-fuzzing cases in every test run (bench/fuzz.py runs it for
longer), and the cases long runs have found, replayed."""

import pytest

from mutate import fuzz, replay, seeds

# Found by bench/fuzz.py --seconds 600: a voted base under which a corrupted symsearch
# array had only empty tables gave status 0 and no lines.
FOUND = [81573319, 4179623853, 1995851416]


def test_mutated_kernels_never_crash_hang_or_print_garbage():
    cases, failures = fuzz(cases=1000, seed=2026)
    assert (cases, failures) == (1000, [])


@pytest.mark.parametrize("case", FOUND)
def test_cases_found_by_long_runs(case, tmp_path):
    assert replay(case, seeds(), str(tmp_path)) is None
