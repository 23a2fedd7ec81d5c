"""exitcheck audit PATH... --engine dask: counties audited as tasks on a Dask cluster give the
same findings as each county audited alone, and province figures from summed counts."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import exitcheck
from builders import AS_OF, base_county, excel_row, recode
from exitcheck.auditing import audit
from exitcheck.rules.model import load_ruleset
from ports import port_down

distributed = pytest.importorskip("distributed")
from exitcheck.province import LOCAL_SCHEDULER, audit_counties, cluster_client  # noqa: E402

pytestmark = [pytest.mark.timeout(120), pytest.mark.xdist_group("dask")]  # one LocalCluster, one worker
AS_OF_TEXT = AS_OF.isoformat()
HH = "户表"


def three_counties(folder: Path) -> list[Path]:
    """Three small counties of one prefecture, each with its own gaps. Their townships are named
    apart, so that the union of the three registers is one register of the same households.
    Populations and answers differ, so an average of ratios is not the ratio of the sums."""
    folder.mkdir(exist_ok=True)
    xichang = recode(base_county(), "513401", "西昌")
    xichang.households[0]["人均纯收入"] = 3000  # income fail, wrong-exit risk
    xichang.households[1]["脱贫状态"] = "未脱贫"  # 3 poor people
    xide = recode(base_county(), "513432", "喜德")
    xide.households[2]["住房安全等级"] = "C"
    xide.households[4].update({"脱贫状态": "未脱贫", "认可度": "不满意"})
    for village in xide.villages:
        village["户籍人口"] = 100
    yuexi = recode(base_county(), "513434", "越西")
    yuexi.villages[0]["卫生室"] = ""  # village unknown
    yuexi.members[3]["城乡居民基本医疗保险"] = ""  # medical unknown, a missing_value
    yuexi.households[5]["认可度"] = ""  # not answered
    return [c.write(folder / f"{name}.xlsx") for name, c in (("西昌市", xichang), ("喜德县", xide), ("越西县", yuexi))]


def findings(gaps: list[dict], county: str | None = None) -> set[tuple]:
    return {
        (county or g["county"], g["level"], g["rule"], g["status"], g["household_id"], g["township"], g["village"],
         g["message"], g["department"], json.dumps(g["values"], sort_keys=True, ensure_ascii=False), g.get("priority"))
        for g in gaps
    }


def issue_keys(issues: list[dict], county: str | None = None) -> set[tuple]:
    return {(county or i["county"], i["code"], i["file"], i["sheet"], i["row"], i["column"], i["household_id"]) for i in issues}


def alone(paths: list[Path]) -> set[tuple]:
    """Each county audited on its own, in this process, as the local engine does."""
    ruleset = load_ruleset()
    found: set[tuple] = set()
    for path in paths:
        result = audit(exitcheck.load([str(path)]), ruleset, as_of=AS_OF)
        found |= findings([g.to_dict() for g in result.gaps], path.stem)
    return found


@pytest.fixture(scope="module")
def scheduler():
    """A small cluster in this process (threads) on TCP, so that a CLI subprocess can use it."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://",
                                  dashboard_address=None, scheduler_kwargs=LOCAL_SCHEDULER, silence_logs=logging.ERROR) as cluster:
        yield cluster.scheduler_address


def test_counties_on_a_local_cluster_equal_each_county_alone(tmp_path, run_cli):
    paths = three_counties(tmp_path / "in")
    out = tmp_path / "dask"
    done = run_cli("audit", *map(str, paths), "--engine", "dask", "--workers", "2", "--as-of", AS_OF_TEXT,
                   "--out", str(out), "--format", "json,xlsx")
    assert done.returncode == 1, done.stderr
    document = json.loads((out / "gaps.json").read_text(encoding="utf-8"))

    expected: set[tuple] = set()
    expected_issues: set[tuple] = set()
    for path in paths:
        one = run_cli("audit", str(path), "--as-of", AS_OF_TEXT, "--out", str(tmp_path / path.stem), "--format", "json")
        assert one.returncode == 1, one.stderr
        local = json.loads((tmp_path / path.stem / "gaps.json").read_text(encoding="utf-8"))
        expected |= findings(local["gaps"], path.stem)
        expected_issues |= issue_keys(local["data_issues"], path.stem)
    assert findings(document["gaps"]) == expected
    assert len(document["gaps"]) == len(expected)
    assert issue_keys(document["data_issues"]) == expected_issues

    # Province figures: those of the union of the three registers audited as one.
    union = audit(exitcheck.load([str(p) for p in paths]), as_of=AS_OF).frames["county"].iloc[0]
    summary = document["summary"]
    assert summary["incidence"]["all"] == float(union["incidence"])
    assert summary["satisfaction_rate"] == float(union["satisfaction_rate"])
    counties = {row["county"]: row for row in summary["counties"]}
    ratios = [counties[p.stem]["incidence"] for p in paths]
    assert summary["incidence"]["all"] != pytest.approx(sum(ratios) / len(ratios))  # not an average of ratios
    assert {r["level"]: r["code"] for r in summary["rollups"]} == {"prefecture": "513400", "province": "510000"}
    assert summary["rollups"][0]["incidence"] == summary["incidence"]["all"]
    # housing, satisfaction, county satisfaction, and 新民村's incidence of 3 in 100
    assert counties["喜德县"]["code"] == "513432" and counties["喜德县"]["fail"] == 4

    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(out / "gaps.xlsx"))
    assert "县汇总" in book.sheet_names
    rows = book.get_sheet_by_name("县汇总").to_python()
    assert [r[0] for r in rows[1:4]] == ["西昌市", "喜德县", "越西县"]
    assert rows[4][1] == "513400" and rows[4][10] == pytest.approx(union["incidence"])
    assert book.get_sheet_by_name("户清单").to_python()[0][0] == "县"


class DieOnce(distributed.WorkerPlugin):
    """Kills its worker process the first time any worker starts a county task: the worker dies
    mid-audit, once (the marker file, created atomically, says it has happened)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and str(key).startswith("exitcheck-county"):
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return
            os._exit(1)


def test_a_local_cluster_leaves_dasks_default_port_alone() -> None:
    # An office may run its own Dask dashboard on 8787; a second cluster there also warns.
    with socket.socket() as taken:
        with contextlib.suppress(OSError):  # if something else holds it, just as well
            taken.bind(("127.0.0.1", 8787))
            taken.listen()
        with warnings.catch_warnings(record=True) as caught, cluster_client(workers=1) as client:
            warnings.simplefilter("always")
            assert client.submit(sum, [1, 2]).result() == 3
    assert not [w for w in caught if "8787" in str(w.message)]


def test_a_worker_killed_mid_task_is_retried_and_the_result_is_complete(tmp_path):
    paths = three_counties(tmp_path / "in")
    marker = tmp_path / "killed"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  scheduler_kwargs=LOCAL_SCHEDULER, silence_logs=logging.CRITICAL) as cluster, distributed.Client(cluster) as client:
        before = set(client.run(os.getpid).values())
        client.register_plugin(DieOnce(str(marker)))
        result = audit_counties([[p] for p in paths], load_ruleset(), as_of=AS_OF, scheduler=cluster.scheduler_address)
        after = set(client.run(os.getpid).values())
    assert marker.exists() and before - after  # a worker process did die mid-task
    assert findings([g.to_dict() for g in result.gaps]) == alone(paths)
    assert [row["state"] for row in result.summary()["counties"]] == ["audited"] * 3


class DieOnEveryTry(distributed.WorkerPlugin):
    """Kills its worker process whenever the task of county `index` starts: that county never
    comes back, as when its register makes every worker run out of memory."""

    def __init__(self, index: int) -> None:
        self.suffix = f"-{index}"

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and str(key).startswith("exitcheck-county") and str(key).endswith(self.suffix):
            os._exit(1)


def test_a_county_that_never_comes_back_writes_nothing_and_exits_70(tmp_path, run_cli):
    paths = three_counties(tmp_path / "in")
    out = tmp_path / "out"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  scheduler_kwargs=LOCAL_SCHEDULER, silence_logs=logging.CRITICAL) as cluster, distributed.Client(cluster) as client:
        client.register_plugin(DieOnEveryTry(1))
        done = run_cli("audit", *map(str, paths), "--engine", "dask", "--scheduler", cluster.scheduler_address,
                       "--as-of", AS_OF_TEXT, "--out", str(out), "--lang", "en")
    assert done.returncode == 70, done.stderr
    assert "喜德县" in done.stderr and "nothing was written" in done.stderr
    assert not out.exists() or not any(out.iterdir())


def test_an_unreachable_scheduler_is_a_configuration_error(tmp_path, run_cli):
    path = base_county().write(tmp_path / "越西县.xlsx")
    with port_down() as port:
        # Dask's own setting bounds the wait (30 s by default), so the test need not sit through it.
        done = run_cli("audit", str(path), "--engine", "dask", "--scheduler", f"tcp://127.0.0.1:{port}",
                       "--out", str(tmp_path / "out"), "--lang", "en",
                       env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"})
    assert done.returncode == 4, done.stderr
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in done.stderr
    assert not (tmp_path / "out").exists()


def test_an_unreadable_county_is_reported_and_the_others_complete(tmp_path, run_cli, scheduler):
    paths = three_counties(tmp_path / "in")
    bad = tmp_path / "in" / "坏县.xlsx"
    bad.write_bytes(b"this is not a workbook")
    given = [str(paths[0]), str(bad), str(paths[1])]
    out = tmp_path / "out"
    done = run_cli("audit", *given, "--engine", "dask", "--scheduler", scheduler, "--as-of", AS_OF_TEXT, "--out", str(out), "--format", "json")
    assert done.returncode == 3, done.stderr
    assert "坏县" in done.stderr
    document = json.loads((out / "gaps.json").read_text(encoding="utf-8"))
    assert findings(document["gaps"]) == alone(paths[:2])
    states = {row["county"]: row["state"] for row in document["summary"]["counties"]}
    assert states == {"西昌市": "audited", "坏县": "unreadable", "喜德县": "audited"}
    assert any("坏县" in failure for failure in document["summary"]["input_failures"])

    strict = run_cli("audit", *given, "--engine", "dask", "--scheduler", scheduler, "--as-of", AS_OF_TEXT,
                     "--out", str(tmp_path / "strict"), "--strict")
    assert strict.returncode == 3, strict.stderr
    assert not (tmp_path / "strict").exists()  # nothing written unless every county is accounted for


def test_the_same_household_id_in_two_counties_is_a_data_issue_not_a_merge(tmp_path, scheduler):
    first, second = base_county(), base_county()  # same townships and villages, as 城关镇 recurs
    second = recode(second, "513432")
    shared = first.households[0]["户编号"]
    for row in [second.households[0], *[m for m in second.members if m["户编号"] == second.households[0]["户编号"]]]:
        row["户编号"] = shared
    first.households[0]["人均纯收入"] = 3000  # income fails in 甲县 only
    second.households[0]["住房安全等级"] = "C"  # housing fails in 乙县 only
    paths = [first.write(tmp_path / "甲县.xlsx"), second.write(tmp_path / "乙县.xlsx")]

    result = audit_counties([[p] for p in paths], load_ruleset(), as_of=AS_OF, scheduler=scheduler)
    duplicates = [i for i in result.data_issues if i.code == "duplicate_household_across_counties"]
    assert {(i.county, i.household_id, i.file, i.row, i.column) for i in duplicates} == {
        ("甲县", shared, str(paths[0]), excel_row(HH, 0), "A"), ("乙县", shared, str(paths[1]), excel_row(HH, 0), "A"),
    }
    assert "乙县" in next(i for i in duplicates if i.county == "甲县").message("zh")
    gaps = {(g.county, g.rule, g.household_id) for g in result.gaps}
    assert {("甲县", "income", shared), ("乙县", "housing", shared)} <= gaps
    assert ("甲县", "housing", shared) not in gaps and ("乙县", "income", shared) not in gaps
    assert result.summary()["households"] == 12

    from exitcheck.report.gaps_out import by_township, write_outputs

    assert len(by_township(result, result.gaps)) == 4  # 越城镇 of 甲县 is not 越城镇 of 乙县
    write_outputs(tmp_path / "out", result, ["xlsx"], "township")
    from python_calamine import CalamineWorkbook

    for county in ("甲县", "乙县"):
        book = CalamineWorkbook.from_path(str(tmp_path / "out" / "townships" / county / "越城镇.xlsx"))
        issues = book.get_sheet_by_name("数据问题").to_python()[1:]
        assert [(r[0], r[3]) for r in issues] == [("duplicate_household_across_counties", str(paths[0 if county == "甲县" else 1]))]

    # Where the other county's row is (its file and row, in the message) is no part of what the
    # issue is (DataIssue.identity, which the nightly digest of a township's list hashes): 乙县's
    # row moves down one, and 甲县's issue says so but is the same issue.
    def jia(result) -> object:
        return next(i for i in result.data_issues if i.code == "duplicate_household_across_counties" and i.county == "甲县")

    second.households[0], second.households[1] = second.households[1], second.households[0]
    second.write(paths[1])
    moved = audit_counties([[p] for p in paths], load_ruleset(), as_of=AS_OF, scheduler=scheduler)
    assert jia(moved).message("zh") != jia(result).message("zh")
    assert jia(moved).identity() == jia(result).identity()


def test_the_same_person_in_two_counties_is_a_data_issue_in_each(tmp_path, scheduler):
    """A living member of 乙县 with the ID number of one of 甲县's: counted in both counties'
    people (and incidence), and a prefecture audit, the only one that sees both, said nothing
    (an audit of the two workbooks as one register calls it duplicate_person)."""
    first, second = base_county(), recode(base_county(), "513432")
    person = first.members[2]
    second.members[5]["证件号码"] = person["证件号码"]
    paths = [first.write(tmp_path / "甲县.xlsx"), second.write(tmp_path / "乙县.xlsx")]
    result = audit_counties([[p] for p in paths], load_ruleset(), as_of=AS_OF, scheduler=scheduler)
    found = [i for i in result.data_issues if i.code == "duplicate_person_across_counties"]
    assert {(i.county, i.household_id, i.file, i.row) for i in found} == {
        ("甲县", person["户编号"], str(paths[0]), excel_row("成员表", 2)),
        ("乙县", second.members[5]["户编号"], str(paths[1]), excel_row("成员表", 5)),
    }
    assert f"乙县({paths[1]} 第 {excel_row('成员表', 5)} 行)" in next(i for i in found if i.county == "甲县").message("zh")
    assert not [i for i in result.data_issues if i.code == "duplicate_household_across_counties"]


def test_a_township_book_lists_only_its_own_countys_rules_not_evaluated(tmp_path, scheduler):
    """乙县 has no 村表: its books say its village rules were not evaluated; 甲县's books said so
    too ("乙县: 没有村表 ..."), of a register that is not theirs."""
    from python_calamine import CalamineWorkbook

    from exitcheck.report.gaps_out import write_outputs

    first, second = base_county(), recode(base_county(), "513432")
    second.villages = []
    paths = [first.write(tmp_path / "甲县.xlsx"), second.write(tmp_path / "乙县.xlsx")]
    result = audit_counties([[p] for p in paths], load_ruleset(), as_of=AS_OF, scheduler=scheduler)
    write_outputs(tmp_path / "out", result, ["xlsx"], "township")

    def summary_text(county: str) -> str:
        book = CalamineWorkbook.from_path(str(tmp_path / "out" / "townships" / county / "越城镇.xlsx"))
        return " ".join(str(cell) for row in book.get_sheet_by_name("汇总").to_python() for cell in row)

    assert "没有村表" not in summary_text("甲县") and "乙县" not in summary_text("甲县")
    assert "乙县: 没有村表, 村级规则 village_incidence" in summary_text("乙县")


def test_a_special_group_one_county_cannot_tell_is_said_of_that_county(tmp_path, scheduler):
    """乙县's 成员表 has no 务工状况: the lists' note named no county, as if every county lacked it."""
    from exitcheck.income_bands import bands

    first, second = base_county(), recode(base_county(), "513432")
    for row in second.members:
        row.pop("务工状况", None)
    paths = [first.write(tmp_path / "甲县.xlsx"), second.write(tmp_path / "乙县.xlsx")]
    result = audit_counties([[p] for p in paths], load_ruleset(), as_of=AS_OF, scheduler=scheduler, bands=True)
    notes = [note.zh for note in bands(result).notes()]
    assert notes == ["乙县: 成员表没有「务工状况」列, 无法判断哪些户属于「有劳动力未务工」: 名单的特殊群体中没有它, 按它筛选的部门名单不投递"]


def _cli_in_process(args: list[str], before: str = "") -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh interpreter, after `before`; prints the exit code and the Dask modules loaded."""
    code = "\n".join([
        "import sys", before, "from exitcheck.cli import main", f"sys.argv = ['exitcheck', *{args!r}]",
        "try:", "    main()", "except SystemExit as done:",
        "    print(done.code, sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')}))",
    ])
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "200"}, stdin=subprocess.DEVNULL)


def test_without_dask_the_dask_engine_exits_4_with_the_install_line(tmp_path):
    path = str(base_county().write(tmp_path / "越西县.xlsx"))
    done = _cli_in_process(["audit", path, "--engine", "dask", "--out", str(tmp_path / "out")],
                           before="sys.modules['distributed'] = None; sys.modules['dask'] = None")
    assert done.stdout.split()[0] == "4", done.stderr
    assert "pip install 'exitcheck[dask]'" in done.stderr
    assert not (tmp_path / "out").exists()


def test_the_local_engine_does_not_import_dask(tmp_path):
    path = str(base_county().write(tmp_path / "越西县.xlsx"))
    done = _cli_in_process(["audit", path, "--as-of", AS_OF_TEXT, "--out", str(tmp_path / "out"), "-q"])
    assert done.stdout.strip() == "0 []", done.stderr


def test_usage_errors_exit_2(tmp_path, run_cli):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = base_county().write(tmp_path / "a" / "越西县.xlsx")
    two = base_county().write(tmp_path / "b" / "越西县.xlsx")
    same_name = run_cli("audit", str(one), str(two), "--engine", "dask", "--out", str(tmp_path / "out"))
    assert same_name.returncode == 2 and "越西县" in same_name.stderr
    assert run_cli("audit", str(one), "--workers", "2").returncode == 2
    assert run_cli("audit", str(one), "--engine", "spark").returncode == 2


def test_the_terminal_names_the_county_that_lacks_a_register_once(tmp_path, scheduler):
    """Several counties: the rules a county's absent 村表 kept from being evaluated are one line
    for that county, not one per rule; a county that has its 村表 has no line."""
    from exitcheck.report.console import skipped_lines

    without = recode(base_county(), "513432")
    without.villages = []
    paths = [base_county().write(tmp_path / "甲县.xlsx"), without.write(tmp_path / "乙县.xlsx")]
    result = audit_counties([[p] for p in paths], load_ruleset(), as_of=AS_OF, scheduler=scheduler)
    assert skipped_lines(result) == ["乙县: 没有村表, 10 条规则未评估: 贫困发生率、村集体经济、通硬化路、卫生室、文化室、"
                                     "通信网络、村安全饮水、村通电、村广播电视、县贫困发生率"]
    assert len(result.summary()["skipped_rules"]) == 10  # each rule's reason is kept for the files
