"""The benchmark suite's instruction-count mode (benchmarks/_instructions.py): its arithmetic, its
child processes, and, where valgrind is installed, callgrind's output as the mode reads it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from benchmarks import _instructions as counted
from benchmarks.run import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VALGRIND = shutil.which("valgrind") is not None

SAMPLE = b"""# callgrind format
version: 1
creator: callgrind-3.22.0
cmd:  python -c pass
events: Ir
summary: 123456789
fn=(1) main
16 5

totals: 123456789
"""


def test_parse_total_reads_summary_or_totals() -> None:
    assert counted.parse_total(SAMPLE) == 123456789
    assert counted.parse_total(b"events: Ir\ntotals: 42\n") == 42
    with pytest.raises(ValueError):
        counted.parse_total(b"events: Ir\n")


def test_per_call_cancels_start_up() -> None:
    # 20 calls: start-up 1,000,000 + 20 x 5,000; 120 calls: start-up + 120 x 5,000.
    assert counted.per_call(20, 1_100_000, 120, 1_600_000) == 5_000
    with pytest.raises(ValueError):
        counted.per_call(10, 1, 10, 2)


def test_row_gives_added_cost_per_call_and_per_chunk() -> None:
    row = counted.row(
        "s.stream", 100, {"bare": 1_000_000.0, "ours": 1_500_000.0, "floor": 1_400_000.0}, (4, 24)
    )
    assert row["ours_added"] == 500_000 and row["floor_added"] == 400_000
    assert row["ours_above_floor"] == 100_000 and row["ours_ratio"] == 1.5
    assert row["ours_added_per_chunk"] == 5_000 and row["floor_added_per_chunk"] == 4_000


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(SystemExit):
        main(["--instructions", "--only", "nosuch.scenario"])


@pytest.mark.parametrize("side", counted.SIDES)
def test_child_makes_the_calls_and_spans(side: str) -> None:
    """What runs under callgrind, run without it (seconds): every side completes; ours and the
    floor export one span per call (plus the floor's one captured call)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.path.join(ROOT, "src")])}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks._instructions", "openai.chat.stream", side, "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=True,
        timeout=120,
    )
    report = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert report["calls"] == 2
    if side != "bare":
        expected = 2 + counted.WARMUP + (1 if side == "floor" else 0)
        assert report["spans"] == expected


@pytest.mark.skipif(not VALGRIND, reason="valgrind is not installed")
def test_callgrind_output_is_read(tmp_path: os.PathLike[str]) -> None:
    """The flags the mode runs valgrind with, on a tiny program (a few seconds)."""
    total, _ = counted.callgrind_total(
        [sys.executable, "-S", "-c", "pass"], os.path.join(tmp_path, "out"), dict(os.environ)
    )
    assert total > 1_000_000
    more, _ = counted.callgrind_total(
        [sys.executable, "-S", "-c", "for i in range(200000): pass"],
        os.path.join(tmp_path, "out"),
        dict(os.environ),
    )
    assert more > total


@pytest.mark.skipif(
    not VALGRIND or not os.environ.get("GENAI_OBSERVE_SLOW_TESTS"),
    reason="needs valgrind and GENAI_OBSERVE_SLOW_TESTS=1 (about 4 minutes under callgrind)",
)
def test_one_scenario_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--instructions", "--only", "openai.chat", "--calls", "1,3", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["case"] == "openai.chat" and row["bare_instr"] > 0
