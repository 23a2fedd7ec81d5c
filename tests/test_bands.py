"""Income bands: the edges, the special groups, bands.json and bands.xlsx, department cuts
(bands, where, columns: nothing more than asked), the content digest, and exitcheck.yaml."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from python_calamine import CalamineWorkbook

import exitcheck
from builders import AS_OF, base_county, make_id, member
from exitcheck.auditing import audit
from exitcheck.config_path import find_config
from exitcheck.errors import ConfigError
from exitcheck.income_bands import (
    DOCUMENT_KEYS,
    bands,
    bands_document,
    content_digest,
    count_table,
    department_list,
    department_lists,
)
from exitcheck.rules.model import Band
from exitcheck.workspace import Department, load_config

H = [f"51343400{n:04d}" for n in range(1, 7)]
BAND_IDS = ["below_4200", "4200_4500", "4500_5000"]


def edge_county():
    """Incomes on and beside every band edge; two households that are not registered."""
    county = base_county()
    incomes = [4200, 4500, 5000, 4199.99, 0, 4999.99]
    for row, income in zip(county.households, incomes, strict=True):
        row["人均纯收入"] = income
    county.households[4].update({"农户类别": "一般农户", "贫困户属性": "", "脱贫状态": ""})
    county.households[5].update({"农户类别": "边缘易致贫户", "贫困户属性": "", "脱贫状态": ""})
    return county


def banded_of(county, tmp_path: Path, lang: str = "zh", as_of: date = AS_OF):
    result = audit(exitcheck.load([county.write(tmp_path / "registers.xlsx")]), as_of=as_of, lang=lang)
    return bands(result, lang=lang)


def placement(document: dict) -> dict[str, str]:
    return {h["household_id"]: band["id"] for band in document["bands"] for h in band["households"]}


def test_households_on_the_edges_land_in_the_right_band(tmp_path):
    document = bands_document(banded_of(edge_county(), tmp_path))
    assert placement(document) == {
        H[0]: "4200_4500",  # exactly 4200: the lower bound is included
        H[1]: "4500_5000",  # exactly 4500
        H[3]: "below_4200",  # 4199.99
        H[4]: "below_4200",  # 0, and not registered: every category is banded
        H[5]: "4500_5000",  # 4999.99, an edge household
    }  # exactly 5000 is above the last band: H[2] is in none


def test_bands_json_has_the_exact_shape(tmp_path):
    document = bands_document(banded_of(edge_county(), tmp_path))
    assert set(document) == {"schema", "as_of", "bands"}
    assert document["schema"] == "exitcheck/bands@1" and document["as_of"] == "2020-06-30"
    assert [(b["id"], b["label"], b["min"], b["max"]) for b in document["bands"]] == [
        ("below_4200", "4200元以下", 0, 4200), ("4200_4500", "4200-4500元", 4200, 4500), ("4500_5000", "4500-5000元", 4500, 5000),
    ]
    for band in document["bands"]:
        assert set(band) == {"id", "label", "min", "max", "households"}
        for row in band["households"]:
            assert list(row) == list(DOCUMENT_KEYS)
    first = document["bands"][1]["households"][0]
    assert first == {
        "household_id": H[0], "township": "越城镇", "village": "瓦曲村", "head_name": "户主1", "household_size": 3,
        "income_per_capita": 4200.0, "category": "建档立卡户", "status": "已脱贫", "special": [],
    }
    edge = {h["household_id"]: h for h in document["bands"][2]["households"]}[H[5]]
    assert (edge["category"], edge["status"]) == ("边缘易致贫户", None)


def special_county():
    county = base_county()
    for row in county.households:
        row["人均纯收入"] = 3000
    county.households[0]["贫困户属性"] = "五保户"  # an alias of 特困供养贫困户
    county.households[1]["贫困户属性"] = "低保贫困户"
    county.members[7]["健康状况"] = "残疾,长期慢性病"  # household 3: a combination counts as each
    county.members[10]["务工状况"] = "未务工"  # household 4: the spouse, 48, a normal labourer
    # household 5: a disabled member who died and an unemployed man of 65: neither counts
    county.members.append(member(H[4], "故人", make_id(date(1950, 2, 2), 77, True), "之父", "男", "1950-02-02", 健康状况="残疾", 人员状态="死亡"))
    county.members.append(member(H[4], "老人", make_id(date(1955, 3, 3), 78, True), "之父", "男", "1955-03-03", 务工状况="未务工"))
    county.households[4]["家庭人口数"] = 4
    county.households[5].update(贫困户属性="特困供养贫困户")
    county.members[16]["健康状况"] = "残疾"
    county.members[15]["务工状况"] = "未务工"
    return county


def test_each_household_carries_its_special_groups(tmp_path):
    document = bands_document(banded_of(special_county(), tmp_path))
    special = {h["household_id"]: h["special"] for band in document["bands"] for h in band["households"]}
    assert special == {
        H[0]: ["五保/特困供养"],
        H[1]: ["低保"],
        H[2]: ["残疾"],
        H[3]: ["有劳动力未务工"],
        H[4]: [],
        H[5]: ["五保/特困供养", "残疾", "有劳动力未务工"],
    }
    english = bands_document(banded_of(special_county(), tmp_path, lang="en"))
    labels = {h["household_id"]: h["special"] for band in english["bands"] for h in band["households"]}
    assert labels[H[1]] == ["minimum living guarantee"] and english["bands"][0]["label"] == "below 4200"


@pytest.mark.parametrize(("lang", "line"), [
    ("zh", "其中有特殊群体(五保/特困、低保、残疾、有劳动力未务工)的户: 5; 须突出的(五保/特困、残疾, 名单中加底色)户: 3"),
    ("en", "special group (five guarantees, dibao, disability, able to work without work): 5; "
           "that must stand out (five guarantees, disability; shaded in the lists): 3"),
])
def test_the_console_counts_the_households_that_must_stand_out(tmp_path, run_cli, lang, line):
    workbook = special_county().write(tmp_path / "registers.xlsx")
    done = run_cli("bands", str(workbook), "--out", "out", "--as-of", "2020-06-30", "--lang", lang, env={"COLUMNS": "400"})
    assert done.returncode == 0 and line in done.stdout, done.stdout


def test_bands_cli_prints_json_and_writes_both_files(tmp_path, run_cli):
    workbook = edge_county().write(tmp_path / "registers.xlsx")
    done = run_cli("bands", str(workbook), "--json", "--out", "out", "--as-of", "2020-06-30")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed == json.loads((tmp_path / "out" / "bands.json").read_text(encoding="utf-8"))
    assert placement(printed)[H[0]] == "4200_4500"
    assert (tmp_path / "out" / "bands.json").stat().st_mode & 0o777 == 0o600
    book = CalamineWorkbook.from_path(str(tmp_path / "out" / "bands.xlsx"))
    assert book.sheet_names == ["汇总", "4200元以下", "4200-4500元", "4500-5000元"]
    summary = book.get_sheet_by_name("汇总").to_python()
    assert summary[1] == ["乡镇", "4200元以下", "4200-4500元", "4500-5000元", "合计"]
    assert summary[-1] == ["合计", 2, 1, 2, 5]
    low = book.get_sheet_by_name("4200元以下").to_python()
    assert {row[0] for row in low[2:]} == {H[3], H[4]}
    table = run_cli("bands", str(workbook), "--out", "out2", "--as-of", "2020-06-30", env={"COLUMNS": "200"})
    assert table.returncode == 0 and "越城镇" in table.stdout and "4200-4500元" in table.stdout


# ---- department cuts ----

def ruleset_of(banded):
    return banded.result.ruleset


def test_a_department_gets_its_columns_and_nothing_more(tmp_path):
    banded = banded_of(edge_county(), tmp_path)
    cut = department_list(banded, "agri", Department(columns=["household_id", "income_per_capita"]), ruleset_of(banded))
    document = cut.document()
    rows = [h for band in document["bands"] for h in band["households"]]
    assert rows and all(list(h) == ["household_id", "income_per_capita"] for h in rows)
    workbook = cut.xlsx_bytes()
    text = _xlsx_text(workbook)
    ids = [m["证件号码"] for m in edge_county().members]
    assert not any(i in text or i in cut.json_bytes().decode() for i in ids)  # no ID, not even hidden
    assert "户主1" not in text and "越城镇" not in text
    default = department_list(banded, "any", Department(), ruleset_of(banded))
    assert default.columns == list(DOCUMENT_KEYS) and not any(i in default.json_bytes().decode() for i in ids)


def test_id_number_goes_out_only_when_listed_and_is_the_heads(tmp_path):
    county = edge_county()
    banded = banded_of(county, tmp_path)
    cut = department_list(banded, "civil", Department(columns=["household_id", "id_number"]), ruleset_of(banded))
    heads = {m["户编号"]: m["证件号码"] for m in county.members if m["与户主关系"] == "户主"}
    got = {h["household_id"]: h["id_number"] for band in cut.document()["bands"] for h in band["households"]}
    assert got == {hid: heads[hid] for hid in got} and len(got) == 5
    spouses = {m["证件号码"] for m in county.members if m["与户主关系"] != "户主"}
    assert not any(s in cut.json_bytes().decode() for s in spouses)
    # a households sheet with the head's ID column: that column wins where it has a value
    own = make_id(date(1969, 9, 9), 55, True)
    county.households[0]["户主证件号码"] = own
    for row in county.households[1:]:
        row["户主证件号码"] = ""
    banded = banded_of(county, tmp_path)
    cut = department_list(banded, "civil", Department(columns=["household_id", "id_number"]), ruleset_of(banded))
    assert {h["household_id"]: h["id_number"] for band in cut.document()["bands"] for h in band["households"]} == {**got, H[0]: own}


def test_where_and_bands_choose_the_households(tmp_path):
    banded = banded_of(special_county(), tmp_path)
    spec = Department(bands=["below_4200"], where="labour_unemployed > 0 or 人均纯收入 < 0")
    cut = department_list(banded, "hr", spec, ruleset_of(banded))
    assert sorted(cut.frame.index) == [H[3], H[5]]
    assert [b["id"] for b in cut.document()["bands"]] == ["below_4200"]
    assert cut.counts() == {"below_4200": 2}
    failing = department_list(banded, "housing", Department(where="not ok_housing"), ruleset_of(banded))
    assert failing.rows == 0


def test_the_digest_is_of_the_content_only(tmp_path):
    spec = Department(columns=["household_id", "income_per_capita"])

    def digest(county, as_of=AS_OF):
        banded = banded_of(county, tmp_path, as_of=as_of)
        return department_list(banded, "agri", spec, ruleset_of(banded)).digest

    base = digest(edge_county())
    assert len(base) == 64
    assert digest(edge_county(), as_of=date(2020, 7, 31)) == base  # the date alone changes nothing
    renamed = edge_county()
    renamed.households[0]["户主姓名"] = "新户主"  # not one of the department's columns
    assert digest(renamed) == base
    reordered = edge_county()
    reordered.households.reverse()
    assert digest(reordered) == base  # rows moved in the workbook
    richer = edge_county()
    richer.households[3]["人均纯收入"] = 4100
    assert digest(richer) != base
    banded = banded_of(edge_county(), tmp_path)
    frame = department_list(banded, "agri", spec, ruleset_of(banded)).frame
    moved = [Band(id=b.id, label=b.label, min=b.min, max=b.max + 1) for b in banded.bands]
    assert content_digest(frame, spec.columns, banded.bands) == base
    assert content_digest(frame, spec.columns, moved) != base  # the band bounds are part of it


def test_the_digest_is_the_same_in_either_language_and_a_chinese_runs_is_as_before(tmp_path):
    """The special groups are labelled in the run's language where they are written, never in
    the digest: a list pushed in Chinese is unchanged when pushed in English. A Chinese run's
    digest is the one earlier versions gave it (they hashed the labels of the run's language),
    so an upgrade resends no list that went out in Chinese."""
    digests = {}
    for lang in ("zh", "en"):
        banded = banded_of(special_county(), tmp_path, lang=lang)
        digests[lang] = department_list(banded, "civil", Department(), ruleset_of(banded)).digest
    assert digests["en"] == digests["zh"] == "5f29f4a52a43b15ebff0059d366e1156a7252b50907d5efa64cdf952cde7427d"


# ---- exitcheck.yaml ----

WORKSPACE = """\
registers: data/registers.xlsx
rules: {rules}
out: reports
state: .exitcheck
as_of: 2020-06-30
file_mode: {mode}
departments:
  civil-affairs:
    name: 民政局
    bands: [below_4200, 4200_4500, 4500_5000]
    columns: [household_id, township, village, head_name, household_size, income_per_capita, special]
    deliver: {{type: dir, path: outbox/civil-affairs}}
  human-resources:
    name: 人社局
    bands: [below_4200, 4200_4500]
    where: {where}
    deliver: {{type: http, url: "https://inbox.example/hr", token_env: EXITCHECK_TOKEN_HR}}
"""


def write_workspace(root: Path, *, where: str = "labour_unemployed > 0", mode: str = '"0640"', extra: str = "") -> Path:
    from exitcheck.rules.model import default_rules_path

    (root / "data").mkdir(parents=True, exist_ok=True)
    edge_county().write(root / "data" / "registers.xlsx")
    path = root / "exitcheck.yaml"
    path.write_text(WORKSPACE.format(rules=default_rules_path(), where=where, mode=mode) + extra, encoding="utf-8")
    return path


def test_config_is_found_from_a_subfolder_and_paths_resolve_against_it(tmp_path):
    path = write_workspace(tmp_path)
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert find_config(nested) == path
    config = load_config(path)
    assert config.registers == [tmp_path / "data" / "registers.xlsx"]
    assert config.out == tmp_path / "reports" and config.state == tmp_path / ".exitcheck"
    assert config.departments["civil-affairs"].deliver.path == tmp_path / "outbox" / "civil-affairs"
    assert config.departments["civil-affairs"].bands == BAND_IDS  # unquoted 4200_4500 stays a name
    assert config.file_mode == 0o640 and config.as_of == AS_OF and config.retention_days == 60
    assert load_config(write_workspace(tmp_path, mode="0640")).file_mode == 0o640  # YAML octal
    nightly = load_config(write_workspace(tmp_path, extra="townships: {deliver: {type: dir, path: outbox/t}}\nretention_days: 30\n"))
    assert nightly.townships.deliver.path == tmp_path / "outbox" / "t" and nightly.retention_days == 30


@pytest.mark.parametrize(("extra", "line", "words"), [
    ("retention_dayz: 3\n", 18, "did you mean 'retention_days'"),
    ("townships: {deliver: {type: dir, path: x}}\nengine: pandas\nlimits: {max_rowz: 3}\n", 20, "did you mean 'max_rows'"),
    ("townships: {each: {越城镇: {type: dir, pth: x}}}\n", 18, "did you mean 'path'"),
])
def test_config_errors_name_the_line(tmp_path, extra, line, words):
    path = write_workspace(tmp_path, extra=extra)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert f"{path}:{line}:" in caught.value.en and words in caught.value.en


def test_a_secret_written_into_the_file_is_refused_without_repeating_it(tmp_path):
    path = write_workspace(tmp_path)
    text = path.read_text(encoding="utf-8").replace("token_env: EXITCHECK_TOKEN_HR", "token: hunter2-sekret")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert f"{path}:17:" in caught.value.en and "token_env" in caught.value.en
    assert "hunter2" not in caught.value.en + caught.value.zh


def test_config_checks_columns_mode_and_urls(tmp_path):
    path = write_workspace(tmp_path, mode="640")
    with pytest.raises(ConfigError, match="file_mode"):
        load_config(path)
    path.write_text(path.read_text(encoding="utf-8").replace("file_mode: 640", "file_mode: '0600'").replace("head_name,", "head_nam,"), encoding="utf-8")
    with pytest.raises(ConfigError, match="did you mean 'head_name'") as caught:
        load_config(path)
    assert f"{path}:11:" in caught.value.en
    path.write_text(path.read_text(encoding="utf-8").replace("head_nam,", "head_name,").replace("https://inbox.example/hr", "ftp://x"), encoding="utf-8")
    with pytest.raises(ConfigError, match="http"):
        load_config(path)


def test_a_bad_where_or_band_is_a_config_error_at_its_line(tmp_path):
    path = write_workspace(tmp_path, where="labour_unemploid > 0")
    config = load_config(path)
    banded = banded_of(edge_county(), tmp_path)
    with pytest.raises(ConfigError) as caught:
        department_lists(banded, config, ["human-resources"], ruleset_of(banded))
    assert f"{path}:16:" in caught.value.en and "labour_unemployed" in caught.value.en
    assert f"{path}:16: where: 未知的名称 labour_unemploid" in caught.value.zh, caught.value.zh
    path.write_text(path.read_text(encoding="utf-8").replace("[below_4200, 4200_4500]", "[below_4200, 4200_4600]"), encoding="utf-8")
    with pytest.raises(ConfigError, match="did you mean '4200_4500'"):
        department_lists(banded, load_config(path), ["human-resources"], ruleset_of(banded))


def test_bands_cli_reads_the_workspace(tmp_path, tmp_path_factory, run_cli):
    write_workspace(tmp_path)
    nested = tmp_path / "sub"
    nested.mkdir()
    done = run_cli("bands", "--json", cwd=nested)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["as_of"] == "2020-06-30"
    assert (tmp_path / "reports" / "bands.xlsx").stat().st_mode & 0o777 == 0o640
    broken = write_workspace(tmp_path / "broken", where="labour_unemploid > 0")
    done = run_cli("bands", "--push-to", "human-resources", "--config", str(broken))
    assert done.returncode == 4 and f"{broken}:16:" in done.stderr
    alone = tmp_path_factory.mktemp("no-workspace")
    assert run_cli("bands", cwd=alone).returncode == 2  # no PATH and no workspace


def _xlsx_text(data: bytes) -> str:
    """Every XML part of a workbook, hidden sheets and columns included."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return "".join(archive.read(name).decode("utf-8") for name in archive.namelist() if name.endswith(".xml"))


THREE_BANDS = [Band(id="low", label="低", min=0, max=4200), Band(id="mid", label="中", min=4200, max=4500),
               Band(id="high", label="高", min=4500, max=5000)]


def test_the_summary_counts_in_whole_numbers_and_keeps_a_township_with_no_banded_household():
    frame = pd.DataFrame({"township": ["甲镇", "甲镇", "乙镇", None], "band": ["low", "high", None, "low"]})
    table = count_table(frame, THREE_BANDS, "zh")
    assert table.to_dict("list") == {
        "乡镇": ["乙镇", "乡镇未填", "甲镇", "合计"], "低": [0, 1, 1, 2], "中": [0, 0, 0, 0], "高": [0, 0, 1, 1], "合计": [0, 1, 2, 3],
    }
    assert all(str(dtype) == "int64" for dtype in table.dtypes.iloc[1:])


def test_the_summary_of_no_household_is_a_row_of_zeros_not_an_error():
    empty = pd.DataFrame({"county": pd.Series([], dtype=object), "township": pd.Series([], dtype=object),
                          "band": pd.Series([], dtype=object)})
    for by_county in (False, True):
        table = count_table(empty, THREE_BANDS, "en", by_county=by_county)
        assert table.iloc[:, -4:].to_dict("list") == {"低": [0], "中": [0], "高": [0], "Total": [0]}

