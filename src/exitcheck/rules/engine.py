"""Evaluate a rule set over the registers: one column-wise pass per rule and level.

Each rule yields, per unit (member, household, village, township, county), one of pass, fail,
unknown or not applicable: `applies_to` false means not applicable; a blank input anywhere in
`applies_to` or `check` means unknown (待核实). Member rules roll up to their household: fail
when any living member fails, else unknown when any is unknown; a household with no living
member is unknown. A rule whose register or input column is absent is skipped, and said so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from exitcheck.errors import ConfigError
from exitcheck.i18n import pick
from exitcheck.idcard import mask
from exitcheck.registers.model import Registers
from exitcheck.registers.schema import REGISTERS, field_label, fields
from exitcheck.rules.expr import Expression, ExpressionError, compile_expression
from exitcheck.rules.model import (
    EXPRESSION_PARTS,
    Level,
    Rule,
    RuleSet,
    expression_error,
    param_error,
)
from exitcheck.rules.syntax import used_names

PASS, FAIL, UNKNOWN, NA = "pass", "fail", "unknown", "na"
#: A status column is categorical over these: a code per unit, not a string (making 90,000
#: strings for a member rule, and mapping them back, took longer than the rule).
STATUSES = pd.CategoricalDtype([PASS, FAIL, UNKNOWN, NA])
_CODE = {status: code for code, status in enumerate(STATUSES.categories)}
NO_MEMBER = -2  # the rank of a household no living member speaks for (below every status)
UNIT_KEYS: dict[str, tuple[str, ...]] = {
    "member": ("household_id", "township", "village"),
    "household": ("household_id", "township", "village"),
    "village": ("township", "village"),
    "township": ("township",),
    "county": (),
}
KIND_TYPES = {"yes_no": "bool", "number": "number", "integer": "integer", "year": "integer",
              "date": "date", "choice": "choice", "multi_choice": "text", "text": "text", "id_number": "text"}
DERIVED: dict[str, dict[str, tuple[str, str, str]]] = {
    # level -> name -> (type, Chinese label, English label)
    "household": {
        "living_members": ("integer", "在世成员数", "living members"),
        "labour_unemployed": ("integer", "有劳动力未务工人数", "members able to work without work"),
        "disabled_members": ("integer", "残疾成员数", "members with a disability"),
        "data_errors": ("integer", "数据错误数", "data errors"),
    },
    "member": {"age": ("integer", "年龄", "age")},
    "village": {
        "poor_people": ("integer", "未脱贫人口", "poor people"),
        "incidence": ("number", "贫困发生率", "poverty incidence"),
        "collective_per_capita": ("number", "人均集体经济收入", "collective income per person"),
    },
    "township": {
        "population": ("number", "户籍人口", "population"),
        "poor_people": ("number", "未脱贫人口", "poor people"),
        "incidence": ("number", "贫困发生率", "poverty incidence"),
    },
    "county": {
        "households": ("integer", "户数", "households"),
        "registered_households": ("integer", "建档立卡户数", "registered households"),
        "population": ("number", "户籍人口", "population"),
        "poor_people": ("integer", "未脱贫人口", "poor people"),
        "incidence": ("number", "贫困发生率", "poverty incidence"),
        "satisfaction_rate": ("number", "认可度", "satisfaction rate"),
    },
}
#: The optional register fields a derived figure is computed from. Without the column the figure
#: is not there (its rules are skipped, naming the column), rather than blank for every unit
#: (待核实 "为空" everywhere) or zero (no household with a disability): a national export has no
#: 认可度, a 村表 may have no 村集体经济收入, a 成员表 no 健康状况.
DERIVED_INPUTS: dict[str, dict[str, tuple[tuple[str, str], ...]]] = {
    "household": {
        "labour_unemployed": (("members", "labor_ability"), ("members", "employment")),
        "disabled_members": (("members", "health"),),
    },
    "village": {"collective_per_capita": (("villages", "collective_income"),)},
    "county": {"satisfaction_rate": (("households", "satisfaction"),)},
}
LEVEL_REGISTERS: dict[str, tuple[str, ...]] = {
    "member": ("members", "households"),
    "household": ("households",),
    "village": ("villages",),
    "township": ("townships",),
    "county": (),
}


@dataclass
class Outcome:
    """One rule's statuses over the units of its level (index = the unit frame's index)."""

    rule: Rule
    status: pd.Series  # categorical over STATUSES: pass / fail / unknown / na
    high: pd.Series | None = None
    member_status: pd.Series | None = None  # for member rules, per living member (categorical too)
    exprs: dict[str, Expression | None] = field(default_factory=dict)  # as compiled for the run


@dataclass
class Skipped:
    rule: str
    zh: str
    en: str
    #: The optional registers (村表, 乡镇表) whose absence alone kept the rule from being
    #: evaluated, so that the terminal can say it once for all their rules; empty when a
    #: column is missing.
    registers: tuple[str, ...] = ()
    county: str | None = None  # in an audit of several counties, the county it was skipped in
    #: Evaluated on part of its indicators only (a risk rule some of whose indicators were
    #: skipped): it has an outcome too, and this says what it left out.
    partly: bool = False


def rule_notes(skipped: list[Skipped], lang: str) -> dict[str, list[dict[str, str]]]:
    """The summary's account of the rules not evaluated, and of those evaluated in part."""
    def listed(partly: bool) -> list[dict[str, str]]:
        return [{"rule": s.rule, "reason": s.en if lang == "en" else s.zh} for s in skipped if s.partly == partly]

    return {"skipped_rules": listed(False), "partly_evaluated_rules": listed(True)}


@dataclass
class Evaluation:
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)


def names_for(level: str, ruleset: RuleSet, extra_ok: list[str], lang: str = "zh") -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Accepted names (field, header, alias) -> column, their types, and their labels (in
    `lang`: a reason in English names a field in English, an ok_ column by its indicator)."""
    mapping: dict[str, str] = {}
    types: dict[str, str] = {}
    labels: dict[str, str] = {}
    for register in LEVEL_REGISTERS[level]:
        for spec in fields(register):  # type: ignore[arg-type]
            if spec.name in types:
                continue
            for text in (spec.name, spec.header, *spec.aliases):
                mapping.setdefault(text, spec.name)
            types[spec.name] = KIND_TYPES[spec.kind]
            labels[spec.name] = spec.label(lang)
    if level == "member":
        for spec in fields("households"):
            labels.setdefault(spec.name, spec.label(lang))
    for name, (kind, zh, en) in {**DERIVED.get(level, {}), **(DERIVED["household"] if level == "member" else {})}.items():
        mapping[name] = name
        mapping.setdefault(zh, name)
        types[name] = kind
        labels[name] = en if lang == "en" else zh
    indicators = {f"ok_{rule.id}": rule.name_en if lang == "en" and rule.name_en else rule.name for rule in ruleset.rules}
    for name in extra_ok:
        mapping[name] = name
        types[name] = "bool"
        labels[name] = indicators.get(name, name)
    return mapping, types, labels


def ok_columns(ruleset: RuleSet) -> list[str]:
    return [f"ok_{rule.id}" for rule in ruleset.rules if rule.level in ("household", "member")]


def compile_rule(rule: Rule, ruleset: RuleSet) -> dict[str, Expression | None]:
    """The rule's expressions, compiled once; a ConfigError names the rule-set file's line,
    the rule and the part of one that does not compile (an unknown name, a kind mismatch)."""
    mapping, types, _ = names_for(rule.level, ruleset, ok_columns(ruleset))
    out: dict[str, Expression | None] = {}
    for part in EXPRESSION_PARTS:
        text = getattr(rule, part)
        if text is None:
            out[part] = None
            continue
        try:
            out[part] = compile_expression(text, fields=mapping, params=ruleset.spec.params, types=types)
        except ExpressionError as error:
            raise param_at_fault(ruleset, rule, part, mapping, types) or expression_error(ruleset, rule, part, error) from None
    return out


def param_at_fault(ruleset: RuleSet, rule: Rule, part: str, mapping: dict[str, str], types: dict[str, str]) -> ConfigError | None:
    """The error at the params: line when a param written as text (income_line: "四千二") is
    what keeps the rule's expression from compiling, as it would with a number there: the rule
    is right and the value is wrong, so the clerk is sent to the value. None otherwise."""
    text = getattr(rule, part)
    params = ruleset.spec.params
    for name in sorted(used_names(text) & {n for n, v in params.items() if isinstance(v, str)}):
        try:
            compile_expression(text, fields=mapping, params={**params, name: 0}, types=types)
        except ExpressionError:
            continue
        return param_error(ruleset, name, rule, part)
    return None


def compile_ruleset(ruleset: RuleSet) -> RuleSet:
    """`ruleset` with every rule compiled once, so that a rule that does not compile is
    reported (ConfigError) before any register is read."""
    for rule in ruleset.rules:
        compile_rule(rule, ruleset)
    return ruleset


def statuses(applies: pd.Series | None, ok: pd.Series) -> pd.Series:
    """pass / fail / unknown / na from the three-valued applies_to and check."""
    ok = ok.astype("boolean")
    ok_true = ok.fillna(False).to_numpy(dtype=bool)
    ok_false = (~ok).fillna(False).to_numpy(dtype=bool)
    if applies is None:
        applies_true = np.ones(len(ok), dtype=bool)
        applies_false = np.zeros(len(ok), dtype=bool)
    else:
        applies = applies.astype("boolean")
        applies_true = applies.fillna(False).to_numpy(dtype=bool)
        applies_false = (~applies).fillna(False).to_numpy(dtype=bool)
    codes = np.select(
        [applies_false, applies_true & ok_true, applies_true & ok_false],
        [_CODE[NA], _CODE[PASS], _CODE[FAIL]],
        default=_CODE[UNKNOWN],
    )
    return _status_series(codes, ok.index)


def _status_series(codes: np.ndarray, index: pd.Index) -> pd.Series:
    return pd.Series(pd.Categorical.from_codes(codes.astype(np.int8), dtype=STATUSES), index=index)


@dataclass(frozen=True)
class Membership:
    """Each living member's household and each household row coded alike: the ids are hashed
    once per evaluation, not once per member rule (a groupby over 90,000 ids each time)."""

    member_codes: np.ndarray  # per member, the code of its household id; -1 for none
    household_codes: np.ndarray  # per household row, the code of its id; -1 for none
    size: int  # number of distinct ids

    @classmethod
    def of(cls, members: pd.DataFrame, households: pd.DataFrame) -> Membership:
        ids = pd.concat([members["household_id"], households["household_id"]], ignore_index=True)
        codes, distinct = pd.factorize(ids)
        return cls(codes[: len(members)], codes[len(members):], len(distinct))


def roll_up(member_status: pd.Series, membership: Membership, households: pd.DataFrame, applies: pd.Series | None) -> pd.Series:
    """Household status from its living members: the worst of fail > unknown > pass."""
    codes = member_status.cat.codes.to_numpy()
    ranks = np.select([codes == _CODE[FAIL], codes == _CODE[UNKNOWN], codes == _CODE[PASS]], [2, 1, 0], default=-1)
    worst = np.full(membership.size, NO_MEMBER)
    owned = membership.member_codes >= 0
    np.maximum.at(worst, membership.member_codes[owned], ranks[owned])
    per_household = np.where(membership.household_codes >= 0, worst[membership.household_codes], NO_MEMBER)
    # no living member, none checked (-1) or one unknown: the household cannot be told
    result = np.select([per_household == 2, per_household == 0], [_CODE[FAIL], _CODE[PASS]], default=_CODE[UNKNOWN])
    if applies is not None:
        applies = applies.astype("boolean")
        result = np.where((~applies).fillna(False).to_numpy(dtype=bool), _CODE[NA], result)
        result = np.where(applies.isna().to_numpy(dtype=bool) & (result != _CODE[FAIL]), _CODE[UNKNOWN], result)
    return _status_series(result, households.index)


def missing_inputs(rule: Rule, exprs: dict[str, Expression | None], available: set[str]) -> list[str]:
    needed: set[str] = set()
    for expr in exprs.values():
        if expr is not None:
            needed |= set(expr.fields)
    return sorted(needed - available)


def evaluate(ruleset: RuleSet, frames: dict[str, pd.DataFrame], registers: Registers, labels_lang: str = "zh") -> Evaluation:
    """Run every rule; indicators first, so that risk rules can read their ok_ columns."""
    evaluation = Evaluation()
    available = _available(frames, registers)
    ordered = [r for r in ruleset.rules if r.kind == "indicator"] + [r for r in ruleset.rules if r.kind == "risk"]
    households = frames["household"]
    caches: dict[str, dict[tuple[str, str], pd.Series]] = {level: {} for level in frames}
    membership = Membership.of(frames["member"], households) if "member" in frames else None
    unfounded = set(unfounded_figures("household", registers))
    for rule in ordered:
        exprs = compile_rule(rule, ruleset)
        household_columns = set(households.columns) - unfounded if rule.level == "member" else set()
        absent = missing_inputs(rule, exprs, available[rule.level] | household_columns)
        untold = _untold_indicators(rule, exprs, absent, evaluation)
        if rule.level not in frames or (absent and not untold):
            evaluation.skipped.append(_skipped(rule, ruleset, absent, rule.level in frames, registers))
            continue
        if untold:
            outcome = _evaluate_without(rule, exprs, frames, membership, untold)
            evaluation.skipped.append(_partly(rule, ruleset, untold))
        else:
            outcome = _evaluate_rule(rule, exprs, frames, caches, membership)
        outcome.exprs = exprs
        evaluation.outcomes[rule.id] = outcome
        if rule.level in ("household", "member"):
            codes = outcome.status.cat.codes.to_numpy()
            told = (codes == _CODE[PASS]) | (codes == _CODE[FAIL])
            ok = pd.Series(pd.arrays.BooleanArray(codes == _CODE[PASS], ~told), index=outcome.status.index)
            households[f"ok_{rule.id}"] = ok
            available["household"].add(f"ok_{rule.id}")
            available["member"].add(f"ok_{rule.id}")
    return evaluation


def _untold_indicators(rule: Rule, exprs: dict[str, Expression | None], absent: list[str], evaluation: Evaluation) -> list[str]:
    """The ok_ columns of skipped indicators that a household risk rule's check can do without.

    错退风险 is `ok_income and ok_education and ... and ok_water`: a register with no 安全饮水
    column skips the water indicator, and skipping the risk rule with it would leave the poverty
    office no wrong-exit list at all, even for an exited household far below the income line.
    It is evaluated on the indicators that were told instead, when only its check needs the
    untold ones and at least one of its indicators was told; otherwise [] (skipped as before)."""
    skipped = {s.rule for s in evaluation.skipped if not s.partly}
    untold = [name for name in absent if name.startswith("ok_") and name[3:] in skipped]
    check = exprs["check"]
    if rule.kind != "risk" or rule.level != "household" or not absent or untold != absent or check is None:
        return []
    other = [expr for key, expr in exprs.items() if key != "check" and expr is not None]
    if any(set(untold) & set(expr.fields) for expr in other):
        return []
    told = [name for name in check.fields if name.startswith("ok_") and name not in untold]
    return untold if told else []


def _evaluate_without(rule: Rule, exprs: dict[str, Expression | None], frames: dict[str, pd.DataFrame],
                      membership: Membership | None, untold: list[str]) -> Outcome:
    """The rule's outcome with the `untold` indicators unknown: a household failing a told one
    fails; one that fails none of them is left out (na), as whether it would fail an untold one
    is not known, rather than listed as unknown (every exited household would be); one unknown
    for a reason of its own stays unknown."""
    households = frames["household"]

    def with_untold(value: object) -> Outcome:
        column = pd.array([value] * len(households), dtype="boolean")
        filled = households.assign(**{name: pd.Series(column, index=households.index) for name in untold})
        # caches of their own: a cached part of the check may read an untold indicator
        return _evaluate_rule(rule, exprs, {**frames, "household": filled}, {level: {} for level in frames}, membership)

    outcome, assumed = with_untold(pd.NA), with_untold(True)
    codes = outcome.status.cat.codes.to_numpy()
    only_untold = (codes == _CODE[UNKNOWN]) & (assumed.status.cat.codes.to_numpy() == _CODE[PASS])
    outcome.status = _status_series(np.where(only_untold, _CODE[NA], codes), outcome.status.index)
    return outcome


def _partly(rule: Rule, ruleset: RuleSet, untold: list[str]) -> Skipped:
    """What a rule evaluated without some of its indicators left out, for the summary."""
    rules = {other.id: other for other in ruleset.rules}
    left = [rules[name[3:]] for name in untold]
    left_zh = "、".join(f"{r.id}({r.name})" for r in left)
    left_en = ", ".join(f"{r.id} ({r.name_en or r.name})" for r in left)
    return Skipped(rule.id, f"规则 {rule.id}({rule.name})只按其余指标评估: 它依据的 {left_zh} 未评估; 列出的是其余指标不达标或待核实的户, "
                            f"其余指标都达标的户未列出(缺的那项是否达标不知道)",
                   f"rule {rule.id} ({rule.name_en or rule.name}) was evaluated without {left_en}, which "
                   f"{'was' if len(left) == 1 else 'were'} not evaluated: the households listed fail or are unknown on its other "
                   f"indicators; those meeting all of them are not listed (whether they meet the one left out is not known)",
                   partly=True)


#: Figures of a level computed from a register that is not the level's own: every incidence
#: above the village divides by the villages' population (register-format: village incidence).
DERIVED_FROM: dict[str, dict[str, str]] = {
    "village": {name: "villages" for name in DERIVED["village"]},
    "township": {"population": "villages", "poor_people": "villages", "incidence": "villages"},
    "county": {"population": "villages", "incidence": "villages"},
}
#: A register as the skipped-rule messages name it: (Chinese, English).
REGISTER_NAMES = {
    "households": ("户表", "household register (户表)"),
    "members": ("成员表", "member register (成员表)"),
    "villages": ("村表", "village register (村表)"),
    "townships": ("乡镇表", "township register (乡镇表)"),
}
LEVEL_NAMES = {"member": ("成员", "member"), "household": ("户级", "household"), "village": ("村级", "village"),
               "township": ("乡镇级", "township"), "county": ("县级", "county")}


def registers_named(registers: Sequence[str], loaded: Registers | None = None) -> tuple[str, str]:
    """Absent registers as a skipped-rule message names them: (村表、乡镇表, village register
    (村表) and township register (乡镇表)); one whose sheet was refused for a missing column
    (in `loaded`) as such, for 'there is no 村表' beside a 村表 would send the clerk looking
    for the wrong thing."""
    zh, en = [], []
    for register in registers:
        label, name = REGISTER_NAMES[register]
        refused = loaded.refused_columns(register) if loaded is not None else []
        if refused:
            zh.append(f"可读的{label}({label}缺少必填列「{'、'.join(refused)}」, 未读取)")
            en.append(f"readable {name} ({label} lacks the required column {', '.join(refused)} and was not read)")
        else:
            zh.append(label)
            en.append(name)
    return "、".join(zh), " and ".join(en)


def _skipped(rule: Rule, ruleset: RuleSet, absent: list[str], level_present: bool, registers: Registers) -> Skipped:
    """Why `rule` is not evaluated. A register the rule needs that is absent altogether (村表,
    乡镇表, both optional) is named as such, with the rule's level or the figure that needed
    it, never its columns one by one, nor a computed figure (贫困发生率) as if a column were
    missing; only columns absent from a register that is there are named as columns."""
    name_en = rule.name_en or rule.name
    own = LEVEL_REGISTERS[rule.level]
    gone = [r for r in own if r in REGISTERS and not registers.has(r)]  # type: ignore[arg-type]
    fields_of = {spec.name: register for register in own for spec in fields(register)}  # type: ignore[arg-type]
    if not level_present or (gone and all(fields_of.get(name) in gone for name in absent)):
        # the level's own register is absent (村表; 乡镇表, whose townships the households still give)
        registers_zh, registers_en = registers_named(gone, registers) if gone else (rule.level, rule.level)
        level_zh, level_en = LEVEL_NAMES.get(rule.level, (rule.level, rule.level))
        return Skipped(rule.id, f"没有{registers_zh}, {level_zh}规则 {rule.id}({rule.name})未评估",
                       f"there is no {registers_en}, so the {level_en} rule {rule.id} ({name_en}) was not evaluated", tuple(gone))
    because: dict[str, list[str]] = {}  # an absent register -> what it would have given
    columns: list[str] = []
    rules = {other.id: other for other in ruleset.rules}
    # ok_education of a rule that was itself skipped: that rule is named, not an "ok_" column
    depends = [rules[name[3:]] for name in absent if name.startswith("ok_") and name[3:] in rules]
    unfounded = unfounded_figures(rule.level, registers)
    lacking_inputs: dict[str, list[str]] = {}  # a figure whose inputs a present register lacks -> them
    for name in absent:
        register = DERIVED_FROM.get(rule.level, {}).get(name) or fields_of.get(name)
        if name.startswith("ok_") and name[3:] in rules:
            continue
        if name in unfounded:
            lacking_inputs[name] = unfounded[name]
        elif register and not registers.has(register):  # type: ignore[arg-type]
            because.setdefault(register, []).append(name)
        else:
            columns.append(name)
    _, _, labels_zh = names_for(rule.level, ruleset, [])
    _, _, labels_en = names_for(rule.level, ruleset, [], "en")
    reasons_zh, reasons_en = [], []
    for figure, lacking in lacking_inputs.items():
        # the column the clerk can add, not the figure as if it were a column; the figure only
        # when its name is not the column's (认可度 is both)
        for reasons, lang, labels in ((reasons_zh, "zh", labels_zh), (reasons_en, "en", labels_en)):
            inputs = [field_label(n, lang) for n in lacking]
            shown = labels.get(figure, figure)
            reasons.append(pick(lang, f"登记表中没有「{'、'.join(inputs)}」", f"the registers have no {', '.join(inputs)}")
                           + ("" if shown in inputs else pick(lang, f", 无法计算{shown}", f" to compute the {shown} from")))
    for register, names in because.items():
        figures = [n for n in names if n in DERIVED.get(rule.level, {})]
        what_zh = "、".join(labels_zh.get(n, n) for n in names)
        what_en = ", ".join(labels_en.get(n, n) for n in names)
        named_zh, named_en = registers_named([register], registers)
        if figures:
            from_zh, from_en = ("(要用各村的户籍人口)", " (it needs the villages' population)") if register == "villages" else ("", "")
            reasons_zh.append(f"没有{named_zh}, 无法计算{what_zh}{from_zh}")
            reasons_en.append(f"there is no {named_en} to compute the {what_en} from{from_en}")
        else:
            reasons_zh.append(f"没有{named_zh}(缺少「{what_zh}」)")
            reasons_en.append(f"there is no {named_en} (for {what_en})")
    if columns:
        reasons_zh.append(f"登记表中没有「{'、'.join(labels_zh.get(a, a) for a in columns)}」")
        reasons_en.append(f"the registers have no {', '.join(labels_en.get(a, a) for a in columns)}")
    if depends:
        reasons_zh.append(f"它依据的{'、'.join(f'{d.id}({d.name})' for d in depends)}未评估")
        reasons_en.append(f"it depends on {', '.join(f'{d.id} ({d.name_en or d.name})' for d in depends)}, not evaluated")
    return Skipped(rule.id, f"{'; '.join(reasons_zh)}, 规则 {rule.id}({rule.name})未评估",
                   f"{'; '.join(reasons_en)}; rule {rule.id} ({name_en}) not evaluated",
                   () if columns or depends or lacking_inputs else tuple(because))


def _evaluate_rule(rule: Rule, exprs: dict[str, Expression | None], frames: dict[str, pd.DataFrame],
                   caches: dict[str, dict[tuple[str, str], pd.Series]], membership: Membership | None) -> Outcome:
    applies_expr, check_expr, high_expr = exprs["applies_to"], exprs["check"], exprs["high_when"]
    assert check_expr is not None
    if rule.level == "member":
        assert membership is not None  # a member rule runs only when there is a member frame
        members, cache = frames["member"], caches["member"]
        applies = applies_expr.evaluate_bool(members, cache) if applies_expr else None
        member_status = statuses(applies, check_expr.evaluate_bool(members, cache))
        households = frames["household"]
        try:
            household_applies = applies_expr.evaluate_bool(households, caches["household"]) if applies_expr else None
        except ExpressionError:
            household_applies = None
        status = roll_up(member_status, membership, households, household_applies)
        return Outcome(rule, status, member_status=member_status)
    frame, cache = frames[rule.level], caches[rule.level]
    applies = applies_expr.evaluate_bool(frame, cache) if applies_expr else None
    status = statuses(applies, check_expr.evaluate_bool(frame, cache))
    high = high_expr.evaluate_bool(frame, cache).fillna(False).astype(bool) if high_expr else None
    return Outcome(rule, status, high=high)


def _available(frames: dict[str, pd.DataFrame], registers: Registers) -> dict[str, set[str]]:
    """Columns a rule may read at each level: present register fields and derived figures
    (those whose inputs are there)."""
    out: dict[str, set[str]] = {}
    for level in ("member", "household", "village", "township", "county"):
        names: set[str] = set()
        for register in LEVEL_REGISTERS[level]:
            if register in REGISTERS and registers.has(register):  # type: ignore[arg-type]
                names |= registers.present_fields(register)  # type: ignore[arg-type]
        if level in frames:
            names |= {c for c in DERIVED.get(level, {}) if c in frames[level].columns}
        if level == "member":
            names |= {c for c in DERIVED["household"] if c in frames["household"].columns}
        if level in ("household", "member") and "category" in frames["household"].columns:
            names.add("category")  # filled in for national exports that have no 农户类别
        out[level] = names - set(unfounded_figures(level, registers))
    return out


def unfounded_figures(level: str, registers: Registers) -> dict[str, list[str]]:
    """The derived figures of `level` (a member reads its household's) whose inputs some
    register that is there lacks, each with the fields it lacks."""
    inputs = {**DERIVED_INPUTS.get(level, {}), **(DERIVED_INPUTS["household"] if level == "member" else {})}
    out: dict[str, list[str]] = {}
    for figure, needed in inputs.items():
        lacking = [name for register, name in needed
                   if registers.has(register) and name not in registers.present_fields(register)]  # type: ignore[arg-type]
        if lacking:
            out[figure] = lacking
    return out


def unit_key(level: Level, row: dict[str, Any]) -> str:
    if level in ("member", "household"):
        return str(row.get("household_id"))
    if level == "village":
        return f"{row.get('township')}/{row.get('village')}"
    if level == "township":
        return str(row.get("township"))
    return "county"


def plain(value: Any) -> Any:
    """A JSON-friendly scalar (numpy and pandas scalars, NA -> None)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def plain_text(value: Any) -> str | None:
    """A cell as text, None when blank (NA, NaN, None)."""
    value = plain(value)
    return None if value is None else str(value)


def masked_value(name: str, value: Any) -> Any:
    value = plain(value)
    if name in ("id_number", "head_id_number") and isinstance(value, str):
        return mask(value)
    return value
