"""The sample generator: deterministic, realistic, and honest about what it planted.

The audit's own tests compare findings with ``SampleRegisters.planted``, so these tests check
the generator independently of the audit code: a small reading of the typed cells here finds
each data issue and gap exactly where the generator says it put them, and nowhere else.
"""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from python_calamine import CalamineWorkbook

from exitcheck.sample import (
    HEADER_ROWS,
    HOUSEHOLD_EXTRA_COLUMN,
    HOUSEHOLD_HEADERS,
    MEMBER_HEADERS,
    PROBLEMS,
    SHEET_NAMES,
    TOWNSHIP_HEADERS,
    VILLAGE_HEADERS,
    SampleRegisters,
    SampleSpec,
    generate,
    id_check_digit,
    write_sample,
    write_workbook,
)

H = HOUSEHOLD_HEADERS
M = MEMBER_HEADERS
V = VILLAGE_HEADERS
AS_OF = date(2020, 6, 30)
YES = {"是", "有", "√", "Y", "1", "已"}
NO = {"否", "无", "×", "N", "0", "未"}


# ---- a minimal reading of the typed values (independent of exitcheck's normaliser) --------


def text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    out = unicodedata.normalize("NFKC", str(value)).strip()
    return out or None


def yes_no(value: object) -> bool | None:
    t = text(value)
    if t is None:
        return None
    assert t in YES | NO, t
    return t in YES


def money(value: object) -> float:
    t = text(value)
    assert t is not None
    return float(t.replace(",", "").removesuffix("元"))


def parse_date(value: object) -> date:
    if isinstance(value, int | float):
        n = int(value)
        if n >= 19000101:
            return date(n // 10000, n // 100 % 100, n % 100)
        return date(1899, 12, 30) + timedelta(days=n)
    t = text(value)
    assert t is not None
    if t.isdigit():
        return date(int(t[:4]), int(t[4:6]), int(t[6:]))
    for sep in ("年", "月"):
        t = t.replace(sep, "-")
    t = t.removesuffix("日").replace("/", "-").replace(".", "-")
    y, m, d = (int(p) for p in t.split("-"))
    return date(y, m, d)


def id_date(id_number: str) -> date:
    return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


@pytest.fixture(scope="module")
def sample() -> SampleRegisters:
    return generate(SampleSpec())


@pytest.fixture(scope="module")
def clean() -> SampleRegisters:
    return generate(SampleSpec(households=2000, seed=7, problems=False))


def planted_set(reg: SampleRegisters, problem: str) -> set[str]:
    return set(reg.planted.get(problem, []))


def findings(reg: SampleRegisters) -> dict[str, set[str]]:
    """Households each data issue and gap is found in, by a plain reading of the cells."""
    hh, mem = reg.households, reg.members
    found: dict[str, set[str]] = defaultdict(set)
    hid = hh[H["household_id"]].map(text)
    counts = Counter(hid)
    found["duplicate_household"] = {h for h, n in counts.items() if n > 1}
    first = hh[~hid.duplicated()].set_index(hid[~hid.duplicated()])
    known = set(first.index)
    villages = {
        (text(t), text(v))
        for t, v in zip(reg.villages[V["township"]], reg.villages[V["village"]], strict=True)
    }

    living_per_hh: Counter[str] = Counter()
    heads: set[str] = set()
    ids_living: dict[str, set[str]] = defaultdict(set)
    for row in mem.itertuples(index=False):
        cells = dict(zip(mem.columns, row, strict=True))
        h = text(cells[M["household_id"]])
        assert h is not None
        status = text(cells[M["member_status"]])
        if h not in known:
            found["orphan_member"].add(h)
        if status in ("死亡", "迁出"):
            found["member_dead" if status == "死亡" else "member_moved_out"].add(h)
            continue
        living_per_hh[h] += 1
        if text(cells[M["relation"]]) == "户主":
            heads.add(h)
        raw_id = cells[M["id_number"]]
        if isinstance(raw_id, float):
            found["id_precision_lost"].add(h)
            continue
        id_number = text(raw_id).upper()
        ids_living[id_number].add(h)
        if id_check_digit(id_number[:17]) != id_number[17]:
            found["id_checksum"].add(h)
        male = int(id_number[16]) % 2 == 1
        if (text(cells[M["gender"]]) == "男") != male:
            found["id_gender_mismatch"].add(h)
        if parse_date(cells[M["birth_date"]]) != id_date(id_number):
            found["id_birth_mismatch"].add(h)
        age = (
            AS_OF.year
            - id_date(id_number).year
            - ((AS_OF.month, AS_OF.day) < id_date(id_number).timetuple()[1:3])
        )
        category = first[H["category"]].get(h)
        if 6 <= age <= 15 and text(cells[M["school_status"]]) == "失学辍学":
            found["dropout"].add(h)
        if category == "建档立卡户" and yes_no(cells[M["medical_insurance"]]) is False:
            found["no_medical_insurance"].add(h)
    found["duplicate_person"] = {h for hs in ids_living.values() if len(hs) > 1 for h in hs}
    houses: dict[str, set[str]] = defaultdict(set)
    for h, row in first.iterrows():
        if text(row[H["household_size"]]) != str(living_per_hh[h]):
            found["size_mismatch"].add(h)
        if h not in heads:
            found["no_head"].add(h)
        if (text(row[H["township"]]), text(row[H["village"]])) not in villages:
            found["unknown_village"].add(h)
        if text(row[H["house_id"]]):
            houses[text(row[H["house_id"]])].add(h)
        category, status = row[H["category"]], row[H["status"]]
        income = money(row[H["income_per_capita"]])
        grade = text(row[H["housing_grade"]])
        if category == "建档立卡户":
            if any(yes_no(row[H[c]]) is None for c in ("safe_water", "electricity", "broadcast_tv",
                                                       "policy_awareness", "living_environment",
                                                       "gratitude_bag")):  # fmt: skip
                found["missing_yes_no"].add(h)
            if row[H["satisfaction"]] not in ("满意", "基本满意", "不满意"):
                found["bad_value"].add(h)
        if status == "已脱贫":
            if income < 4200:
                found["wrong_exit_income"].add(h)
            if grade in ("C", "D"):
                found["unsafe_house"].add(h)
            if yes_no(row[H["safe_water"]]) is False:
                found["no_safe_water"].add(h)
            if yes_no(row[H["broadcast_tv"]]) is False:
                found["no_broadcast_tv"].add(h)
            if row[H["satisfaction"]] == "不满意":
                found["dissatisfied"].add(h)
        if category == "边缘易致贫户" and income < 4200 and grade == "D":
            found["edge_low_income_d_house"].add(h)
        if category == "一般农户" and income < 4200:
            found["ordinary_low_income"].add(h)
    found["shared_house"] = {h for hs in houses.values() if len(hs) > 1 for h in hs}
    return found


# ---- determinism and size ----------------------------------------------------------------


def test_same_seed_gives_identical_frames(sample: SampleRegisters) -> None:
    again = generate(SampleSpec())
    for name in ("households", "members", "villages", "townships"):
        a, b = getattr(sample, name), getattr(again, name)
        pd.testing.assert_frame_equal(a, b)
        assert pd.util.hash_pandas_object(a.astype(str)).equals(
            pd.util.hash_pandas_object(b.astype(str))
        )
        assert [type(v) for v in a.to_numpy().ravel()] == [type(v) for v in b.to_numpy().ravel()]
    assert sample.planted == again.planted


def test_another_seed_gives_another_county(sample: SampleRegisters) -> None:
    other = generate(SampleSpec(seed=2021))
    assert not sample.members[M["id_number"]].equals(other.members[M["id_number"]])
    assert not sample.households[H["head_name"]].equals(other.households[H["head_name"]])


def test_workbook_bytes_are_reproducible(tmp_path: Path, sample: SampleRegisters) -> None:
    write_workbook(sample, tmp_path / "a.xlsx")
    write_workbook(generate(SampleSpec()), tmp_path / "b.xlsx")
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()


def test_sizes(sample: SampleRegisters) -> None:
    ids = sample.households[H["household_id"]]
    assert ids.nunique() == 300
    assert len(ids) == 300 + len(sample.planted["duplicate_household"])
    assert 4.2 * 300 < len(sample.members) < 4.8 * 300
    assert len(sample.villages) == 3 and len(sample.townships) == 2
    big = SampleSpec(households=20_000)
    assert (big.village_count(), big.township_count()) == (210, 21)


def test_columns_are_the_written_headers(sample: SampleRegisters) -> None:
    assert list(sample.households.columns) == [*HOUSEHOLD_HEADERS.values(), HOUSEHOLD_EXTRA_COLUMN]
    assert list(sample.members.columns) == list(MEMBER_HEADERS.values())
    assert list(sample.villages.columns) == list(VILLAGE_HEADERS.values())
    assert list(sample.townships.columns) == list(TOWNSHIP_HEADERS.values())
    assert all(pd.api.types.is_object_dtype(dtype) for dtype in sample.members.dtypes)


# ---- realism ---------------------------------------------------------------------------------


def test_id_numbers_have_correct_check_digits_except_planted(sample: SampleRegisters) -> None:
    members = sample.members
    bad_rows = []
    for row, value in members[M["id_number"]].items():
        if isinstance(value, float):
            continue
        number = value.strip().upper()
        assert len(number) == 18 and number[:6] == "513434" and number[:17].isdigit()
        if id_check_digit(number[:17]) != number[17]:
            bad_rows.append(row)
    households = {text(members.at[r, M["household_id"]]) for r in bad_rows}
    assert households == planted_set(sample, "id_checksum")
    numbers = members[M["id_number"]][members[M["id_number"]].map(lambda v: isinstance(v, float))]
    assert len(numbers) == len(sample.planted["id_precision_lost"])
    assert all(v > 5.1e17 for v in numbers)


def test_check_digit_of_the_standard_example() -> None:
    assert id_check_digit("11010519491231002") == "X"


def test_values_are_typed_the_ways_offices_type_them(clean: SampleRegisters) -> None:
    hh, mem = clean.households, clean.members
    yes_forms = {
        text(v) for c in ("safe_water", "electricity", "policy_awareness") for v in hh[H[c]]
    }
    assert {"是", "有", "√", "Y", "1"} <= yes_forms
    dates = mem[M["birth_date"]]
    assert any(isinstance(v, int) and v > 19000101 for v in dates)
    assert any(isinstance(v, int) and v < 60000 for v in dates)
    assert any(isinstance(v, str) and "年" in v for v in dates)
    assert any(isinstance(v, str) and "/" in v for v in dates)
    incomes = hh[H["income_per_capita"]]
    assert any(isinstance(v, str) and v.endswith("元") and "," in v for v in incomes)
    assert any(isinstance(v, str) and any("０" <= c <= "９" for c in v) for v in incomes)
    assert any("·" in str(v) for v in mem[M["name"]])
    assert any(isinstance(v, str) and v != v.strip() for v in mem[M["name"]])
    assert {4200, 4500, 5000} <= {money(v) for v in incomes}


def test_distributions_look_like_a_county(clean: SampleRegisters) -> None:
    hh, mem = clean.households, clean.members
    share = hh[H["category"]].value_counts(normalize=True)
    assert 0.76 < share["建档立卡户"] < 0.84 and 0.09 < share["边缘易致贫户"] < 0.15
    registered = hh[hh[H["category"]] == "建档立卡户"]
    assert 0.09 < (registered[H["status"]] == "未脱贫").mean() < 0.15
    assert hh.loc[hh[H["category"]] != "建档立卡户", H["status"]].isna().all()
    incomes = hh[H["income_per_capita"]].map(money)
    assert 5500 < incomes.median() < 9000 and (incomes < 4200).mean() > 0.02
    assert set(hh[H["housing_grade"]]) == {"A", "B", "C", "D"}
    relations = mem[M["relation"]].map(text)
    assert (relations == "户主").sum() == len(hh)
    ages = mem[M["id_number"]].map(lambda v: AS_OF.year - int(v.strip()[6:10]))
    assert ages[relations == "户主"].between(29, 76).all()
    assert ages[relations.isin(["之子", "之女"])].between(-1, 21).all()
    male_relations = relations.isin(["之子", "之孙子", "之父"])
    assert (mem.loc[male_relations, M["gender"]].map(text) == "男").all()


def test_clean_county_has_no_issue_and_exited_households_pass(clean: SampleRegisters) -> None:
    assert clean.planted == {}
    assert {k: v for k, v in findings(clean).items() if v} == {}


def test_planted_problems_are_found_exactly_where_listed(sample: SampleRegisters) -> None:
    found = findings(sample)
    for problem in PROBLEMS:
        if problem.startswith(("village_", "township_")):
            continue
        assert planted_set(sample, problem), problem
        assert found[problem] == planted_set(sample, problem), problem


def test_problems_touch_few_households_and_every_township() -> None:
    reg = generate(SampleSpec(households=20_000, seed=11))
    touched = {
        h
        for problem, hs in reg.planted.items()
        if not problem.startswith(("village_", "township_"))
        for h in hs
    }
    assert 0.02 <= len(touched) / 20_000 <= 0.04
    town_of = dict(
        zip(reg.households[H["household_id"]], reg.households[H["township"]].map(text), strict=True)
    )
    towns = {town_of[h] for h in touched if h in town_of}
    assert towns == set(reg.townships[TOWNSHIP_HEADERS["township"]])
    found = findings(reg)  # at scale, with 24 households a problem, still exactly as listed
    for problem in PROBLEMS:
        if not problem.startswith(("village_", "township_")):
            assert len(planted_set(reg, problem)) >= 24, problem
            assert found[problem] == planted_set(reg, problem), problem


def test_villages_and_townships(sample: SampleRegisters) -> None:
    hh, mem, vil = sample.households, sample.members, sample.villages
    first = hh[~hh[H["household_id"]].duplicated()]
    poor_hh = set(first.loc[first[H["status"]] == "未脱贫", H["household_id"]])
    place = {
        h: (text(t), text(v))
        for h, t, v in zip(
            first[H["household_id"]], first[H["township"]], first[H["village"]], strict=True
        )
    }
    living = mem[~mem[M["member_status"]].isin(["死亡", "迁出"])]
    poor_people = Counter(place[text(h)] for h in living[M["household_id"]] if text(h) in poor_hh)
    for _, row in vil.iterrows():
        key = (row[V["township"]], row[V["village"]])
        population = money(row[V["population"]])
        if not yes_no(row[V["poverty_village"]]):
            continue
        name = f"{key[0]}/{key[1]}"
        incidence = poor_people[key] / population
        assert (incidence >= 0.03) == (name in planted_set(sample, "village_high_incidence")), name
        assert (money(row[V["collective_income"]]) / population < 3) == (
            name in planted_set(sample, "village_low_collective_income")
        )
        assert (yes_no(row[V["clinic"]]) is False) == (
            name in planted_set(sample, "village_no_clinic")
        )
    no_center = {
        text(t)
        for t, v in zip(sample.townships["乡镇"], sample.townships["达标卫生院"], strict=True)
        if not yes_no(v)
    }
    assert no_center == planted_set(sample, "township_no_health_center")


# ---- the workbook ------------------------------------------------------------------------------


def read(path: Path) -> dict[str, list[list[object]]]:
    book = CalamineWorkbook.from_path(str(path))
    return {
        name: book.get_sheet_by_name(name).to_python(skip_empty_area=False)
        for name in book.sheet_names
    }


def test_workbook_layout(tmp_path: Path) -> None:
    path = tmp_path / "sample.xlsx"
    reg = write_sample(path)
    sheets = read(path)
    assert list(sheets) == list(SHEET_NAMES.values())
    for key, name in SHEET_NAMES.items():
        rows = sheets[name]
        frame: pd.DataFrame = getattr(reg, key)
        assert str(rows[0][0]).startswith("越西县2020年") and str(rows[0][0]).endswith("表")
        assert str(rows[1][0]).startswith("填报单位: 越西县扶贫开发局") and "2020年6月30日" in str(
            rows[1][0]
        )
        header = HEADER_ROWS[key]
        assert rows[header - 1] == list(frame.columns)
        for excel_row, values in zip(frame.index[:50], frame.to_numpy()[:50], strict=True):
            got = rows[excel_row - 1]
            assert [text(v) for v in got] == [text(v) for v in values], (name, excel_row)
    households = sheets["户表"]
    assert households[2][0] == "基本信息" and "户六有" in households[2]
    assert sheets["成员表"][2][:1] == ["基本信息"] and "就业" in sheets["成员表"][2]
    blank = [i + 1 for i, row in enumerate(households) if all(v == "" for v in row)]
    assert len(blank) == 1 and HEADER_ROWS["households"] < blank[0] < len(households)
    last = households[-1]
    assert last[0] == "合计"
    size_col = list(reg.households.columns).index(H["household_size"])
    assert last[size_col] == sum(int(text(v)) for v in reg.households[H["household_size"]])
    assert len(households) == reg.households.index.max() + 1
    members = sheets["成员表"]
    lost = [row[2] for row in members[HEADER_ROWS["members"] :] if isinstance(row[2], float)]
    assert len(lost) == 1 and lost[0] > 5.1e17
    assert any(v == "=已核实" for row in households for v in row)


def test_twenty_thousand_households(tmp_path: Path) -> None:
    path = tmp_path / "big.xlsx"
    reg = write_sample(path, households=20_000, seed=3)
    sheets = read(path)
    data_rows = len(sheets["户表"]) - HEADER_ROWS["households"] - 2  # the blank and 合计 rows
    assert data_rows == len(reg.households) == 20_000 + len(reg.planted["duplicate_household"])
    assert len(sheets["成员表"]) - HEADER_ROWS["members"] == len(reg.members)
    assert 4.3 < len(reg.members) / 20_000 < 4.7
