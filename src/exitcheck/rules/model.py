"""Rule-set files (rules/*.yaml): pydantic models, loading with positions, message templates.

Like ruff's registry, every rule has an id, a one-line name and an explanation a user can print
(`exitcheck rules explain ID`). Expressions are parsed here (rules/syntax.py) and compiled once
by the engine, through the safe language of rules/expr.py; a mistake anywhere is a ConfigError
(exit 4) naming the file, the line and, for a misspelt name, the nearest known one.
"""

from __future__ import annotations

import hashlib
import math
import re
import string
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from exitcheck.errors import ConfigError
from exitcheck.setting_errors import Mistake

Level = Literal["member", "household", "village", "township", "county"]
LEVELS: tuple[Level, ...] = ("member", "household", "village", "township", "county")


class Band(BaseModel):
    """An income band: lower bound included, upper bound excluded."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    label: str
    label_en: str = ""
    min: float = Field(ge=0)
    max: float

    @field_validator("max")
    @classmethod
    def _ordered(cls, value: float, info: Any) -> float:
        low = info.data.get("min")
        if low is not None and value <= low:
            raise Mistake(f"max 应大于 min({low:g})", f"max must be greater than min ({low:g})")
        return value


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    level: Level
    name: str
    name_en: str = ""
    description: str = ""
    description_en: str = ""
    kind: Literal["indicator", "risk"] = "indicator"
    applies_to: str | None = None
    check: str
    high_when: str | None = None
    department: str | None = None
    message: str
    message_en: str = ""
    high_message: str = ""  # why a finding is high priority, added to its message
    high_message_en: str = ""
    basis: str = ""

    def message_for(self, lang: str) -> str:
        return self.message_en if lang == "en" and self.message_en else self.message

    def high_message_for(self, lang: str) -> str:
        return self.high_message_en if lang == "en" and self.high_message_en else self.high_message


class RuleSetFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ruleset: str
    version: str
    title: str = ""
    params: dict[str, int | float | str | bool] = Field(default_factory=dict)
    bands: list[Band] | str | None = None
    rules: list[Rule]

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, rules: list[Rule]) -> list[Rule]:
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise Mistake(f"规则 id {rule.id} 用了两次", f"rule id {rule.id!r} is used twice")
            seen.add(rule.id)
        return rules


DEFAULT_BANDS = [
    Band(id="below_4200", label="4200元以下", label_en="below 4,200", min=0, max=4200),
    Band(id="4200_4500", label="4200-4500元", label_en="4,200 to 4,500", min=4200, max=4500),
    Band(id="4500_5000", label="4500-5000元", label_en="4,500 to 5,000", min=4500, max=5000),
]


@dataclass
class RuleSet:
    """A loaded, checked rule set; expressions are compiled by the engine for each level."""

    spec: RuleSetFile
    path: str
    sha256: str
    bands: list[Band]

    @property
    def name(self) -> str:
        return self.spec.ruleset

    @property
    def version(self) -> str:
        return self.spec.version

    @property
    def rules(self) -> list[Rule]:
        return self.spec.rules

    def rule(self, rule_id: str) -> Rule:
        for rule in self.spec.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


def default_rules_path() -> Path:
    """The default rule set: the repository's rules/ in a checkout, else the packaged copy."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[3] / "rules" / "sichuan-2020.yaml", here.parents[1] / "data" / "sichuan-2020.yaml"):
        if candidate.exists():
            return candidate
    raise ConfigError("找不到默认规则集 sichuan-2020.yaml", "the default rule set sichuan-2020.yaml is missing")


def _line_of(text: str, location: tuple[Any, ...]) -> int | None:
    """The line of a YAML node given a pydantic error location, e.g. ('rules', 3, 'check')."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    for key in location:
        if node is None:
            return None
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if getattr(k, "value", None) == key]
            if not match:
                return node.start_mark.line + 1
            node = match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
    return node.start_mark.line + 1 if node is not None else None


#: PyYAML's SafeLoader in C (libyaml) when it was built with it: the rule set loads in 2 ms
#: instead of 19 ms, the same data either way.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_ruleset(path: Path | None = None) -> RuleSet:
    """Read and validate a rule-set file; every mistake is a ConfigError with its position."""
    path = path or default_rules_path()
    try:
        data_bytes = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: 无法读取规则文件({exc.strerror})", f"{path}: cannot read the rule set ({exc.strerror})") from None
    text = data_bytes.decode("utf-8", errors="replace")
    try:
        data = yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 - a SafeLoader, in C when PyYAML has it
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: 规则文件不是有效的 YAML({getattr(exc, 'problem', exc)})", f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    try:
        spec = RuleSetFile.model_validate(data)
    except ValidationError as exc:
        from exitcheck.setting_errors import setting_error

        raise setting_error(path, text, data, exc, known_keys=_keys_at, about=lambda location: _rule_named(data, location)) from None
    bands = _bands(spec, path)
    ruleset = RuleSet(spec=spec, path=str(path), sha256=hashlib.sha256(data_bytes).hexdigest(), bands=bands)
    for index, rule in enumerate(spec.rules):
        for template in (rule.message, rule.message_en, rule.high_message, rule.high_message_en):
            check_template(template, f"{path}: {rule.id}")
        _check_syntax(ruleset, index, text)
    return ruleset


def _keys_at(parent: tuple[Any, ...]) -> list[str]:
    """The keys a rule set allows under `parent`, for the 'did you mean' of a misspelt one."""
    model: type[BaseModel] = {"rules": Rule, "bands": Band}.get(parent[0], RuleSetFile) if parent else RuleSetFile
    return list(model.model_fields)


def _rule_named(data: Any, location: tuple[Any, ...]) -> tuple[str, str]:
    """' (rule income)' for a key inside a rule that has an id: rules.3 alone says little."""
    if len(location) < 2 or location[0] != "rules" or not isinstance(location[1], int):
        return "", ""
    rule = data["rules"][location[1]]
    rule_id = rule.get("id") if isinstance(rule, dict) else None
    return (f"(规则 {rule_id})", f" (rule {rule_id})") if rule_id else ("", "")


#: The parts of a rule written in the rule language.
EXPRESSION_PARTS = ("applies_to", "check", "high_when")


def _check_syntax(ruleset: RuleSet, index: int, text: str) -> None:
    """A rule's expressions parsed now (no pandas needed), so that a typo is reported before
    the registers are read; the names in them are checked when they are compiled."""
    from exitcheck.rules.syntax import ExpressionError, check

    rule = ruleset.rules[index]
    for part in EXPRESSION_PARTS:
        expression = getattr(rule, part)
        if expression is not None:
            try:
                check(expression)
            except ExpressionError as error:
                raise expression_error(ruleset, rule, part, error, text) from None


def expression_error(ruleset: RuleSet, rule: Rule, part: str, error: Exception, text: str | None = None) -> ConfigError:
    """An error in a rule's expression, at its line of the rule-set file: 'FILE:LINE: rule ID,
    PART: what is wrong'."""
    if text is None:
        try:
            text = Path(ruleset.path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
    index = next((i for i, known in enumerate(ruleset.rules) if known is rule), None)
    line = _line_of(text, ("rules", index, part)) if text and index is not None else None
    where = f"{ruleset.path}:{line}" if line else ruleset.path
    detail = getattr(error, "in_chinese", lambda: str(error))()
    return ConfigError(f"{where}: 规则 {rule.id} 的 {part}: {detail}", f"{where}: rule {rule.id}, {part}: {error}")


def param_error(ruleset: RuleSet, name: str, rule: Rule, part: str) -> ConfigError:
    """A param whose text value a rule uses as a number, at the param's own line ('FILE:12:
    params.income_line: ...'), naming the rule and the line that uses it."""
    try:
        text = Path(ruleset.path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    index = ruleset.rules.index(rule)
    line, used = (_line_of(text, ("params", name)), _line_of(text, ("rules", index, part))) if text else (None, None)
    where = f"{ruleset.path}:{line}" if line else ruleset.path
    value = ruleset.spec.params[name]
    at_zh, at_en = (f"第 {used} 行", f"line {used}") if used else ("", "")
    return ConfigError(
        f"{where}: params.{name}: 应为数字, 现为「{value}」: 规则 {rule.id} 的 {part}({at_zh})把它当数字用; 请写成阿拉伯数字, 不加引号",
        f"{where}: params.{name}: expected a number, found {value!r}: rule {rule.id}, {part} ({at_en}) uses it as one; "
        "write it in digits, without quotes")


def _bands(spec: RuleSetFile, path: Path) -> list[Band]:
    if spec.bands is None:
        return list(DEFAULT_BANDS)
    if isinstance(spec.bands, str):
        band_path = (path.parent / spec.bands).resolve()
        try:
            data = yaml.load(band_path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)  # noqa: S506 - safe
            items = data.get("bands", data) if isinstance(data, dict) else data
            return [Band.model_validate(item) for item in items]
        except (OSError, yaml.YAMLError, ValidationError, AttributeError, TypeError) as exc:
            raise ConfigError(f"{band_path}: 收入分档文件无效({exc})", f"{band_path}: invalid bands file ({exc})") from None
    return spec.bands


_SPEC = re.compile(r"^[,.]?(\.\d)?[f%]?$|^,?\.\d[f%]$|^$")


def check_template(template: str, where: str) -> list[str]:
    """Placeholders of a message template: plain names only (no attribute or index access)."""
    names = []
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"{where}: 消息模板有误({exc})", f"{where}: bad message template ({exc})") from None
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if not re.fullmatch(r"[^\W\d][\w]*", name) or conversion or not _SPEC.match(spec or ""):
            raise ConfigError(
                f"{where}: 消息模板中的占位符 {{{name}}} 只能是字段名或参数名",
                f"{where}: placeholder {{{name}}} in a message may only be a field or param name",
            )
        names.append(name)
    return names


_SHOWN_PLACES = re.compile(r"\.(\d)[f%]$")


def not_shown_as_round(value: float, places: int, *, percent: bool = False) -> float:
    """`value` rounded to `places` decimals (of its percentage, with `percent`), except that a
    value near a round figure is cut rather than rounded onto it: 2.9994 per person shows as
    2.99, not as "3.00 元, 不足 3 元"; 4199.9999 as 4199.99 below a line of 4200; an incidence
    of 2.9996 % as 2.99 %. Thresholds are round figures, and a message must never show the very
    value it says a unit falls short of. With no decimals shown (".0f") every figure is round:
    it rounds as Python does."""
    value = float(value)  # a numpy float's repr is not a number Decimal reads
    if not math.isfinite(value) or places < 1:
        return value
    quick = round(value, places + (2 if percent else 0))
    scaled = quick * 100 if percent else quick
    if abs(scaled - round(scaled)) > 1e-9:  # not near a round figure: most values, no Decimal
        return quick
    exact = Decimal(repr(value))
    step = Decimal(1).scaleb(-(places + (2 if percent else 0)))
    rounded = exact.quantize(step, ROUND_HALF_EVEN)
    if rounded != exact:
        return float(exact.quantize(step, ROUND_DOWN))
    return float(rounded)


def render_template(template: str, values: dict[str, Any]) -> str:
    """Fill a checked template without str.format's attribute access."""
    out = []
    for literal, name, spec, _conversion in string.Formatter().parse(template):
        out.append(literal)
        if name is None:
            continue
        value = values.get(name)
        if value is None or (isinstance(value, float) and value != value):
            out.append("(空)" if not spec else "")
            continue
        if not spec and isinstance(value, float):
            value = int(value) if value.is_integer() else not_shown_as_round(value, 2)  # 3101.0 -> 3101
        elif isinstance(value, float) and (shown := _SHOWN_PLACES.search(spec)):
            value = not_shown_as_round(value, int(shown.group(1)), percent=spec.endswith("%"))
        try:
            out.append(format(value, spec or ""))
        except (ValueError, TypeError):
            out.append(str(value))
    return "".join(out)
