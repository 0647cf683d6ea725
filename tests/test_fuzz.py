"""A few seconds of mutation fuzzing in every test run (bench/fuzz.py runs it for longer)."""

from mutate import fuzz


def test_mutated_kernels_never_crash_hang_or_print_garbage():
    cases, failures = fuzz(seconds=6, seed=2026)
    assert cases >= 1000
    assert failures == []
