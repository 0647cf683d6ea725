#!/usr/bin/env python3
"""Long mutation-fuzzing run: bench/fuzz.py [--seconds N] [--seed S].

Prints how many cases ran and every failure with the seed that reproduces it
(tests/mutate.py: fuzz(seconds, seed) and run_case)."""

import argparse
import os
import sys

sys.path[:0] = [os.path.join(os.path.dirname(os.path.abspath(__file__)), d)
                for d in ("../tests", "..")]
from mutate import fuzz  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    cases, failures = fuzz(seconds=args.seconds, seed=args.seed)
    for case, failure in failures:
        print("case %d: %s" % (case, failure))
    print("%d cases, %d failures" % (cases, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
