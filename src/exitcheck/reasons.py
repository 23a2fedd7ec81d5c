"""The words of a gap's reason beyond its rule's template, so that a township cadre can act on it
without opening the registers: which value could not be read (and that it was not blank), which
members of the household, which register errors, which indicators a risk list rests on.

Findings indexes the data issues once per audit; the functions below turn one unit's facts into
a phrase in Chinese or English. No ID number ever enters a phrase (reasons go to gaps.json).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from exitcheck.i18n import join_list, pick
from exitcheck.issues import CATALOGUE, DataIssue
from exitcheck.registers.model import ROW, SOURCE, Registers
from exitcheck.registers.schema import field_label
from exitcheck.rules.figures import Conflicting, InputsUnread, ValueUnknown

MEMBERS_SHOWN = 3  # members named in a reason before "等N人"
ERRORS_SHOWN = 3  # kinds of register error named before "等N处"
RELATIONS_EN = {
    "户主": "head", "配偶": "spouse", "之子": "son", "之女": "daughter", "之父": "father",
    "之母": "mother", "之孙子": "grandson", "之孙女": "granddaughter", "之儿媳": "daughter-in-law",
    "之女婿": "son-in-law", "之兄弟姐妹": "sibling", "之祖父": "grandfather", "之祖母": "grandmother",
}
#: The placeholders the reason supplies beyond the unit's fields and the params.
MEMBERS, FAILING, ERROR_LIST, ISSUES_SHEET = "members", "failing", "data_error_list", "issues_sheet"
CellKey = tuple[str, str, int, str]  # file, sheet, Excel row, field


@dataclass(frozen=True)
class Findings:
    """The data issues a reason quotes: values that could not be read, by cell (a cell holding
    还行 is not blank, whatever the parsed frame says), and the error-level issues by household."""

    sources: Sequence[tuple[str, str]]  # per SOURCE index: (file, sheet)
    unreadable: dict[CellKey, str]
    errors: dict[str, list[DataIssue]]
    #: household id -> the pointer to its members whose household id lost its leading zeros
    zeros_pointers: dict[str, dict[str, str]] = field(default_factory=dict)
    #: (file, sheet, Excel row) -> the issue of the household_id cell of that household row, for
    #: a row an incidence cannot count (why its id cannot be read)
    household_ids: dict[tuple[str, str, int], DataIssue] = field(default_factory=dict)
    #: (SOURCE index, field) of the sheets with no column for a field another sheet of their
    #: register has (Registers.sheets_lacking): a value there is not blank, it is not there
    lacking: set[tuple[int, str]] = field(default_factory=set)

    @classmethod
    def of(cls, registers: Registers, issues: Iterable[DataIssue],
           zeros_pointers: dict[str, dict[str, str]] | None = None) -> Findings:
        unreadable: dict[CellKey, str] = {}
        errors: dict[str, list[DataIssue]] = {}
        household_ids: dict[tuple[str, str, int], DataIssue] = {}
        for issue in issues:
            if issue.code == "bad_value" and issue.value is not None and issue.field and issue.row is not None:
                unreadable[(issue.file or "", issue.sheet or "", issue.row, issue.field)] = issue.value
            if issue.severity == "error" and issue.household_id:
                errors.setdefault(issue.household_id, []).append(issue)
            if issue.code in ID_CELL_CODES and issue.field == "household_id" and issue.row is not None:
                household_ids[(issue.file or "", issue.sheet or "", issue.row)] = issue
        lacking = {(source, name) for source, names in registers.columns_lacking().items() for name in names}
        return cls([(s.file, s.sheet) for s in registers.sources], unreadable, errors, zeros_pointers or {}, household_ids, lacking)

    def column_lacking(self, row: dict[str, Any], field: str) -> str | None:
        """The sheet the register row `row` came from, when that sheet has no column for
        `field` (another sheet of the register has); None otherwise."""
        source = row.get(SOURCE)
        if source is None or (int(source), field) not in self.lacking:
            return None
        return self.sources[int(source)][1]

    def unreadable_value(self, row: dict[str, Any], field: str) -> str | None:
        """The value as typed of `field` in the register row `row` came from, when it could not
        be read; None when the cell is really blank (or the row's position is unknown)."""
        source, excel_row = row.get(SOURCE), row.get(ROW)
        if source is None or excel_row is None or not 0 <= int(source) < len(self.sources):
            return None
        file, sheet = self.sources[int(source)]
        return self.unreadable.get((file, sheet, int(excel_row), field))

    def no_living_member(self, household_id: str | None, lang: str) -> str:
        """Why a member rule cannot be told for a household with no living member; when members
        have its id but for leading zeros, the pointer to them (they are why)."""
        pointer = self.zeros_pointers.get(household_id or "")
        return pick(lang, "该户没有在世成员", "no living member") + (pick(lang, pointer["zh"], pointer["en"]) if pointer else "")

    def error_list(self, household_id: str | None, lang: str) -> str:
        """The household's register errors by title, e.g. 性别与身份证号不符、户编号重复(2处)."""
        found = self.errors.get(household_id or "", [])
        titles = Counter(_issue_title(issue, lang) for issue in found)
        named = [title if n == 1 else pick(lang, f"{title}({n}处)", f"{title} ({n})") for title, n in titles.items()]
        shown = join_parts(named[:ERRORS_SHOWN], lang)
        if len(named) > ERRORS_SHOWN:
            shown += pick(lang, f"等{len(found)}处", f" and more ({len(found)} in all)")
        return shown


#: Issue codes about one cell's value: their title names the column too (认可度取值无法识别).
CELL_CODES = frozenset({"missing_value", "bad_value"})
#: Issue codes that say why a household row's id cannot be read.
ID_CELL_CODES = frozenset({"bad_value", "household_id_precision_lost"})


def _issue_title(issue: DataIssue, lang: str) -> str:
    title = CATALOGUE[issue.code].title["en" if lang == "en" else "zh"]
    if issue.code not in CELL_CODES or not (issue.field or issue.header):
        return title
    english = field_label(issue.field, "en") if issue.field else issue.header
    return pick(lang, f"{title}({issue.header or issue.field})", f"{title} ({english})")


def lacking_column(label: str, sheet: str, lang: str) -> str:
    """Why an input is missing when its row's sheet has no such column."""
    return pick(lang, f"工作表「{sheet}」没有「{label}」列", f"sheet '{sheet}' has no {label} column")


def blank_input(label: str, unreadable: str | None, lang: str) -> str:
    """Why an input is missing: blank, present but not understood (quoted), or a number the
    field does not take (a population of 0: read, but not valid, shown as typed: 0 not 0.0)."""
    if unreadable is None:
        return pick(lang, f"{label}为空", f"{label} blank")
    number = _as_number(unreadable)
    if number is not None:
        return pick(lang, f"{label}「{number}」不符合要求", f'{label} "{number}" not valid')
    return pick(lang, f"{label}「{unreadable}」无法识别", f'{label} "{unreadable}" not recognised')


def _as_number(text: str) -> str | None:
    """A value as typed that is a number, as a spreadsheet shows it (0.0 read from a number
    cell is 0); None for anything else (an ID stored as a number has its own reasons)."""
    try:
        number = float(text)
    except ValueError:
        return None
    if number != number or abs(number) >= 1e15:  # NaN; a long ID's digits, not a figure
        return None
    return str(int(number)) if number.is_integer() else text


def join_parts(parts: Sequence[str], lang: str) -> str:
    return pick(lang, "、", "; ").join(parts)


def unknown_reason(parts: Sequence[str], lang: str) -> str:
    """The message of an unknown (待核实) finding from why each input is missing."""
    if not parts:
        return pick(lang, "待核实: 判断所需信息为空", "unknown: the rule's inputs are blank")
    return pick(lang, "待核实: ", "unknown: ") + join_parts(parts, lang)


def member_label(member: dict[str, Any], lang: str) -> str:
    """朱丽(配偶, 54岁) / 朱丽 (spouse, 54): the name a cadre asks for at the door."""
    name = member.get("name") or pick(lang, "(无姓名)", "(no name)")
    relation = member.get("relation")
    if relation and lang == "en":
        relation = RELATIONS_EN.get(relation, relation)
    age = member.get("age")
    facts = [str(relation)] if relation else []
    if age is not None:
        facts.append(pick(lang, f"{age}岁", str(age)))
    if not facts:
        return str(name)
    return pick(lang, f"{name}({', '.join(facts)})", f"{name} ({', '.join(facts)})")


def some_of(phrases: Sequence[str], lang: str) -> str:
    """A few phrases, then how many there are in all: A、B、C等5人 / A, B, C and 2 more."""
    shown = join_list(phrases[:MEMBERS_SHOWN], lang)
    if len(phrases) > MEMBERS_SHOWN:
        shown += pick(lang, f"等{len(phrases)}人", f" and {len(phrases) - MEMBERS_SHOWN} more")
    return shown


def with_detail(message: str, detail: str, placeholder: str, placeholders: Iterable[str]) -> str:
    """A template that does not place the detail itself (a rule set of one's own) still gets it."""
    if placeholder in placeholders or not detail:
        return message
    return f"{message}: {detail}"


ROWS_SHOWN = 3  # register rows named in a reason before "等N户"


def figure_unknown(facts: Sequence[Any], level: str, findings: Findings, lang: str) -> list[str]:
    """Why a unit's figure (an incidence, a per-person income) is blank, from figures' facts:
    each village value it is computed from that cannot be read, as typed (the village named
    unless the unit is that village; with its township at county level),
    and the household rows counted in no village, by sheet and cause, e.g.
    户表第12行的户未计入贫困人口(户编号被存为数字(5.13434E+17))."""
    parts: list[str] = []
    rows: dict[tuple[int, str, str | None, str | None], list[int]] = {}
    for fact in facts:
        if isinstance(fact, ValueUnknown):
            value = findings.unreadable_value({SOURCE: fact.source, ROW: fact.row}, fact.field)
            parts.append(blank_input(_value_label(fact, level, lang), value, lang))
        elif isinstance(fact, Conflicting):
            label, where = _value_label(fact, level, lang), _rows_named(fact.rows, findings, lang)
            parts.append(pick(lang, f"{label}不一致({where}重复登记, 不知以哪行为准)",
                              f"{label} differs between the repeated rows ({where}): which is right is not known"))
        elif isinstance(fact, InputsUnread):
            files = join_list(list(fact.files), lang)
            parts.append(pick(lang, f"输入文件 {files} 无法读取, 其中的户未计入", f"{files} could not be read: its households are not counted"))
        else:
            place = (fact.township, fact.village) if fact.cause == "unknown_village" else (None, None)
            rows.setdefault((fact.source, fact.cause, *place), []).append(fact.row)
    for (source, cause, township, village), numbers in rows.items():
        file, sheet = findings.sources[source] if 0 <= source < len(findings.sources) else ("", "")
        shown = join_list(numbers[:ROWS_SHOWN], lang)
        more = len(numbers) - ROWS_SHOWN
        why = _uncounted_cause(cause, township, village, [(file, sheet, n) for n in numbers], findings, lang)
        # 第8、20、39行等33户, not 第8、20、39等33户行的户
        rows_zh = f"{shown}行等{len(numbers)}户" if more > 0 else f"{shown}行的户"
        rows_en = f"{shown} and {more} more" if more > 0 else shown
        parts.append(pick(lang, f"{sheet}第{rows_zh}未计入贫困人口({why})",
                          f"{'household' if len(numbers) == 1 else 'households'} on row{'' if len(numbers) == 1 else 's'} "
                          f"{rows_en} of {sheet} not counted among the poor ({why})"))
    return parts


def _rows_named(rows: Sequence[tuple[int, int]], findings: Findings, lang: str) -> str:
    """Register rows (position, Excel row) by sheet: 村表第 4、7 行 / 村表 rows 4, 7."""
    by_sheet: dict[str, list[int]] = {}
    for source, row in rows:
        sheet = findings.sources[source][1] if 0 <= source < len(findings.sources) else ""
        by_sheet.setdefault(sheet, []).append(row)
    named = [pick(lang, f"{sheet}第 {join_list(numbers, 'zh')} 行", f"{sheet} row{'s' if len(numbers) > 1 else ''} {join_list(numbers, 'en')}")
             for sheet, numbers in by_sheet.items()]
    return join_list(named, lang)


def _value_label(fact: ValueUnknown | Conflicting, level: str, lang: str) -> str:
    label = field_label(fact.field, lang)
    if level == "village" or fact.village is None:  # the unit's own value
        return label
    place = fact.village if level == "township" else pick(lang, f"{fact.township or ''}{fact.village}", f"{fact.township}/{fact.village}")
    return pick(lang, f"{place}{label}", f"{label.lower()} of {place}")


def _uncounted_cause(cause: str, township: str | None, village: str | None, cells: Sequence[tuple[str, str, int]],
                     findings: Findings, lang: str) -> str:
    """Why the household rows at `cells` (file, sheet, Excel row) are counted in no village."""
    if cause == "unknown_village":
        return pick(lang, f"村表中没有{township}{village}", f"{township}/{village} is not in the village register")
    if cause in ("status", "category"):  # cells that can be unreadable, not only blank
        label = field_label(cause, lang)
        typed = {findings.unreadable.get((*cell, cause)) for cell in cells}  # None: blank
        if typed == {None} or len(cells) == 1:
            return blank_input(label, typed.pop(), lang)
        if None in typed:
            return pick(lang, f"{label}为空或无法识别", f"{label} blank or not recognised")
        return pick(lang, f"{label}无法识别", f"{label} not recognised")
    if cause == "members":
        return pick(lang, "成员表中有成员的户编号丢失了前导零, 未计入该户, 见 household_id_zeros_lost",
                    "members whose 户编号 lost its leading zeros in the member sheet count in no household; "
                    "see household_id_zeros_lost")
    if cause != "household_id":
        return blank_input(field_label(cause, lang), None, lang)
    cell = cells[0] if len(cells) == 1 else None
    label = field_label("household_id", lang)
    issue = findings.household_ids.get(cell) if cell is not None else None
    if issue is None:
        return pick(lang, f"{label}为空或无法识别, 该户未纳入审核" if cell is None else f"{label}为空, 该户未纳入审核",
                    f"{label} blank or not recognised; the household is left out of the audit" if cell is None
                    else f"{label} blank; the household is left out of the audit")
    if issue.code == "household_id_precision_lost":
        title = CATALOGUE[issue.code].title["en" if lang == "en" else "zh"]
        return pick(lang, f"{title}「{issue.value}」, 该户未纳入审核", f"{title[:1].lower()}{title[1:]}: {issue.value}; the household is left out of the audit")
    return pick(lang, f"{blank_input(label, issue.value, lang)}, 该户未纳入审核", f"{blank_input(label, issue.value, lang)}; the household is left out of the audit")
