"""Income bands and the department lists cut from them.

The county lists its low-income households in bands of per-capita net income (by default
[0, 4200), [4200, 4500), [4500, 5000): lower bound included, upper excluded, every household
whatever its category) and sends each band list to the departments that act on it. Each row
carries the household's special groups (五保/特困供养, 低保, disability, members who can work and
do not) so that they stand out: as keys of SPECIAL_GROUPS in the frame, whatever the language,
turned into labels of the run's language only where they are written (`special_labels`).

A department gets its own cut (`department_list`): only its bands, only the households its
`where` selects, only its `columns` (data minimisation: personal data). Its content digest is the
sha256 of a canonical JSON of exactly that content, never of a file, a date or the language, so
that the delivery ledger can tell "changed" from "already delivered".

Everything here is column-wise over the household frame of an audit; rows become Python
objects only when they are written out. Counties audited on a Dask cluster (exitcheck.province)
band their own households on the workers (`in_bands`) and send back those rows only; `bands()`
then reads them from the merged result, each row naming its county.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from exitcheck.errors import ConfigError
from exitcheck.i18n import Bilingual, did_you_mean, join_list, pick
from exitcheck.registers.schema import field_names, field_spec
from exitcheck.report.files import DEFAULT_MODE, atomic_path
from exitcheck.report.sheets import WORKBOOK_OPTIONS, open_workbook, write_table
from exitcheck.rules import engine
from exitcheck.rules.expr import ExpressionError, compile_expression
from exitcheck.rules.model import Band, RuleSet

if TYPE_CHECKING:
    from exitcheck.auditing import AuditResult
    from exitcheck.workspace import Department, WorkspaceConfig

SCHEMA = "exitcheck/bands@1"
#: The household keys of bands.json, and a department's columns when it names none.
DOCUMENT_KEYS: tuple[str, ...] = (
    "household_id", "township", "village", "head_name", "household_size",
    "income_per_capita", "category", "status", "special",
)
#: The county's own workbook shows the counts behind the special groups too.
WORKBOOK_KEYS: tuple[str, ...] = (*DOCUMENT_KEYS, "disabled_members", "labour_unemployed")
#: (key, Chinese label, English label) in the order they are listed in a row's `special`.
SPECIAL_GROUPS: tuple[tuple[str, str, str], ...] = (
    ("extreme_poverty", "五保/特困供养", "five guarantees / extreme-poverty support"),
    ("dibao", "低保", "minimum living guarantee"),
    ("disability", "残疾", "member with a disability"),
    ("unemployed", "有劳动力未务工", "member able to work, without work"),
)
_SPECIAL_LABELS: dict[str, tuple[str, str]] = {key: (zh, en) for key, zh, en in SPECIAL_GROUPS}
_LABELS: dict[str, tuple[str, str]] = {
    "special": ("特殊群体", "Special groups"),
    "id_number": ("户主证件号码", "Head's ID number"),
    "band": ("收入档", "Income band"),
}
#: Column of a band row holding the head's ID number, worked out where the members are (on a
#: Dask worker) and only when a department lists `id_number`.
HEAD_ID = "_head_id_number"
_SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def list_columns() -> list[str]:
    """Every column a department may ask for: household fields, derived figures, `special`, and
    `id_number` (the head's, and only when asked for by that name)."""
    household = [name for name in field_names("households") if name != "head_id_number"]
    return [*household, *engine.DERIVED["household"], "special", "id_number"]


def column_label(name: str, lang: str) -> str:
    """A column's header in a workbook: the register's own header where there is one."""
    if name in _LABELS:
        return pick(lang, *_LABELS[name])
    derived = engine.DERIVED["household"].get(name)
    if derived:
        return pick(lang, derived[1], derived[2])
    try:
        return field_spec("households", name).label(lang)
    except KeyError:
        return name


def band_label(band: Band, lang: str) -> str:
    return band.label_en if lang == "en" and band.label_en else band.label


# ---- banding ----

def check_bands(bands: Sequence[Band], where: str) -> None:
    """Bands may leave gaps between them but never overlap: a household sits in one band."""
    ids = [band.id for band in bands]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ConfigError(f"{where}: 收入分档 {twice[0]} 重复", f"{where}: band {twice[0]} is defined twice")
    ordered = sorted(bands, key=lambda band: band.min)
    for low, high in zip(ordered, ordered[1:], strict=False):
        if high.min < low.max:
            raise ConfigError(
                f"{where}: 收入分档 {low.id} 与 {high.id} 重叠",
                f"{where}: bands {low.id} and {high.id} overlap",
            )


def assign_bands(income: pd.Series, bands: Sequence[Band]) -> pd.Series:
    """Each value's band id: min <= income < max; NA for a blank income or one in no band."""
    values = pd.Series(income, dtype="Float64").to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):  # NaN compares False: a blank income is in no band
        conditions = [(values >= band.min) & (values < band.max) for band in bands]
    chosen = np.select(conditions, [band.id for band in bands], default="") if bands else np.full(len(values), "")
    return pd.Series(chosen, index=income.index, dtype="string").replace("", pd.NA)


def special_groups(households: pd.DataFrame) -> pd.Series:
    """Per household, the list of its special groups' keys (possibly empty), in the order of
    SPECIAL_GROUPS: the same in every language (`special_labels` names them).

    The four yes/no flags make a 4-bit code per household; each of the 16 codes maps to its
    prebuilt list, so no Python runs per household.
    """
    attribute = households["poverty_attribute"] if "poverty_attribute" in households else pd.Series(pd.NA, index=households.index, dtype="string")
    flags = [
        attribute.eq("特困供养贫困户"),
        attribute.eq("低保贫困户"),
        _count(households, "disabled_members").gt(0),
        _count(households, "labour_unemployed").gt(0),
    ]
    code = np.zeros(len(households), dtype=np.int64)
    for bit, flag in enumerate(flags):
        code |= flag.fillna(False).to_numpy(dtype=bool).astype(np.int64) << bit
    keys = [key for key, _zh, _en in SPECIAL_GROUPS]
    table = {value: [key for bit, key in enumerate(keys) if value >> bit & 1] for value in range(1 << len(keys))}
    return pd.Series(code, index=households.index).map(table)


def special_labels(special: pd.Series, lang: str) -> pd.Series:
    """Each row's special groups (keys) as their labels in `lang`, in the same order."""
    return special.map(lambda keys: [pick(lang, *_SPECIAL_LABELS[key]) for key in keys], na_action="ignore")


def _labelled(frame: pd.DataFrame, lang: str) -> pd.DataFrame:
    """`frame` with its special groups, if it has them, as labels in `lang`: as written out."""
    return frame.assign(special=special_labels(frame["special"], lang)) if "special" in frame else frame


#: The household figure each special group is counted from.
_GROUP_OF = {"disabled_members": "disability", "labour_unemployed": "unemployed"}


def _count(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame:
        return pd.Series(0, index=frame.index, dtype="Int64")
    return frame[name].astype("Int64").fillna(0)


@dataclass
class Banded:
    """The households of an audit that fall in a band, with band and special groups.

    `frame` keeps every household column (so that a department may pick any), sorted by
    township, village and household id; `blank_income` counts households left out because their
    income is blank or unreadable, `no_household_id` the rows of the households sheet left out
    because their household ID is (data issues the audit lists; here they are only counted).
    """

    as_of: date
    bands: list[Band]
    frame: pd.DataFrame
    lang: str
    blank_income: int
    result: AuditResult
    no_household_id: int = 0
    #: household figures that cannot be told for want of a member column (figure -> the
    #: columns), so the special groups counted from them are incomplete
    untold: dict[str, list[str]] = field(default_factory=dict)
    #: several counties: the counties each untold figure is untold in (the others have it)
    untold_in: dict[str, list[str]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return band_counts(self.frame, self.bands)

    def notes(self) -> list[Bilingual]:
        """What the lists cannot show: a special group no column tells (a 成员表 without 健康状况
        would otherwise list no household with a disability, and shade none)."""
        out = []
        for figure, group in _GROUP_OF.items():
            if figure in self.untold:
                lacking, counties = self.untold[figure], self.untold_in.get(figure, [])
                zh, en = _SPECIAL_LABELS[group]
                out.append(Bilingual(
                    f"{_member_columns(lacking, counties, 'zh')}, 无法判断哪些户属于「{zh}」: 名单的特殊群体中没有它, 按它筛选的部门名单不投递",
                    f"{_member_columns(lacking, counties, 'en')}, so which households are '{en}' cannot be told: "
                    "the lists' special groups leave it out, and a department that selects by it gets no list"))
        return out

    @property
    def several_counties(self) -> bool:
        """Whether the rows come from several counties (a `county` column then names each)."""
        return bool(getattr(self.result, "several_counties", False))

    def head_ids(self, rows: pd.DataFrame) -> pd.Series:
        """The head's ID number of each of `rows` (a part of `frame`)."""
        if HEAD_ID in rows:
            return rows[HEAD_ID].astype("string")
        if self.several_counties:  # the members stayed on the workers
            raise ValueError("the counties were banded without the heads' ID numbers (id_numbers=True)")
        return head_id_numbers(self.result, rows["household_id"])


def _member_columns(names: Sequence[str], counties: Sequence[str], lang: str) -> str:
    """成员表没有「劳动技能」、「务工状况」列 / the members register has no ... column; of several
    counties, those that lack them first ("乙县: 成员表没有…")."""
    if lang == "en":
        where = f"{', '.join(counties)}: " if counties else ""
        return f"{where}the members register has no {', '.join(field_spec('members', n).label('en') for n in names)} column"
    where = f"{'、'.join(counties)}: " if counties else ""
    return f"{where}成员表没有{'、'.join('「' + field_spec('members', n).label('zh') + '」' for n in names)}列"


def band_counts(frame: pd.DataFrame, bands: Sequence[Band]) -> dict[str, int]:
    """Households per band id, every band present (zero when empty), in the bands' order."""
    present = frame["band"].value_counts()
    return {band.id: int(present.get(band.id, 0)) for band in bands}


def in_bands(households: pd.DataFrame, bands: Sequence[Band]) -> pd.DataFrame:
    """The households whose income falls in one of `bands`, every column kept, with `band`."""
    band = assign_bands(households["income_per_capita"], bands)
    chosen = band.notna().to_numpy(dtype=bool)
    frame = households[chosen].copy()
    frame["band"] = band[chosen]
    return frame


def bands(result: AuditResult, *, lang: str | None = None) -> Banded:
    """Put every household of the audit in its income band, with its special groups.

    For several counties audited on a cluster (exitcheck.province.ProvinceResult) the rows were
    banded on the workers; here they are only labelled and sorted, county first."""
    lang = lang or result.lang
    ruleset_bands = list(result.ruleset.bands)
    check_bands(ruleset_bands, result.ruleset.path)
    order = ["township", "village", "household_id"]
    if result.several_counties:
        rows = result.band_rows  # type: ignore[attr-defined]
        if rows is None:
            raise ValueError("the counties were audited without their band rows (bands=True)")
        frame, blank, order = rows.copy(), int(result.blank_income), ["county", *order]  # type: ignore[attr-defined]
        no_id = int(result.no_household_id)  # type: ignore[attr-defined]
        untold, untold_in = dict(result.unfounded), dict(result.unfounded_in)  # type: ignore[attr-defined]
    else:
        households = result.frames["household"]
        frame = in_bands(households, ruleset_bands)
        blank = int(households["income_per_capita"].isna().sum())
        no_id = rows_without_household_id(result)
        untold, untold_in = engine.unfounded_figures("household", result.registers), {}
    frame["special"] = special_groups(frame)
    frame = frame.sort_values(order, kind="stable")
    return Banded(result.as_of, ruleset_bands, frame, lang, blank, result, no_id, untold, untold_in)


def rows_without_household_id(result: AuditResult) -> int:
    """Rows of the households sheet that are no household of the audit: their household ID is
    blank, or lost its digits as a number cell."""
    return int(result.parsed.tables["households"]["household_id"].isna().sum())


def count_table(frame: pd.DataFrame, bands: Sequence[Band], lang: str, *, by_township: bool = True,
                by_county: bool = False) -> pd.DataFrame:
    """Households by township (rows) and band (columns), with totals: the summary sheet.
    `by_county`: by county and township (township names recur across counties)."""
    total = pick(lang, "合计", "Total")
    from exitcheck.history import NO_TOWNSHIP, township_label

    blank = township_label(NO_TOWNSHIP, lang)  # as the gap lists name it
    labels = [band_label(band, lang) for band in bands]
    places = (["county"] if by_county else []) + (["township"] if by_township else [])
    if places:
        keys = {name: frame[name].astype(object).fillna(blank) for name in places}
    else:
        keys = {"": pd.Series(total, index=frame.index, dtype=object)}
    # A groupby of the real places, not a crosstab: crosstab pairs every county with every
    # township, and under pandas 2.2 it fails on an empty frame and counts in floats. A
    # household in no band still puts its place in the table, with zeros.
    counted = pd.DataFrame({**keys, "band": frame["band"].astype(object)})
    if len(counted):
        by_place = counted.groupby([*keys], dropna=False)["band"]
        table = by_place.value_counts(dropna=False).unstack("band", fill_value=0)
    else:
        table = pd.DataFrame(index=pd.MultiIndex.from_arrays([[]] * len(keys), names=[*keys]))
    table = table.reindex(columns=[band.id for band in bands], fill_value=0).astype("int64")
    table.columns = labels
    if places:
        totals_row = pd.MultiIndex.from_tuples([(total, "")]) if len(places) > 1 else [total]
        sums = pd.DataFrame([table.sum()], index=totals_row)
        table = pd.concat([table, sums.astype("int64")])
    table[total] = table.sum(axis=1)
    names = {"county": pick(lang, "县", "County"), "township": pick(lang, "乡镇", "Township")}
    table.index.names = [names[name] for name in places] if places else [""]
    return table.reset_index()


# ---- outputs for the county ----

def _objects(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells as Python objects with NA as None (pandas turns nullable ints and floats, strings
    and booleans into plain int, float, str and bool on the way), ready for JSON."""
    part = frame.astype(object)
    return part.where(part.notna(), None)


def _records(frame: pd.DataFrame, columns: Sequence[str], lang: str) -> list[dict[str, Any]]:
    return _objects(_labelled(frame.reindex(columns=list(columns)), lang)).to_dict("records")


def json_default(value: Any) -> Any:
    """For json.dumps: whatever pandas left as a numpy or pandas scalar."""
    plain = engine.plain(value)
    if plain is value:
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")
    return plain


def _bound(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _document(as_of: date, bands: Sequence[Band], frame: pd.DataFrame, columns: Sequence[str], lang: str) -> dict[str, Any]:
    entries = []
    for band in bands:
        part = frame[frame["band"] == band.id]
        entries.append({
            "id": band.id, "label": band_label(band, lang), "min": _bound(band.min), "max": _bound(band.max),
            "households": _records(part, columns, lang),
        })
    return {"schema": SCHEMA, "as_of": as_of.isoformat(), "bands": entries}


def bands_document(banded: Banded) -> dict[str, Any]:
    """bands.json (exitcheck/bands@1): as_of, and per band its bounds and households (each
    with its `county` first when several counties were audited together)."""
    keys = ("county", *DOCUMENT_KEYS) if banded.several_counties else DOCUMENT_KEYS
    return _document(banded.as_of, banded.bands, banded.frame, keys, banded.lang)


def _write_book(workbook: Any, bands: Sequence[Band], frame: pd.DataFrame, columns: Sequence[str], lang: str, title: str,
                *, by_county: bool = False) -> None:
    """A summary sheet, then one sheet per band with its households."""
    by_township = "township" in columns
    summary = count_table(frame, bands, lang, by_township=by_township, by_county=by_county)
    write_table(workbook, pick(lang, "汇总", "Summary"), summary, [str(c) for c in summary.columns], title=title,
                total_rows=1 if by_township or by_county else 0)
    headers = [column_label(column, lang) for column in columns]
    used = {pick(lang, "汇总", "Summary")}
    for band in bands:
        part = frame.loc[frame["band"] == band.id].reindex(columns=list(columns))
        stand_out = stands_out(part["special"]) if "special" in part else None
        if "special" in part:  # a list in each row, written as running text of the language
            part["special"] = special_labels(part["special"], lang).map(lambda groups: join_list(groups, lang), na_action="ignore")
        label = band_label(band, lang)
        write_table(workbook, _sheet_name(label, used), part, headers, title=f"{label}: {len(part)}{pick(lang, ' 户', ' households')}",
                    number_formats={"income_per_capita": "#,##0.00"}, stand_out=stand_out)


#: The groups that must stand out in the band lists (domain.md): five guarantees and disability.
STAND_OUT_GROUPS = ("extreme_poverty", "disability")


def stands_out(special: pd.Series) -> list[bool]:
    """Per row, whether its special groups (keys) include one that must stand out."""
    return [isinstance(groups, list) and not set(STAND_OUT_GROUPS).isdisjoint(groups) for groups in special]


def _sheet_name(label: str, used: set[str]) -> str:
    base = _SHEET_NAME_FORBIDDEN.sub("-", label).strip("'")[:31] or "band"
    name, number = base, 2
    while name.lower() in {u.lower() for u in used}:
        suffix = f" ({number})"
        name, number = base[: 31 - len(suffix)] + suffix, number + 1
    used.add(name)
    return name


def write_bands_xlsx(path: Path, banded: Banded, mode: int = DEFAULT_MODE) -> Path:
    """bands.xlsx: a summary by township and band, then one sheet per band, every household."""
    title = pick(banded.lang, f"低收入户分档名单(基准日 {banded.as_of.isoformat()})", f"Low-income households by band (as of {banded.as_of.isoformat()})")
    with atomic_path(path, mode) as temp:
        workbook = open_workbook(temp)
        several = banded.several_counties
        _write_book(workbook, banded.bands, banded.frame, ("county", *WORKBOOK_KEYS) if several else WORKBOOK_KEYS,
                    banded.lang, title, by_county=several)
        workbook.close()
    return path


# ---- department lists ----

@dataclass
class DepartmentList:
    """One department's cut of the bands: its households, its columns, and their digest.

    `frame` holds exactly `columns` plus `band`, indexed by household id (which is written out
    only when it is one of the columns).
    """

    department: str
    name: str
    as_of: date
    lang: str
    bands: list[Band]
    columns: list[str]
    frame: pd.DataFrame
    digest: str
    by_county: bool = False  # the summary by county and township (several counties, `county` listed)
    #: households of its bands that its `where` cannot tell (a blank input): left out, and said
    unknown: int = 0
    #: why the list must not go out: its `where` reads a figure no column gives (it would lack
    #: every household it exists to find), or tells none of its bands' households (an empty
    #: list would tell the department there is no one)
    refused: Bilingual | None = None

    @property
    def rows(self) -> int:
        return len(self.frame)

    def counts(self) -> dict[str, int]:
        return band_counts(self.frame, self.bands)

    @property
    def stem(self) -> str:
        """File name without extension: `<dept>-<as_of>-<digest12>`."""
        return f"{self.department}-{self.as_of.isoformat()}-{self.digest[:12]}"

    def summary(self) -> str:
        """'4200元以下 3 户, 4200-4500元 1 户 (共 4 户)': for a subject line or a console."""
        counts = self.counts()
        parts = [f"{band_label(band, self.lang)} {counts[band.id]}{pick(self.lang, ' 户', '')}" for band in self.bands]
        total = pick(self.lang, f"共 {self.rows} 户", f"{self.rows} households in all")
        return f"{', '.join(parts)} ({total})"

    def document(self) -> dict[str, Any]:
        """The bands.json shape with only this department's bands, households and columns."""
        document = _document(self.as_of, self.bands, self.frame, self.columns, self.lang)
        # households of its bands its filter could not tell (a blank input): a receiver by folder
        # or HTTP is told, as the e-mail's text tells its reader
        untold = {"households_not_told": self.unknown} if self.unknown else {}
        return {**document, "department": {"id": self.department, "name": self.name}, **untold, "digest": self.digest}

    def json_bytes(self) -> bytes:
        return json.dumps(self.document(), ensure_ascii=False, indent=2, default=json_default).encode("utf-8")

    def xlsx_bytes(self) -> bytes:
        """The workbook in memory: personal data never touches a temporary file."""
        import xlsxwriter

        buffer = io.BytesIO()
        workbook = xlsxwriter.Workbook(buffer, {**WORKBOOK_OPTIONS, "in_memory": True})
        title = pick(self.lang, f"{self.name or self.department} 低收入户名单(基准日 {self.as_of.isoformat()})",
                     f"{self.name or self.department}: low-income households (as of {self.as_of.isoformat()})")
        _write_book(workbook, self.bands, self.frame, self.columns, self.lang, title, by_county=self.by_county)
        workbook.close()
        return buffer.getvalue()


def canonical_json(value: Any) -> bytes:
    """One byte string for one content: sorted keys, no spaces, no NaN."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False, default=json_default).encode("utf-8")


def content_digest(frame: pd.DataFrame, columns: Sequence[str], bands: Sequence[Band], unknown: int = 0) -> str:
    """sha256 of the rows (sorted by household id, only `columns`, with their band) and of the
    band bounds. The date and the language are left out on purpose: a new night alone, or a run
    in the other language, is not a new list. The special groups go in by their Chinese labels
    whatever the language, as earlier versions hashed them for a Chinese run: the lists those
    delivered keep their digest and are not sent again after an upgrade. `unknown`, the
    households the list's filter could not tell, goes in only when there are any (the list says
    how many: when that alone changes, it is a new list)."""
    ordered = frame.sort_index(kind="stable").reindex(columns=["band", *columns])
    rows = _objects(_labelled(ordered, "zh")).to_numpy().tolist()
    payload: dict[str, Any] = {
        "bands": [{"id": band.id, "min": band.min, "max": band.max} for band in bands],
        "columns": list(columns),
        "rows": rows,
    }
    if unknown:
        payload["not_told"] = unknown
    return hashlib.sha256(canonical_json(payload)).hexdigest()


def head_id_numbers(result: AuditResult, household_ids: pd.Series) -> pd.Series:
    """The head's ID number per household: the households sheet's own column where it has a
    value, else the ID of the living member whose relation is 户主."""
    households = result.frames["household"]
    own = pd.Series(pd.NA, index=household_ids.index, dtype="string")
    if "head_id_number" in households:
        own = household_ids.map(households.drop_duplicates("household_id").set_index("household_id")["head_id_number"])
    members = result.frames["member"]
    heads = members[members["relation"].astype("string").str.strip().eq("户主").fillna(False).to_numpy(dtype=bool)]
    by_household = heads.drop_duplicates("household_id").set_index("household_id")["id_number"]
    return own.astype("string").fillna(household_ids.map(by_household).astype("string"))


def department_list(
    banded: Banded,
    department_id: str,
    spec: Department,
    ruleset: RuleSet,
    *,
    position: Callable[[str], str] | None = None,
) -> DepartmentList:
    """A department's list: its bands, the households its `where` selects, its columns only.

    `position(key)` says where in exitcheck.yaml a key of this department is, for errors.
    """
    at = position or (lambda key: f"departments.{department_id}.{key}")
    known = {band.id: band for band in banded.bands}
    wanted = spec.bands or list(known)
    for band_id in wanted:
        if band_id not in known:
            hint_zh, hint_en = did_you_mean(band_id, known)
            raise ConfigError(f"{at('bands')}: 没有收入分档 {band_id!r}{hint_zh}", f"{at('bands')}: no band {band_id!r}{hint_en}")
    chosen = [known[band_id] for band_id in dict.fromkeys(wanted)]
    frame = banded.frame
    keep = frame["band"].isin([band.id for band in chosen]).to_numpy(dtype=bool)
    unknown, refused = 0, None
    if spec.where:
        selected, needed = _where(spec.where, frame, ruleset, at("where"))
        unknown = int((keep & selected.isna().to_numpy(dtype=bool)).sum())
        # a filter reading a figure no column gives (no 务工状况: labour_unemployed) lacks every
        # household it would have found, even when another term picks some: not sent; nor is
        # a list whose filter tells none of its bands' households
        lacking = [name for name in needed if name in banded.untold]
        if lacking or (unknown and unknown == int(keep.sum())):
            refused = _untold_where(spec.where, unknown, lacking, banded, at("where"))
        keep = keep & selected.fillna(False).to_numpy(dtype=bool)
    rows = frame[keep]
    columns = list(spec.columns or DOCUMENT_KEYS)
    out = rows.reindex(columns=[c for c in columns if c != "id_number"])
    if "id_number" in columns:  # asked for by name: the head's, and only then
        out["id_number"] = banded.head_ids(rows)
    out = out.reindex(columns=columns)
    out["band"] = rows["band"]
    out.index = pd.Index(rows["household_id"].astype(object), name="household_id")
    digest = content_digest(out, columns, chosen, unknown)
    return DepartmentList(department_id, spec.name, banded.as_of, banded.lang, chosen, columns, out, digest,
                          by_county=banded.several_counties and "county" in columns, unknown=unknown, refused=refused)


def _where(text: str, frame: pd.DataFrame, ruleset: RuleSet, at: str) -> tuple[pd.Series, list[str]]:
    """A department's `where`: the rule language over household fields, derived figures and the
    indicators' ok_ columns; per household True, False or NA (a blank input: the household is
    left out, and counted), and the columns it reads."""
    extra = [name for name in engine.ok_columns(ruleset) if name in frame.columns]
    mapping, types, _labels = engine.names_for("household", ruleset, extra)
    try:
        expression = compile_expression(text, fields=mapping, params=ruleset.spec.params, types=types, boolean=True)
        selected = expression.evaluate_bool(frame)
    except ExpressionError as error:
        raise ConfigError(f"{at}: where: {error.in_chinese()}", f"{at}: where: {error}") from None
    return selected, sorted(expression.fields)


def _untold_where(text: str, households: int, figures: Sequence[str], banded: Banded, at: str) -> Bilingual:
    """Why a department's list is not sent: its `where` reads `figures` that no column gives (in
    some county, of several), or tells none of the `households` of its bands (every input it
    needs is blank)."""
    if figures:
        lacking = list(dict.fromkeys(column for name in figures for column in banded.untold[name]))
        counties = list(dict.fromkeys(county for name in figures for county in banded.untold_in.get(name, ())))
        return Bilingual(
            f"筛选条件「{text}」要用的数无法计算({_member_columns(lacking, counties, 'zh')}), 名单会漏掉要找的户, 未投递; "
            f"请补上该列, 或修改 {at}",
            f"the filter '{text}' reads a figure that cannot be computed ({_member_columns(lacking, counties, 'en')}), so the "
            f"list would miss the households it looks for and was not sent; add the column or change {at}")
    return Bilingual(
        f"筛选条件「{text}」对所选收入档的 {households} 户都无法判断(所需的数据都为空), 名单未投递, 以免部门误以为没有这样的户; "
        f"请补上所缺的数据, 或修改 {at}",
        f"the filter '{text}' cannot tell any of the {households} households of its bands (the data it needs is blank), "
        f"so the list was not sent (an empty list would say there is no such household); add the missing data or change {at}")


def department_lists(banded: Banded, config: WorkspaceConfig, department_ids: Sequence[str], ruleset: RuleSet) -> dict[str, DepartmentList]:
    """The lists of several departments of a workspace, every one checked before any is sent."""
    return {
        department_id: department_list(
            banded, department_id, config.department(department_id), ruleset,
            position=lambda key, d=department_id: config.position("departments", d, key),
        )
        for department_id in department_ids
    }
