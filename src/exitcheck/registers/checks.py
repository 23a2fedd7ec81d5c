"""The consistency checks of register-format.md (信息精准), column-wise over the parsed frames.

Each check turns a mask over a register into DataIssues through the IssueSink; none loops over
rows except to build the issues it found. The checks also leave behind the derived columns the
rules need (a member's birth date and age from the ID number, whether the member is living).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from exitcheck import idcard
from exitcheck.fastpaths import kinds_of, member_of
from exitcheck.i18n import join_list, listed
from exitcheck.issues import HouseholdIdZerosLost
from exitcheck.registers.model import ROW, SOURCE, Registers, SheetSource
from exitcheck.registers.normalise import spreadsheet_error
from exitcheck.registers.parse import SPREADSHEET_ERROR_HINT, IssueSink, Parsed
from exitcheck.registers.schema import RegisterName, field_label

GONE = ("死亡", "迁出")
HEAD = "户主"

#: Blank cells an indicator of the default rules needs, by register: (fields, who it applies to).
INDICATOR_FIELDS: dict[RegisterName, tuple[str, ...]] = {
    "households": ("status", "safe_water", "electricity", "broadcast_tv", "policy_awareness",
                   "living_environment", "gratitude_bag", "satisfaction"),
    "members": ("medical_insurance",),
    "villages": ("paved_road", "clinic", "culture_room", "telecom", "safe_water",
                 "electricity", "broadcast_tv"),
    "townships": ("central_school", "health_center", "service_center"),
}


def living(members: pd.DataFrame) -> pd.Series:
    """Members who count: status 正常 or blank (a status that cannot be read counts as living)."""
    return ~members["member_status"].isin(GONE).fillna(False).astype(bool)


def registered(households: pd.DataFrame) -> pd.Series:
    return households["category"].eq("建档立卡户").fillna(False).astype(bool)


def first_rows(households: pd.DataFrame) -> pd.Series:
    """A repeated household_id counts once, read from its first row."""
    ids = households["household_id"]
    return ~ids.duplicated(keep="first") | ids.isna()


def run_checks(registers: Registers, parsed: Parsed, sink: IssueSink) -> None:
    households = parsed.tables["households"]
    members = parsed.tables["members"]
    check_ids(registers, parsed, sink, "members", "id_number")
    if "head_id_number" in registers.present_fields("households"):
        check_ids(registers, parsed, sink, "households", "head_id_number")
    members["living"] = living(members)
    check_duplicate_people(members, sink)
    check_duplicate_households(registers, households, sink)
    for register in PLACE_KEYS:
        if register in parsed.tables:
            found = check_duplicate_places(registers, register, parsed.tables[register], sink)
            if found is not None:
                parsed.place_duplicates[register] = found
    parsed.zeros_pointers = check_orphans(registers, households, members, sink)
    check_heads_and_sizes(registers, households, members, sink, parsed.zeros_pointers)
    if "villages" in parsed.tables:
        check_villages(households, parsed.tables["villages"], sink)
    if "house_id" in registers.present_fields("households"):
        check_shared_houses(households, sink)
    check_indicator_blanks(registers, parsed, sink)


def check_ids(registers: Registers, parsed: Parsed, sink: IssueSink, register: RegisterName, name: str) -> None:
    """The ID cascade: stored as number > shape/check digit > birth date > gender."""
    frame = parsed.tables[register]
    raw = registers.raw[register][name]
    info = parsed.id_analyses[(register, name)]
    household = frame["household_id"]
    lost = info["precision_lost"].astype(bool)
    blank = info["id"].isna() & ~lost
    failed = spreadsheet_error(info["id"]) & ~lost  # #N/A: not an ID, and two of them are not one person
    sink.add(register, frame, lost, "id_precision_lost", name, values=raw[lost].map(idcard.excel_display), household=household)
    sink.add(register, frame, failed, "bad_value", name, raw=raw, household=household, params={"expected": SPREADSHEET_ERROR_HINT})
    if register == "members":
        sink.add(register, frame, blank, "missing_value", name, household=household)
    readable = ~blank & ~lost & ~failed
    wrong_shape = readable & ~info["shape_ok"].astype(bool)
    wrong_digit = readable & info["shape_ok"].astype(bool) & ~info["checksum_ok"].astype(bool)
    sink.add(register, frame, wrong_shape, "id_checksum", name, raw=raw, household=household,
             params={"reason": {"zh": "不是18位身份证号的格式", "en": "is not shaped like an 18-character ID number"}})
    sink.add(register, frame, wrong_digit, "id_checksum", name, raw=raw, household=household,
             params={"reason": {"zh": "校验位错误", "en": "has a wrong check digit"}})
    frame[name] = info["id"].where(readable)
    if register != "members":
        return
    impossible = readable & info["birth_impossible"].astype(bool)
    sink.add(register, frame, impossible, "id_birth_mismatch", name, raw=raw, household=household,
             params={"reason": {"zh": "身份证号中的出生日期不存在或不合理", "en": "the birth date in the ID number is impossible"}})
    birth_id = info["birth"].where(readable)
    stated = frame["birth_date"]
    differs = (stated.notna() & birth_id.notna() & (stated.dt.normalize() != birth_id)).fillna(False).astype(bool)
    reasons = _per_row(differs, lambda i: {"reason": {
        "zh": f"出生日期为 {stated[i]:%Y-%m-%d}, 身份证号显示为 {birth_id[i]:%Y-%m-%d}",
        "en": f"birth date is {stated[i]:%Y-%m-%d} but the ID number says {birth_id[i]:%Y-%m-%d}",
    }})
    sink.add(register, frame, differs, "id_birth_mismatch", "birth_date",
             raw=registers.raw[register].get("birth_date"), household=household, params=reasons)
    sex = info["sex"].where(readable)
    gender = frame["gender"]
    wrong_sex = (gender.notna() & sex.notna() & (gender != sex)).fillna(False).astype(bool)
    expected = _per_row(wrong_sex, lambda i: {"expected": {"zh": sex[i], "en": "male" if sex[i] == "男" else "female"}})
    sink.add(register, frame, wrong_sex, "id_gender_mismatch", "gender", values=gender,
             household=household, params=expected)
    frame["birth_from_id"] = birth_id.where(birth_id.notna(), stated)
    frame["age"] = idcard.age_on(frame["birth_from_id"], parsed.as_of)


def _per_row(mask: pd.Series, make: Callable[[Any], dict[str, object]]) -> pd.Series:
    """Message params for the flagged rows only (few), keyed by their index."""
    flagged = mask.index[mask.to_numpy()]
    return pd.Series([make(i) for i in flagged], index=flagged, dtype=object)


def _row_params(mask: pd.Series, **columns: pd.Series) -> pd.Series:
    """Message params for the flagged rows only, each from its column's value on the row; a
    value that is missing (not a number or a dict) is left out: its placeholder renders empty."""
    flagged = mask.index[mask.to_numpy()]
    if not columns:
        return pd.Series([{} for _ in flagged], index=flagged, dtype=object)
    names = list(columns)
    rows = zip(*(column[mask].tolist() for column in columns.values()), strict=True)
    params = [{name: value for name, value in zip(names, row, strict=True) if isinstance(value, (int, dict))} for row in rows]
    return pd.Series(params, index=flagged, dtype=object)


def _others(keys: pd.Series, owners: pd.Series, mask: pd.Series) -> pd.Series:
    """For each flagged row, the other owners (household ids) that share its key. The flagged
    rows are few, and a groupby with a Python function per group cost more than they do."""
    flagged = keys.index[mask.to_numpy()]
    mine = [None if pd.isna(me) else str(me) for me in owners[mask].tolist()]  # no id: no owner to leave out
    shared = keys[mask].tolist()
    groups: dict[object, set[str]] = {}
    for key, me in zip(shared, mine, strict=True):
        if me is not None and not pd.isna(key):  # a blank key is shared with no one
            groups.setdefault(key, set()).add(me)
    rows = []
    for key, me in zip(shared, mine, strict=True):
        others = [o for o in sorted(groups.get(key, ())) if o != me] if not pd.isna(key) else []
        rows.append({"others": listed(others) if others else (me or "")})
    return pd.Series(rows, index=flagged, dtype=object).reindex(keys.index)


def check_duplicate_people(members: pd.DataFrame, sink: IssueSink) -> None:
    ids = members["id_number"]
    candidates = members["living"] & ids.notna()
    dup = candidates & ids.where(candidates).duplicated(keep=False)
    dup = dup.fillna(False).astype(bool)
    if dup.any():
        sink.add("members", members, dup, "duplicate_person", "id_number", values=ids,
                 household=members["household_id"], params=_others(ids, members["household_id"], dup))


def check_duplicate_households(registers: Registers, households: pd.DataFrame, sink: IssueSink) -> None:
    """duplicate_household on each row of a repeated 户编号, naming its rows and what they
    disagree on: the household is audited from its first row, which the clerk must know when
    the rows' incomes differ (a second row is often the updated figure)."""
    ids = households["household_id"]
    dup = (ids.notna() & ids.duplicated(keep=False)).fillna(False).astype(bool)
    if dup.any():
        rows = households.loc[dup]
        key = ids[dup].astype(object)
        _compared, _has, differ = _disagreements(registers, "households", rows, key, ("household_id",))
        where, differs = {}, {}
        for hid, group in rows.groupby(key, sort=False):
            places = list(zip(group[SOURCE], group[ROW], strict=True))
            where[hid] = rows_where(registers.sources, places)
            differs[hid] = _differs([name for name in differ.columns if differ.at[hid, name]], first=_rows_named(registers.sources, places)[0])
        params = pd.Series([{"where": where[hid], "differs": differs[hid]} for hid in key], index=key.index)
        sink.add("households", households, dup, "duplicate_household", "household_id", values=ids,
                 household=ids, params=params)


#: The places unique in their register: a village within its township, a township; and the
#: issue a repeated one gets, pointing at this column.
PLACE_KEYS: dict[RegisterName, tuple[str, ...]] = {"villages": ("township", "village"), "townships": ("township",)}
PLACE_ISSUES: dict[RegisterName, tuple[str, str]] = {"villages": ("duplicate_village", "village"),
                                                     "townships": ("duplicate_township", "township")}


class PlaceDuplicates(NamedTuple):
    """The rows of a village (township) register whose place is on several rows. Rows of a
    sheet without a column say nothing about it (a summary sheet read as a village sheet has
    no 卫生室): they neither agree nor disagree on it."""

    key: pd.Series  # per repeated row (by label): its place as one text
    has: pd.DataFrame  # per repeated row, per compared column: whether the row's sheet has it
    differ: pd.DataFrame  # per repeated place (index: key), per compared column: its rows disagree


def place_key(frame: pd.DataFrame, keys: Sequence[str]) -> pd.Series:
    """A place as one text per row (\x1f is never typed into a cell); NA when a part is blank."""
    key = frame[keys[0]].astype("string")
    for name in keys[1:]:
        key = key + "\x1f" + frame[name].astype("string")
    return key


def check_duplicate_places(registers: Registers, register: RegisterName, frame: pd.DataFrame,
                           sink: IssueSink) -> PlaceDuplicates | None:
    """duplicate_village / duplicate_township on every row of a repeated place, naming all its
    rows and the columns they disagree on; the duplicates, for the figures (None: none)."""
    keys = PLACE_KEYS[register]
    key = place_key(frame, keys)
    repeated = (key.notna() & key.duplicated(keep=False)).fillna(False).astype(bool)
    if not repeated.any():
        return None
    rows = frame.loc[repeated]
    key = key[repeated].astype(object)
    places = pd.Index(key.unique())
    compared, has, differ = _disagreements(registers, register, rows, key, keys)
    found = PlaceDuplicates(key, has, differ)
    # the messages: one per repeated place (few), given to each of its rows
    where = {place: rows_where(registers.sources, list(zip(group[SOURCE], group[ROW], strict=True)))
             for place, group in rows.groupby(key, sort=False)}
    differs = {place: _differs([name for name in compared if differ.at[place, name]]) for place in places}
    params = pd.Series([{"where": where[place], "differs": differs[place]} for place in key], index=rows.index)
    code, column = PLACE_ISSUES[register]
    label = rows[keys[0]].astype("string")
    for name in keys[1:]:
        label = label + "/" + rows[name].astype("string")
    sink.add(register, frame, repeated, code, column, values=label.reindex(frame.index), params=params.reindex(frame.index))
    return found


def _disagreements(registers: Registers, register: RegisterName, rows: pd.DataFrame, key: pd.Series,
                   keys: Sequence[str]) -> tuple[list[str], pd.DataFrame, pd.DataFrame]:
    """For repeated rows (`rows`, grouped by `key`): the columns compared (every column but the
    key's, that some sheet of the register has), which rows' sheets have each, and per key and
    column whether its rows disagree. A row of a sheet without a column neither agrees nor
    disagrees on it."""
    having: dict[str, set[int]] = {}
    for index, source in enumerate(registers.sources):
        if source.register == register:
            for column in source.columns:
                having.setdefault(column.name, set()).add(index)
    compared = [name for name in rows.columns if name not in (*keys, SOURCE, ROW) and name in having]
    has = pd.DataFrame({name: rows[SOURCE].isin(list(having[name])).to_numpy(dtype=bool) for name in compared}, index=rows.index)
    repeated = pd.Index(key.unique())
    differ = pd.DataFrame({
        name: (rows.loc[has[name], name].astype(object).groupby(key[has[name]]).nunique(dropna=False) > 1)
        .reindex(repeated, fill_value=False).astype(bool)
        for name in compared
    }, index=repeated)
    return compared, has, differ


def _differs(names: Sequence[str], first: dict[str, str] | None = None) -> dict[str, str]:
    """What a repeated place's rows disagree on, for its message; for a repeated household
    (`first`: the row it is audited from, named), that its first row is the one audited."""
    labels_zh = join_list([field_label(n, 'zh') for n in names], 'zh')
    labels_en = join_list([field_label(n, 'en').lower() for n in names], 'en')
    if first is not None:
        if not names:
            return {"zh": "", "en": ""}  # the rows agree: which one is audited does not matter
        return {"zh": f", 各行的{labels_zh}不一致, 按第一行({first['zh']})核查, 请核实哪行正确",
                "en": f"; they differ in {labels_en}, and the first row ({first['en']}) is audited: check which is right"}
    if not names:
        return {"zh": ", 各行内容一致, 按一行核查", "en": "; the rows agree and are audited as one"}
    return {"zh": f", 各行的{labels_zh}不一致, 用到它们的指标待核实",
            "en": f"; they differ in {labels_en}, so the rules using them are unknown"}


def sheet_named(source: SheetSource, with_file: bool) -> dict[str, str]:
    """A sheet as a clerk finds it, with its file when the reader could look in another."""
    zh, en = f"工作表「{source.sheet}」", f"sheet '{source.sheet}'"
    return {"zh": f"{source.file} {zh}", "en": f"{source.file} {en}"} if with_file else {"zh": zh, "en": en}


def rows_where(sources: Sequence[SheetSource], rows: Sequence[tuple[int, int]]) -> dict[str, str]:
    """Excel rows, given as (source index, row), in both languages: "第 5、8 行" / "rows 5, 8"
    when they are all on one sheet; otherwise each row with its sheet, and with its file too
    when the rows are in several files: a register read from a folder, or a sheet per township."""
    if len({(sources[int(src)].file, sources[int(src)].sheet) for src, _ in rows}) == 1:
        numbers = listed(int(row) for _, row in rows)
        return {"zh": f"第 {numbers['zh']} 行", "en": f"row{'s' if len(rows) > 1 else ''} {numbers['en']}"}
    named = _rows_named(sources, rows)
    return {"zh": join_list((row["zh"] for row in named), "zh"), "en": join_list((row["en"] for row in named), "en")}


def _rows_named(sources: Sequence[SheetSource], rows: Sequence[tuple[int, int]]) -> list[dict[str, str]]:
    """Each of `rows` named as rows_where names it among the others: by number alone when they
    are all on one sheet, else with its sheet, and with its file when they are in several."""
    places = [(sources[int(src)], int(row)) for src, row in rows]
    sheets = {(s.file, s.sheet) for s, _ in places}
    if len(sheets) == 1:
        return [{"zh": f"第 {row} 行", "en": f"row {row}"} for _, row in places]
    with_file = len({file for file, _ in sheets}) > 1
    return [row_on(sheet_named(source, with_file), row) for source, row in places]


def row_on(sheet: dict[str, str], row: int) -> dict[str, str]:
    """A row of a sheet named by sheet_named: 工作表「户表」第 5 行 / sheet '户表' row 5."""
    return {"zh": f"{sheet['zh']}第 {row} 行", "en": f"{sheet['en']} row {row}"}


def check_orphans(registers: Registers, households: pd.DataFrame, members: pd.DataFrame,
                  sink: IssueSink) -> dict[str, dict[str, str]]:
    """A member whose household id is on no household row. When the id is a household's once
    leading zeros are ignored (000001 and 1), Excel dropped them from a column stored as numbers:
    that is said (household_id_zeros_lost), filed under that household (so under its township),
    and the member is still joined to no household. Returns the pointer to those members that
    each such household's own findings carry, by household id."""
    ids = members["household_id"]
    orphan = ids.notna().fillna(False).astype(bool) & ~member_of(ids, households["household_id"])
    zeros = _zeros_lost(registers, households, members, orphan) if orphan.any() else ZerosLost.none()
    lost = pd.Series(members.index.isin(zeros.params.index), index=members.index)
    sink.add("members", members, orphan & ~lost, "orphan_member", "household_id", values=ids, household=ids)
    sink.add("members", members, lost, "household_id_zeros_lost", "household_id", values=ids,
             household=zeros.filed_under, params=zeros.params)
    return zeros.pointers


def without_leading_zeros(ids: pd.Series) -> pd.Series:
    """An all-digit household id as a key that ignores its leading zeros: '000001' -> '1'
    ('0' and '000' -> ''); NA for an id with anything but digits, whose zeros Excel never drops."""
    return ids.str.lstrip("0").where(ids.str.fullmatch("[0-9]+").fillna(False).astype(bool))


def typed_as_number(cells: pd.Series) -> np.ndarray:
    """Which cells were number cells as read (a TRUE/FALSE cell is not one)."""
    def is_number(t: type) -> bool:
        return issubclass(t, (int, float, np.integer, np.floating)) and not issubclass(t, (bool, np.bool_))

    return kinds_of(cells.to_numpy(dtype=object), is_number).astype(bool)


class ZerosLost(NamedTuple):
    """What the zeros-lost match found: per member (by row) the params of its issue and the
    household it is filed under; per matched household id, the pointer its findings carry."""

    params: pd.Series
    filed_under: pd.Series
    pointers: dict[str, dict[str, str]]

    @classmethod
    def none(cls) -> ZerosLost:
        return cls(pd.Series(dtype=object), pd.Series(dtype=object), {})


def _zeros_lost(registers: Registers, households: pd.DataFrame, members: pd.DataFrame, orphan: pd.Series) -> ZerosLost:
    """household_id_zeros_lost for each orphan member (by row) whose household id is a
    household's once leading zeros are ignored on both sides. A whole column stored as numbers
    orphans every member, so the matching is column-wise and a message is made once per
    distinct (id, sheet, number cell or not) of the members, not once per member."""
    keys = without_leading_zeros(members.loc[orphan, "household_id"]).dropna()
    # stripped first, the digits checked on the few households that match (a regex over every
    # household id would cost more than the rest of the check on a county with a few orphans)
    rough = member_of(households["household_id"].str.lstrip("0"), keys)
    house_keys = without_leading_zeros(households.loc[rough, "household_id"]).dropna()
    near = house_keys[member_of(house_keys, keys)]  # the households that lost or kept the zeros
    keys = keys[member_of(keys, near)]
    if keys.empty:
        return ZerosLost.none()
    cells = households.loc[near.index]
    numbers = typed_as_number(registers.raw["households"].loc[near.index, "household_id"])
    houses: dict[str, list[_IdCell]] = {}
    columns = (cells[SOURCE].tolist(), cells[ROW].tolist(), cells["household_id"].tolist(), numbers.tolist())
    for key, cell in zip(near.tolist(), zip(*columns, strict=True), strict=True):
        houses.setdefault(key, []).append(_IdCell(*cell))
    found = pd.DataFrame({
        "key": keys,
        "id": members.loc[keys.index, "household_id"],
        "src": members.loc[keys.index, SOURCE],
        "number": typed_as_number(registers.raw["members"].loc[keys.index, "household_id"]),
    })
    distinct = found.drop_duplicates(["id", "src", "number"])
    messages = _ZerosMessages(registers.sources)
    distinct = distinct.assign(params=[
        messages.params(_IdCell(src, 0, member_id, number), houses[key])
        for key, member_id, src, number in zip(*(distinct[name].tolist() for name in ("key", "id", "src", "number")), strict=True)
    ])
    by_member = found.reset_index(names="member").merge(distinct.drop(columns="key"), on=["id", "src", "number"], how="left")
    params = pd.Series(by_member["params"].to_numpy(), index=by_member["member"].to_numpy(), dtype=object)
    return ZerosLost(params, _filed_under(found, near, cells["household_id"]), _pointers(found, houses, messages))


def _filed_under(found: pd.DataFrame, near: pd.Series, house_ids: pd.Series) -> pd.Series:
    """The household each zeros-lost member's issue is filed under: the one household id its
    own matches (`near`: the matched households' keys, `house_ids` their ids), so that the
    issue reaches that household's township beside the household's own findings; the id as
    typed when it matches several (which of them is not guessed)."""
    matched = pd.DataFrame({"key": near, "id": house_ids}).drop_duplicates()
    single = matched.drop_duplicates("key", keep=False)
    owner = pd.Series(single["id"].to_numpy(), index=single["key"].to_numpy(), dtype=object)
    filed = found["key"].map(owner).astype(object)
    return filed.where(filed.notna(), found["id"].astype(object))  # objects: no NaN turns an id into a float


def _pointers(found: pd.DataFrame, houses: dict[str, list[_IdCell]], messages: _ZerosMessages) -> dict[str, dict[str, str]]:
    """Per matched household id, HouseholdIdZerosLost's pointer: on which member sheets how
    many members have its id but for zeros, and those ids as typed. Counted column-wise; a
    pointer is made once per key (most often one household), its sheets named as seen from the
    household's first row."""
    counts = found.groupby(["key", "src", "id"], sort=True).size()
    sheets: dict[str, dict[int, list[tuple[str, int]]]] = {}
    for (key, src, member_id), count in counts.items():
        sheets.setdefault(key, {}).setdefault(int(src), []).append((str(member_id), int(count)))
    pointers = {}
    for key, cells in houses.items():
        seen_from = cells[0].src
        pointer = HouseholdIdZerosLost.pointer_to(
            (messages.sheet(src, seen_from), sum(n for _, n in typed), [member_id for member_id, _ in typed])
            for src, typed in sheets[key].items())
        for cell in cells:
            pointers.setdefault(str(cell.id), pointer)
    return pointers


#: Why a column's ids lost their leading zeros, by whether its cells are numbers (certain) or
#: text with fewer zeros (a column stored as numbers once, then turned into text).
ZEROS_CAUSE = {
    True: ("{sheet}的「{header}」列存为数字, Excel 去掉了前导零",
           "the '{header}' column on {sheet} was stored as numbers and Excel dropped the leading zeros"),
    False: ("{sheet}的「{header}」少了前导零, 该列很可能曾存为数字, Excel 去掉了前导零",
            "the '{header}' column on {sheet} has fewer leading zeros: the column was most likely stored as numbers once, and Excel dropped them"),
}


class _IdCell(NamedTuple):
    """A household id cell: where it is, its text, and whether it was a number cell."""

    src: int
    row: int
    id: str
    number: bool


class _ZerosMessages:
    """The params of household_id_zeros_lost. A whole column stored as numbers gives a message
    for every household of the county: each sheet's name and each cause are made once."""

    def __init__(self, sources: Sequence[SheetSource]) -> None:
        self.sources = sources
        self._sheets: dict[tuple[int, int], dict[str, str]] = {}
        self._causes: dict[tuple[tuple[int, ...], bool, int], dict[str, str]] = {}

    def params(self, member: _IdCell, houses: list[_IdCell]) -> dict[str, object]:
        """The households a member's id matches once zeros are ignored, and the likely cause:
        the side whose ids are shorter lost the zeros, certainly if its cells are numbers."""
        shorter = [house for house in houses if len(house.id) < len(member.id)]
        lost_on = shorter or [member]  # no household is shorter: the member's own column lost them
        sheets = tuple(dict.fromkeys(int(cell.src) for cell in lost_on))
        places = [(row_on(self.sheet(house.src, member.src), house.row), house.id) for house in houses]
        return {
            "households": {
                "zh": join_list((f"{place['zh']}的户编号「{hid}」" for place, hid in places), "zh"),
                "en": join_list((f"household ID '{hid}' on {place['en']}" for place, hid in places), "en"),
            },
            "cause": self.cause(sheets, any(cell.number for cell in lost_on), member.src),
        }

    def sheet(self, src: int, seen_from: int) -> dict[str, str]:
        """A sheet named for a message about a row of `seen_from`: with its file if another."""
        key = (int(src), int(seen_from))
        if key not in self._sheets:
            source = self.sources[key[0]]
            self._sheets[key] = sheet_named(source, source.file != self.sources[key[1]].file)
        return self._sheets[key]

    def cause(self, sheets: tuple[int, ...], numbers: bool, seen_from: int) -> dict[str, str]:
        key = (sheets, bool(numbers), int(seen_from))
        if key not in self._causes:
            zh, en = ZEROS_CAUSE[key[1]]
            named = [(self.sheet(src, seen_from), _header(self.sources[src])) for src in sheets]
            self._causes[key] = {"zh": "; ".join(zh.format(sheet=sheet["zh"], header=header) for sheet, header in named),
                                 "en": "; ".join(en.format(sheet=sheet["en"], header=header) for sheet, header in named)}
        return self._causes[key]


def _header(source: SheetSource) -> str:
    column = source.column_for("household_id")
    return column.header if column else "户编号"


def living_counts(households: pd.DataFrame, members: pd.DataFrame) -> pd.Series:
    """Living members per household row (0 for a household with none)."""
    counts = members.loc[members["living"], "household_id"].value_counts()
    return households["household_id"].map(counts).fillna(0).astype(int)


def check_heads_and_sizes(registers: Registers, households: pd.DataFrame, members: pd.DataFrame, sink: IssueSink,
                          zeros_pointers: dict[str, dict[str, str]]) -> None:
    """no_head and size_mismatch; a household whose members lost its id's leading zeros says so
    (`zeros_pointers`, from check_orphans), since they are why."""
    first = first_rows(households) & households["household_id"].notna()
    ids = households["household_id"]
    # mapped from objects: from arrow strings the dicts would become an arrow struct column,
    # whose tolist costs a hundred times more
    pointers = {"zeros_lost": ids.astype(object).map(zeros_pointers)} if zeros_pointers else {}
    if "relation" in registers.present_fields("members"):
        heads = members.loc[members["living"] & members["relation"].eq(HEAD).fillna(False), "household_id"]
        no_head = (first & ~member_of(ids, heads)).astype(bool)
        sink.add("households", households, no_head, "no_head", "household_id", values=ids, household=ids,
                 params=_row_params(no_head, **pointers))
    count = living_counts(households, members)
    households["living_members"] = count
    size = households["household_size"]
    mismatch = (first & size.notna() & (size != count)).fillna(False).astype(bool)
    sink.add("households", households, mismatch, "size_mismatch", "household_size", values=size,
             household=ids, params=_row_params(mismatch, expected=count, **pointers))


def check_villages(households: pd.DataFrame, villages: pd.DataFrame, sink: IssueSink) -> None:
    def place(frame: pd.DataFrame) -> pd.Series:
        # one string per township/village pair (\x1f is never typed into a cell)
        return frame["township"].astype("string") + "\x1f" + frame["village"].astype("string")

    pairs = place(households)
    unknown = pairs.notna().fillna(False).astype(bool) & ~member_of(pairs, place(villages))
    label = households["township"].astype("string") + "/" + households["village"].astype("string")
    sink.add("households", households, unknown, "unknown_village", "village", values=label,
             household=households["household_id"])


def check_shared_houses(households: pd.DataFrame, sink: IssueSink) -> None:
    once = households[first_rows(households)]
    houses = once["house_id"]
    shared = (houses.notna() & houses.duplicated(keep=False)).fillna(False).astype(bool)
    if shared.any():
        params = _others(houses, once["household_id"], shared)
        sink.add("households", once, shared, "shared_house", "house_id", values=houses,
                 household=once["household_id"], params=params)


def check_indicator_blanks(registers: Registers, parsed: Parsed, sink: IssueSink) -> None:
    """A blank that an applicable default indicator needs is a missing_value (never a 'no')."""
    tables = parsed.tables
    households = tables["households"]
    scope: dict[RegisterName, pd.Series] = {"households": registered(households)}
    members = tables["members"]
    registered_ids = households.loc[scope["households"], "household_id"]
    scope["members"] = members["living"] & member_of(members["household_id"], registered_ids)
    if "villages" in tables:
        villages = tables["villages"]
        scope["villages"] = villages["poverty_village"].eq(True).fillna(False).astype(bool)
    if "townships" in tables:
        scope["townships"] = pd.Series(True, index=tables["townships"].index)
    for register, names in INDICATOR_FIELDS.items():
        if register not in tables:
            continue
        frame = tables[register]
        present = registers.present_fields(register)
        lacking = registers.sheets_lacking(register)
        household = frame.get("household_id")
        for name in names:
            if name in present:
                blank = pd.Series(parsed.blanks[(register, name)], index=frame.index) & scope[register]
                if name in lacking:  # a sheet without the column has no blank cell of it to fill
                    blank &= ~frame[SOURCE].isin(lacking[name])
                sink.add(register, frame, blank, "missing_value", name, household=household)

