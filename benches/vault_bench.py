#!/usr/bin/env python3
"""Time the secret vault beside peer key derivations, in one run.

Runs examples/vault_bench (passphrase unlock and rendering 50 secrets) and
then two peers with the same cost on the same machine:

- the reference C implementation of Argon2id (libargon2, loaded with
  ctypes from the system library) with shipdeck's parameters: 256 MiB,
  3 passes, 1 lane, a 16-byte salt and a 32-byte key;
- Python's hashlib.scrypt with N=2^18, r=8, p=1, which also uses 256 MiB.

Prints a Markdown table of medians with (min-max) in milliseconds.

Usage: benches/vault_bench.py --example PATH [--runs N] [--render-runs N]
"""

import argparse
import ctypes
import ctypes.util
import hashlib
import os
import re
import statistics
import subprocess
import sys
import time

MEMORY_KIB = 256 * 1024
PASSES = 3
LANES = 1
KEY_BYTES = 32
PASSPHRASE = b"benchmark passphrase, not a real one"


def timed(function, runs):
    """Run `function` `runs` times and return the times in milliseconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000.0)
    return times


def load_libargon2():
    name = ctypes.util.find_library("argon2") or "libargon2.so.1"
    try:
        library = ctypes.CDLL(name)
    except OSError as error:
        print(f"libargon2 not loadable ({error}); install libargon2-1", file=sys.stderr)
        return None
    library.argon2id_hash_raw.restype = ctypes.c_int
    library.argon2id_hash_raw.argtypes = [
        ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32,
        ctypes.c_void_p, ctypes.c_size_t,
        ctypes.c_void_p, ctypes.c_size_t,
        ctypes.c_void_p, ctypes.c_size_t,
    ]
    return library


def libargon2_once(library, salt):
    output = ctypes.create_string_buffer(KEY_BYTES)
    code = library.argon2id_hash_raw(
        PASSES, MEMORY_KIB, LANES,
        PASSPHRASE, len(PASSPHRASE),
        salt, len(salt),
        output, KEY_BYTES,
    )
    if code != 0:
        raise RuntimeError(f"argon2id_hash_raw returned {code}")


def scrypt_once(salt):
    hashlib.scrypt(PASSPHRASE, salt=salt, n=2**18, r=8, p=1,
                   maxmem=512 * 1024 * 1024, dklen=KEY_BYTES)


def run_example(path, runs, render_runs):
    """Run the Rust example and parse its lines into {label: (median, min, max)}."""
    output = subprocess.run(
        [path, "--unlock-runs", str(runs), "--render-runs", str(render_runs)],
        check=True, capture_output=True, text=True,
    ).stdout
    pattern = re.compile(r"^(.*): median ([\d.]+) ms \(min ([\d.]+), max ([\d.]+), (\d+) runs\)$")
    results = {}
    for line in output.splitlines():
        match = pattern.match(line)
        if match:
            label, median, low, high, count = match.groups()
            results[label] = (float(median), float(low), float(high), int(count))
    return results


def row(label, median, low, high, count):
    return f"| {label} | {median:.2f} ({low:.2f}-{high:.2f}) | {count} |"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", required=True, help="path of the built vault_bench example")
    parser.add_argument("--runs", type=int, default=7, help="key derivations per implementation")
    parser.add_argument("--render-runs", type=int, default=200, help="renders of 50 secrets")
    args = parser.parse_args()

    print("| measurement | median ms (min-max) | runs |")
    print("| --- | --- | --- |")
    for label, (median, low, high, count) in run_example(
            args.example, args.runs, args.render_runs).items():
        print(row(f"shipdeck: {label}", median, low, high, count))

    salt = os.urandom(16)
    library = load_libargon2()
    if library is not None:
        times = timed(lambda: libargon2_once(library, salt), args.runs)
        print(row("peer: libargon2 argon2id_hash_raw, same parameters",
                  statistics.median(times), min(times), max(times), args.runs))
    times = timed(lambda: scrypt_once(salt), args.runs)
    print(row("peer: Python hashlib.scrypt, N=2^18 r=8 p=1 (256 MiB)",
              statistics.median(times), min(times), max(times), args.runs))


if __name__ == "__main__":
    main()
