"""Network pickles from strangers: every hostile route is refused in one line, with bounded memory
and time, and random mutations of the official fixtures never crash, trace back or hang.

The pickles here are assembled opcode by opcode (tests/pickle_forge.py), as the official format
allows. Issue #19 lists the routes: forged object pointers through numpy dtype/scalar, tensors
reaching outside their storage, BUILD on the reader's callables, cost bombs (memo index, zip
inflation, huge constructor arguments) and malformed structure.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from pickle_forge import (
    GENERATOR_KWARGS,
    Build,
    Call,
    Raw,
    encode,
    legacy_storage,
    module,
    nested_modules,
    network_pickle,
    pickle_bytes,
    storage_reference_pickle,
    tensor,
    zip_storage,
)

from ragan._network_pickle import network_config, parse_network_pickle, read_network_pickle
from ragan.cli.main import main
from ragan.errors import RaganError

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "data" / "stylegan2_ada_fixtures"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"{FIXTURES} (the shared test data) is absent")
FIXTURE_NAMES = ["sg2ada-32px-gray-uncond", "sg2ada-32px-rgb-cond3", "sg2ada-64px-gray-uncond"]

FOUR_FLOATS = legacy_storage([1.0, 2.0, 3.0, 4.0])
PLAIN_STATE = (3, "<", None, None, None, -1, -1, 0)
OBJECT_STATE = (3, "|", None, None, None, -1, -1, 63)  # an object dtype's flags
CLEARED_STATE = (3, "|", None, None, None, -1, -1, 0)  # dtype('O') with its object flags cleared


def _with_tensor(value) -> bytes:
    """A generator whose one parameter is ``value``."""
    return network_pickle(module("Generator", GENERATOR_KWARGS, parameters={"weight": value}))


def _self_containing() -> bytes:
    """A snapshot whose training_set_kwargs dict holds itself (MEMOIZE, then BINGET into SETITEM)."""
    inner = b"}" + b"\x94" + encode("me") + b"h\x00" + b"s"
    top = encode({"G_ema": module("Generator", GENERATOR_KWARGS), "training_set_kwargs": Raw(inner)})
    return b"\x80\x04" + top + b"."


def _shared_module() -> bytes:
    """G_ema and G are the same module object (MEMOIZE, then BINGET)."""
    g = encode(module("Generator", GENERATOR_KWARGS))
    return b"\x80\x04" + b"}" + encode("G_ema") + g + b"\x94" + b"s" + encode("G") + b"h\x00" + b"s" + b"."


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def _zip_storage(*, with_pickle=True, compress=False, declared=None) -> bytes:
    entries = {"archive/data/0": struct.pack("<4f", 1, 2, 3, 4)}
    if with_pickle:
        entries["archive/data.pkl"] = storage_reference_pickle(4 if declared is None else declared)
    return zip_storage(entries, compress=compress)


# (name, file bytes, a fragment of the one-line refusal)
CASES = [
    # 1. Forged object pointers: no object, structured or sub-array dtype; BUILD only sets a byte order.
    (
        "object-dtype-scalar",
        _with_tensor(
            Call(
                "numpy.core.multiarray",
                "scalar",
                # The old reader's SIGSEGV: NumPy read these 8 bytes as a PyObject pointer.
                (Build(Call("numpy", "dtype", ("O", False, True)), CLEARED_STATE), b"\x41" * 8),
            )
        ),
        "numpy.dtype('O') is not a plain numeric dtype",
    ),
    (
        "dtype-state-with-object-flags",
        _with_tensor(
            Call(
                "numpy._core.multiarray",
                "scalar",
                (Build(Call("numpy", "dtype", ("f8", False, True)), OBJECT_STATE), b"\0" * 8),
            )
        ),
        "not that of a plain numeric dtype",
    ),
    ("structured-dtype", _with_tensor(Call("numpy", "dtype", ("V8", False, True))), "not a plain numeric dtype"),
    (
        "dtype-built-twice",
        _with_tensor(Build(Build(Call("numpy", "dtype", ("f8", False, True)), PLAIN_STATE), PLAIN_STATE)),
        "already built or used",
    ),
    (
        "scalar-of-the-wrong-size",
        _with_tensor(Call("numpy.core.multiarray", "scalar", (Call("numpy", "dtype", ("f8", False, True)), b"1234"))),
        "are not 8 bytes",
    ),
    # 2. Tensors reaching outside their storage; storages whose bytes do not match their count.
    ("tensor-past-its-storage", _with_tensor(tensor(FOUR_FLOATS, 0, (4096,), (1,))), "reaches element 4,095"),
    ("tensor-offset-past-storage", _with_tensor(tensor(FOUR_FLOATS, 10**6, (1,), (1,))), "storage offset is 1000000"),
    ("tensor-negative-stride", _with_tensor(tensor(FOUR_FLOATS, 3, (4,), (-1,))), "a tensor stride is -1"),
    (
        "storage-shorter-than-its-count",
        _with_tensor(tensor(legacy_storage([1.0] * 4, numel=1000), 0, (4,), (1,))),
        "holds",
    ),
    (
        "storage-with-trailing-bytes",
        _with_tensor(tensor(legacy_storage([1.0] * 4, extra=b"junk"), 0, (4,), (1,))),
        "holds 20 bytes",
    ),
    # 3. BUILD on the reader's own callables or on a module.
    (
        "build-on-an-allowed-callable",
        _with_tensor(Build(Raw(b"ccollections\nOrderedDict\n"), {"__defaults__": (1,)})),
        "applies to a collections.OrderedDict",
    ),
    (
        "build-on-a-module",
        network_pickle(Build(module("Generator", GENERATOR_KWARGS), {"x": 1})),
        "applies to a network module",
    ),
    # 4. Cost: memo indices, strings and integers longer than the file, nesting, decoded bytes.
    ("memo-index-beyond-the-file", b"\x80\x04Nr" + struct.pack("<I", 2**27) + b".", "memo index 134,217,728"),
    ("string-longer-than-the-file", b"\x80\x04X" + struct.pack("<I", 2**31) + b"abc.", "it ends early"),
    ("huge-integer", b"\x80\x04\x8b" + struct.pack("<i", 2**20) + b"\0" * 64 + b".", "an integer of 1048576 bytes"),
    ("deep-marks", b"\x80\x04" + b"(" * 100_000 + b".", "nest more than 256 levels"),
    (
        "z-dim-60000",
        network_pickle(module("Generator", {**GENERATOR_KWARGS, "z_dim": 60000, "w_dim": 60000})),
        "z_dim=60000 is out of range",
    ),
    (
        "resolution-not-a-power-of-two",
        network_pickle(module("Generator", {**GENERATOR_KWARGS, "img_resolution": 48})),
        "img_resolution=48",
    ),
    ("five-channels", network_pickle(module("Generator", {**GENERATOR_KWARGS, "img_channels": 5})), "img_channels=5"),
    (
        "widths-over-2048",
        network_pickle(module("Generator", {**GENERATOR_KWARGS, "synthesis_kwargs": {"channel_max": 4096}})),
        "channel_max=4096",
    ),
    ("more-weights-than-the-file-holds", network_pickle(), "the file holds 0"),
    (
        "compressed-zip-storage",
        _with_tensor(tensor(_zip_storage(compress=True), 0, (4,), (1,))),
        "is compressed or encrypted",
    ),
    (
        "zip-storage-of-the-wrong-size",
        _with_tensor(tensor(_zip_storage(declared=1000), 0, (4,), (1,))),
        "instead of 4,000",
    ),
    # 5. Malformed structure.
    (
        "zip-without-data-pkl",
        _with_tensor(tensor(_zip_storage(with_pickle=False), 0, (4,), (1,))),
        "0 data.pkl entries",
    ),
    ("bad-zip", _with_tensor(tensor(b"PK\x03\x04" + b"\xff" * 64, 0, (4,), (1,))), "not a readable zip"),
    ("state-of-the-wrong-type", network_pickle(module("Generator", state=5)), "has a state of type int"),
    (
        "missing-z-dim",
        network_pickle(module("Generator", {k: v for k, v in GENERATOR_KWARGS.items() if k != "z_dim"})),
        "has no 'z_dim'",
    ),
    ("20000-nested-modules", nested_modules(20_000), "modules nest more than 16 levels"),
    (
        "data-nested-40-deep",
        network_pickle(training_set_kwargs=Raw(b"]" * 40 + b"a" * 39)),
        "training_set_kwargs[0][0]",
    ),
    ("a-dict-that-holds-itself", _self_containing(), "training_set_kwargs['me'] contains itself"),
    ("one-module-in-two-places", _shared_module(), "also appears elsewhere"),
    ("code", pickle.dumps({"G": _Evil()}, 4), "system', which is not part of a StyleGAN2-ADA network"),
    ("os-system-by-opcodes", pickle_bytes({"G": Call("os", "system", ("touch pwned",))}), "the global 'os.system'"),
    ("a-png-image", b"\x89PNG\r\n\x1a\n" + bytes(64), "is not used by network pickles"),
    ("empty-file", b"", "ends before its STOP opcode"),
    ("a-list", pickle.dumps([1, 2, 3], 4), "holds a list"),
]


@pytest.mark.parametrize("name, data, fragment", CASES, ids=[case[0] for case in CASES])
def test_hostile_pickles_are_refused_in_one_line(name, data, fragment, tmp_path, capsys):
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(data)
    out = tmp_path / "imported"
    start = time.perf_counter()
    assert main(["import-weights", str(path), "--out", str(out)]) == 2
    elapsed = time.perf_counter() - start
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"ragan: error: {path}: ") and fragment in lines[0], lines[0]
    assert "internal" not in lines[0] and captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name] and not Path("pwned").exists()
    assert elapsed < 10, elapsed


def test_the_reader_calls_nothing_from_the_file(tmp_path, monkeypatch):
    """A pickle naming os.system is refused at the name: nothing is imported or called."""
    called = []
    monkeypatch.setattr(os, "system", lambda *args: called.append(args))
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle_bytes({"G": Call("os", "system", ("touch pwned",))}))
    with pytest.raises(RaganError, match="refused to load it"):
        read_network_pickle(path)
    assert not called


# Runs a command and prints its exit status and its peak resident memory. The command's peak is
# read with RUSAGE_CHILDREN in this small wrapper, not in the test process: Linux counts the
# memory of the process that started a child (here pytest, perhaps with TensorFlow loaded) in the
# child's peak, so the wrapper keeps the figure to the command's own.
MEASURE = """
import resource, subprocess, sys
with open(sys.argv[1], "wb") as err:
    status = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=err).returncode
print(status, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _run_measured(args, tmp_path, *, timeout=120):
    """Run ``python -m ragan ARGS``: (exit status, stderr, peak resident set size in MiB, seconds)."""
    stderr = tmp_path / "stderr.txt"
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(stderr), sys.executable, "-m", "ragan", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    elapsed = time.perf_counter() - start
    status, peak_kib = map(int, result.stdout.split())
    return status, stderr.read_text(), peak_kib / 1024, elapsed


def _inflating_zip(tmp_path, size: int) -> bytes:
    """A zip storage whose data entry inflates to ``size`` bytes (written in chunks: the test stays small)."""
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", storage_reference_pickle(size // 4))
        with archive.open("archive/data/0", "w", force_zip64=True) as handle:
            chunk = bytes(1 << 20)
            for _ in range(size // len(chunk)):
                handle.write(chunk)
    data = path.read_bytes()
    path.unlink()
    return data


def _many_objects(count: int) -> bytes:
    return b"\x80\x04]" + b"(" + b"N" * count + b"e."  # one list of `count` Nones


BOMBS = {
    "memo-index-2-to-the-27": lambda tmp: b"\x80\x04Nr" + struct.pack("<I", 2**27) + b".",
    "zip-storage-inflating-to-256-MiB": lambda tmp: _with_tensor(tensor(_inflating_zip(tmp, 256 << 20), 0, (4,), (1,))),
    "z-dim-60000": lambda tmp: network_pickle(
        module("Generator", {**GENERATOR_KWARGS, "z_dim": 60000, "w_dim": 60000})
    ),
    "tensor-broadcast-to-4-TiB": lambda tmp: _with_tensor(tensor(FOUR_FLOATS, 0, (2**20, 2**20), (0, 0))),
    "two-million-objects": lambda tmp: _many_objects(2_000_000),
    "object-dtype-scalar": lambda tmp: CASES[0][1],
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_cost_bombs_are_refused_with_bounded_memory_and_time(name, tmp_path):
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(BOMBS[name](tmp_path))
    status, stderr, peak_mib, seconds = _run_measured(["import-weights", path, "--out", tmp_path / "out"], tmp_path)
    lines = stderr.splitlines()
    assert status == 2 and len(lines) == 1 and str(path) in lines[0], stderr
    # Python, NumPy and ragan's CLI take about 30 MiB; the old reader took 2 GB on the memo
    # index, inflated the zip whole and built a 60,000-wide network before failing.
    assert peak_mib < 150, (peak_mib, lines[0])
    assert seconds < 30, (seconds, lines[0])
    assert not (tmp_path / "out").exists()


@needs_fixtures
@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_the_official_fixtures_are_read_whole(name):
    path = FIXTURES / f"{name}.pkl"
    data = read_network_pickle(path)
    config, shape = network_config(path, data)
    case = json.loads((FIXTURES / "cases.json").read_text())[name]
    assert set(data) == {"G", "D", "G_ema", "augment_pipe", "training_set_kwargs"}
    assert shape["image_size"] == int(name.split("-")[1][:-2]) and config["latent_dim"] == 64
    # Every parameter of G is there, as float32 arrays.
    g = data["G"].tensors()
    params = sum(a.size for n, a in g.items() if n in _parameter_names(data["G"]))
    assert params == case["g_params"]
    assert all(a.dtype.name == "float32" for a in g.values())


def _parameter_names(module, prefix=""):
    names = {prefix + n for n in module.state.get("_parameters", {})}
    for child_name, child in module.state.get("_modules", {}).items():
        if child is not None:
            names |= _parameter_names(child, f"{prefix}{child_name}.")
    return names


def test_the_absolute_cap_can_be_lowered_and_raised(tmp_path, monkeypatch):
    path = tmp_path / "n.pkl"
    path.write_bytes(_many_objects(1000))
    with pytest.raises(RaganError, match="over the 100-byte cap"):
        read_network_pickle(path, max_bytes=100)
    monkeypatch.setenv("RAGAN_MAX_PICKLE_BYTES", "2000")
    with pytest.raises(RaganError, match="decodes to more than 2,000 bytes"):
        read_network_pickle(path)
    monkeypatch.setenv("RAGAN_MAX_PICKLE_BYTES", "lots")
    with pytest.raises(RaganError, match="RAGAN_MAX_PICKLE_BYTES='lots'"):
        read_network_pickle(path)


def test_parse_names_its_input():
    with pytest.raises(RaganError, match=r"^x\.pkl: .*holds a NoneType"):
        parse_network_pickle(b"\x80\x04N.", "x.pkl")


# ----------------------------------------------------------------------------------------------
# Fuzzing the three official fixtures
# ----------------------------------------------------------------------------------------------
FUZZ_CASES = 300


@needs_fixtures
@pytest.mark.slow
def test_mutated_fixtures_end_in_success_or_a_one_line_refusal(tmp_path):
    """Bit flips, truncations, spliced, invented, deleted and repeated opcodes of the three fixtures
    (and of a small pickle with a zip-format storage), run in one subprocess (a signal there fails
    this test; imports are paid once), each case under a time limit. RAGAN_FUZZ_SEED replays a run."""
    seed = int(os.environ.get("RAGAN_FUZZ_SEED", int.from_bytes(os.urandom(4), "little")))
    results = tmp_path / "results.jsonl"
    # The fixtures' storages are in PyTorch's legacy format; a small pickle adds the zip format.
    zipped = tmp_path / "zip-storage.pkl"
    zipped.write_bytes(_with_tensor(tensor(_zip_storage(), 0, (2, 2), (2, 1))))
    files = [FIXTURES / f"{name}.pkl" for name in FIXTURE_NAMES] + [zipped]
    command = [sys.executable, str(Path(__file__).with_name("pickle_fuzz.py")), "--seed", str(seed)]
    command += ["--cases", str(FUZZ_CASES), "--out", str(results), *map(str, files)]
    started = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    records = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    last = records[-1] if records else None
    assert process.returncode == 0, f"seed {seed}: exit {process.returncode} after {last}; {process.stderr[-2000:]}"
    outcomes = [r for r in records if "outcome" in r]
    assert len(outcomes) == FUZZ_CASES, f"seed {seed}: {len(outcomes)} cases reported"
    bad = [r for r in outcomes if r["outcome"] not in ("ok", "refused")]
    assert not bad, f"seed {seed}: {bad[:3]}"
    for record in outcomes:
        if record["outcome"] == "refused":
            message = record["message"]
            assert "\n" not in message and message.startswith(record["name"]) and "internal" not in message, record
    summary = records[-1]
    assert summary["peak_mib"] < 1024, summary
    kinds = {r["outcome"] for r in outcomes}
    assert kinds == {"ok", "refused"}, f"seed {seed}: only {kinds}: the mutations are not varied enough"
    print(f"fuzz seed {seed}: {FUZZ_CASES} cases in {elapsed:.1f} s, {summary}")
