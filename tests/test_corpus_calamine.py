"""Issue 7: calamine's corpus of real-world spreadsheets (files from its users' bug reports:
merged cells, protected files, malformed BIFF records, files that once exhausted readers'
memory). None is a register; each must end with exit 0, 1 or 3, a clean one-line message
naming the file on exit 3, no traceback, within the time and memory bounds of test_hostile.

Starting Python and the libraries costs about a second, so the 132 files go through one worker
process that calls the CLI in-process (the same `guarded` error mapping, via typer's runner)
and reports each file as a JSON line: its exit code, stderr, time and the process's peak RSS
so far (a high-water mark, so a bound on that file's own peak). The parent kills the worker if
a file takes too long and names that file. A handful also go through the real CLI.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from corpus_build import exitcheck_command, run_bounded

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "calamine"
FILES = sorted(p for p in CORPUS.iterdir() if p.is_file()) if CORPUS.is_dir() else []
SECONDS = 20.0
PEAK_BYTES = int(1.5 * 1024**3)
REAL_CLI = ["pass_protected.xlsx", "OOM_alloc3.xls", "issue_594_dos.ods", "issue252.xlsx", "issue_530.xlsx", "merge_cells.xlsx", "README.md"]

pytestmark = [
    pytest.mark.skipif(not FILES, reason=f"calamine corpus not found at {CORPUS} (CI has ../shared beside the clone)"),
    pytest.mark.xdist_group("calamine-corpus"),  # corpus_results runs every file: once, on one worker
]

WORKER = r"""
import json, resource, sys, time, traceback
from typer.testing import CliRunner
from exitcheck.cli import app

try:
    runner = CliRunner(mix_stderr=False)  # click before 8.2 mixes stderr into stdout unless told
except TypeError:  # click 8.2 dropped the argument: stderr is kept apart already
    runner = CliRunner()
for path in sys.argv[1:]:
    print(json.dumps({"start": path}), flush=True)
    began = time.monotonic()
    result = runner.invoke(app, ["validate", path, "--lang", "en"])
    crash = None
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        crash = "".join(traceback.format_exception(result.exception))
    print(json.dumps({
        "file": path, "code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr,
        "crash": crash, "seconds": time.monotonic() - began,
        "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024),
    }), flush=True)
"""


def _run_worker(files: list[Path]) -> dict[str, dict[str, object]]:
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER, *map(str, files)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, encoding="utf-8",
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    results: dict[str, dict[str, object]] = {}
    current = "(start-up)"
    try:
        while True:
            try:
                line = lines.get(timeout=SECONDS + 30)  # start-up and one file
            except queue.Empty:
                process.kill()
                results[current] = {"hung": True}
                break
            if line is None:
                break
            record = json.loads(line)
            if "start" in record:
                current = record["start"]
            else:
                results[record["file"]] = record
    finally:
        process.wait(timeout=30)
    if process.returncode and current not in results:
        stderr = process.stderr.read() if process.stderr else ""
        results[current] = {"died": process.returncode, "stderr": stderr}
    return results


@pytest.fixture(scope="module")
def corpus_results() -> dict[str, dict[str, object]]:
    began = time.monotonic()
    results = _run_worker(FILES)
    assert time.monotonic() - began < 180, "the whole corpus must run in under three minutes"
    return results


def _check(path: Path, code: int, stderr: str, seconds: float, peak: int) -> None:
    assert "Traceback" not in stderr, stderr
    assert code in (0, 1, 3), f"{path.name}: exit {code}\n{stderr}"
    assert seconds < SECONDS, f"{path.name}: {seconds:.1f} s"
    assert peak < PEAK_BYTES, f"{path.name}: peak RSS {peak / 2**20:.0f} MiB"
    errors = [line for line in stderr.splitlines() if line.startswith("exitcheck:")]
    if code == 3:
        assert len(errors) == 1, stderr
        assert errors[0].startswith(f"exitcheck: {path}: "), errors[0]
        assert len(errors[0]) < 400, errors[0]
        assert "internal error" not in errors[0]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_calamine_file(corpus_results: dict[str, dict[str, object]], path: Path) -> None:
    record = corpus_results.get(str(path))
    assert record is not None, f"{path.name}: no result (the worker stopped before it)"
    assert not record.get("hung"), f"{path.name}: no answer within {SECONDS} s"
    assert "died" not in record, f"{path.name}: the worker died ({record['died']}): {record['stderr']}"
    assert record["crash"] is None, record["crash"]
    _check(path, int(record["code"]), str(record["stderr"]), float(record["seconds"]), int(record["peak"]))


@pytest.mark.parametrize("name", REAL_CLI)
def test_calamine_file_through_the_real_cli(name: str) -> None:
    path = CORPUS / name
    out = run_bounded(exitcheck_command("validate", str(path), "--lang", "en"), timeout=60)
    assert not out.timed_out
    _check(path, out.returncode, out.stderr, out.cpu_seconds, out.peak_rss)  # CPU: see test_hostile
