"""A deterministic, compressible sample: words from a small vocabulary, zero runs, and short
periods (overlapping copies), so the LZ4 and LZO payloads in tests/data use every kind of
match their formats have."""

import random

from kernelimage import randbytes


def compressible(size=400_000, seed=9):
    rng = random.Random(seed)
    words = [randbytes(rng, rng.randint(1, 12)) for _ in range(300)]
    out = bytearray()
    while len(out) < size:
        kind = rng.randrange(10)
        if kind < 7:
            out += b"".join(rng.choice(words) for _ in range(rng.randint(1, 40)))
        elif kind == 7:
            out += bytes(rng.randint(1, 70000))
        elif kind == 8:
            out += randbytes(rng, rng.randint(1, 4)) * rng.randint(1, 3000)
        else:
            out += randbytes(rng, rng.randint(1, 300))
    return bytes(out[:size])
