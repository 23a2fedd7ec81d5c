"""The program starts reading the register before it parses its command line (exitcheck/launch.py):
the command takes that reading over instead of reading the file again, a reading it cannot use is
stopped, and nothing the user sees changes."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from builders import base_county
from exitcheck import launch
from exitcheck.registers import ahead
from exitcheck.registers.ahead import ReadAhead, take_started
from exitcheck.registers.limits import Limits
from threads import reading_threads


@pytest.fixture
def county(tmp_path: Path) -> Path:
    return base_county().write(tmp_path / "county.xlsx")


def test_the_file_right_after_a_reading_command_is_read_early(county: Path, tmp_path: Path) -> None:
    for command in ("validate", "audit", "bands"):
        assert launch.early_file([command, str(county), "--as-of", "2020-06-30", "-q"]) == county


@pytest.mark.parametrize(
    "args",
    [
        ["validate"],
        ["columns", "{county}"],  # not a command that takes a reading over
        ["validate", "--as-of", "2020-06-30", "{county}"],  # an option first: not plain enough to guess
        ["validate", "{folder}"],  # a folder: its first file is the command's business
        ["validate", "{folder}/missing.xlsx"],
        ["validate", "{county}", "--help"],
        ["audit", "{county}", "--engine", "dask"],  # read by Dask workers, not here
        ["audit", "{county}", "--engine=dask"],
        ["bands", "{county}", "--config", "other.yaml"],  # limits from another workspace
    ],
)
def test_no_early_reading_when_the_command_line_is_not_plain(args: list[str], county: Path) -> None:
    filled = [a.format(county=county, folder=county.parent) for a in args]
    assert launch.early_file(filled) is None


def test_a_matching_reading_is_handed_over_once(county: Path) -> None:
    ahead.started = ReadAhead([county])
    try:
        taken = take_started([county], Limits())
        assert taken is not None
        assert take_started([county], Limits()) is None  # handed over once
        assert taken.read(county, str(county), Limits()).sheets
    finally:
        ahead.started = None
        if taken is not None:
            taken.close()


def test_a_reading_the_command_cannot_use_is_stopped(county: Path, tmp_path: Path) -> None:
    other = base_county().write(tmp_path / "other.xlsx")
    for paths, limits in (([other], None), ([county], Limits(max_rows=5))):
        early = ahead.started = ReadAhead([county])
        assert take_started(paths, limits) is None
        assert ahead.started is None
        assert early._control.stopped.is_set()  # its work is abandoned, not left running
    assert not reading_threads()


def run_launch(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from exitcheck import cli

    monkeypatch.setattr(sys, "argv", ["exitcheck", *args])
    monkeypatch.setattr(cli, "whole_process", False)  # the program sets it; undone after the test
    try:
        with pytest.raises(SystemExit) as ended:
            launch.main()
    finally:
        gc.unfreeze()  # main() is the program and freezes what it loaded; this process goes on
    captured = capsys.readouterr()
    return int(ended.value.code or 0), captured.out, captured.err


def test_the_command_reads_the_file_once(county: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(county.parent)
    reads: list[Path] = []
    real = ahead.read_file

    def counting(path, *rest):  # noqa: ANN001, ANN202
        reads.append(path)
        return real(path, *rest)

    monkeypatch.setattr(ahead, "read_file", counting)
    code, out, _ = run_launch(monkeypatch, capsys, "validate", str(county), "--as-of", "2020-06-30", "--json")
    assert code == 0
    assert json.loads(out)["summary"]["records"]["households"] == 6
    assert reads == [county]  # read early and taken over: not read again by the command
    assert ahead.started is None and not reading_threads()


def test_a_usage_error_still_ends_the_reading(county: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(county.parent)
    code, _, _ = run_launch(monkeypatch, capsys, "audit", str(county), "--no-such-option")
    assert code == 2
    assert ahead.started is None
    # the program does not wait for it, but the reading stops at its next sheet
    deadline = time.monotonic() + 30
    while reading_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not reading_threads()


# A sheet that calamine takes 60 s over (it cannot be interrupted): the reading thread sleeps
# after each sheet, holding no lock, as it does inside calamine's parse.
SLOW_SHEETS = """
import sys, time
from exitcheck.registers import read
real = read._SheetReader._read_sheet
def slow(self, workbook, name):
    sheet = real(self, workbook, name)
    time.sleep(60)
    return sheet
read._SheetReader._read_sheet = slow
from exitcheck import launch
sys.argv = ["exitcheck", *sys.argv[1:]]
launch.main()
"""


@pytest.mark.parametrize(
    ("mistake", "code"),
    [
        (["--no-such-option"], 2),  # typer, before the command
        (["--rules", "bad-rules.yaml"], 4),  # the rule file, before the command takes the reading over
        (["--rules", "bad-expression.yaml"], 4),  # compiled inside the command's reading block
    ],
    ids=["usage", "rule file", "rule expression"],
)
def test_an_error_after_the_early_reading_started_ends_the_program_at_once(county: Path, mistake: list[str], code: int) -> None:
    (county.parent / "bad-rules.yaml").write_text("rules: [", encoding="utf-8")
    rules = (Path(__file__).parents[1] / "rules" / "sichuan-2020.yaml").read_text(encoding="utf-8")
    broken = rules.replace("income_per_capita >=", "income_per_capita >= =", 1)
    assert broken != rules
    (county.parent / "bad-expression.yaml").write_text(broken, encoding="utf-8")
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-c", SLOW_SHEETS, "audit", str(county), *mistake, "--lang", "en"],
                          capture_output=True, text=True, cwd=county.parent, timeout=120)
    seconds = time.monotonic() - began
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert seconds < 30, f"the program waited {seconds:.0f} s for a sheet no one would use"


def test_the_program_reports_what_it_always_did(county: Path, run_cli) -> None:  # noqa: ANN001
    # through `python -m exitcheck`, which starts the early reading, against the CLI alone
    from typer.testing import CliRunner

    from exitcheck.cli import app

    args = ["audit", str(county), "--as-of", "2020-06-30", "--format", "json", "--lang", "en"]
    program = run_cli(*args, "--out", str(county.parent / "program"))
    alone = CliRunner().invoke(app, [*args, "--out", str(county.parent / "alone")])
    assert program.returncode == alone.exit_code == 0
    gaps = [json.loads((county.parent / name / "gaps.json").read_text(encoding="utf-8")) for name in ("program", "alone")]
    for document in gaps:
        document.pop("generated_at", None)
        document.pop("run", None)
    assert gaps[0] == gaps[1]


def test_a_command_run_in_process_leaves_the_collector_as_it_was(county: Path) -> None:
    # The program freezes what loading made, for a cheaper exit; a test or another program
    # running commands in-process would keep every command's registers out of the collector.
    from typer.testing import CliRunner

    from exitcheck.cli import app

    gc.unfreeze()  # from none frozen: objects frozen earlier in this process may be freed meanwhile
    result = CliRunner().invoke(app, ["validate", str(county), "--as-of", "2020-06-30", "-q"])
    assert result.exit_code == 0
    assert gc.get_freeze_count() == 0


def test_a_bad_workspace_is_reported_by_the_command(county: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (county.parent / "exitcheck.yaml").write_text("limits: [not, a, mapping\n", encoding="utf-8")
    monkeypatch.chdir(county.parent)
    code, _, err = run_launch(monkeypatch, capsys, "validate", str(county), "--lang", "en")
    assert code == 4  # the configuration's exit code, with its message; no early reading left
    assert "exitcheck.yaml" in err
    assert ahead.started is None and not reading_threads()


EARLY_IMPORTS = """
import sys
from pathlib import Path
from exitcheck import launch
reading = launch.start_reading(Path(sys.argv[1]))
print(reading.limits.max_rows, "pydantic" in sys.modules, "yaml" in sys.modules)
reading.close()
"""


def test_the_reading_starts_before_pydantic_is_imported(county: Path, tmp_path: Path) -> None:
    """Importing pydantic and PyYAML took 0.2 s, all of it before the scan could start: with no
    workspace the early reading needs neither; with one, its limits are read and apply."""
    plain = tmp_path / "plain"
    plain.mkdir()
    found = subprocess.run([sys.executable, "-c", EARLY_IMPORTS, str(county)], cwd=plain, capture_output=True, text=True, timeout=60)
    assert found.stdout.split() == [str(Limits().max_rows), "False", "False"], found.stderr
    (plain / "exitcheck.yaml").write_text("limits:\n  max_rows: 5000\n", encoding="utf-8")
    found = subprocess.run([sys.executable, "-c", EARLY_IMPORTS, str(county)], cwd=plain, capture_output=True, text=True, timeout=60)
    assert found.stdout.split() == ["5000", "True", "True"], found.stderr


WHOLE_COMMAND = """
import atexit, sys
atexit.register(lambda: print("exitcheck.workspace" in sys.modules, "yaml" in sys.modules, file=sys.stderr))
from exitcheck.launch import main
sys.argv = ["exitcheck", "validate", sys.argv[1], "--as-of", "2020-06-30", "-q"]
main()
"""


def test_a_command_without_a_workspace_never_builds_its_models(county: Path, tmp_path: Path) -> None:
    """Looking for exitcheck.yaml imports neither the workspace's pydantic models nor PyYAML
    when there is none: validate needs neither."""
    done = subprocess.run([sys.executable, "-c", WHOLE_COMMAND, str(county)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1) and done.stderr.split() == ["False", "False"], done.stderr
