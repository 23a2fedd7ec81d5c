"""The four registers as pydantic models: the single source of truth for field names.

Every field of a register model carries, beside its type, what a county workbook calls it (the
Chinese header and its aliases), the kind of value it holds (which parser reads it) and the
values it accepts. The loader matches headers through this module, the validator picks parsers
and allowed values from it, the rule compiler takes its names and types from it, and
`exitcheck columns` prints it. Validation of a whole register is column-wise (see
``registers.validate``): building one model instance per row would cost seconds on a county.
The models themselves stay usable for a single record (``Household.model_validate(...)``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal[
    "text", "id_number", "choice", "multi_choice", "yes_no", "integer", "number", "date", "year"
]
RegisterName = Literal["households", "members", "villages", "townships"]
REGISTERS: tuple[RegisterName, ...] = ("households", "members", "villages", "townships")
REQUIRED_REGISTERS: tuple[RegisterName, ...] = ("households", "members")


def col(
    header: str,
    *aliases: str,
    kind: Kind = "text",
    required: bool = False,
    allowed: dict[str, str] | None = None,
    minimum: float | None = None,
    exclusive_minimum: bool = False,
    description: str = "",
    en: str = "",
) -> Any:
    """A register field: its Chinese header, aliases, kind and allowed values in one place."""
    return Field(
        default=None,
        title=header,
        description=description,
        json_schema_extra={
            "aliases": list(aliases),
            "kind": kind,
            "required": required,
            "allowed": allowed or {},
            "minimum": minimum,
            "exclusive_minimum": exclusive_minimum,
            "en": en,
        },
    )


def _forms(canonical: list[str], **synonyms: list[str]) -> dict[str, str]:
    """Map every accepted form to its canonical value (canonical values map to themselves)."""
    out = {value: value for value in canonical}
    for target, forms in synonyms.items():
        for form in forms:
            out[form] = target
    return out


CATEGORY = _forms(
    ["建档立卡户", "边缘易致贫户", "一般农户"],
    建档立卡户=["贫困户", "建档立卡贫困户", "建卡户"],
    边缘易致贫户=["边缘户", "边缘易致贫", "边缘易致贫人口"],
    一般农户=["非贫困户", "一般户", "非建档立卡户"],
)
POVERTY_ATTRIBUTE = _forms(
    ["一般贫困户", "低保贫困户", "特困供养贫困户"],
    一般贫困户=["一般脱贫户", "一般户"],
    低保贫困户=["低保脱贫户", "低保户"],
    特困供养贫困户=["特困供养脱贫户", "五保户", "五保贫困户", "特困供养户", "五保"],
)
STATUS = _forms(
    ["未脱贫", "已脱贫"],
    已脱贫=["已脱贫(享受政策)", "已脱贫(不再享受政策)", "脱贫", "是", "已"],
    未脱贫=["返贫", "否", "未"],
)
HOUSING_GRADE = _forms(
    ["A", "B", "C", "D"],
    A=["A级", "a", "a级", "无"],
    B=["B级", "b", "b级"],
    C=["C级", "c", "c级"],
    D=["D级", "d", "d级"],
)
SATISFACTION = _forms(
    ["满意", "基本满意", "不满意"],
    满意=["非常满意", "很满意"],
    基本满意=["比较满意", "较满意"],
)
SCHOOL_STATUS = _forms(
    ["学前教育", "学龄前儿童", "小学", "初中", "高中", "中职", "高职", "大专及以上",
     "非在校生", "失学辍学", "送教上门"],
    小学=[f"{n}年级" for n in "一二三四五六"],
    初中=["七年级", "八年级", "九年级", "初一", "初二", "初三"],
    高中=["高一", "高二", "高三"],
    中职=[f"中职{n}年级" for n in "一二三"],
    高职=[f"高职高专{n}年级" for n in "一二三"] + ["高职高专"],
    大专及以上=["大专", "本科", "研究生", "本科及以上"],
    失学辍学=["辍学", "失学"],
)
HEALTH = _forms(["健康", "长期慢性病", "患有大病", "残疾"], 残疾=["残疾人"], 患有大病=["大病"])
LABOR_ABILITY = _forms(
    ["普通劳动力", "技能劳动力", "弱劳动力或半劳动力", "丧失劳动力", "无劳动力"],
    弱劳动力或半劳动力=["弱劳动力", "半劳动力"],
)
EMPLOYMENT = _forms(
    ["省外务工", "省内县外务工", "县内务工", "未务工"],
    省内县外务工=["县外省内务工"],
    未务工=["无", "否"],
)
MEMBER_STATUS = _forms(["正常", "死亡", "迁出"], 死亡=["已死亡", "去世"], 迁出=["已迁出", "注销"])
GENDER = _forms(["男", "女"], 男=["男性"], 女=["女性"])
#: The labour ability values of people who can work (for labour_unemployed).
CAN_WORK = frozenset({"普通劳动力", "技能劳动力", "弱劳动力或半劳动力"})


class Household(BaseModel):
    """户表: one row per household, registered (建档立卡) or not."""

    model_config = ConfigDict(extra="allow", title="households")
    household_id: str | None = col("户编号", "户码", "家庭编号", required=True, en="Household ID")
    township: str | None = col("乡镇", "乡(镇)", "乡镇名称", "乡", "乡镇(街道)", required=True, en="Township")
    village: str | None = col("行政村", "村", "村名", required=True, en="Village")
    group: str | None = col("村民小组", "组", en="Group")
    head_name: str | None = col("户主姓名", "户主", required=True, en="Head of household")
    head_id_number: str | None = col("户主证件号码", "户主身份证号", kind="id_number", en="Head's ID number")
    category: str | None = col("农户类别", "户类别", kind="choice", required=True, allowed=CATEGORY, en="Category")
    poverty_attribute: str | None = col("贫困户属性", kind="choice", allowed=POVERTY_ATTRIBUTE, en="Poverty attribute")
    status: str | None = col("脱贫状态", "是否脱贫", "脱贫标志", kind="choice", allowed=STATUS, en="Exit status")
    exit_year: int | None = col("脱贫年度", "脱贫年份", kind="year", en="Exit year")
    household_size: int | None = col("家庭人口数", "人口数", "家庭人数", kind="integer", required=True, minimum=1, en="Household size")
    income_per_capita: float | None = col("人均纯收入", "人均纯收入(元)", "家庭人均纯收入", kind="number", required=True, minimum=0, en="Per-capita net income")
    housing_grade: str | None = col("住房安全等级", "住房鉴定等级", "危房等级", "危房级别", kind="choice", required=True, allowed=HOUSING_GRADE, en="Housing grade")
    dangerous_house: bool | None = col("是否危房户", "是否危房", kind="yes_no", en="Dangerous house")
    house_id: str | None = col("住房编号", en="House ID")
    safe_water: bool | None = col("安全饮水", "是否安全饮水", "是否解决安全饮用水", kind="yes_no", en="Safe water")
    electricity: bool | None = col("生活用电", "是否通生活用电", kind="yes_no", en="Electricity")
    broadcast_tv: bool | None = col("广播电视", "是否通广播电视", kind="yes_no", en="Radio and TV")
    policy_awareness: bool | None = col("政策知晓", "政策知晓度", kind="yes_no", en="Policy awareness")
    living_environment: bool | None = col("人居环境达标", "人居环境", kind="yes_no", en="Living environment")
    gratitude_bag: bool | None = col("感恩袋", kind="yes_no", en="Gratitude bag")
    satisfaction: str | None = col("认可度", "满意度", "群众认可度", kind="choice", allowed=SATISFACTION, en="Satisfaction")
    relocated: bool | None = col("易地扶贫搬迁", "是否易地扶贫搬迁", kind="yes_no", en="Relocated")
    helper_name: str | None = col("帮扶责任人", "帮扶人", en="Helper cadre")
    helper_phone: str | None = col("帮扶责任人电话", "联系电话", "帮扶人电话", en="Helper's phone")
    county: str | None = col("县(市、区、旗)", "县", "县(市、区)", en="County")


class Member(BaseModel):
    """成员表: one row per person, living or not, pointing at a household."""

    model_config = ConfigDict(extra="allow", title="members")
    household_id: str | None = col("户编号", "户码", "家庭编号", required=True, en="Household ID")
    person_id: str | None = col("人编号", en="Person number")
    name: str | None = col("姓名", "成员姓名", required=True, en="Name")
    id_number: str | None = col("证件号码", "身份证号", "公民身份号码", "身份证号码", kind="id_number", required=True, en="ID number")
    relation: str | None = col("与户主关系", kind="text", en="Relation to head")
    gender: str | None = col("性别", kind="choice", allowed=GENDER, en="Gender")
    birth_date: date | None = col("出生日期", kind="date", en="Birth date")
    ethnicity: str | None = col("民族", en="Ethnicity")
    school_status: str | None = col("在校生状况", "在校情况", kind="choice", allowed=SCHOOL_STATUS, en="Schooling")
    medical_insurance: bool | None = col("城乡居民基本医疗保险", "参加医保", "是否参加基本医疗保险", "是否参加城乡居民基本医疗保险", kind="yes_no", en="Basic medical insurance")
    health: str | None = col("健康状况", kind="multi_choice", allowed=HEALTH, en="Health")
    labor_ability: str | None = col("劳动技能", "劳动能力", kind="choice", allowed=LABOR_ABILITY, en="Labour ability")
    employment: str | None = col("务工状况", kind="choice", allowed=EMPLOYMENT, en="Employment")
    member_status: str | None = col("人员状态", "状态", kind="choice", allowed=MEMBER_STATUS, en="Member status")


class Village(BaseModel):
    """村表: one row per administrative village."""

    model_config = ConfigDict(extra="allow", title="villages")
    township: str | None = col("乡镇", "乡(镇)", "乡镇名称", "乡", required=True, en="Township")
    village: str | None = col("行政村", "村", "村名", required=True, en="Village")
    poverty_village: bool | None = col("是否贫困村", "贫困村", kind="yes_no", en="Poor village")
    population: int | None = col("户籍人口", "农业人口", "总人口", kind="integer", required=True, minimum=0, exclusive_minimum=True, en="Registered population")
    collective_income: float | None = col("村集体经济收入", "集体经济收入(元)", "集体经济收入", kind="number", minimum=0, en="Collective income")
    paved_road: bool | None = col("通硬化路", kind="yes_no", en="Paved road")
    clinic: bool | None = col("卫生室", "标准化卫生室", kind="yes_no", en="Clinic")
    culture_room: bool | None = col("文化室", "综合文化室", kind="yes_no", en="Culture room")
    telecom: bool | None = col("通信网络", "通宽带", kind="yes_no", en="Telecom network")
    safe_water: bool | None = col("安全饮水", kind="yes_no", en="Safe water")
    electricity: bool | None = col("生活用电", "通电", kind="yes_no", en="Electricity")
    broadcast_tv: bool | None = col("广播电视", kind="yes_no", en="Radio and TV")


class Township(BaseModel):
    """乡镇表: one row per township."""

    model_config = ConfigDict(extra="allow", title="townships")
    township: str | None = col("乡镇", "乡(镇)", "乡镇名称", "乡", required=True, en="Township")
    central_school: bool | None = col("标准中心校", kind="yes_no", en="Standard central school")
    health_center: bool | None = col("达标卫生院", kind="yes_no", en="Qualified health centre")
    service_center: bool | None = col("便民服务中心", kind="yes_no", en="Service centre")


MODELS: dict[RegisterName, type[BaseModel]] = {
    "households": Household,
    "members": Member,
    "villages": Village,
    "townships": Township,
}

#: Sheet names that say which register a sheet holds (compared after normalise_header).
SHEET_NAMES: dict[RegisterName, tuple[str, ...]] = {
    "households": ("户表", "户信息", "贫困户", "households", "household", "户"),
    "members": ("成员表", "家庭成员", "人员信息", "members", "member", "成员"),
    "villages": ("村表", "村信息", "villages", "village"),
    "townships": ("乡镇表", "乡信息", "townships", "township", "乡镇"),
}
REGISTER_LABELS: dict[RegisterName, tuple[str, str]] = {
    "households": ("户表", "households"),
    "members": ("成员表", "members"),
    "villages": ("村表", "villages"),
    "townships": ("乡镇表", "townships"),
}


@dataclass(frozen=True)
class FieldSpec:
    """What the loader and validator need to know of one field, read off the model."""

    register: RegisterName
    name: str
    header: str
    aliases: tuple[str, ...]
    kind: Kind
    required: bool
    allowed: dict[str, str] = field(default_factory=dict)
    minimum: float | None = None
    exclusive_minimum: bool = False
    description: str = ""
    en: str = ""

    def label(self, lang: str = "zh") -> str:
        return self.en if lang == "en" and self.en else self.header


@cache
def fields(register: RegisterName) -> tuple[FieldSpec, ...]:
    """The fields of a register, in model order."""
    model = MODELS[register]
    out = []
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra or {}
        assert isinstance(extra, dict)
        out.append(
            FieldSpec(
                register=register,
                name=name,
                header=info.title or name,
                aliases=tuple(extra.get("aliases", ())),  # type: ignore[arg-type]
                kind=extra.get("kind", "text"),  # type: ignore[arg-type]
                required=bool(extra.get("required")),
                allowed=dict(extra.get("allowed") or {}),  # type: ignore[arg-type]
                minimum=extra.get("minimum"),  # type: ignore[arg-type]
                exclusive_minimum=bool(extra.get("exclusive_minimum")),
                description=info.description or "",
                en=str(extra.get("en") or ""),
            )
        )
    return tuple(out)


def field_spec(register: RegisterName, name: str) -> FieldSpec:
    for spec in fields(register):
        if spec.name == name:
            return spec
    raise KeyError(f"{register}.{name}")


def field_label(name: str, lang: str = "zh") -> str:
    """A field's header (its English name in English), from whichever register has it; a name
    no register has (a derived figure) as it is."""
    for register in REGISTERS:
        for spec in fields(register):
            if spec.name == name:
                return spec.label(lang)
    return name


_SPACES = re.compile(r"\s+")


def normalise_header(text: object) -> str:
    """Headers compare after NFKC (full-width to half-width) and with every space removed.

    NFKC also turns full-width brackets into ASCII ones, so '人均纯收入（元）' and
    '人均纯收入(元)' compare equal, as do '户 编 号' and '户编号'.
    """
    if text is None:
        return ""
    value = unicodedata.normalize("NFKC", str(text))
    return _SPACES.sub("", value).lower()


@cache
def header_index(register: RegisterName) -> dict[str, str]:
    """Normalised header or alias -> field name, for one register."""
    index: dict[str, str] = {}
    for spec in fields(register):
        for text in (spec.header, *spec.aliases, spec.name):
            index.setdefault(normalise_header(text), spec.name)
    return index


def match_header(register: RegisterName, header: object, extra: dict[str, str] | None = None) -> str | None:
    """The field a header names in a register, or None for an unknown column.

    `extra` is a workspace's own mapping (header -> field) and wins over the built-in aliases.
    """
    key = normalise_header(header)
    if not key:
        return None
    if extra:
        for text, name in extra.items():
            if normalise_header(text) == key:
                return name
    return header_index(register).get(key)


def field_names(register: RegisterName) -> tuple[str, ...]:
    return tuple(spec.name for spec in fields(register))
