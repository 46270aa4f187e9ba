"""Generic mutation testing of file loaders (issue 13): damage a valid file's bytes in seeded, reproducible ways and
require that every mutation ends in a clean error (ValueError/OSError naming the file) or in data the caller
accepts (unchanged, where the format has checksums). Any other exception, a crash or a hang is a failure.

    failures = run_mutations(valid_bytes, load, accept, suffix=".npz", rounds=300, seed=0)

load(path) -> result        reads the file at `path` (whose name ends in `suffix`)
accept(result) -> bool      True when the result is acceptable (e.g. equal to what the valid file gives)

Rounds come from CNNLITE_MUTATION_ROUNDS when set (a long hunt: e.g. CNNLITE_MUTATION_ROUNDS=100000), else from
`rounds`. Used for the dataset formats (IDX, IDX.gz, .npz); model-file formats plug in the same way.
"""
import os
import struct
import tempfile
import time

import numpy as np

HUGE = [0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 1 << 40, (1 << 63) - 1, 1 << 31, 1 << 24]
KINDS = ("flip", "truncate", "zero", "insert", "duplicate", "huge", "delete", "swap")


def rounds_from_env(default):
    value = os.environ.get("CNNLITE_MUTATION_ROUNDS")
    return int(value) if value else default


def _offset(rng, n, hotspots):
    """An offset in [0, n): a third of the time near a hotspot (headers), a third in the first 1 KiB, else anywhere."""
    r = rng.random()
    if hotspots and r < 1 / 3:
        return min(n - 1, max(0, int(rng.choice(hotspots)) + int(rng.integers(-8, 9))))
    if r < 2 / 3:
        return int(rng.integers(0, min(n, 1024)))
    return int(rng.integers(0, n))


def mutate(data, rng, hotspots=()):
    """(description, mutated bytes) for one seeded mutation of `data`."""
    buf = bytearray(data)
    n = len(buf)
    kind = KINDS[int(rng.integers(0, len(KINDS)))]
    at = _offset(rng, n, hotspots)
    if kind == "flip":
        k = int(rng.integers(1, 4))
        spots = [at] + [_offset(rng, n, hotspots) for _ in range(k - 1)]
        for s in spots:
            buf[s] ^= 1 << int(rng.integers(0, 8))
        return f"flip bits at {spots}", bytes(buf)
    if kind == "truncate":
        keep = int(rng.integers(0, n))
        return f"truncate to {keep} bytes", bytes(buf[:keep])
    if kind == "zero":
        length = int(rng.integers(1, 64)) if rng.random() < 0.7 else int(rng.integers(1, max(2, n // 4)))
        buf[at:at + length] = bytes(min(length, n - at))
        return f"zero {length} bytes at {at}", bytes(buf)
    if kind == "insert":
        length = int(rng.integers(1, 32))
        junk = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
        return f"insert {length} random bytes at {at}", bytes(buf[:at] + junk + buf[at:])
    if kind == "duplicate":
        length = int(rng.integers(1, min(4096, n) + 1))
        start = _offset(rng, n, hotspots)
        chunk = buf[start:start + length]
        return f"duplicate {len(chunk)} bytes from {start} at {at}", bytes(buf[:at] + chunk + buf[at:])
    if kind == "delete":
        length = int(rng.integers(1, 64))
        return f"delete {length} bytes at {at}", bytes(buf[:at] + buf[at + length:])
    if kind == "swap":
        other = _offset(rng, n, hotspots)
        length = int(rng.integers(1, 16))
        a, b = bytes(buf[at:at + length]), bytes(buf[other:other + length])
        if len(a) == len(b):
            buf[at:at + length], buf[other:other + length] = b, a
        return f"swap {length} bytes at {at} and {other}", bytes(buf)
    # huge: a large number written over 4 or 8 bytes, either byte order
    value = HUGE[int(rng.integers(0, len(HUGE)))]
    width = 8 if value >= 1 << 32 or rng.random() < 0.3 else 4
    order = ">" if rng.random() < 0.5 else "<"
    packed = struct.pack(order + ("Q" if width == 8 else "I"), value)
    buf[at:at + width] = packed[:max(0, n - at)]
    return f"write {value} ({width} bytes, {'big' if order == '>' else 'little'}-endian) at {at}", bytes(buf[:n])


def run_mutations(valid, load, accept, *, suffix, rounds=300, seed=0, hotspots=(), clean=(ValueError, OSError),
                  name_in_message=True, max_seconds_each=5.0, filename="mutant"):
    """Apply `rounds` seeded mutations of `valid` (bytes); return the list of failures (empty when all is well).

    A mutation passes when load raises one of `clean` (naming the file when `name_in_message`) or returns a result
    for which accept(result) is True, within `max_seconds_each`."""
    rng = np.random.default_rng(seed)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, filename + suffix)
        for i in range(rounds):
            what, data = mutate(valid, rng, hotspots)
            with open(path, "wb") as f:
                f.write(data)
            t0 = time.perf_counter()
            try:
                result = load(path)
            except clean as exc:
                if name_in_message and path not in str(exc) and os.path.basename(path) not in str(exc):
                    failures.append(f"#{i} {what}: {type(exc).__name__} without the file name: {exc}")
            except Exception as exc:  # noqa: BLE001 - any other exception is what we hunt
                failures.append(f"#{i} {what}: {type(exc).__name__}: {exc}")
            else:
                try:
                    ok = accept(result)
                except Exception as exc:  # noqa: BLE001
                    ok, what = False, what + f" (accept raised {type(exc).__name__}: {exc})"
                if not ok:
                    failures.append(f"#{i} {what}: loaded without error but the result is not acceptable")
            elapsed = time.perf_counter() - t0
            if elapsed > max_seconds_each:
                failures.append(f"#{i} {what}: took {elapsed:.1f} s")
    return failures
