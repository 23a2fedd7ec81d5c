"""exitcheck run with `engine: dask` in exitcheck.yaml (issue 8): each entry of `registers` a
county, audited on a Dask cluster. The night's gap lists, bands, department lists and township
books equal the local engine's run county by county; township names that recur across counties
stay apart (books, deliveries, the history's diff); an unreadable county stops the deliveries;
a bad engine, scheduler or workers is a configuration error at its line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from builders import County, base_county, recode

distributed = pytest.importorskip("distributed")

from exitcheck.province import LOCAL_SCHEDULER  # noqa: E402

pytestmark = [pytest.mark.timeout(240), pytest.mark.xdist_group("nightly-dask")]  # one cluster, one worker
AS_OF = "2020-06-30"
COUNTIES = ("甲县", "乙县")  # both with townships 越城镇 and 中所镇, and a village 瓦曲村 in 越城镇

CONFIG = """\
registers: [{registers}]
out: out
state: state
{engine}
departments:
  civil-affairs:
    name: 民政局
    columns: [household_id, township, village, head_name, household_size, income_per_capita, special, id_number]
    deliver: {{type: dir, path: outbox/civil-affairs}}
  human-resources:
    name: 人社局
    bands: [below_4200, 4200_4500]
    where: labour_unemployed > 0
    deliver: {{type: dir, path: outbox/human-resources}}
townships:
  deliver: {{type: dir, path: outbox/townships}}
"""


def jia() -> County:
    county = recode(base_county(), "513401")
    county.households[0]["人均纯收入"] = 3000  # below 4200: income fails, wrong-exit risk
    county.households[1]["人均纯收入"] = 4300  # 4200-4500 ...
    county.members[4]["务工状况"] = "未务工"  # ... with a spouse able to work and without work
    county.households[4].update({"人均纯收入": 4700, "贫困户属性": "低保贫困户"})  # 4500-5000, 低保
    county.members[0]["城乡居民基本医疗保险"] = ""  # medical unknown and a data issue in 越城镇
    return county


def yi() -> County:
    county = recode(base_county(), "513432")
    county.households[3]["人均纯收入"] = 4100  # below 4200 ...
    county.members[10]["务工状况"] = "未务工"  # ... and for human resources
    county.households[2]["人均纯收入"] = 4600
    county.members[7]["健康状况"] = "残疾"  # 4500-5000 with a disability
    county.villages[0]["卫生室"] = "否"  # 越城镇/瓦曲村 of 乙县 only
    return county


def make_workspace(root: Path, registers: list[Path], engine: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    listed = ", ".join(str(path) for path in registers)
    (root / "exitcheck.yaml").write_text(CONFIG.format(registers=listed, engine=engine), encoding="utf-8")
    return root


def write_counties(folder: Path, counties: dict[str, County]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [county.write(folder / f"{name}.xlsx") for name, county in counties.items()]


def night(run_cli, folder: Path, as_of: str = AS_OF, expect: int = 1) -> Path:
    """One `exitcheck run`; returns its run folder."""
    before = set((folder / "out").iterdir()) if (folder / "out").is_dir() else set()
    done = run_cli("run", "--as-of", as_of, cwd=folder)
    assert done.returncode == expect, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    new = sorted(set((folder / "out").iterdir()) - before)
    assert len(new) == 1
    return new[0]


def canonical(row: dict) -> str:
    return json.dumps(row, sort_keys=True, ensure_ascii=False)


def gap_keys(gaps: list[dict], county: str | None = None) -> set[tuple]:
    return {(county or g["county"], g["level"], g["rule"], g["status"], g["household_id"], g["township"], g["village"],
             g["message"], g["department"], canonical(g["values"])) for g in gaps}


def band_rows(document: dict, county: str | None = None) -> set[tuple]:
    """(county, band, the row without its county) of every household of a bands document."""
    return {(county or h["county"], band["id"], canonical({k: v for k, v in h.items() if k != "county"}))
            for band in document["bands"] for h in band["households"]}


def delivered(folder: Path) -> dict:
    files = sorted(folder.glob("*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text(encoding="utf-8"))


def issue_rows(book: Path) -> list[list]:
    """The data issues of a book; a book without any says so on its one line, not an issue."""
    rows = CalamineWorkbook.from_path(str(book)).get_sheet_by_name("数据问题").to_python()[1:]
    return [] if rows and rows[0][0] == "没有数据问题" else rows


@pytest.fixture(scope="module")
def scheduler():
    """A small cluster in this process (threads) on TCP, for the CLI subprocesses to use."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://",
                                  dashboard_address=None, scheduler_kwargs=LOCAL_SCHEDULER, silence_logs=logging.ERROR) as cluster:
        yield cluster.scheduler_address


def test_a_dask_night_equals_the_local_engine_county_by_county(tmp_path, run_cli):
    paths = write_counties(tmp_path / "data", {"甲县": jia(), "乙县": yi()})
    # engine: dask on a LocalCluster of two worker processes, started and stopped by the run.
    dask_ws = make_workspace(tmp_path / "dask", paths, "engine: dask\nworkers: 2")
    run = night(run_cli, dask_ws)
    local = {path.stem: night(run_cli, make_workspace(tmp_path / path.stem, [path], "engine: local")) for path in paths}

    # The gap lists: every county's findings, under its county, as its own local run has them.
    gaps = json.loads((run / "gaps.json").read_text(encoding="utf-8"))
    expected = set()
    for county, folder in local.items():
        expected |= gap_keys(json.loads((folder / "gaps.json").read_text(encoding="utf-8"))["gaps"], county)
    assert gap_keys(gaps["gaps"]) == expected and len(gaps["gaps"]) == len(expected)
    assert ("乙县", "village", "village_clinic") in {k[:3] for k in expected}

    # bands.json: the same households, bands and columns, each row naming its county.
    bands = json.loads((run / "bands.json").read_text(encoding="utf-8"))
    expected_bands = set()
    for county, folder in local.items():
        expected_bands |= band_rows(json.loads((folder / "bands.json").read_text(encoding="utf-8")), county)
    assert band_rows(bands) == expected_bands and len(expected_bands) == 5
    assert {(h["household_id"], tuple(h["special"])) for b in bands["bands"] for h in b["households"] if h["special"]} == {
        ("513401000005", ("低保",)), ("513401000002", ("有劳动力未务工",)), ("513432000003", ("残疾",)), ("513432000004", ("有劳动力未务工",)),
    }
    summary = CalamineWorkbook.from_path(str(run / "bands.xlsx")).get_sheet_by_name("汇总").to_python()
    assert summary[1][:2] == ["县", "乡镇"]
    assert {tuple(row[:2]) for row in summary[2:-1]} == {("甲县", "越城镇"), ("甲县", "中所镇"), ("乙县", "越城镇"), ("乙县", "中所镇")}

    # Each department's list: the rows of the counties' lists together (the heads' ID numbers
    # included, for civil affairs, which lists id_number; the where filter for human resources).
    for department in ("civil-affairs", "human-resources"):
        mine = delivered(dask_ws / "outbox" / department)
        theirs = set()
        for county in local:
            theirs |= band_rows(delivered(tmp_path / county / "outbox" / department), "-")
        assert band_rows(mine, "-") == theirs, department
    ids = {h["household_id"]: h["id_number"] for b in delivered(dask_ws / "outbox" / "civil-affairs")["bands"] for h in b["households"]}
    assert ids["513432000004"] == yi().members[9]["证件号码"] and len(ids) == 5
    assert {h["household_id"] for b in delivered(dask_ws / "outbox" / "human-resources")["bands"] for h in b["households"]} == {
        "513401000002", "513432000004"}

    # Township books and deliveries: by county and township, each with only its own gaps and
    # data issues, as the county's own run has them.
    places = {f"{county}-{township}" for county in COUNTIES for township in ("越城镇", "中所镇")}
    assert {p.stem for p in (run / "townships").iterdir()} == places
    assert {p.name for p in (dask_ws / "outbox" / "townships").iterdir()} == places
    for place in sorted(places):
        county, township = place.split("-")
        document = delivered(dask_ws / "outbox" / "townships" / place)
        own = delivered(tmp_path / county / "outbox" / "townships" / township)
        assert (document["county"], document["township"]) == (county, township)
        assert gap_keys(document["gaps"]) == gap_keys(own["gaps"], county), place
        assert issue_rows(run / "townships" / f"{place}.xlsx") == issue_rows(local[county] / "townships" / f"{township}.xlsx")
    assert [row[0] for row in issue_rows(run / "townships" / "甲县-越城镇.xlsx")] == ["missing_value"]
    assert issue_rows(run / "townships" / "乙县-越城镇.xlsx") == []  # 甲县's issue stays in 甲县's book
    # A night in English sends no township's list again: the workers send each gap's reason
    # back in Chinese too, and the digest hashes that (`delivered` finds still one list each).
    english = run_cli("run", "--as-of", AS_OF, "--lang", "en", cwd=dask_ws)
    assert english.returncode == 1, english.stdout + english.stderr
    for place in places:
        delivered(dask_ws / "outbox" / "townships" / place)

    report = json.loads((run / "run.json").read_text(encoding="utf-8"))
    assert (report["status"], report["exit_code"]) == ("findings", 1)
    assert "2 counties" in report["steps"][0]["message"]


def test_the_history_tells_the_same_village_of_two_counties_apart(tmp_path, run_cli, scheduler):
    """Night one: 乙县's 越城镇/瓦曲村 lacks its clinic and 乙县 is below 90% satisfaction.
    Night two: 乙县 fixed, 甲县's village and county of the same names broken instead: resolved
    and new, never 'still open'."""
    def satisfaction_below_90(county: County) -> County:
        county.households[5]["认可度"] = "不满意"
        return county

    first_jia, first_yi = recode(base_county(), "513401"), satisfaction_below_90(recode(base_county(), "513432"))
    first_yi.villages[0]["卫生室"] = "否"
    second_jia, second_yi = satisfaction_below_90(recode(base_county(), "513401")), recode(base_county(), "513432")
    second_jia.villages[0]["卫生室"] = "否"
    data = tmp_path / "data"
    paths = write_counties(data, {"甲县": first_jia, "乙县": first_yi})
    folder = make_workspace(tmp_path / "ws", paths, f"engine: dask\nscheduler: {scheduler}")
    one = night(run_cli, folder, "2020-06-01")
    write_counties(data, {"甲县": second_jia, "乙县": second_yi})
    two = night(run_cli, folder, "2020-06-02")

    diff = run_cli("diff", "--json", cwd=folder)
    assert diff.returncode == 0, diff.stderr
    document = json.loads(diff.stdout)
    assert (document["from"], document["to"]) == (one.name, two.name)

    def keys(gaps: list[dict]) -> set[tuple]:  # as the history labels them: a county rule by its county
        return {(g["rule"], f"{g['county']}-{g['township']}" if g["township"] else g["county"], g["village"], g["household_id"]) for g in gaps}

    def listed(name: str) -> set[tuple]:
        return {(e["rule"], e["township"], e["village"], e["household_id"]) for e in document[name]}

    before = keys(json.loads((one / "gaps.json").read_text(encoding="utf-8"))["gaps"])
    after = keys(json.loads((two / "gaps.json").read_text(encoding="utf-8"))["gaps"])
    assert listed("new") == after - before and listed("resolved") == before - after and listed("open") == before & after
    assert ("village_clinic", "乙县-越城镇", "瓦曲村", None) in listed("resolved")
    assert ("village_clinic", "甲县-越城镇", "瓦曲村", None) in listed("new")
    assert {(e["rule"], e["township"]) for e in document["new"] if e["level"] == "county"} == {("county_satisfaction", "甲县")}
    assert {(e["rule"], e["township"]) for e in document["resolved"] if e["level"] == "county"} == {("county_satisfaction", "乙县")}
    assert document["open"] == [] and document["reopened"] == []
    # The 进度 sheet counts by county and township, as the books are named.
    progress = CalamineWorkbook.from_path(str(two / "gaps.xlsx")).get_sheet_by_name("进度").to_python()
    assert {"乙县-越城镇", "甲县-越城镇"} <= set(progress[2])


def test_an_unreadable_county_exits_3_and_nothing_is_delivered(tmp_path, run_cli, scheduler):
    paths = write_counties(tmp_path / "data", {"甲县": jia(), "乙县": yi()})
    bad = tmp_path / "data" / "坏县.xlsx"
    bad.write_bytes(b"PK\x03\x04 not really a workbook")
    folder = make_workspace(tmp_path / "ws", [paths[0], bad, paths[1]], f"engine: dask\nscheduler: {scheduler}")
    done = run_cli("run", "--as-of", AS_OF, cwd=folder)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "坏县.xlsx" in done.stderr and "Traceback" not in done.stderr
    assert not (folder / "outbox").exists()  # no department or township list with a county missing
    runs = json.loads(run_cli("history", "--json", cwd=folder).stdout)["runs"]
    assert [(r["status"], r["exit_code"]) for r in runs] == [("failed", 3)] and "坏县" in runs[0]["note"]
    run = next((folder / "out").iterdir())
    steps = {s["step"]: s["code"] for s in json.loads((run / "run.json").read_text(encoding="utf-8"))["steps"]}
    assert steps["load"] == 3 and steps["departments"] == 3 and steps["townships"] == 3
    states = {row["county"]: row["state"] for row in json.loads((run / "gaps.json").read_text(encoding="utf-8"))["summary"]["counties"]}
    assert states == {"甲县": "audited", "坏县": "unreadable", "乙县": "audited"}

    # Not one county readable: exit 3 at once, recorded as failed too.
    make_workspace(folder, [bad], f"engine: dask\nscheduler: {scheduler}")
    done = run_cli("run", "--as-of", AS_OF, cwd=folder)
    assert done.returncode == 3 and "坏县.xlsx" in done.stderr
    assert [r["status"] for r in json.loads(run_cli("history", "--json", cwd=folder).stdout)["runs"]] == ["failed", "failed"]


@pytest.mark.parametrize(("setting", "key", "line", "words", "words_en"), [
    ("engine: spark", "engine", 4, "应为 local、dask 之一, 现为「spark」", "expected 'local' or 'dask', found 'spark'"),
    ("engine: local\nscheduler: tcp://10.0.0.5:8786", "scheduler", 5, "只用于 engine: dask", "only with engine: dask"),
    ("engine: dask\nscheduler: 'tcp://10.0.0.5:8786 --now'", "scheduler", 5, "应为 Dask 调度器的地址", "the address of a Dask scheduler"),
    ("engine: dask\nworkers: 0", "workers", 5, "应为不小于 1 的数, 现为「0」", "expected a number of at least 1, found 0"),
    ("engine: dask\nscheduler: tcp://10.0.0.5:8786\nworkers: 2", "workers", 6, "有自己的 workers", "has its own workers"),
], ids=["engine", "scheduler-without-dask", "scheduler-address", "workers-zero", "workers-with-scheduler"])
def test_a_bad_engine_scheduler_or_workers_is_a_config_error_at_its_line(tmp_path, run_cli, setting, key, line, words, words_en):
    (tmp_path / "data").mkdir()
    path = base_county().write(tmp_path / "data" / "越西县.xlsx")
    folder = make_workspace(tmp_path / "ws", [path], setting)
    for lang, said in (("zh", words), ("en", words_en)):
        done = run_cli("run", "--as-of", AS_OF, "--lang", lang, cwd=folder)
        assert done.returncode == 4, done.stdout + done.stderr
        assert f"exitcheck.yaml:{line}: {key}: " in done.stderr and said in done.stderr, done.stderr
    assert not (folder / "out").exists()


def test_the_init_template_names_the_keys_and_its_dask_lines_load(tmp_path):
    from exitcheck.workspace import load_config
    from exitcheck.workspace_init import config_text

    text = config_text(tmp_path, "data/registers.xlsx", "rules/sichuan-2020.yaml")
    path = tmp_path / "exitcheck.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_config(path).engine == "local"
    assert "# scheduler: tcp://" in text and "# workers: " in text
    path.write_text(text.replace("engine: local", "engine: dask").replace("# scheduler:", "scheduler:"), encoding="utf-8")
    config = load_config(path)
    assert (config.engine, config.scheduler, config.workers) == ("dask", "tcp://10.0.0.5:8786", None)


def test_without_dask_the_run_exits_4_with_the_install_line(tmp_path):
    (tmp_path / "data").mkdir()
    path = base_county().write(tmp_path / "data" / "越西县.xlsx")
    folder = make_workspace(tmp_path / "ws", [path], "engine: dask")
    code = "\n".join([
        "import sys", "sys.modules['distributed'] = None; sys.modules['dask'] = None",
        "from exitcheck.cli import main", "sys.argv = ['exitcheck', 'run', '--as-of', '2020-06-30']", "main()",
    ])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=folder,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "200"}, stdin=subprocess.DEVNULL)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "pip install 'exitcheck[dask]'" in done.stderr and "exitcheck.yaml:4: engine: dask" in done.stderr
    assert not (folder / "outbox").exists()
    history = subprocess.run([sys.executable, "-m", "exitcheck", "history", "--json"], capture_output=True, text=True,
                             cwd=folder, timeout=60, env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert [(r["status"], r["exit_code"]) for r in json.loads(history.stdout)["runs"]] == [("failed", 4)]


def test_exitcheck_bands_on_dask_cuts_the_lists_the_local_engine_cuts(tmp_path, run_cli, scheduler):
    paths = write_counties(tmp_path / "data", {"甲县": jia(), "乙县": yi()})
    folder = make_workspace(tmp_path / "ws", paths, "engine: local")
    on_dask = run_cli("bands", "--engine", "dask", "--scheduler", scheduler, "--as-of", AS_OF, "--json", "--push-to", "all", cwd=folder)
    assert on_dask.returncode == 0, on_dask.stderr
    local = run_cli("bands", "--as-of", AS_OF, "--json", "--push-to", "all", "--out", "local", cwd=folder)
    assert local.returncode == 0, local.stderr
    mine, theirs = json.loads(on_dask.stdout), json.loads(local.stdout)
    assert band_rows(mine, "-") == band_rows(theirs, "-") and len(band_rows(mine)) == 5
    assert {(h["county"], h["household_id"][:6]) for b in mine["bands"] for h in b["households"]} == {("甲县", "513401"), ("乙县", "513432")}
    # The same content, to the byte: the local engine's lists are "unchanged" after Dask's went out.
    ledger = json.loads(run_cli("deliveries", "--json", cwd=folder).stdout)["attempts"]
    outcomes = sorted((a["department"], a["outcome"]) for a in ledger)
    assert outcomes == [("civil-affairs", "delivered"), ("civil-affairs", "unchanged"),
                        ("human-resources", "delivered"), ("human-resources", "unchanged")]
    assert run_cli("bands", "--engine", "dask", "--as-of", AS_OF, "--workers", "2", "--scheduler", scheduler, cwd=folder).returncode == 2


def test_a_household_id_in_two_counties_keeps_a_finding_in_each():
    """Each county audits its own row of a household ID registered in both: two gaps, and the
    history kept one (the key was the ID alone), so the other county's finding vanished from the
    diff and the burn-down. It is keyed with its county; other households keep their old key."""
    from types import SimpleNamespace

    from exitcheck.history import findings_from_gaps, fingerprint

    def gap(county: str, household: str, township: str) -> SimpleNamespace:
        return SimpleNamespace(level="household", household_id=household, township=township, village="大花村",
                               county=county, rule="income", status="fail")

    shared, own = "513434001001000002", "513432001001000007"
    findings = findings_from_gaps([gap("越西县", shared, "越城镇"), gap("喜德县", shared, "越城镇"), gap("喜德县", own, "中所镇")], {shared})
    assert sorted(f.township for f in findings) == ["喜德县-中所镇", "喜德县-越城镇", "越西县-越城镇"]
    assert fingerprint("income", "household", own) in {f.fingerprint for f in findings}  # unchanged for the others
    # 喜德县 fixes its row's income: 越西县's finding keeps its key (its age, its streak)
    later = findings_from_gaps([gap("越西县", shared, "越城镇")], {shared})
    assert {f.fingerprint for f in later} == {f.fingerprint for f in findings if f.township == "越西县-越城镇"}
