"""Fuzz driver for ragan's network-pickle reader (run by tests/test_untrusted_pickles.py).

``python tests/pickle_fuzz.py --seed S --cases N --out results.jsonl FILE.pkl ...`` mutates the given
pickles N times in this one process (bit flips in opcodes, their arguments or anywhere; truncations;
opcodes spliced in from elsewhere or made up; opcodes deleted or repeated), reads each mutant with
:func:`ragan._network_pickle.parse_network_pickle` and :func:`network_config`, and writes one JSON
line per case: ``{"case", "name", "mutation", "outcome": "ok" | "refused" | "error" | "timeout",
"message"}``, then a summary line with the peak memory. A case line is flushed before the next case
starts, so a crash (a signal) names the last case that finished.
"""

from __future__ import annotations

import argparse
import json
import pickletools
import random
import resource
import signal
import sys
import time
import traceback

#: Seconds one case may take (a fixture reads in well under one second).
CASE_SECONDS = 10


class CaseTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise CaseTimeout()


def opcode_positions(data: bytes) -> list[int]:
    return [position for _, _, position in pickletools.genops(data)]


def mutate(data: bytes, positions: list[int], others: list[bytes], rng: random.Random) -> tuple[bytes, str]:
    """One random mutation of ``data`` and its description."""
    kind = rng.choice(["flip-op", "flip-arg", "flip-any", "truncate", "splice", "invent", "delete", "repeat"])
    buffer = bytearray(data)
    index = rng.randrange(len(positions))
    start = positions[index]
    end = positions[index + 1] if index + 1 < len(positions) else len(data)
    if kind in ("flip-op", "flip-arg", "flip-any"):
        flips = rng.randint(1, 3)
        for _ in range(flips):
            if kind == "flip-op":
                at = start
            elif kind == "flip-arg":
                at = rng.randrange(start, min(end, start + 9)) if end > start + 1 else start
            else:
                at = rng.randrange(len(buffer))
            buffer[at] ^= 1 << rng.randrange(8)
        return bytes(buffer), f"{kind} x{flips} near byte {start}"
    if kind == "truncate":
        cut = start if rng.random() < 0.5 else rng.randrange(len(data))
        return data[:cut], f"truncate at {cut}"
    if kind == "splice":
        source = rng.choice(others)
        source_positions = opcode_positions_cache(source)
        first = rng.randrange(len(source_positions) - 1)
        last = min(len(source_positions) - 1, first + rng.randint(1, 4))
        piece = source[source_positions[first] : source_positions[last]]
        return data[:start] + piece + data[start:], f"splice {len(piece)} bytes at {start}"
    if kind == "invent":
        opcode = rng.choice(OPCODES)
        piece = bytes([opcode]) + bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 2, 4, 8])))
        return data[:start] + piece + data[start:], f"invent {piece[:9].hex()} at {start}"
    if kind == "delete":
        return data[:start] + data[end:], f"delete opcode at {start}"
    return data[:end] + data[start:end] + data[end:], f"repeat opcode at {start}"


_POSITIONS: dict[int, list[int]] = {}


def opcode_positions_cache(data: bytes) -> list[int]:
    key = id(data)
    if key not in _POSITIONS:
        _POSITIONS[key] = opcode_positions(data)
    return _POSITIONS[key]


OPCODES = sorted({opcode.code.encode("latin-1")[0] for opcode in pickletools.opcodes})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    from ragan._network_pickle import network_config, parse_network_pickle
    from ragan.errors import RaganError

    rng = random.Random(args.seed)
    originals = [open(path, "rb").read() for path in args.files]
    for data in originals:
        opcode_positions_cache(data)
    signal.signal(signal.SIGALRM, _on_alarm)
    counts: dict[str, int] = {}
    started = time.perf_counter()
    with open(args.out, "w", encoding="utf-8") as out:
        for case in range(args.cases):
            which = case % len(originals)
            data, mutation = mutate(originals[which], opcode_positions_cache(originals[which]), originals, rng)
            name = f"case{case}.pkl"
            record = {"case": case, "name": name, "file": args.files[which], "mutation": mutation}
            signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
            try:
                network_config(name, parse_network_pickle(data, name))
                record.update(outcome="ok")
            except RaganError as error:
                record.update(outcome="refused", message=str(error))
            except CaseTimeout:
                record.update(outcome="timeout")
            except BaseException as error:  # noqa: BLE001 - what the test must never see
                record.update(outcome="error", message="".join(traceback.format_exception(error))[-3000:])
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            counts[record["outcome"]] = counts.get(record["outcome"], 0) + 1
            out.write(json.dumps(record) + "\n")
            out.flush()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        summary = {"counts": counts, "peak_mib": round(peak, 1), "seconds": round(time.perf_counter() - started, 1)}
        out.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
