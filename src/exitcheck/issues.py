"""The catalogue of data issues (信息精准 findings) and the DataIssue record.

Modelled on frictionless' error catalogue: every code is a class with a stable code, a severity,
a title, a description and a fix hint in Chinese and English, plus message templates. The codes
and their meaning are fixed by shared/register-format.md; `exitcheck explain CODE` prints an
entry. A DataIssue is one finding, positioned so that a clerk can fix the cell in Excel.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import ClassVar, Literal

from exitcheck.i18n import join_list
from exitcheck.idcard import mask

Severity = Literal["error", "warning"]


class IssueType:
    """One entry of the catalogue. Subclasses set the class attributes; nothing is instantiated."""

    code: ClassVar[str]
    severity: ClassVar[Severity] = "error"
    title: ClassVar[dict[str, str]]
    description: ClassVar[dict[str, str]]
    fix: ClassVar[dict[str, str]]
    template: ClassVar[dict[str, str]]
    #: Params that only say where cells are (rows, files), not what is wrong: left out of what
    #: identifies a finding (DataIssue.identity), as its own file, row and column are.
    positions: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def render(cls, lang: str, **params: object) -> str:
        """The message in one language; a param may itself be {"zh": ..., "en": ...}."""
        key = "en" if lang == "en" else "zh"
        chosen = {
            name: value[key] if isinstance(value, dict) and key in value else value
            for name, value in params.items()
        }
        return cls.template[key].format_map(_Blank(chosen))


class _Blank(dict):
    """format_map helper: a template placeholder with no value renders as empty, not KeyError."""

    def __missing__(self, key: str) -> str:
        return ""


class MissingColumn(IssueType):
    code = "missing_column"
    title = {"zh": "缺少必填列", "en": "Required column missing"}
    description = {
        "zh": "工作表缺少一个必填列, 整张表无法读取。",
        "en": "A required column is absent, so the whole sheet cannot be read.",
    }
    fix = {
        "zh": "在表头行写上该列的列名(或其别名; 表头为空的单元格多半就是它), 或用 --headers 文件把现有列名映射到该字段"
              "(YAML: {households: {你的表头: head_name}}; 工作区中也可写在 exitcheck.yaml 的 headers: 下)。"
              "exitcheck columns 文件 显示每一列的读法。",
        "en": "Type the column's header (or an alias) into the header row (a blank header cell is most likely it), or map your own "
              "header to the field with --headers FILE (YAML: {households: {your header: head_name}}; in a workspace, under "
              "headers: in exitcheck.yaml too). `exitcheck columns FILE` shows how each column was read.",
    }
    template = {
        "zh": "缺少必填列「{header}」({field}){clue}",
        "en": "required column '{header}' ({field}) is missing{clue}",
    }
    positions = ("clue", "blank_headers")


class MissingValue(IssueType):
    code = "missing_value"
    title = {"zh": "必填项为空", "en": "Required value blank"}
    description = {
        "zh": "必填单元格或指标需要的是/否单元格为空。空白不会被当作'否', 相关指标记为待核实。",
        "en": "A required cell, or a yes/no cell an indicator needs, is blank. Blank is never taken as 'no': the indicator becomes unknown.",
    }
    fix = {"zh": "核实后填写该单元格。", "en": "Check the fact and fill in the cell."}
    template = {"zh": "「{header}」为空", "en": "'{header}' is blank"}


class BadValue(IssueType):
    code = "bad_value"
    title = {"zh": "取值无法识别", "en": "Value not recognised"}
    description = {
        "zh": "单元格的值无法解析, 或不在允许的取值范围内。",
        "en": "The value cannot be parsed, or is not one of the allowed values.",
    }
    fix = {
        "zh": "改为允许的取值(见 exitcheck columns 或登记表格式说明)。",
        "en": "Use one of the allowed values (see `exitcheck columns` or the register format).",
    }
    template = {
        "zh": "「{header}」的值「{value}」无法识别{expected}",
        "en": "'{header}' value '{value}' is not valid{expected}",
    }


class IdChecksum(IssueType):
    code = "id_checksum"
    title = {"zh": "身份证号校验位错误", "en": "ID number check digit wrong"}
    description = {
        "zh": "身份证号的校验位(第18位)与前17位不符, 或其形式不是18位身份证号。",
        "en": "The ID number's check digit does not match its first 17 digits, or it is not shaped like an 18-character ID number.",
    }
    fix = {
        "zh": "对照户口簿或身份证原件更正号码。",
        "en": "Correct the number from the household register book or the ID card.",
    }
    template = {
        "zh": "身份证号「{value}」{reason}",
        "en": "ID number '{value}' {reason}",
    }


class IdPrecisionLost(IssueType):
    code = "id_precision_lost"
    title = {"zh": "身份证号被存为数字", "en": "ID number stored as a number"}
    description = {
        "zh": "身份证号以数字格式保存, Excel 只保留15位有效数字, 后几位已丢失。",
        "en": "The ID number was stored as a number; Excel keeps 15 significant digits, so its last digits are lost.",
    }
    fix = {
        "zh": "把该列设置为'文本'格式, 再按原件重新录入完整号码。",
        "en": "Format the column as Text, then type the full number again from the original.",
    }
    template = {
        "zh": "身份证号被存为数字({value}), 后几位已丢失",
        "en": "ID number stored as a number ({value}); its last digits are lost",
    }


class HouseholdIdPrecisionLost(IssueType):
    code = "household_id_precision_lost"
    title = {"zh": "户编号被存为数字", "en": "Household ID stored as a number"}
    description = {
        "zh": "户编号超过15位却以数字格式保存, Excel 只保留15位有效数字, 后几位已丢失, 相邻的户会变成同一个编号。"
              "该户不参与户编号的查重和成员对应, 直到更正。",
        "en": "A household ID of more than 15 digits was stored as a number; Excel keeps 15 significant digits, "
              "so its last digits are lost and neighbouring households end up with the same number. The row is left "
              "out of the duplicate and member checks until it is corrected.",
    }
    fix = {
        "zh": "把户编号列设置为'文本'格式, 再按原件重新录入完整户编号。",
        "en": "Format the household ID column as Text, then type the full IDs again from the original.",
    }
    template = {
        "zh": "户编号被存为数字({value}), 后几位已丢失",
        "en": "household ID stored as a number ({value}); its last digits are lost",
    }


class IdBirthMismatch(IssueType):
    code = "id_birth_mismatch"
    title = {"zh": "出生日期与身份证号不符", "en": "Birth date disagrees with the ID"}
    description = {
        "zh": "出生日期与身份证号第7-14位不一致, 或身份证号中的日期不可能存在。",
        "en": "The birth date differs from digits 7-14 of the ID number, or the ID's date is impossible.",
    }
    fix = {"zh": "核对原件, 更正出生日期或身份证号。", "en": "Check the original and correct the birth date or the ID number."}
    template = {"zh": "{reason}", "en": "{reason}"}


class IdGenderMismatch(IssueType):
    code = "id_gender_mismatch"
    title = {"zh": "性别与身份证号不符", "en": "Gender disagrees with the ID"}
    description = {
        "zh": "性别与身份证号第17位(奇数为男, 偶数为女)不一致。",
        "en": "The gender differs from digit 17 of the ID number (odd male, even female).",
    }
    fix = {"zh": "核对原件, 更正性别或身份证号。", "en": "Check the original and correct the gender or the ID number."}
    template = {
        "zh": "性别为「{value}」, 身份证号显示为「{expected}」",
        "en": "gender is '{value}' but the ID number says '{expected}'",
    }


class DuplicatePerson(IssueType):
    code = "duplicate_person"
    title = {"zh": "同一人重复登记", "en": "Same person registered twice"}
    description = {
        "zh": "同一个在世人员的身份证号出现在两户中(或同一户两次)。",
        "en": "The same living person's ID number appears in two households (or twice in one).",
    }
    fix = {"zh": "核实此人实际所在户, 删除多余的记录。", "en": "Find the household the person really belongs to and delete the other record."}
    template = {
        "zh": "身份证号「{value}」同时登记在户 {others}",
        "en": "ID number '{value}' is also registered in household(s) {others}",
    }


class DuplicateHousehold(IssueType):
    code = "duplicate_household"
    title = {"zh": "户编号重复", "en": "Household ID repeated"}
    description = {
        "zh": "同一户编号出现在多行。按一户计算, 指标取第一行。",
        "en": "The same household ID is on several rows. It counts as one household and its indicators are read from its first row.",
    }
    fix = {"zh": "合并或删除重复行。", "en": "Merge or delete the repeated rows."}
    positions = ("where",)
    template = {
        "zh": "户编号「{value}」出现在{where}{differs}",
        "en": "household ID '{value}' appears on {where}{differs}",
    }


class DuplicateVillage(IssueType):
    code = "duplicate_village"
    title = {"zh": "行政村重复", "en": "Village repeated"}
    description = {
        "zh": "同一乡镇的同一行政村出现在多行(行政村在乡镇内唯一)。按一个村计; 各行不一致的列不知以哪行为准, "
              "用到它的村级指标和贫困发生率(以及所在乡镇、全县的贫困发生率)记为待核实。各行完全相同时照常核查。",
        "en": "The same village of the same township is on several rows (a village is unique within its township). It "
              "counts as one village; a column its rows disagree on cannot be told, so the village rules and the "
              "incidences that use it (its township's and the county's too) are unknown. Identical rows are audited as one.",
    }
    fix = {
        "zh": "删除多余的行, 只留正确的一行; 若是两个不同的村, 更正村名。若工作簿里的汇总表(乡镇、行政村、户数、总人口)"
              "被当作村表读入, 把它移到别的文件或删去。",
        "en": "Delete the extra rows and keep the right one; if they are two different villages, correct the name. If a "
              "summary sheet of the workbook (乡镇, 行政村, 户数, 总人口) was read as a village sheet, move it to another file "
              "or delete it.",
    }
    positions = ("where",)
    template = {
        "zh": "行政村「{value}」出现在{where}{differs}",
        "en": "village '{value}' appears on {where}{differs}",
    }


class DuplicateTownship(IssueType):
    code = "duplicate_township"
    title = {"zh": "乡镇重复", "en": "Township repeated"}
    description = {
        "zh": "同一乡镇在乡镇表中出现在多行(乡镇唯一)。按一个乡镇计; 各行不一致的列不知以哪行为准, 用到它的乡镇指标记为待核实。"
              "各行完全相同时照常核查。",
        "en": "The same township is on several rows of the township sheet (a township is unique). It counts as one "
              "township; a column its rows disagree on cannot be told, so the township rules that use it are unknown. "
              "Identical rows are audited as one.",
    }
    fix = {"zh": "删除多余的行, 只留正确的一行; 若是两个不同的乡镇, 更正乡镇名。",
           "en": "Delete the extra rows and keep the right one; if they are two different townships, correct the name."}
    positions = ("where",)
    template = {
        "zh": "乡镇「{value}」出现在{where}{differs}",
        "en": "township '{value}' appears on {where}{differs}",
    }


class DuplicatePersonAcrossCounties(IssueType):
    code = "duplicate_person_across_counties"
    title = {"zh": "同一人在多个县登记", "en": "Same person in several counties"}
    description = {
        "zh": "同一个在世人员的身份证号出现在两个或多个县的成员表中, 此人在各县都被计入人口(贫困发生率也重复计算)。只有多个县一起核查时才能发现。",
        "en": "The same living person's ID number is in the members registers of two or more counties, so the person is counted in each "
              "(and in each county's poverty incidence). Only an audit of several counties together can see it.",
    }
    fix = {
        "zh": "与相关县核实此人实际所在的县和户, 删除另一县的记录或更正身份证号。",
        "en": "Check with the other county where the person really lives, then delete the other county's record or correct the ID number.",
    }
    positions = ("others",)
    template = {
        "zh": "身份证号「{value}」也登记在 {others}",
        "en": "ID number '{value}' is also registered in {others}",
    }


class DuplicateHouseholdAcrossCounties(IssueType):
    code = "duplicate_household_across_counties"
    title = {"zh": "户编号在多个县重复", "en": "Household ID in several counties"}
    description = {
        "zh": "同一户编号出现在两个或多个县的登记表中。各县仍各自核查该户, 不合并; 户编号的前6位是县代码, 至少一处登记有误。",
        "en": "The same household ID is in the registers of two or more counties. Each county still audits its own row; they are not merged. The first 6 digits of a household ID are the county code, so at least one entry is wrong.",
    }
    fix = {
        "zh": "与相关县核实该户实际所在县, 更正户编号或删除错误的登记。",
        "en": "Check with the other county where the household really lives, then correct the household ID or delete the wrong entry.",
    }
    positions = ("others",)
    template = {
        "zh": "户编号「{value}」也登记在 {others}",
        "en": "household ID '{value}' is also registered in {others}",
    }


class OrphanMember(IssueType):
    code = "orphan_member"
    title = {"zh": "成员所属户不存在", "en": "Member's household not found"}
    description = {
        "zh": "成员的户编号不在户表中。",
        "en": "The member's household ID is not in the households sheet.",
    }
    fix = {"zh": "更正成员的户编号, 或在户表中补登该户。", "en": "Correct the member's household ID, or add the household."}
    template = {
        "zh": "户编号「{value}」不在户表中",
        "en": "household ID '{value}' is not in the households sheet",
    }


class HouseholdIdZerosLost(IssueType):
    code = "household_id_zeros_lost"
    title = {"zh": "户编号的前导零丢失", "en": "Household ID lost its leading zeros"}
    description = {
        "zh": "成员的户编号不在户表中, 但忽略开头的0后与户表某行的户编号相同(000001 与 1): 其中一张表的户编号列存为数字, "
              "Excel 去掉了开头的0。成员不会按猜测归入该户: 更正之前, 该户按没有这些成员核查(会显示无户主、人口数不符, 并指向这些成员)。"
              "只与一户相同时, 该问题记在该户下, 随该户列入其乡镇的清单。",
        "en": "The member's household ID is not in the households sheet, but matches a household's once leading zeros are "
              "ignored (000001 and 1): one sheet's household ID column was stored as numbers, and Excel dropped the leading "
              "zeros. The member is not joined to that household on a guess: until it is corrected the household is audited "
              "without these members (it shows no head and a size mismatch, which point to these members)."
              " When it matches one household, the finding is filed under that household, and so goes to its township's list.",
    }
    fix = {
        "zh": "把消息中指明的户编号列设置为'文本'格式, 再按原件重新录入完整户编号(含开头的0), 或从原系统重新导入该表。",
        "en": "Format the household ID column the message names as Text, then type the full IDs again with their leading "
              "zeros, or import the sheet again from the source system.",
    }
    positions = ("households",)
    template = {
        "zh": "户编号「{value}」不在户表中, 但忽略前导零后与{households}相同(成员未归入该户): {cause}; "
              "请把该列设置为文本格式, 按原件重新录入户编号(含前导零), 或重新导入该表",
        "en": "household ID '{value}' is not in the households sheet, but ignoring leading zeros it matches {households} "
              "(the member is not joined to it): {cause}; format that column as Text and type the IDs again with their "
              "leading zeros, or import the sheet again",
    }
    #: What a household's own findings add (no_head, size_mismatch, a member rule it has no
    #: living member for) when members have its ID but for leading zeros: those members are why,
    #: so that nobody goes looking for a head or members who are on the sheet.
    pointer = {
        "zh": "({members}, 疑为户编号的前导零丢失所致, 见 household_id_zeros_lost)",
        "en": " ({members}: most likely the household IDs lost their leading zeros; see household_id_zeros_lost)",
    }
    #: One member sheet's part of the pointer.
    pointer_members = {
        "zh": "{sheet}中有 {count} 名成员的户编号为{ids}",
        "en": "{count} {noun} on {sheet} with household ID {ids}",
    }

    @classmethod
    def pointer_to(cls, sheets: Iterable[tuple[dict[str, str], int, Sequence[str]]]) -> dict[str, str]:
        """The pointer in both languages, from each member sheet's (name in both languages,
        how many members have the household's ID but for zeros, those IDs as typed)."""
        sheets = list(sheets)  # a whole column stored as numbers makes one for every household: plain formats
        both = {}
        for lang, quote in (("zh", "「{}」"), ("en", "'{}'")):
            parts = [cls.pointer_members[lang].format(sheet=sheet[lang], count=count, noun="member" if count == 1 else "members",
                                                      ids=join_list(map(quote.format, ids), lang))
                     for sheet, count, ids in sheets]
            both[lang] = cls.pointer[lang].format(members=join_list(parts, lang))
        return both


class NoHead(IssueType):
    code = "no_head"
    title = {"zh": "无户主", "en": "No head of household"}
    description = {
        "zh": "该户没有与户主关系为'户主'的在世成员。",
        "en": "The household has no living member whose relation is 户主 (head).",
    }
    fix = {"zh": "在成员表中标明户主。", "en": "Mark the head of household in the members sheet."}
    #: {zeros_lost}: HouseholdIdZerosLost.pointer when members have its ID but for zeros
    template = {"zh": "该户没有在世的户主{zeros_lost}", "en": "the household has no living head{zeros_lost}"}


class SizeMismatch(IssueType):
    code = "size_mismatch"
    title = {"zh": "家庭人口数与成员数不符", "en": "Household size disagrees with members"}
    description = {
        "zh": "家庭人口数与成员表中该户在世成员人数不一致。",
        "en": "household_size differs from the number of living members in the members sheet.",
    }
    fix = {"zh": "核实人口, 更正家庭人口数或成员表。", "en": "Check who lives there and correct the size or the members."}
    template = {
        "zh": "家庭人口数为 {value}, 成员表在世成员 {expected} 人{zeros_lost}",
        "en": "household size is {value} but the members sheet has {expected} living members{zeros_lost}",
    }


class UnknownVillage(IssueType):
    code = "unknown_village"
    title = {"zh": "村不在村表中", "en": "Village not in the village sheet"}
    description = {
        "zh": "户的乡镇/行政村组合不在村表中。",
        "en": "The household's township/village pair is not in the villages sheet.",
    }
    fix = {"zh": "更正乡镇或村名(注意同音字、空格), 或在村表中补登该村。", "en": "Correct the township or village name, or add the village."}
    template = {
        "zh": "「{value}」不在村表中",
        "en": "'{value}' is not in the villages sheet",
    }


class SharedHouse(IssueType):
    code = "shared_house"
    severity = "warning"
    title = {"zh": "两户一宅", "en": "Two households share one house"}
    description = {
        "zh": "两户或多户登记了同一住房编号(两户一宅), 需要核实。",
        "en": "Two or more households have the same house ID (两户一宅); to be checked.",
    }
    fix = {"zh": "核实住房情况, 更正住房编号。", "en": "Check the housing and correct the house ID."}
    template = {
        "zh": "住房编号「{value}」同时登记在户 {others}",
        "en": "house ID '{value}' is also registered for household(s) {others}",
    }


CATALOGUE: dict[str, type[IssueType]] = {
    cls.code: cls
    for cls in (
        MissingColumn, MissingValue, BadValue, IdChecksum, IdPrecisionLost, HouseholdIdPrecisionLost, IdBirthMismatch,
        IdGenderMismatch, DuplicatePerson, DuplicatePersonAcrossCounties, DuplicateHousehold, DuplicateHouseholdAcrossCounties,
        DuplicateVillage, DuplicateTownship,
        OrphanMember, HouseholdIdZerosLost, NoHead, SizeMismatch, UnknownVillage, SharedHouse,
    )
}


@dataclass
class DataIssue:
    """One finding about the data, with everything a clerk needs to find and fix the cell."""

    code: str
    file: str | None
    sheet: str | None
    row: int | None
    column: str | None
    header: str | None
    field: str | None
    value: str | None
    household_id: str | None
    params: dict[str, object] = field(default_factory=dict)
    county: str | None = None  # set only when several counties are audited together

    @property
    def severity(self) -> Severity:
        return CATALOGUE[self.code].severity

    def message(self, lang: str = "zh") -> str:
        return CATALOGUE[self.code].render(
            lang, **{"field": self.field or "", **self.params, "header": self.header or self.field or "", "value": self.value or ""}
        )

    def identity(self) -> dict[str, object]:
        """What is wrong and whose, without where it sits (its file, row and column letter, and
        the params that point at other cells): moved rows leave it as it was."""
        data = self._fields(without=("file", "row", "column", "params"))
        data["params"] = {name: value for name, value in self.params.items() if name not in CATALOGUE[self.code].positions}
        return data

    def _fields(self, without: tuple[str, ...]) -> dict[str, object]:
        # Not dataclasses.asdict: it deep-copies the params, a tenth of a second over a
        # county's issues, for callers that leave them out.
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in without}

    def to_dict(self, lang: str = "zh", *, mask_ids: bool = True) -> dict[str, object]:
        """The JSON form (`exitcheck/issues@1`); ID numbers masked unless asked otherwise."""
        data = self._fields(without=("params",))
        data["severity"] = self.severity
        data["message"] = self.message(lang)
        if mask_ids and self.field in ID_FIELDS:
            data["value"] = mask(self.value)
            data["message"] = mask_in_message(data["message"], self.value)
        keys = ("code", "severity", "file", "sheet", "row", "column", "header", "field",
                "value", "household_id", "message")
        out = {key: data[key] for key in keys}
        if self.county is not None:
            out["county"] = self.county
        return out


ID_FIELDS = frozenset({"id_number", "head_id_number"})
#: The name of the sheet that lists the data issues, in the gap and issue workbooks; reasons
#: refer to it by this name.
ISSUES_SHEET = {"zh": "数据问题", "en": "Data issues"}


def mask_in_message(message: str, value: str | None) -> str:
    if not value:
        return message
    return message.replace(value, mask(value) or "")


SEVERITY_LABELS = {"error": ("错误", "error"), "warning": ("警告", "warning")}


def severity_label(severity: str, lang: str) -> str:
    """错误/警告 in Chinese; the JSON keeps the code (error, warning) whatever the language."""
    zh, en = SEVERITY_LABELS.get(severity, (severity, severity))
    return en if lang == "en" else zh


def code_named(text: str) -> str | None:
    """The issue code a clerk means by `text`: the code in any letter case (MISSING_VALUE, as
    an audit table may be copied), or the issue's title in Chinese or English (必填项为空, the
    问题 column of issues.xlsx); None when nothing matches."""
    wanted = " ".join(text.split()).casefold()
    for code, entry in CATALOGUE.items():
        if wanted in (code.casefold(), entry.title["zh"].casefold(), entry.title["en"].casefold()):
            return code
    return None


def explain(code: str, lang: str = "zh") -> str:
    """The catalogue entry as text, for `exitcheck explain CODE`."""
    entry = CATALOGUE[code]
    key = "en" if lang == "en" else "zh"
    return "\n".join(
        [
            f"{entry.code} — {entry.title[key]}",
            f"{'severity' if key == 'en' else '级别'}: {severity_label(entry.severity, lang)}",
            "",
            entry.description[key],
            "",
            f"{'How to fix' if key == 'en' else '如何修正'}: {entry.fix[key]}",
        ]
    )
