"""A deterministic generator of realistic county register workbooks.

The bundled sample, the tests and the benchmarks all need registers that look like what a
county poverty-alleviation office really sends: title lines above the header, merged group
headers, aliases and stray spaces in the headers, yes/no typed six different ways, dates and
incomes typed as text, ID numbers with real check digits, a blank row and a 合计 row.  Real
registers are personal data and cannot be shipped, so this module makes them up, from a seed,
identically on every machine.

When ``SampleSpec.problems`` is true it also plants a small, fixed share of exit gaps and
data issues (see ``PROBLEMS``), spread over the townships, and says where it put them
(``SampleRegisters.planted``) so that tests can check that the audit finds exactly those.

Everything is generated column-wise with numpy, so a 200,000-household county (about
900,000 members) is made in a few seconds, and written row by row with xlsxwriter in
``constant_memory`` mode, so memory stays flat whatever the size.  Writing is what takes the
time (xlsxwriter needs about 6 microseconds a cell: some 100 s for 200,000 households), so
benchmarks should build their big workbooks once and cache them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xlsxwriter

__all__ = [
    "HEADER_ROWS",
    "HOUSEHOLD_EXTRA_COLUMN",
    "HOUSEHOLD_HEADERS",
    "MEMBER_HEADERS",
    "PROBLEMS",
    "SHEET_NAMES",
    "TOWNSHIP_HEADERS",
    "VILLAGE_HEADERS",
    "SampleRegisters",
    "SampleSpec",
    "generate",
    "id_check_digit",
    "write_sample",
    "write_workbook",
]

# --------------------------------------------------------------------------------------------
# Layout: what the sheets are called and which headers they carry, as written in the workbook.
# Keys are the canonical field names of shared/register-format.md; values are the header text
# exactly as it stands in the header row (some are aliases or carry stray spaces on purpose,
# because the loader must cope with them), and so also the DataFrame column names.
# --------------------------------------------------------------------------------------------

SHEET_NAMES: dict[str, str] = {
    "households": "户表",
    "members": "成员表",
    "villages": "村表",
    "townships": "乡镇表",
}

#: Excel row number (1-based) of the header row of each register; data start on the next row.
HEADER_ROWS: dict[str, int] = {"households": 4, "members": 4, "villages": 3, "townships": 3}

HOUSEHOLD_HEADERS: dict[str, str] = {
    "household_id": "户编号",
    "township": "乡镇",
    "village": "行政村",
    "group": "村民小组",
    "head_name": "户主姓名",
    "category": "农户类别",
    "poverty_attribute": "贫困户属性",
    "status": "脱贫状态",
    "exit_year": "脱贫年度",
    "household_size": "家庭人口数 ",  # trailing space, as typed by many offices
    "income_per_capita": "人均纯收入(元)",  # alias
    "housing_grade": "住房安全等级",
    "house_id": "住房编号",
    "safe_water": "安全饮水",
    "electricity": "生活用电",
    "broadcast_tv": "广播电视",
    "policy_awareness": "政策知晓",
    "living_environment": "人居环境达标",
    "gratitude_bag": "感恩袋",
    "satisfaction": "认可度",
    "relocated": "易地扶贫搬迁",
    "helper_name": "帮扶责任人",
    "helper_phone": "帮扶责任人电话",
}
#: A column no register format knows: the loader must carry it through to the gap lists.
HOUSEHOLD_EXTRA_COLUMN = "备注"

MEMBER_HEADERS: dict[str, str] = {
    "household_id": "户编号",
    "name": "姓名",
    "id_number": "身份证号",  # alias of 证件号码
    "relation": "与户主关系",
    "gender": "性别",
    "birth_date": "出生日期",
    "school_status": "在校生状况",
    "medical_insurance": "城乡居民基本医疗保险",
    "health": "健康状况",
    "labor_ability": "劳动技能",
    "employment": "务工状况",
    "member_status": "人员状态",
}

VILLAGE_HEADERS: dict[str, str] = {
    "township": "乡镇",
    "village": "行政村",
    "poverty_village": "是否贫困村",
    "population": "户籍人口\u3000",  # trailing full-width space
    "collective_income": "集体经济收入（元）",  # alias, full-width parentheses
    "paved_road": "通硬化路",
    "clinic": "卫生室",
    "culture_room": "文化室",
    "telecom": "通信网络",
    "safe_water": "安全饮水",
    "electricity": "生活用电",
    "broadcast_tv": "广播电视",
}

TOWNSHIP_HEADERS: dict[str, str] = {
    "township": "乡镇",
    "central_school": "标准中心校",
    "health_center": "达标卫生院",
    "service_center": "便民服务中心",
}

# Merged group headers right above the header row: (label, first column, last column).
_HOUSEHOLD_GROUPS = (
    ("基本信息", 0, 9),
    ("收入与住房", 10, 12),
    ("户六有", 13, 18),
    ("帮扶", 19, 23),
)
_MEMBER_GROUPS = (("基本信息", 0, 5), ("教育", 6, 6), ("健康与保障", 7, 8), ("就业", 9, 11))

#: The problems planted when ``SampleSpec.problems`` is true, with what each one is.  Household
#: problems map to household ids in ``SampleRegisters.planted``; village problems to
#: "乡镇/行政村"; township problems to the township name.
PROBLEMS: dict[str, str] = {
    # exit gaps (the 12 indicators and the risk lists)
    "wrong_exit_income": "已脱贫 registered household with per-capita income below 4200",
    "dropout": "a registered household's member aged 7-14 whose school status is 失学辍学",
    "no_medical_insurance": "a registered household's member with 城乡居民基本医疗保险 否",
    "unsafe_house": "已脱贫 registered household whose house is grade C or D",
    "no_safe_water": "已脱贫 registered household with 安全饮水 否",
    "no_broadcast_tv": "已脱贫 registered household with 广播电视 否",
    "dissatisfied": "已脱贫 registered household answering 不满意",
    "edge_low_income_d_house": "边缘易致贫户 with income below 4200 and a grade-D house",
    "ordinary_low_income": "一般农户 with income below 4200 (missed-assessment risk)",
    # data issues (register-format.md codes)
    "id_checksum": "a member ID number with a wrong check digit",
    "id_precision_lost": "a member ID number stored as a number cell (5.13434E+17)",
    "id_gender_mismatch": "a member whose 性别 disagrees with the ID number",
    "id_birth_mismatch": "a member whose 出生日期 disagrees with the ID number",
    "orphan_member": "members whose 户编号 is not in 户表 (the id listed is the missing one)",
    "size_mismatch": "家庭人口数 differs from the number of living members",
    "duplicate_household": "the same 户编号 on two rows of 户表 (second row at the end)",
    "duplicate_person": "one ID number living in two households (both listed)",
    "no_head": "a household with no 户主 in 成员表",
    "missing_yes_no": "a registered household with a blank yes/no cell",
    "bad_value": "认可度 typed as 还行",
    "shared_house": "two households with one 住房编号 (both listed)",
    "unknown_village": "a household whose 乡镇/行政村 pair is not in 村表",
    "member_dead": "a member with 人员状态 死亡 (size counts the living)",
    "member_moved_out": "a member with 人员状态 迁出 (size counts the living)",
    # village and township gaps
    "village_no_clinic": "a poor village with 卫生室 否 (乡镇/行政村)",
    "village_low_collective_income": "a poor village with collective income under 3 yuan a person",
    "village_high_incidence": "a poor village whose poverty incidence is 3% or more",
    "township_no_health_center": "a township whose 达标卫生院 is 否",
}

_HOUSEHOLD_YES_NO = (
    "safe_water", "electricity", "broadcast_tv", "policy_awareness", "living_environment",
    "gratitude_bag",
)  # fmt: skip
_VILLAGE_YES_NO = (
    "paved_road", "clinic", "culture_room", "telecom", "safe_water", "electricity", "broadcast_tv",
)  # fmt: skip
# Which yes/no columns the missing_yes_no problem blanks, in turn.
_BLANKABLE = ("electricity", "policy_awareness", "gratitude_bag", "living_environment")

# --------------------------------------------------------------------------------------------
# Name pools
# --------------------------------------------------------------------------------------------

_REAL_TOWNSHIPS = (
    "越城镇", "中所镇", "新民镇", "大花乡", "书古乡", "普雄镇", "乃托镇", "南箐镇", "西山乡",
    "新乐乡", "白果乡", "保安藏族乡", "大屯乡", "梅花乡", "新桥乡", "竹阿觉乡", "瓦岩乡",
    "拉白乡", "丁山乡", "乐青地乡", "尔觉乡", "依洛乡", "申果乡", "铁西乡", "马拖乡",
    "瓦普莫乡", "板桥乡", "四甘普乡", "尔赛乡", "五里箐乡", "贡莫乡", "瓦里觉乡", "保石乡",
    "李子乡", "河东乡", "大瑞乡", "库依乡", "田坝镇",
)  # fmt: skip
_HAN_TOWNSHIPS = 3  # the first three are market towns with many Han households
_SYLLABLES = tuple(
    "瓦拉尔普依莫觉洛甘果布呷哈木吉曲沙马乃托则日书古达俄补阿地史乌石德尼基租池博勒坡衣火"
)
_STARTER_VILLAGES = (
    "瓦曲村", "马拖村", "瓦吾村", "尔吉村", "拉吉村", "阿朵村", "依洛村", "书古村", "瓦普村",
    "俄洛村", "觉呷村", "布哈村", "则木村", "尼日村", "吉史村", "阿地村",
)  # fmt: skip
_HAN_VILLAGES = (
    "新华村", "红星村", "团结村", "和平村", "民主村", "幸福村", "光明村", "联合村", "东风村",
    "胜利村", "永安村", "顺河村", "桂花村", "青龙村", "石坝村", "新建村",
)  # fmt: skip
_YI_SURNAMES = (
    "阿苏", "吉克", "曲比", "沙马", "俄木", "海来", "吉伍", "阿约", "马海", "日火", "瓦其", "克其",
    "勒格", "木乃", "阿的", "吉木", "洛古", "莫色", "的日", "阿尔", "吉觉", "尔古", "拉马", "阿西",
)  # fmt: skip
_YI_MALE = (
    "拉哈", "尔布", "石者", "伍牛", "日哈", "木呷", "有格", "子哈", "尔古", "阿牛", "惹古", "拉格",
    "铁哈", "木牛", "阿木", "伍各", "尔哈", "日者",
)  # fmt: skip
_YI_FEMALE = (
    "阿呷", "阿果", "阿衣", "金花", "么么", "阿支", "日作", "伍果", "阿西", "阿芝", "拉莫", "尔呷",
    "阿依", "伍呷",
)  # fmt: skip
_HAN_SURNAMES = tuple("王李张刘陈杨黄赵吴周徐孙马朱胡郭何罗高林")
_HAN_MALE = (
    "建国", "志强", "国华", "文斌", "明", "伟", "勇", "军", "洪", "德明", "春林", "永福", "小平",
    "学军", "光荣", "海",
)  # fmt: skip
_HAN_FEMALE = (
    "秀英", "桂兰", "丽", "芳", "玉兰", "春梅", "小红", "秀珍", "淑华", "燕", "桂芳", "琴",
)  # fmt: skip

_CATEGORIES = np.array(["建档立卡户", "边缘易致贫户", "一般农户"], dtype=object)
_ATTRIBUTES = np.array(["一般贫困户", "低保贫困户", "特困供养贫困户"], dtype=object)
_GRADES = np.array(["A", "B", "C", "D"], dtype=object)
_SATISFACTION = np.array(["满意", "基本满意", "不满意"], dtype=object)
_RELATIONS = np.array(
    ["户主", "配偶", "之子", "之女", "之孙子", "之孙女", "之父", "之母", "之儿媳", "之女婿"],
    dtype=object,
)
_REL_MALE = np.array([False, False, True, False, True, False, True, False, False, True])
_SCHOOL = np.array(
    ["非在校生", "学前教育", "小学", "初中", "高中", "中职", "高职", "大专及以上", "失学辍学",
     "送教上门"],
    dtype=object,
)  # fmt: skip
_HEALTH = np.array(["健康", "长期慢性病", "患有大病", "残疾"], dtype=object)
_LABOR = np.array(
    ["普通劳动力", "技能劳动力", "弱劳动力或半劳动力", "丧失劳动力", "无劳动力"], dtype=object
)
_EMPLOYMENT = np.array(["省外务工", "省内县外务工", "县内务工", "未务工"], dtype=object)
_MEMBER_STATUS = np.array([None, "死亡", "迁出", "正常"], dtype=object)

# Yes/no as offices type them: 是/否, 有/无, √/×, Y/N, 1/0 (number cells), 已/未.
_YES = np.array(["是", "有", "√", "Y", 1, "已"], dtype=object)
_NO = np.array(["否", "无", "×", "N", 0, "未"], dtype=object)
_YN_DOMINANT = (0.70, 0.12, 0.08, 0.05, 0.05, 0.0)
_YN_NOISE = (0.30, 0.20, 0.15, 0.10, 0.15, 0.10)

_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_ID_CHECK = "10X98765432"
_FULL_WIDTH = str.maketrans("0123456789,.", "０１２３４５６７８９，．")
_EXCEL_EPOCH = np.datetime64("1899-12-30", "D")


def id_check_digit(first17: str) -> str:
    """Return the GB 11643 check character (ISO 7064 MOD 11-2) for 17 leading digits.

    Exposed so that tests can verify the IDs this module writes without a second copy of the
    weights.
    """
    total = sum(int(c) * int(w) for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


# --------------------------------------------------------------------------------------------
# Public types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleSpec:
    """What county to make up.

    Defaults give the bundled 300-household sample.  ``villages`` and ``townships`` default to
    about 95 households per village and 10 villages per township, the shape of a real Liangshan
    county, so that a benchmark only has to say how many households it wants.
    """

    households: int = 300
    seed: int = 2020
    townships: int | None = None
    villages: int | None = None
    as_of: date = date(2020, 6, 30)
    problems: bool = True
    county: str = "越西县"
    county_code: str = "513434"

    def _villages_asked(self) -> int:
        return self.villages if self.villages is not None else max(3, self.households // 95)

    def village_count(self) -> int:
        """Villages to generate: given, or about one per 95 households (at least 3), and at
        least one per township."""
        return max(self._villages_asked(), self.townships or 0)

    def township_count(self) -> int:
        """Townships to generate: given, or about one per 10 villages (at least 2)."""
        if self.townships is not None:
            return self.townships
        villages = self._villages_asked()
        return max(1, min(villages, max(2, villages // 10)))


@dataclass(frozen=True, eq=False)
class SampleRegisters:
    """The four registers exactly as written to the workbook.

    Columns are the header texts of the sheet (see ``HOUSEHOLD_HEADERS`` and friends), values
    are the Python objects written to each cell (str, int, float or None for a blank), and the
    index, named ``excel_row``, is the 1-based Excel row of each data row, so that a test can
    compare an issue's row with the row a problem was planted in.  Layout rows (titles, group
    headers, the header, the blank row and the 合计 row) are not in the frames.
    """

    households: pd.DataFrame
    members: pd.DataFrame
    villages: pd.DataFrame
    townships: pd.DataFrame
    planted: dict[str, list[str]] = field(default_factory=dict)
    spec: SampleSpec = field(default_factory=SampleSpec)


# --------------------------------------------------------------------------------------------
# Small vector helpers
# --------------------------------------------------------------------------------------------


def _obj(values: Any) -> np.ndarray:
    """An object array of plain Python values (ints, not numpy ints), for exact cell types."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        values = values.tolist()
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _forms(
    rng: np.random.Generator,
    town: np.ndarray,
    n_towns: int,
    dominant: Sequence[float],
    noise_p: Sequence[float],
    noise: float,
) -> np.ndarray:
    """Pick how each cell is typed: each township office has its habit, with some noise.

    Real registers are typed township by township, so a form is mostly constant within a
    township and varies between them; a few cells break the habit anyway.
    """
    dom = np.asarray(dominant, dtype=float)
    habit = rng.choice(len(dom), size=n_towns, p=dom / dom.sum())
    form = habit[town]
    flip = rng.random(len(town)) < noise
    nz = np.asarray(noise_p, dtype=float)
    form[flip] = rng.choice(len(nz), size=int(flip.sum()), p=nz / nz.sum())
    return form


def _yes_no(
    rng: np.random.Generator, truth: np.ndarray, town: np.ndarray, n_towns: int
) -> np.ndarray:
    """Render 1/0/-1 (yes/no/blank) as an office types them."""
    form = _forms(rng, town, n_towns, _YN_DOMINANT, _YN_NOISE, 0.06)
    out = np.where(truth == 1, _YES[form], _NO[form])
    out[truth < 0] = None
    return out


def _bernoulli(rng: np.random.Generator, p: np.ndarray | float, n: int) -> np.ndarray:
    """1 with probability p, else 0, as int8 (the yes/no truth encoding)."""
    return (rng.random(n) < p).astype(np.int8)


def _ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month and day of datetime64[D] values, vectorised."""
    y = days.astype("datetime64[Y]")
    m = days.astype("datetime64[M]")
    year = y.astype(np.int64) + 1970
    month = (m - y.astype("datetime64[M]")).astype(np.int64) + 1
    day = (days - m.astype("datetime64[D]")).astype(np.int64) + 1
    return year, month, day


def _age(days: np.ndarray, as_of: date) -> np.ndarray:
    """Completed years on ``as_of``, the way the rules count ages."""
    year, month, day = _ymd(days)
    before = (month > as_of.month) | ((month == as_of.month) & (day > as_of.day))
    return as_of.year - year - before.astype(np.int64)


def _render_dates(
    rng: np.random.Generator, days: np.ndarray, town: np.ndarray, n_towns: int
) -> np.ndarray:
    """Dates typed the ways offices type them (ISO, slashes, 年月日, 20191001, serials...)."""
    form = _forms(
        rng, town, n_towns,
        dominant=(0.45, 0.2, 0.15, 0.1, 0.05, 0.05, 0.0),
        noise_p=(0.3, 0.2, 0.15, 0.1, 0.1, 0.1, 0.05),
        noise=0.1,
    )  # fmt: skip
    year, month, day = _ymd(days)
    out = np.empty(len(days), dtype=object)
    iso = np.datetime_as_string(days, unit="D").astype(object)
    out[form == 0] = iso[form == 0]
    for f, fmt in (
        (1, "{}/{}/{}"),
        (2, "{}年{}月{}日"),
        (4, "{}.{:02d}.{:02d}"),
    ):
        idx = np.flatnonzero(form == f)
        out[idx] = [
            fmt.format(a, b, c)
            for a, b, c in zip(
                year[idx].tolist(), month[idx].tolist(), day[idx].tolist(), strict=True
            )
        ]
    ymd = year * 10000 + month * 100 + day
    idx = np.flatnonzero(form == 3)
    out[idx] = _obj(ymd[idx])
    idx = np.flatnonzero(form == 5)
    out[idx] = _obj((days[idx] - _EXCEL_EPOCH).astype(np.int64))
    idx = np.flatnonzero(form == 6)
    out[idx] = _obj(ymd[idx].astype(str))
    return out


def _money_text(value: float, form: int) -> str | int | float:
    """One amount of money typed as a number cell, '4,350元', '4350', full width or '4350元'."""
    whole = float(value).is_integer()
    if form == 0:
        return int(value) if whole else float(value)
    plain = f"{value:.0f}" if whole else f"{value:.2f}"
    if form == 1:
        return (f"{value:,.0f}" if whole else f"{value:,.2f}") + "元"
    if form == 2:
        return plain
    if form == 3:
        return plain.translate(_FULL_WIDTH)
    return plain + "元"


def _render_money(rng: np.random.Generator, values: np.ndarray, p: Sequence[float]) -> np.ndarray:
    """Amounts as offices type them: mostly numbers, some text with separators or 元."""
    pv = np.asarray(p, dtype=float)
    form = rng.choice(len(pv), size=len(values), p=pv / pv.sum())
    out = _obj(values)
    for idx in np.flatnonzero(form != 0).tolist():
        out[idx] = _money_text(values[idx], int(form[idx]))
    for idx in np.flatnonzero(form == 0).tolist():
        out[idx] = _money_text(values[idx], 0)
    return out


def _stray_spaces(rng: np.random.Generator, column: np.ndarray, share: float) -> None:
    """Add the stray (half- or full-width) spaces that hand-typed cells carry, in place."""
    idx = np.flatnonzero(rng.random(len(column)) < share)
    pads = rng.integers(0, 3, size=len(idx))
    for i, pad in zip(idx.tolist(), pads.tolist(), strict=True):
        value = column[i]
        if isinstance(value, str):
            column[i] = (" " + value) if pad == 0 else value + (" " if pad == 1 else "\u3000")


def _group_rank(groups: np.ndarray) -> np.ndarray:
    """0-based position of each element within its run of equal, sorted group values."""
    n = len(groups)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    counts = np.diff(np.r_[starts, n])
    return np.arange(n) - np.repeat(starts, counts)


# --------------------------------------------------------------------------------------------
# Geography
# --------------------------------------------------------------------------------------------


def _place_name(rng: np.random.Generator, syllables: int) -> str:
    return "".join(str(s) for s in rng.choice(_SYLLABLES, size=syllables))


def _township_names(rng: np.random.Generator, n: int) -> list[str]:
    """Real Yuexi township names first, then made-up Yi-sounding ones, all distinct."""
    names = list(_REAL_TOWNSHIPS[:n])
    stems = {name[:-1] for name in names}
    while len(names) < n:
        stem = _place_name(rng, int(rng.integers(2, 4)))
        if stem in stems:
            continue
        stems.add(stem)
        names.append(stem + ("镇" if rng.random() < 0.2 else "乡"))
    return names


def _village_names(rng: np.random.Generator, n: int) -> list[str]:
    """Village names for one township, distinct within it, mostly Yi, some Han."""
    pool = list(_STARTER_VILLAGES)
    rng.shuffle(pool)
    han = list(_HAN_VILLAGES)
    rng.shuffle(han)
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n:
        roll = rng.random()
        if roll < 0.3 and pool:
            name = pool.pop()
        elif roll < 0.4 and han:
            name = han.pop()
        else:
            name = _place_name(rng, 2) + "村"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


@dataclass
class _Geo:
    townships: list[str]
    village_town: np.ndarray  # township index of each village
    village_names: list[str]
    village_codes: list[str]  # 12-digit administrative code of each village


def _geography(rng: np.random.Generator, spec: SampleSpec) -> _Geo:
    n_towns = spec.township_count()
    n_villages = spec.village_count()
    towns = _township_names(rng, n_towns)
    village_town = np.sort(
        np.concatenate([np.arange(n_towns), rng.integers(0, n_towns, n_villages - n_towns)])
    )
    names: list[str] = []
    codes: list[str] = []
    for t in range(n_towns):
        k = int((village_town == t).sum())
        names.extend(_village_names(rng, k))
        codes.extend(f"{spec.county_code}{t + 1:03d}{v + 1:03d}" for v in range(k))
    return _Geo(towns, village_town, names, codes)


# --------------------------------------------------------------------------------------------
# Planting helpers
# --------------------------------------------------------------------------------------------


class _Picker:
    """Chooses distinct households for each problem, spread round-robin over the townships.

    One household carries one problem at most, so a test can tell which finding belongs to
    which planted problem.
    """

    def __init__(
        self, rng: np.random.Generator, town: np.ndarray, village: np.ndarray, n_towns: int
    ) -> None:
        self.rng = rng
        self.town = town
        self.village = village
        self.n_towns = n_towns
        self.used = np.zeros(len(town), dtype=bool)
        self.turn = 0

    def pick(self, mask: np.ndarray, k: int) -> list[int]:
        """Up to ``k`` free households where ``mask`` holds, one township after another."""
        cand = np.flatnonzero(mask & ~self.used)
        if len(cand) == 0 or k <= 0:
            return []
        cand = cand[self.rng.permutation(len(cand))]
        cand = cand[np.argsort(self.town[cand], kind="stable")]
        towns = self.town[cand]
        by_town = {int(t): list(cand[towns == t][::-1]) for t in np.unique(towns)}
        chosen: list[int] = []
        tries = 0
        while len(chosen) < k and by_town and tries < k * (self.n_towns + 1):
            t = (self.turn + tries) % self.n_towns
            tries += 1
            bucket = by_town.get(t)
            if not bucket:
                continue
            chosen.append(int(bucket.pop()))
        if len(chosen) < k:  # fewer townships than needed: take what is left anywhere
            rest = [int(h) for b in by_town.values() for h in b]
            chosen.extend(rest[: k - len(chosen)])
        self.turn += 1
        self.used[chosen] = True
        return chosen

    def partner(self, h: int, mask: np.ndarray) -> int | None:
        """Another free household, in the same village if there is one (a realistic pair)."""
        same = np.flatnonzero(mask & ~self.used & (self.village == self.village[h]))
        pool = same if len(same) else np.flatnonzero(mask & ~self.used)
        if len(pool) == 0:
            return None
        b = int(pool[self.rng.integers(0, len(pool))])
        self.used[b] = True
        return b


# --------------------------------------------------------------------------------------------
# Generation, in stages: draw the truth (households, then members), plant problems in it,
# then type it into cells the way an office would.
# --------------------------------------------------------------------------------------------

_GIVEN = {
    (True, True): np.array(_YI_MALE, dtype=object),
    (True, False): np.array(_YI_FEMALE, dtype=object),
    (False, True): np.array(_HAN_MALE, dtype=object),
    (False, False): np.array(_HAN_FEMALE, dtype=object),
}
_YI_SUR = np.array(_YI_SURNAMES, dtype=object)
_HAN_SUR = np.array(_HAN_SURNAMES, dtype=object)


@dataclass
class _Households:
    """What is true of each household, before it is typed into cells (index = household)."""

    village: np.ndarray
    town: np.ndarray
    serial: np.ndarray
    hid: np.ndarray
    category: np.ndarray  # 0 建档立卡户, 1 边缘易致贫户, 2 一般农户
    attribute: np.ndarray  # index into _ATTRIBUTES, -1 when not registered
    exited: np.ndarray
    exit_year: np.ndarray
    income: np.ndarray
    grade: np.ndarray  # index into _GRADES
    yn: dict[str, np.ndarray]  # 1 yes, 0 no, -1 blank
    satisfaction: np.ndarray  # index into _SATISFACTION
    house_id: np.ndarray

    @property
    def registered(self) -> np.ndarray:
        return self.category == 0

    @property
    def unexited(self) -> np.ndarray:
        return self.registered & ~self.exited


@dataclass
class _Members:
    """What is true of each member (index = member, households' members contiguous)."""

    hh: np.ndarray
    pos: np.ndarray
    start: np.ndarray  # per household: index of its first member
    sizes: np.ndarray  # per household: members drawn
    relation: np.ndarray  # index into _RELATIONS
    male: np.ndarray
    birth: np.ndarray  # datetime64[D], as encoded in the ID number
    birth_cell: np.ndarray  # datetime64[D], as typed in 出生日期 (differs when planted)
    age: np.ndarray
    id_text: np.ndarray
    check: np.ndarray
    name: np.ndarray
    school: np.ndarray
    health: np.ndarray
    labor: np.ndarray
    employment: np.ndarray
    insurance: np.ndarray
    status: np.ndarray  # 0 living, 1 死亡, 2 迁出

    def of(self, h: int) -> np.ndarray:
        return np.arange(self.start[h], self.start[h] + self.sizes[h])


@dataclass
class _Plan:
    """Where problems were planted and the cell-level edits they need at render time."""

    planted: dict[str, list[str]] = field(default_factory=dict)
    household_cells: dict[str, dict[int, Any]] = field(default_factory=dict)
    member_cells: dict[str, dict[int, Any]] = field(default_factory=dict)
    drop_members: list[int] = field(default_factory=list)
    copies: list[tuple[int, int, int]] = field(default_factory=list)  # member, into, relation
    size_offset: dict[int, int] = field(default_factory=dict)
    duplicate_rows: list[int] = field(default_factory=list)
    orphans: list[int] = field(default_factory=list)


def _check_spec(spec: SampleSpec) -> None:
    if spec.households < 1:
        raise ValueError("households must be at least 1")
    if spec.townships is not None and spec.townships < 1:
        raise ValueError("townships must be at least 1")
    if spec.villages is not None and spec.villages < 1:
        raise ValueError("villages must be at least 1")
    if len(spec.county_code) != 6 or not spec.county_code.isdigit():
        raise ValueError("county_code must be 6 digits")


def _draw_households(rng: np.random.Generator, spec: SampleSpec, geo: _Geo, n: int) -> _Households:
    """Categories, statuses, incomes and housing with the shares of a Liangshan county.

    Exited households are drawn above the 4200 line and with safe houses: every gap among
    them is a planted one, so a test can count them.  Unexited households carry the natural
    tail below 4200.
    """
    n_villages = len(geo.village_names)
    weights = rng.uniform(0.6, 1.4, n_villages)
    counts = rng.multinomial(n, weights / weights.sum())
    village = np.repeat(np.arange(n_villages), counts)
    serial = _group_rank(village) + 1
    code = np.array(geo.village_codes, dtype=object)[village].tolist()
    hid = _obj([f"{c}{s:06d}" for c, s in zip(code, serial.tolist(), strict=True)])
    house_id = _obj([f"{c}-{s:04d}" for c, s in zip(code, serial.tolist(), strict=True)])

    category = rng.choice(3, size=n, p=[0.80, 0.12, 0.08])
    registered = category == 0
    attribute = np.where(registered, rng.choice(3, size=n, p=[0.75, 0.20, 0.05]), -1)
    exited = registered & (rng.random(n) < 0.88)
    unexited = registered & ~exited
    years_ago = rng.choice(np.arange(6, 0, -1), size=n, p=[0.08, 0.12, 0.15, 0.2, 0.25, 0.2])
    exit_year = spec.as_of.year - years_ago

    income = np.empty(n)
    for mask, median, sigma, refill_to in (
        (exited, 7200.0, 0.35, 5600.0),
        (unexited, 4300.0, 0.25, 0.0),
        (category == 1, 5300.0, 0.2, 5000.0),
        (category == 2, 9800.0, 0.4, 6000.0),
    ):
        values = rng.lognormal(math.log(median), sigma, int(mask.sum()))
        if refill_to:  # above the line unless a problem is planted
            low = values < 4200
            values[low] = rng.uniform(4200, refill_to, int(low.sum()))
        income[mask] = values
    on_edge = ~unexited & (rng.random(n) < 0.021)  # exactly on a band boundary
    income[on_edge] = rng.choice([4200.0, 4500.0, 5000.0], size=int(on_edge.sum()))
    income = np.where(rng.random(n) < 0.2, np.round(income, 2), np.round(income))

    grade = np.empty(n, dtype=np.int64)
    for mask, p in (
        (exited, [0.55, 0.45, 0.0, 0.0]),
        (unexited, [0.35, 0.45, 0.15, 0.05]),
        (category == 1, [0.40, 0.50, 0.08, 0.02]),
        (category == 2, [0.60, 0.37, 0.03, 0.0]),
    ):
        grade[mask] = rng.choice(4, size=int(mask.sum()), p=p)

    yn: dict[str, np.ndarray] = {}
    for col, p_unexited, p_other in (
        ("safe_water", 0.95, 0.97),
        ("electricity", 0.99, 0.995),
        ("broadcast_tv", 0.95, 0.97),
        ("policy_awareness", 0.97, 0.95),
        ("living_environment", 0.93, 0.95),
        ("gratitude_bag", 0.95, 1.0),
    ):
        yn[col] = _bernoulli(rng, np.where(exited, 1.0, np.where(unexited, p_unexited, p_other)), n)
    yn["gratitude_bag"][~registered] = -1  # only registered households get one
    yn["relocated"] = np.where(registered, _bernoulli(rng, 0.12, n), 0).astype(np.int8)
    satisfaction = np.where(
        exited,
        rng.choice(3, size=n, p=[0.82, 0.18, 0.0]),
        rng.choice(3, size=n, p=[0.70, 0.28, 0.02]),
    )
    house_id[(category == 2) & (rng.random(n) < 0.05)] = None
    return _Households(
        village=village, town=geo.village_town[village], serial=serial, hid=hid,
        category=category, attribute=attribute, exited=exited, exit_year=exit_year,
        income=income, grade=grade, yn=yn, satisfaction=satisfaction, house_id=house_id,
    )  # fmt: skip


def _id_numbers(
    rng: np.random.Generator, county_code: str, birth: np.ndarray, male: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """GB 11643 numbers: region, birth date, sequence (odd for men), check digit; unique.

    Sequences are assigned by rank among people born the same day with the same sex, so no
    two people share a number unless a problem says so.
    """
    n = len(birth)
    year, month, day = _ymd(birth)
    ymd = year * 10000 + month * 100 + day
    key = ymd * 2 + male.astype(np.int64)
    order = np.argsort(key, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = _group_rank(key[order])
    if n and rank.max() >= 499:
        raise ValueError("too many people born on one day for unique ID numbers")
    slot = (rank + (key * 2654435761) % 499) % 499 + 1
    seq = np.where(male, slot * 2 - 1, slot * 2)
    id17 = int(county_code) * 10**11 + ymd * 1000 + seq
    powers = 10 ** np.arange(16, -1, -1, dtype=np.int64)
    total = ((id17[:, None] // powers) % 10) @ _ID_WEIGHTS
    check = np.array(list(_ID_CHECK))[total % 11]
    id_text = np.char.add(id17.astype("U17"), check).astype(object)
    lower_x = np.flatnonzero((check == "X") & (rng.random(n) < 0.05))  # typed as 'x'
    id_text[lower_x] = [s.lower() for s in id_text[lower_x]]
    return id_text, check


def _names(
    rng: np.random.Generator,
    yi: np.ndarray,
    relation: np.ndarray,
    male: np.ndarray,
    m_hh: np.ndarray,
) -> np.ndarray:
    """Blood relatives carry the household's surname; spouses and in-laws their own."""
    n = len(relation)
    family = rng.integers(0, 1 << 30, int(m_hh.max()) + 1 if n else 0)[m_hh]
    own = rng.integers(0, 1 << 30, n)
    key = np.where(np.isin(relation, [0, 2, 3, 4, 5, 6]), family, own)
    surname = np.where(yi, _YI_SUR[key % len(_YI_SUR)], _HAN_SUR[key % len(_HAN_SUR)])
    given_key = rng.integers(0, 1 << 30, n)
    given = np.empty(n, dtype=object)
    for (is_yi, is_male), pool in _GIVEN.items():
        sel = (yi == is_yi) & (male == is_male)
        given[sel] = pool[given_key[sel] % len(pool)]
    dot = np.where(yi & (rng.random(n) < 0.08), "·", "").astype(object)  # 阿苏·拉哈
    return surname + dot + given


def _draw_members(rng: np.random.Generator, spec: SampleSpec, hh: _Households) -> _Members:
    """3-6 members a household, the first the 户主, with ages that fit their relation."""
    n_hh = len(hh.hid)
    sizes = rng.choice([3, 4, 5, 6], size=n_hh, p=[0.2, 0.3, 0.3, 0.2])
    n = int(sizes.sum())
    m_hh = np.repeat(np.arange(n_hh), sizes)
    start = np.cumsum(sizes) - sizes
    pos = np.arange(n) - start[m_hh]
    head_age = rng.integers(30, 76, n_hh)[m_hh]
    head_male = (rng.random(n_hh) < 0.78)[m_hh]
    has_spouse = (rng.random(n_hh) < 0.9)[m_hh]

    boy = rng.random(n) < 0.52
    relation = np.where(head_age > 55, np.where(boy, 4, 5), np.where(boy, 2, 3))
    relation[(pos == 1) & has_spouse] = 1
    parent = (pos == sizes[m_hh] - 1) & (pos >= 3) & (head_age <= 50) & (rng.random(n) < 0.15)
    relation[parent] = np.where(boy[parent], 6, 7)
    relation[pos == 0] = 0
    male = _REL_MALE[relation].copy()
    male[relation == 0] = head_male[relation == 0]
    male[relation == 1] = ~head_male[relation == 1]

    age = np.zeros(n, dtype=np.int64)
    age[relation == 0] = head_age[relation == 0]
    sel = relation == 1
    age[sel] = np.clip(head_age[sel] + np.round(rng.normal(-2, 4, int(sel.sum()))), 20, 85)
    sel = (relation == 2) | (relation == 3)
    age[sel] = rng.integers(0, np.minimum(20, head_age[sel] - 18) + 1)
    sel = (relation == 4) | (relation == 5)
    age[sel] = rng.integers(0, np.minimum(17, head_age[sel] - 38) + 1)
    sel = (relation == 6) | (relation == 7)
    age[sel] = np.minimum(head_age[sel] + rng.integers(20, 31, int(sel.sum())), 95)

    as_of = np.datetime64(spec.as_of, "D")
    year_start = (spec.as_of.year - age - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    day_in_year = as_of - np.datetime64(f"{spec.as_of.year}-01-01", "D")
    birth = np.minimum(year_start + day_in_year - rng.integers(0, 365, n), as_of)
    exact = _age(birth, spec.as_of)
    id_text, check = _id_numbers(rng, spec.county_code, birth, male)

    yi_share = np.where(np.arange(int(hh.town.max()) + 1) < _HAN_TOWNSHIPS, 0.45, 0.92)
    yi = (rng.random(n_hh) < yi_share[hh.town])[m_hh]
    name = _names(rng, yi, relation, male, m_hh)

    roll = rng.random(n)
    health = np.zeros(n, dtype=np.int64)
    p_major = 0.01 + 0.0005 * exact
    health[roll < 0.03 + p_major + 0.03 + 0.003 * exact] = 1
    health[roll < 0.03 + p_major] = 2
    health[roll < 0.03] = 3

    school = np.zeros(n, dtype=np.int64)  # index into _SCHOOL
    roll = rng.random(n)
    school[(exact >= 3) & (exact <= 5) & (roll < 0.85)] = 1
    school[(exact >= 6) & (exact <= 11)] = 2
    school[(exact >= 12) & (exact <= 14)] = 3
    sel = exact == 15
    school[sel] = np.where(roll[sel] < 0.6, 3, 4)
    sel = (exact >= 16) & (exact <= 17)
    school[sel] = np.select([roll[sel] < 0.55, roll[sel] < 0.85], [4, 5], 0)
    sel = (exact >= 18) & (exact <= 21)
    school[sel] = np.select([roll[sel] < 0.15, roll[sel] < 0.25], [7, 6], 0)
    school[(exact >= 6) & (exact <= 15) & (health == 3)] = 9  # 送教上门

    labor = np.full(n, 4, dtype=np.int64)  # index into _LABOR
    roll = rng.random(n)
    sel = (exact >= 16) & (exact <= 64)
    labor[sel] = np.select([roll[sel] < 0.72, roll[sel] < 0.88, roll[sel] < 0.96], [0, 1, 2], 3)
    sel &= health >= 2
    labor[sel] = np.where(roll[sel] < 0.6, 3, 2)
    labor[(exact > 64) & (roll < 0.3)] = 2
    employment = np.full(n, 3, dtype=np.int64)
    sel = (labor <= 1) & ~((school >= 1) & (school <= 7))
    employment[sel] = rng.choice(4, size=int(sel.sum()), p=[0.3, 0.2, 0.22, 0.28])
    insurance = np.where(hh.registered[m_hh], 1, _bernoulli(rng, 0.98, n)).astype(np.int8)
    return _Members(
        hh=m_hh, pos=pos, start=start, sizes=sizes, relation=relation, male=male, birth=birth,
        birth_cell=birth.copy(), age=exact, id_text=id_text, check=check, name=name,
        school=school, health=health, labor=labor, employment=employment, insurance=insurance,
        status=np.zeros(n, dtype=np.int64),
    )  # fmt: skip


def _plant_gaps(
    rng: np.random.Generator, hh: _Households, mem: _Members, pick: _Picker, k: int, plan: _Plan
) -> None:
    """Exit gaps: the households the audit must list as failing an indicator or at risk."""

    def note(problem: str, households: Sequence[int]) -> None:
        plan.planted.setdefault(problem, []).extend(str(hh.hid[h]) for h in households)

    for h in pick.pick(hh.exited, k):
        hh.income[h] = float(rng.integers(2800, 4150))
        note("wrong_exit_income", [h])
    pupil = (mem.age >= 7) & (mem.age <= 14) & (mem.pos > 0)
    has_pupil = np.zeros(len(hh.hid), dtype=bool)
    has_pupil[mem.hh[pupil]] = True
    for h in pick.pick(hh.registered & has_pupil, k):
        mem.school[mem.of(h)[pupil[mem.of(h)]][0]] = 8
        note("dropout", [h])
    for h in pick.pick(hh.registered, k):
        mem.insurance[mem.start[h] + 1] = 0
        note("no_medical_insurance", [h])
    for j, h in enumerate(pick.pick(hh.exited, k)):
        hh.grade[h] = 2 + j % 2
        note("unsafe_house", [h])
    for col, problem in (("safe_water", "no_safe_water"), ("broadcast_tv", "no_broadcast_tv")):
        for h in pick.pick(hh.exited, k):
            hh.yn[col][h] = 0
            note(problem, [h])
    for h in pick.pick(hh.exited, k):
        hh.satisfaction[h] = 2
        note("dissatisfied", [h])
    for h in pick.pick(hh.category == 1, k):
        hh.income[h] = float(rng.integers(3000, 4150))
        hh.grade[h] = 3
        note("edge_low_income_d_house", [h])
    for h in pick.pick(hh.category == 2, k):
        hh.income[h] = float(rng.integers(3200, 4150))
        note("ordinary_low_income", [h])


def _plant_issues(
    rng: np.random.Generator,
    geo: _Geo,
    hh: _Households,
    mem: _Members,
    pick: _Picker,
    k: int,
    plan: _Plan,
    as_of: np.datetime64,
) -> None:
    """Data issues: one per household, each of a code of register-format.md."""

    def note(problem: str, households: Sequence[int]) -> None:
        plan.planted.setdefault(problem, []).extend(str(hh.hid[h]) for h in households)

    anyone = np.ones(len(hh.hid), dtype=bool)
    id_cells = plan.member_cells.setdefault("id_number", {})
    for h in pick.pick(anyone, k):
        m = int(mem.start[h] + 1 + h % (mem.sizes[h] - 1))
        id_cells[m] = mem.id_text[m][:17] + _ID_CHECK[(_ID_CHECK.index(mem.check[m]) + 3) % 11]
        note("id_checksum", [h])
    digit_end = (mem.check != "X") & (mem.pos > 0)
    has_digit_end = np.zeros(len(hh.hid), dtype=bool)
    has_digit_end[mem.hh[digit_end]] = True
    for h in pick.pick(has_digit_end, k):
        m = int(mem.of(h)[digit_end[mem.of(h)]][0])
        id_cells[m] = float(mem.id_text[m])  # a number cell: 5.13434E+17, digits lost
        note("id_precision_lost", [h])
    for h in pick.pick(anyone, k):
        m = int(mem.start[h] + 2)
        plan.member_cells.setdefault("gender", {})[m] = "女" if mem.male[m] else "男"
        note("id_gender_mismatch", [h])
    for h in pick.pick(anyone, k):
        m = int(mem.start[h] + 1)
        shifted = mem.birth[m] + np.timedelta64(400, "D")
        mem.birth_cell[m] = shifted if shifted <= as_of else mem.birth[m] - np.timedelta64(400, "D")
        note("id_birth_mismatch", [h])
    for j, h in enumerate(pick.pick(anyone, k)):
        plan.size_offset[h] = 1 if j % 2 == 0 else -1
        note("size_mismatch", [h])
    for h in pick.pick(hh.registered, k):
        plan.duplicate_rows.append(h)
        note("duplicate_household", [h])
    for a in pick.pick(anyone, k):
        b = pick.partner(a, anyone)
        if b is not None:  # a married daughter still registered with her parents, say
            m = int(mem.start[a] + 1)
            plan.copies.append((m, b, 9 if mem.male[m] else 8))
            note("duplicate_person", [a, b])
    for h in pick.pick(anyone, k):
        plan.drop_members.append(int(mem.start[h]))
        note("no_head", [h])
    for j, h in enumerate(pick.pick(hh.registered, k)):
        hh.yn[_BLANKABLE[j % len(_BLANKABLE)]][h] = -1
        note("missing_yes_no", [h])
    for h in pick.pick(hh.registered, k):
        plan.household_cells.setdefault("satisfaction", {})[h] = "还行"
        note("bad_value", [h])
    has_house = np.array([x is not None for x in hh.house_id])
    for a in pick.pick(has_house, k):
        b = pick.partner(a, has_house)
        if b is not None:
            hh.house_id[b] = hh.house_id[a]
            note("shared_house", [a, b])
    known = set(geo.village_names)
    for h in pick.pick(anyone, k):
        wrong = geo.village_names[hh.village[h]][:-1] + "新村"
        while wrong in known:
            wrong = wrong[:-1] + "新村"
        plan.household_cells.setdefault("village", {})[h] = wrong
        note("unknown_village", [h])
    for code, problem in ((1, "member_dead"), (2, "member_moved_out")):
        for h in pick.pick(anyone, k):
            mem.status[int(mem.start[h] + mem.sizes[h] - 1)] = code
            note(problem, [h])


def _frame(
    columns: dict[str, np.ndarray], headers: dict[str, str], rows: Sequence[int]
) -> pd.DataFrame:
    """A frame of exactly the cell values (object columns), indexed by Excel row."""
    frame = pd.DataFrame(
        {
            headers.get(col, HOUSEHOLD_EXTRA_COLUMN): pd.Series(v, dtype=object)
            for col, v in columns.items()
        }
    )
    frame.index = pd.Index(list(rows), name="excel_row")
    return frame


def _render_members(
    rng: np.random.Generator, hh: _Households, mem: _Members, plan: _Plan, n_towns: int
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Type the members into cells; return the frame and each row's household and liveness."""
    town = hh.town[mem.hh]
    writes_normal = rng.random(n_towns) < 0.4  # some townships type 正常, others leave it blank
    status = np.where((mem.status == 0) & writes_normal[town], 3, mem.status)
    cells = {
        "household_id": hh.hid[mem.hh],
        "name": mem.name.copy(),
        "id_number": mem.id_text.copy(),
        "relation": _RELATIONS[mem.relation],
        "gender": np.where(mem.male, "男", "女").astype(object),
        "birth_date": _render_dates(rng, mem.birth_cell, town, n_towns),
        "school_status": _SCHOOL[mem.school],
        "medical_insurance": _yes_no(rng, mem.insurance, town, n_towns),
        "health": _HEALTH[mem.health],
        "labor_ability": _LABOR[mem.labor],
        "employment": _EMPLOYMENT[mem.employment],
        "member_status": _MEMBER_STATUS[status],
    }
    for col, share in (
        ("name", 0.01),
        ("gender", 0.003),
        ("id_number", 0.003),
        ("household_id", 0.002),
    ):
        _stray_spaces(rng, cells[col], share)
    for col, edits in plan.member_cells.items():
        for m, value in edits.items():
            cells[col][m] = value

    keep = np.ones(len(mem.hh), dtype=bool)
    keep[plan.drop_members] = False
    row_hh, row_pos, alive = mem.hh[keep], mem.pos[keep], (mem.status == 0)[keep]
    parts = [{col: values[keep] for col, values in cells.items()}]
    if plan.copies:  # the same person typed again into another household
        src = np.array([m for m, _, _ in plan.copies])
        into = np.array([b for _, b, _ in plan.copies])
        copied = {col: values[src] for col, values in cells.items()}
        copied["household_id"] = hh.hid[into]
        copied["relation"] = _RELATIONS[np.array([r for _, _, r in plan.copies])]
        parts.append(copied)
        row_hh = np.concatenate([row_hh, into])
        row_pos = np.concatenate([row_pos, np.full(len(src), 99)])
        alive = np.concatenate([alive, mem.status[src] == 0])
    order = np.lexsort((row_pos, row_hh))
    joined = {col: np.concatenate([part[col] for part in parts])[order] for col in cells}
    first = HEADER_ROWS["members"] + 1
    frame = _frame(joined, MEMBER_HEADERS, range(first, first + len(order)))
    return frame, row_hh[order], alive[order]


def _helpers(
    rng: np.random.Generator, hh: _Households, n_villages: int
) -> tuple[np.ndarray, np.ndarray]:
    """帮扶责任人 and phone: each village's cadres look after five households each."""
    helped = hh.category <= 1
    counts = np.bincount(hh.village, minlength=n_villages)
    first_of_village = np.r_[0, np.cumsum(counts)[:-1]]
    rank = np.cumsum(helped) - 1 - np.r_[0, np.cumsum(helped)][first_of_village][hh.village]
    per_village = np.ceil(np.bincount(hh.village[helped], minlength=n_villages) / 5).astype(
        np.int64
    )
    cadre = np.r_[0, np.cumsum(per_village)[:-1]][hh.village] + rank // 5
    n = int(per_village.sum())
    yi = rng.random(n) < 0.25
    male = rng.random(n) < 0.6
    surname = np.where(
        yi, _YI_SUR[rng.integers(0, len(_YI_SUR), n)], _HAN_SUR[rng.integers(0, len(_HAN_SUR), n)]
    )
    given = np.empty(n, dtype=object)
    for (is_yi, is_male), pool in _GIVEN.items():
        sel = (yi == is_yi) & (male == is_male)
        given[sel] = pool[rng.integers(0, len(pool), int(sel.sum()))]
    names = surname + given
    prefix = np.array(["13", "15", "18", "17", "19"])[rng.integers(0, 5, n)].tolist()
    body = rng.choice(10**9, size=n, replace=False).tolist()
    phones = _obj([f"{p}{b:09d}" for p, b in zip(prefix, body, strict=True)])
    as_number = np.flatnonzero(rng.random(n) < 0.03)  # typed into a number cell
    phones[as_number] = _obj([int(p) for p in phones[as_number]])
    safe = np.where(helped, cadre, 0)
    return np.where(helped, names[safe], None), np.where(helped, phones[safe], None)


def _render_households(
    rng: np.random.Generator,
    geo: _Geo,
    hh: _Households,
    mem: _Members,
    plan: _Plan,
    living: np.ndarray,
) -> pd.DataFrame:
    """Type the households into cells, drop the orphans' rows, append re-entered duplicates."""
    n = len(hh.hid)
    n_towns = len(geo.townships)
    size = living.copy()
    for h, offset in plan.size_offset.items():
        size[h] = size[h] + offset if size[h] + offset >= 1 else size[h] + 1
    size_cell = _obj(size)
    for i in np.flatnonzero(rng.random(n) < 0.03).tolist():
        size_cell[i] = str(size[i])

    counts = np.bincount(hh.village, minlength=len(geo.village_names))
    per_group = np.ceil(counts / np.clip(counts // 14 + 1, 1, 9)).astype(np.int64)
    group_no = (hh.serial - 1) // np.maximum(per_group[hh.village], 1) + 1
    group_cell = _obj([f"{g}组" for g in group_no.tolist()])
    as_number = rng.random(n) < 0.08
    group_cell[as_number] = _obj(group_no[as_number])

    registered = hh.registered
    status_cell = np.where(hh.exited, "已脱贫", "未脱贫").astype(object)
    status_cell[~registered] = None
    attribute_cell = _ATTRIBUTES[np.maximum(hh.attribute, 0)]
    attribute_cell[~registered] = None
    year_cell = _obj(hh.exit_year)
    for i in np.flatnonzero(rng.random(n) < 0.08).tolist():
        year_cell[i] = str(hh.exit_year[i])
    year_cell[~hh.exited] = None
    helper, phone = _helpers(rng, hh, len(geo.village_names))

    remark = np.full(n, None, dtype=object)
    roll = rng.random(n)
    remark[registered & (hh.attribute == 1) & (roll < 0.3)] = "低保户"
    remark[registered & (hh.attribute == 2) & (roll < 0.4)] = "五保户"
    remark[(hh.yn["relocated"] == 1) & (roll < 0.4)] = "易地扶贫搬迁集中安置"
    remark[hh.unexited & (roll > 0.99)] = "2019年动态调整新识别"
    if n >= 50:  # text that looks like a formula is data, and must stay text
        remark[int(rng.integers(0, n))] = "=已核实"

    yes_no = {col: _yes_no(rng, hh.yn[col], hh.town, n_towns) for col in hh.yn}
    cells: dict[str, np.ndarray] = {
        "household_id": hh.hid,
        "township": np.array(geo.townships, dtype=object)[hh.town],
        "village": np.array(geo.village_names, dtype=object)[hh.village],
        "group": group_cell,
        "head_name": mem.name[mem.start],
        "category": _CATEGORIES[hh.category],
        "poverty_attribute": attribute_cell,
        "status": status_cell,
        "exit_year": year_cell,
        "household_size": size_cell,
        "income_per_capita": _render_money(rng, hh.income, (0.86, 0.05, 0.04, 0.02, 0.03)),
        "housing_grade": _GRADES[hh.grade],
        "house_id": hh.house_id,
        **{col: yes_no[col] for col in _HOUSEHOLD_YES_NO},
        "satisfaction": _SATISFACTION[hh.satisfaction],
        "relocated": yes_no["relocated"],
        "helper_name": helper,
        "helper_phone": phone,
        "remark": remark,
    }
    for col, share in (("head_name", 0.01), ("village", 0.005), ("township", 0.003)):
        _stray_spaces(rng, cells[col], share)
    for col, edits in plan.household_cells.items():
        for h, value in edits.items():
            cells[col][h] = value

    in_register = np.ones(n, dtype=bool)
    in_register[plan.orphans] = False
    rows = np.concatenate(
        [np.flatnonzero(in_register), np.array(plan.duplicate_rows, dtype=np.int64)]
    )
    data = {col: values[rows] for col, values in cells.items()}
    for j, h in enumerate(plan.duplicate_rows):  # the re-entered copy differs a little
        data["income_per_capita"][len(rows) - len(plan.duplicate_rows) + j] = int(
            round(hh.income[h] * 1.05)
        )
    first = HEADER_ROWS["households"] + 1
    excel_rows = np.arange(first, first + len(rows))
    excel_rows[len(rows) // 2 :] += 1  # one blank row in the middle, as in real sheets
    return _frame(data, HOUSEHOLD_HEADERS, excel_rows.tolist())


def _villages(
    rng: np.random.Generator,
    spec: SampleSpec,
    geo: _Geo,
    hh: _Households,
    plan: _Plan,
    row_hh: np.ndarray,
    alive: np.ndarray,
) -> pd.DataFrame:
    """村表, with populations that give realistic incidences.

    The registers hold the registered households and a sample of the others, about a third
    of a village's people, so the population is the register's living people divided by a
    share of 0.3-0.4, raised where needed so that a poor village's incidence is 1.5-2.9%
    (Yuexi reported 2.78% county-wide).  Planted villages break exactly one rule.
    """
    n_villages = len(geo.village_names)
    counted = np.ones(len(hh.hid), dtype=bool)
    counted[plan.orphans] = False
    counted[list(plan.household_cells.get("village", {}))] = False
    people_hh = row_hh[alive]
    people_hh = people_hh[counted[people_hh]]
    people = np.bincount(hh.village[people_hh], minlength=n_villages)
    poor_hh = people_hh[hh.unexited[people_hh]]
    poor = np.bincount(hh.village[poor_hh], minlength=n_villages)

    n_poor = round(n_villages * 0.45)
    if spec.problems:
        n_poor = max(n_poor, min(n_villages, 3))
    poor_village = np.zeros(n_villages, dtype=bool)
    poor_village[rng.choice(n_villages, size=n_poor, replace=False)] = True
    target = np.where(
        poor_village, rng.uniform(0.015, 0.029, n_villages), rng.uniform(0.01, 0.06, n_villages)
    )
    population = np.ceil(np.maximum(people / rng.uniform(0.3, 0.4, n_villages), poor / target))
    population = np.where(people == 0, rng.integers(800, 1500, n_villages), population).astype(
        np.int64
    )
    per_person = rng.uniform(3.5, 10.0, n_villages)
    flags = {
        col: np.where(poor_village, 1, _bernoulli(rng, 0.9, n_villages)).astype(np.int8)
        for col in _VILLAGE_YES_NO
    }
    if spec.problems:
        kv = max(1, round(n_villages * 0.02))
        free = poor_village.copy()
        share = np.divide(poor, people, out=np.zeros(n_villages), where=people > 0)
        for problem, eligible in (
            ("village_high_incidence", poor_village & (share >= 0.05)),
            ("village_no_clinic", poor_village),
            ("village_low_collective_income", poor_village),
        ):
            pool = np.flatnonzero(eligible & free)
            if len(pool) == 0:
                pool = np.flatnonzero(eligible)
            for v in rng.permutation(pool)[:kv].tolist():
                free[v] = False
                if problem == "village_no_clinic":
                    flags["clinic"][v] = 0
                elif problem == "village_low_collective_income":
                    per_person[v] = rng.uniform(1.5, 2.6)
                else:  # incidence >= min(poor/people, 3.5%): over the 3% line
                    population[v] = max(int(people[v]), int(poor[v] / rng.uniform(0.035, 0.05)))
                town = geo.townships[geo.village_town[v]]
                plan.planted.setdefault(problem, []).append(f"{town}/{geo.village_names[v]}")
    n_towns = len(geo.townships)
    population_cell = _obj(population)
    for i in np.flatnonzero(rng.random(n_villages) < 0.05).tolist():
        population_cell[i] = f"{population[i]:,}"
    cells = {
        "township": np.array(geo.townships, dtype=object)[geo.village_town],
        "village": np.array(geo.village_names, dtype=object),
        "poverty_village": _yes_no(rng, poor_village.astype(np.int8), geo.village_town, n_towns),
        "population": population_cell,
        "collective_income": _render_money(
            rng, np.round(population * per_person, -2), (0.8, 0.1, 0.1, 0, 0)
        ),
        **{col: _yes_no(rng, values, geo.village_town, n_towns) for col, values in flags.items()},
    }
    first = HEADER_ROWS["villages"] + 1
    return _frame(cells, VILLAGE_HEADERS, range(first, first + n_villages))


def _townships(rng: np.random.Generator, spec: SampleSpec, geo: _Geo, plan: _Plan) -> pd.DataFrame:
    """乡镇表: every facility in place except, when planted, some health centres."""
    n = len(geo.townships)
    flags = {
        col: np.ones(n, dtype=np.int8)
        for col in ("central_school", "health_center", "service_center")
    }
    if spec.problems:
        for t in rng.choice(n, size=max(1, round(n * 0.1)), replace=False).tolist():
            flags["health_center"][t] = 0
            plan.planted.setdefault("township_no_health_center", []).append(geo.townships[t])
    index = np.arange(n)
    cells = {
        "township": np.array(geo.townships, dtype=object),
        **{col: _yes_no(rng, values, index, n) for col, values in flags.items()},
    }
    first = HEADER_ROWS["townships"] + 1
    return _frame(cells, TOWNSHIP_HEADERS, range(first, first + n))


def generate(spec: SampleSpec | None = None) -> SampleRegisters:
    """Make up a county's four registers from ``spec``, deterministically from its seed.

    The same spec gives identical frames on every run and machine (numpy's PCG64 generator
    is stable across platforms), so the bundled sample and benchmark inputs can be rebuilt
    instead of stored.
    """
    spec = spec or SampleSpec()
    _check_spec(spec)
    rng = np.random.default_rng(spec.seed)
    geo = _geography(rng, spec)
    k = max(1, round(spec.households * 0.0012)) if spec.problems else 0
    hh = _draw_households(rng, spec, geo, spec.households + k)  # k extra: the orphans
    mem = _draw_members(rng, spec, hh)
    plan = _Plan()
    if spec.problems:
        pick = _Picker(rng, hh.town, hh.village, len(geo.townships))
        plan.orphans = pick.pick(np.ones(len(hh.hid), dtype=bool), k)
        plan.planted["orphan_member"] = [str(hh.hid[h]) for h in plan.orphans]
        _plant_gaps(rng, hh, mem, pick, k, plan)
        _plant_issues(rng, geo, hh, mem, pick, k, plan, np.datetime64(spec.as_of, "D"))
    members, row_hh, alive = _render_members(rng, hh, mem, plan, len(geo.townships))
    living = np.bincount(row_hh[alive], minlength=len(hh.hid))
    households = _render_households(rng, geo, hh, mem, plan, living)
    villages = _villages(rng, spec, geo, hh, plan, row_hh, alive)
    townships = _townships(rng, spec, geo, plan)
    return SampleRegisters(households, members, villages, townships, plan.planted, spec)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

_WIDTHS = {"户编号": 20, "身份证号": 20, "住房编号": 19, "帮扶责任人电话": 14, "出生日期": 12}


def _write_sheet(
    workbook: Any,
    name: str,
    frame: pd.DataFrame,
    title: str,
    filler: str,
    header_row: int,
    groups: Sequence[tuple[str, int, int]],
    totals: list[Any] | None,
    title_format: Any,
    header_format: Any,
) -> None:
    """Write one register the way county sheets look; rows in order (constant_memory)."""
    sheet = workbook.add_worksheet(name)
    ncols = len(frame.columns)
    for c, header in enumerate(frame.columns):
        sheet.set_column(c, c, _WIDTHS.get(header.strip(), max(8, 2 * len(header.strip()) + 2)))
    sheet.merge_range(0, 0, 0, ncols - 1, title, title_format)
    sheet.merge_range(1, 0, 1, ncols - 1, filler, None)
    for label, c0, c1 in groups:
        if c0 == c1:
            sheet.write_string(2, c0, label, header_format)
        else:
            sheet.merge_range(2, c0, 2, c1, label, header_format)
    sheet.write_row(header_row - 1, 0, list(frame.columns), header_format)
    sheet.freeze_panes(header_row, 1)
    last = header_row
    # xlsxwriter's constant_memory mode takes rows in order, one call a row
    for excel_row, row in zip(
        frame.index.tolist(), frame.itertuples(index=False, name=None), strict=True
    ):
        if excel_row <= last:
            raise ValueError(f"{name}: excel rows must increase ({excel_row} after {last})")
        sheet.write_row(excel_row - 1, 0, row)
        last = excel_row
    if totals is not None:
        sheet.write_row(last, 0, totals)


def write_workbook(registers: SampleRegisters, path: Path) -> None:
    """Write the four registers to one .xlsx laid out like a real county workbook.

    Rows 1-2 are a merged title and the 填报单位/填报日期 line; the household and member sheets
    have a row of merged group headers in row 3 and the header in row 4; the village and
    township sheets have the header in row 3.  户表 has a blank row in the middle and a 合计
    row at the end.  The file's bytes depend only on the registers: the document's creation
    time is the reference date, so a rebuilt sample is byte-identical.
    """
    spec = registers.spec
    county, year = spec.county, spec.as_of.year
    filled = f"{spec.as_of.year}年{spec.as_of.month}月{spec.as_of.day}日"
    filler = f"填报单位: {county}扶贫开发局    填报日期: {filled}"
    workbook = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "nan_inf_to_errors": True,
        },
    )
    workbook.set_properties(
        {"title": f"{county}{year}年建档立卡信息", "author": f"{county}扶贫开发局",
         "created": datetime(spec.as_of.year, spec.as_of.month, spec.as_of.day)}
    )  # fmt: skip
    title_format = workbook.add_format({"bold": True, "font_size": 16, "align": "center"})
    header_format = workbook.add_format({"bold": True, "align": "center", "border": 1})
    try:
        households = registers.households
        size_col = households.columns.get_loc(HOUSEHOLD_HEADERS["household_size"])
        total_size = 0
        for value in households.iloc[:, size_col]:
            if isinstance(value, int | float) or (
                isinstance(value, str) and value.strip().isdigit()
            ):
                total_size += int(value)
        totals: list[Any] = [None] * len(households.columns)
        totals[0] = "合计"
        totals[size_col] = total_size
        sheets = (
            (
                "households",
                households,
                f"{county}{year}年建档立卡贫困户信息表",
                _HOUSEHOLD_GROUPS,
                totals,
            ),
            (
                "members",
                registers.members,
                f"{county}{year}年建档立卡贫困户家庭成员信息表",
                _MEMBER_GROUPS,
                None,
            ),
            ("villages", registers.villages, f"{county}{year}年行政村基本情况表", (), None),
            ("townships", registers.townships, f"{county}{year}年乡镇基本情况表", (), None),
        )
        for key, frame, title, groups, total_row in sheets:
            _write_sheet(
                workbook, SHEET_NAMES[key], frame, title, filler, HEADER_ROWS[key], groups,
                total_row, title_format, header_format,
            )  # fmt: skip
    finally:
        workbook.close()


def write_sample(path: Path, households: int = 300, seed: int = 2020) -> SampleRegisters:
    """Generate a county and write it to ``path``: what ``exitcheck sample`` runs."""
    registers = generate(SampleSpec(households=households, seed=seed))
    write_workbook(registers, Path(path))
    return registers
