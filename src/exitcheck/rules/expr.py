"""The rule expression language.

Indicator rules in YAML describe *which households a rule applies to*
(``applies_to``), *what must hold* (``check``) and *which rows to look at*
(``where``) with short expressions such as::

    人均纯收入 >= poverty_line and notblank(脱贫年度)
    household_size > 0 and income_total / household_size < poverty_line
    attribute in ["脱贫户", "监测户"] and not safe_water
    matches(id_number, "[0-9]{17}[0-9X]")

The syntax is a small, safe subset of Python expression syntax.  Rule text is
parsed, checked against a whitelist and turned into column-wise operations on
a table; it is never run as Python code.

Names
    * a field: its canonical name (``income_per_capita``) or its Chinese
      header (``人均纯收入``);
    * a parameter of the rule set (``poverty_line``), replaced by its value.

    An unknown name is an error that suggests the closest known name.

Literals
    Text in quotes (``"脱贫户"``, at most 1000 characters), numbers (``3``,
    ``4000.5``; whole numbers up to 10**15 in size), ``True`` and ``False``.
    ``None`` does not exist: test for blanks with ``isblank(x)``.  Lists
    ``[...]``, tuples ``(...)`` and sets ``{...}`` of literals may only appear
    on the right of ``in`` / ``not in``.

Operators
    * comparison: ``==  !=  <  <=  >  >=``, also chained: ``0 < x <= 10``
      means ``0 < x and x <= 10``;
    * membership: ``x in ["a", "b"]``, ``x not in [1, 2]``;
    * logic: ``and``, ``or``, ``not``;
    * arithmetic on numbers: ``+  -  *  /  //  %`` and a leading ``-`` or
      ``+``; ``+`` also joins two texts.  Dividing by zero gives a blank.
      There is no power operator ``**``.

    Values must be of matching kinds: a number is compared with a number,
    text with text, a date with a date (or with a date written as text, such
    as ``"2020-12-31"``) and true/false values only with ``==`` / ``!=``.

Functions
    * ``isblank(x)``: true when x is blank (never unknown)
    * ``notblank(x)``: true when x is not blank (never unknown)
    * ``len(x)``: number of characters of the text x
    * ``contains(x, "s")``: the text x contains the literal text "s"
    * ``matches(x, "re")``: the whole text x matches the regular expression
    * ``startswith(x, "s")``: the text x starts with "s"
    * ``abs(x)``: absolute value of the number x
    * ``min(a, b, ...)`` / ``max(a, b, ...)``: smallest / largest of two or
      more numbers (unknown if any of them is blank)
    * ``year(x)``: year of the date x, as a number
    * ``coalesce(a, b, ...)``: the first of the values that is not blank

    The second argument of ``contains``, ``matches`` and ``startswith`` must
    be text written in the rule (or a text parameter).  Regular expressions
    use Python syntax, are at most 200 characters long and may not repeat a
    repetition (``(a+)+``), which could take exponential time.

Blanks and unknown results
    A blank cell (empty, only spaces, or missing) is *unknown*, never zero or
    empty text.  A comparison, ``in``, arithmetic or text function with an
    unknown operand is unknown, so a rule on a blank cell neither passes nor
    fails silently.  ``and`` / ``or``
    follow three-valued logic: ``False and unknown`` is ``False``, ``True or
    unknown`` is ``True``, anything else involving unknown is unknown.
    ``isblank`` and ``notblank`` are always known.  A field holding
    true/false values can be used as a condition on its own (``safe_water``
    means ``safe_water == True``).

Field kinds
    When the kinds of fields are known ("text", "number", "integer", "bool",
    "date" or "choice"; a choice is compared as text) mismatches such as
    ``income_per_capita == "abc"`` are reported when the rule is loaded,
    otherwise when it is evaluated.  Columns are read as: numbers, text
    (trimmed of surrounding spaces), true/false values (text such as
    "是"/"否" is understood when the field is declared "bool") and dates.
    Text in a field declared "number" or "date" is read as the registers
    read amounts and dates ("4,350", "4200元", "2020年6月1日", "20200601");
    any other text there is unknown, never a guess ("43,50", "5/1/2020").

Limits
    At most 2000 characters, 300 syntax elements and 40 levels of nesting
    (a chain like ``a + b + c`` nests one level per operator; redundant
    parentheses do not count).  An expression may continue on further lines
    only inside parentheses.  Attributes (``x.y``), indexing (``x[0]``),
    keyword arguments, ``lambda``, comprehensions, f-strings, ``:=``,
    ``a if b else c``, ``**`` and calls to any function not listed above are
    rejected.

Errors
    Every problem raises ExpressionError, whose one-line message names the
    problem and its column, e.g. ``unknown name 'incme_per_capita' at column
    1; did you mean 'income_per_capita'?``, and whose ``in_chinese()`` is the
    same line in Chinese (every error has one: the clerk who edits a rule file
    reads them in Chinese by default).  A column missing from the table
    raises MissingColumn (a kind of ExpressionError), so the rule can be
    skipped.
"""

from __future__ import annotations

import ast
import difflib
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd

from exitcheck.registers import normalise
from exitcheck.rules.syntax import (
    ExpressionError,
    Source,
    parse,
)

__all__ = [
    "FIELD_TYPES",
    "FUNCTIONS",
    "Expression",
    "ExpressionError",
    "MissingColumn",
    "compile_expression",
]

MAX_STRING_LITERAL = 1000
MAX_INT_LITERAL = 10**15
MAX_PATTERN_LENGTH = 200

FIELD_TYPES: frozenset[str] = frozenset({"text", "number", "integer", "bool", "date", "choice"})

FUNCTIONS: dict[str, str] = {
    "isblank": "isblank(x): true when x is blank (never unknown)",
    "notblank": "notblank(x): true when x is not blank (never unknown)",
    "len": "len(x): number of characters of the text x",
    "contains": 'contains(x, "s"): the text x contains the literal text "s"',
    "matches": 'matches(x, "re"): the whole text x matches the regular expression',
    "startswith": 'startswith(x, "s"): the text x starts with "s"',
    "abs": "abs(x): absolute value of the number x",
    "min": "min(a, b, ...): smallest of two or more numbers",
    "max": "max(a, b, ...): largest of two or more numbers",
    "year": "year(x): year of the date x, as a number",
    "coalesce": "coalesce(a, b, ...): the first of the values that is not blank",
}

Kind: TypeAlias = Literal["number", "text", "bool", "date", "any"]
Scalar: TypeAlias = "bool | int | float | str | pd.Timestamp"
Value: TypeAlias = "pd.Series | bool | int | float | str | pd.Timestamp"

_STRING = pd.StringDtype("python")
_KIND_OF_TYPE: dict[str, Kind] = {
    "text": "text",
    "choice": "text",
    "number": "number",
    "integer": "number",
    "bool": "bool",
    "date": "date",
}
_KIND_LABEL: dict[str, str] = {
    "number": "a number",
    "text": "text",
    "bool": "a true/false value",
    "date": "a date",
    "any": "a value",
}
#: The same kinds in the Chinese messages, in the words a clerk uses for a cell's contents.
_KIND_ZH: dict[str, str] = {
    "number": "数字",
    "text": "文字",
    "bool": "是/否",
    "date": "日期",
    "any": "值",
}
#: A message, or a part of one, in English and in Chinese: built together from the same parts
#: so that no error is left with English alone in Chinese mode.
_Words: TypeAlias = tuple[str, str]
_TRUE_WORDS = ("是", "true", "yes", "y", "t", "1", "有", "√", "✓")
_FALSE_WORDS = ("否", "false", "no", "n", "f", "0", "无", "×", "✗")


# --------------------------------------------------------------------------
# Errors


def _kinds(kinds: Iterable[str], en_joiner: str = " or ", zh_joiner: str = "或") -> _Words:
    """'a number or text' / '数字或文字'."""
    listed = list(kinds)
    return en_joiner.join(_KIND_LABEL[k] for k in listed), zh_joiner.join(_KIND_ZH[k] for k in listed)


def _op(symbol: str) -> _Words:
    """An operator as a message names it: quoted in English, as written in the rule in Chinese."""
    return f"'{symbol}'", f"运算符 {symbol}"


def _function(name: str) -> _Words:
    return f"{name}()", f"{name}()"


def _needs(what: _Words, kinds: Iterable[str], got: str) -> _Words:
    """'abs() needs a number, got text': a value of the wrong kind for an operator or function."""
    wanted, wanted_zh = _kinds(kinds)
    return f"{what[0]} needs {wanted}, got {_KIND_LABEL[got]}", f"{what[1]} 需要{wanted_zh}, 现为{_KIND_ZH[got]}"


def _not_a_date(value: object) -> _Words:
    return f"{value!r} is not a date", f"「{value}」不是日期"


def _not_allowed(what: _Words) -> _Words:
    return f"{what[0]} is not allowed", f"不能使用{what[1]}"


def _did_you_mean(close: list[str]) -> _Words | None:
    return (f"did you mean {close[0]!r}?", f"是否指 {close[0]}?") if close else None


def _not_a_condition(kind: str, text: str, offset: int | None) -> ExpressionError:
    """An expression used as a condition that gives a number, text or a date instead."""
    return ExpressionError(
        f"expression gives {_KIND_LABEL[kind]}, not a condition (true/false)", expression=text, offset=offset,
        zh=(f"表达式得出的是{_KIND_ZH[kind]}, 不是条件(是/否)", None),
    )


class MissingColumn(ExpressionError):
    """The table lacks a column that the expression reads.

    ``column`` is the first missing column, ``columns`` all of them.
    """

    def __init__(self, columns: Iterable[str], *, expression: str = "") -> None:
        self.columns = tuple(columns)
        self.column = self.columns[0]
        names = ", ".join(repr(c) for c in self.columns)
        plural = "s" if len(self.columns) > 1 else ""
        super().__init__(f"missing column{plural} {names}", expression=expression,
                         zh=(f"缺少列 {'、'.join(self.columns)}", None))


# --------------------------------------------------------------------------
# Runtime helpers (all vectorised: no per-row Python)


class _Context:
    """State of one evaluation: the frame and a cache of coerced columns."""

    __slots__ = ("cache", "expression", "frame", "index")

    def __init__(self, frame: pd.DataFrame, expression: str, cache: dict[tuple[str, str], pd.Series] | None = None) -> None:
        self.frame = frame
        self.index = frame.index
        self.expression = expression
        self.cache: dict[tuple[str, str], pd.Series] = {} if cache is None else cache

    def error(self, words: _Words, offset: int | None) -> ExpressionError:
        return ExpressionError(words[0], expression=self.expression, offset=offset, zh=(words[1], None))

    def column(self, name: str, hint: Kind, offset: int | None) -> pd.Series:
        key = (name, hint)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        if name not in self.frame.columns:
            raise MissingColumn([name], expression=self.expression)
        raw = self.frame[name]
        if isinstance(raw, pd.DataFrame):
            raise self.error((f"column {name!r} appears more than once", f"列 {name} 出现了不止一次"), offset)
        try:
            series = _coerce(_normalise(raw), hint)
        except _CoercionError as exc:
            en, zh = exc.args
            raise self.error((f"column {name!r} {en}", f"列 {name} {zh}"), offset) from None
        self.cache[key] = series
        return series


class _CoercionError(Exception):
    """A column that cannot be read as its field's kind; its args are the reason in English and
    in Chinese."""


def _float_series(values: pd.Series) -> pd.Series:
    """Any numeric series -> Float64 with NA for missing/NaN."""
    array = values.to_numpy(dtype="float64", na_value=np.nan)
    return pd.Series(array, index=values.index, dtype="Float64")


def _text_series(values: pd.Series) -> pd.Series:
    """Series -> string dtype, trimmed, blank -> NA.

    A column that already has a string dtype keeps its storage: converting a 90,000-row
    arrow column to Python strings for every rule cost more than the rules themselves.
    """
    dtype = values.dtype
    if isinstance(dtype, pd.StringDtype):
        # pandas 3's default "str" has NaN semantics (comparisons give False, not unknown):
        # move it to the NA-semantics string dtype of the same storage, which is cheap.
        text = values if dtype.na_value is pd.NA else values.astype(pd.StringDtype(dtype.storage))
    else:
        text = values.astype(_STRING)
    text = text.str.strip()
    return text.mask(text == "")


def _bool_series(values: np.ndarray, unknown: np.ndarray, index: pd.Index) -> pd.Series:
    array = pd.arrays.BooleanArray(np.array(values, dtype=bool), np.array(unknown, dtype=bool))
    return pd.Series(array, index=index)


def _normalise(column: pd.Series) -> pd.Series:
    """Give a raw column one of the four working dtypes by its content."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        column = column.astype(object)
        dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return column.astype("boolean")
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return column
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return _float_series(column)
    if pd.api.types.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(column, skipna=True)
        if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
            return _float_series(pd.to_numeric(column, errors="coerce"))
        if inferred == "boolean":
            return column.astype("boolean")
        if inferred in ("datetime", "datetime64", "date"):
            try:
                return pd.Series(pd.to_datetime(column, errors="coerce"), index=column.index)
            except (TypeError, ValueError):
                pass
    return _text_series(column)


def _kind_of(value: Value) -> Kind:
    if isinstance(value, pd.Series):
        dtype = value.dtype
        if isinstance(dtype, pd.BooleanDtype):
            return "bool"
        if isinstance(dtype, pd.Float64Dtype):
            return "number"
        if isinstance(dtype, pd.StringDtype):
            return "text"
        if pd.api.types.is_datetime64_any_dtype(dtype):
            return "date"
        return "any"  # pragma: no cover - every node produces one of the above
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    return "date"


def _coerce(column: pd.Series, hint: Kind) -> pd.Series:
    """Convert a normalised column to the kind declared for its field."""
    have = _kind_of(column)
    if hint == "any" or have == hint:
        return column
    if hint == "number":
        if have == "text":
            # Read as the registers' amounts are: the same forms ('4,350', '4200元'), and each
            # numeral to its nearest float, which pd.to_numeric does not always give.
            return _float_series(normalise.number(column).values)
        if have == "bool":
            return _float_series(column.astype("Float64"))
    elif hint == "text":
        if have == "number":
            whole = column.dropna()
            if bool((whole == whole.round()).all()) and bool((whole.abs() < 2**53).all()):
                return _text_series(column.astype("Int64"))
            return _text_series(column)
        if have == "date":
            return _text_series(column.dt.strftime("%Y-%m-%d"))
    elif hint == "bool":
        if have == "text":
            lower = column.str.lower()
            yes = lower.isin(_TRUE_WORDS).to_numpy(dtype=bool, na_value=False)
            no = lower.isin(_FALSE_WORDS).to_numpy(dtype=bool, na_value=False)
            return _bool_series(yes, ~(yes | no), column.index)
        if have == "number":
            values = column.to_numpy(dtype="float64", na_value=np.nan)
            with np.errstate(invalid="ignore"):
                return _bool_series(values == 1, ~((values == 1) | (values == 0)), column.index)
    elif hint == "date" and have == "text":
        # The registers' date forms and no others: pd.to_datetime would guess at '5/1/2020'.
        return normalise.date(column).values
    raise _CoercionError(f"holds {_KIND_LABEL[have]}, not {_KIND_LABEL[hint]}", f"里是{_KIND_ZH[have]}, 不是{_KIND_ZH[hint]}")


_BROADCAST_DTYPE: dict[str, object] = {
    "number": "Float64",
    "text": _STRING,
    "bool": "boolean",
    "date": "datetime64[ns]",
}


def _broadcast(value: Value, ctx: _Context) -> pd.Series:
    if isinstance(value, pd.Series):
        return value
    kind = _kind_of(value)
    return pd.Series(value, index=ctx.index, dtype=_BROADCAST_DTYPE[kind])


def _unknown(value: Value) -> np.ndarray | bool:
    if isinstance(value, pd.Series):
        return value.isna().to_numpy(dtype=bool)
    return False


def _to_timestamp(value: object) -> pd.Timestamp | None:
    if not isinstance(value, str):
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if pd.isna(stamp):
        return None
    return stamp


# --------------------------------------------------------------------------
# Compiled nodes


@dataclass(frozen=True, slots=True)
class _Node:
    kind: Kind
    run: Callable[[_Context], Value]
    offset: int | None
    constant: bool = False
    value: Scalar | None = None
    items: tuple[Scalar, ...] | None = None  # only for list literals (right of in)


_COMPARE_OPS: dict[type[ast.cmpop], tuple[str, Callable[[object, object], object]]] = {
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
}
_ARITH_OPS: dict[type[ast.operator], tuple[str, Callable[[object, object], object]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.FloorDiv: ("//", operator.floordiv),
    ast.Mod: ("%", operator.mod),
}
_FORBIDDEN_OPS: dict[type[ast.AST], _Words] = {
    ast.Pow: ("the power operator '**'", "乘方运算符 **"),
    ast.MatMult: ("the operator '@'", "运算符 @"),
    ast.LShift: ("the operator '<<'", "运算符 <<"),
    ast.RShift: ("the operator '>>'", "运算符 >>"),
    ast.BitOr: ("the operator '|' (use 'or')", "运算符 |(请改用 or)"),
    ast.BitAnd: ("the operator '&' (use 'and')", "运算符 &(请改用 and)"),
    ast.BitXor: ("the operator '^'", "运算符 ^"),
    ast.Invert: ("the operator '~' (use 'not')", "运算符 ~(请改用 not)"),
    ast.Is: ("'is' (use '==' or isblank())", "运算符 is(请改用 == 或 isblank())"),
    ast.IsNot: ("'is not' (use '!=' or notblank())", "运算符 is not(请改用 != 或 notblank())"),
}
_FORBIDDEN_NODES: dict[type[ast.AST], _Words] = {
    ast.Attribute: ("attribute access (x.y)", "点号取属性(x.y)"),
    ast.Subscript: ("indexing (x[...])", "方括号取值(x[...])"),
    ast.Slice: ("a slice", "切片(x[1:2])"),
    ast.Lambda: ("a lambda", "匿名函数 lambda"),
    **dict.fromkeys((ast.ListComp, ast.SetComp, ast.DictComp), ("a comprehension", "推导式(如 [c for c in x])")),
    ast.GeneratorExp: ("a generator expression", "生成器表达式(如 (c for c in x))"),
    **dict.fromkeys((ast.JoinedStr, ast.FormattedValue), ("an f-string", "格式化文字 f'...'")),
    ast.NamedExpr: ("an assignment expression (:=)", "赋值(:=)"),
    ast.IfExp: ("a conditional expression (a if b else c)", "条件表达式(a if b else c)"),
    ast.Dict: ("a dict literal", "字典 {...: ...}"),
    ast.Starred: ("a starred argument (*x)", "带星号的参数(*x)"),
    ast.Await: ("await", "关键字 await"),
    **dict.fromkeys((ast.Yield, ast.YieldFrom), ("yield", "关键字 yield")),
}


def _repeats_repetition(pattern: str) -> bool:
    """True when the regex repeats a sub-pattern holding an unbounded repetition.

    Such patterns (``(a+)+``, ``(\\w+\\s?)*``) can backtrack exponentially.
    The check uses the standard library's regex parser; where that private
    module is unavailable the check is skipped.
    """
    try:
        from re import _constants as codes  # type: ignore[attr-defined]
        from re import _parser as parser  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - other Python versions
        return False
    repeat_ops = {codes.MAX_REPEAT, codes.MIN_REPEAT}
    if hasattr(codes, "POSSESSIVE_REPEAT"):
        repeat_ops.add(codes.POSSESSIVE_REPEAT)
    atomic = getattr(codes, "ATOMIC_GROUP", None)

    def children(op: Any, av: Any) -> list[Any]:
        if op in repeat_ops:
            return [av[2]]
        if op == codes.SUBPATTERN:
            return [av[3]]
        if op == codes.BRANCH:
            return list(av[1])
        if op in (codes.ASSERT, codes.ASSERT_NOT):
            return [av[1]]
        if atomic is not None and op == atomic:
            return [av]
        if op == codes.GROUPREF_EXISTS:
            return [sub for sub in av[1:] if sub is not None]
        return []

    def scan(items: Any) -> tuple[bool, bool]:
        """(holds an unbounded repetition, repeats a repetition)."""
        unbounded = False
        for op, av in items:
            for sub in children(op, av):
                sub_unbounded, problem = scan(sub)
                if problem or (op in repeat_ops and av[1] > 1 and sub_unbounded):
                    return True, True
                unbounded = unbounded or sub_unbounded
            if op in repeat_ops and av[1] == codes.MAXREPEAT:
                unbounded = True
        return unbounded, False

    try:
        return scan(parser.parse(pattern))[1]
    except (re.error, RecursionError, TypeError, ValueError):  # pragma: no cover
        return False


# --------------------------------------------------------------------------
# The public objects


@dataclass(frozen=True)
class Expression:
    """A compiled expression, ready to evaluate on any number of frames.

    ``fields`` are the canonical columns it reads, ``result_type`` the kind of
    its result when known ("bool", "number", "text", "date" or "any").
    """

    text: str
    fields: frozenset[str]
    result_type: str = "any"
    _root: _Node | None = field(default=None, repr=False, compare=False)

    def evaluate(self, frame: pd.DataFrame, cache: dict[tuple[str, str], pd.Series] | None = None) -> pd.Series:
        """Evaluate column-wise; the result has ``frame.index``, NA = unknown.

        Raises MissingColumn (an ExpressionError) when a column is absent. `cache` (one
        dict per frame, owned by the caller) lets many expressions over the same frame
        share the coerced columns instead of converting each column again.
        """
        missing = [name for name in sorted(self.fields) if name not in frame.columns]
        if missing:
            raise MissingColumn(missing, expression=self.text)
        if self._root is None:
            raise ExpressionError("expression was not compiled", expression=self.text, zh=("表达式未经编译", None))
        ctx = _Context(frame, self.text, cache)
        try:
            return _broadcast(self._root.run(ctx), ctx)
        except ExpressionError:
            raise
        except (TypeError, ValueError, ArithmeticError) as exc:
            # A safety net: pandas refusing an operation is reported, not leaked.
            raise ExpressionError(f"cannot evaluate: {exc}", expression=self.text, zh=(f"无法计算: {exc}", None)) from None

    def evaluate_bool(self, frame: pd.DataFrame, cache: dict[tuple[str, str], pd.Series] | None = None) -> pd.Series:
        """Evaluate a condition: a "boolean" Series where NA means unknown."""
        if self.result_type not in ("bool", "any"):
            raise _not_a_condition(self.result_type, self.text, 0)
        result = self.evaluate(frame, cache)
        if _kind_of(result) != "bool":
            raise _not_a_condition(_kind_of(result), self.text, 0)
        return result


def compile_expression(
    text: str,
    *,
    fields: Mapping[str, str],
    params: Mapping[str, object] | None = None,
    types: Mapping[str, str] | None = None,
    boolean: bool = False,
) -> Expression:
    """Parse, check and compile ``text``.

    ``fields`` maps every accepted name (canonical or header alias) to its
    canonical column, ``params`` maps parameter names to constants, and
    ``types`` optionally maps canonical fields to one of FIELD_TYPES so that
    kind mismatches are reported now.  With ``boolean=True`` an expression
    that is known not to give a true/false result is rejected.
    """
    source = Source(text)
    for name, kind in (types or {}).items():
        if kind not in FIELD_TYPES:
            raise ValueError(f"unknown field type {kind!r} for {name!r}")
    compiler = _Compiler(source, fields, params or {}, types or {})
    root = compiler.build_tree()
    if boolean and root.kind not in ("bool", "any"):
        raise _not_a_condition(root.kind, text, source.lead)
    return Expression(
        text=text,
        fields=frozenset(compiler.used_fields),
        result_type=root.kind,
        _root=root,
    )


# --------------------------------------------------------------------------
# The compiler


class _Compiler:
    def __init__(
        self,
        source: Source,
        fields: Mapping[str, str],
        params: Mapping[str, object],
        types: Mapping[str, str],
    ) -> None:
        self.source = source
        self.text = source.text
        self.fields = fields
        self.params = params
        self.types = types
        self.used_fields: set[str] = set()

    # -- errors and positions ----------------------------------------------

    def error(
        self, message: str, node: ast.AST | None = None, hint: str | None = None,
        zh: tuple[str, str | None] | None = None,
    ) -> ExpressionError:
        return self.source.error(message, node, hint, zh)

    def fail(self, words: _Words, node: ast.AST | None, hint: _Words | None = None) -> ExpressionError:
        """The error for a message built in both languages, as the checks shared with
        evaluation build theirs."""
        return self.error(words[0], node, hint and hint[0], (words[1], hint and hint[1]))

    def offset(self, node: ast.AST | None) -> int | None:
        return self.source.offset(node)

    # -- entry point ---------------------------------------------------------

    def build_tree(self) -> _Node:
        return self.visit(parse(self.source).body)

    # -- dispatch ----------------------------------------------------------

    def visit(self, node: ast.AST) -> _Node:
        handler = _HANDLERS.get(type(node))
        if handler is None:
            name = type(node).__name__
            raise self.fail(_not_allowed(_FORBIDDEN_NODES.get(type(node), (name, f"这种写法({name})"))), node)
        return handler(self, node)

    def visit_constant(self, node: ast.Constant) -> _Node:
        return self._constant(node.value, node, None)

    def _constant(self, value: object, node: ast.AST, param: str | None) -> _Node:
        """A constant node for a literal, or for the parameter named ``param``."""
        offset = self.offset(node)
        what, what_zh = ("literal", "规则里写的值") if param is None else (f"parameter {param!r}", f"参数 {param} 的值")
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bool):
            kind: Kind = "bool"
        elif isinstance(value, int):
            if abs(value) > MAX_INT_LITERAL:
                raise self.error(f"{what} is too large (at most 10**15)", node, zh=(f"{what_zh}太大(最多 10 的 15 次方)", None))
            kind = "number"
        elif isinstance(value, float):
            if value != value:
                raise self.error(f"{what} is not a number (NaN)", node, zh=(f"{what_zh}不是数字(NaN)", None))
            kind = "number"
        elif isinstance(value, str):
            if len(value) > MAX_STRING_LITERAL:
                raise self.error(f"{what} text is too long (at most {MAX_STRING_LITERAL} characters)", node,
                                 zh=(f"{what_zh}太长(文字最多 {MAX_STRING_LITERAL} 个字符)", None))
            kind = "text"
        elif value is None:
            if param is not None:
                raise self.error(f"{what} has no value", node, zh=(f"{what_zh}为空", None))
            raise self.error("None is not allowed (use isblank(x))", node, zh=("不能使用 None(判断空白请用 isblank(x))", None))
        elif param is not None:
            type_name = type(value).__name__
            raise self.error(f"{what} has a value of unsupported type {type_name}", node,
                             zh=(f"{what_zh}是不支持的类型 {type_name}", None))
        else:
            type_name = type(value).__name__
            raise self.error(f"{type_name} literals are not allowed", node, zh=(f"不能写 {type_name} 类型的值", None))
        constant: Scalar = value  # type: ignore[assignment]

        def run(ctx: _Context) -> Value:
            return constant

        return _Node(kind, run, offset, constant=True, value=constant)

    def visit_name(self, node: ast.Name) -> _Node:
        name = node.id
        self._refuse_dunder(name, node)
        in_fields = name in self.fields
        in_params = name in self.params
        if in_fields and in_params:
            raise self.error(f"name {name!r} is both a field and a parameter", node, zh=(f"名称 {name} 既是字段又是参数", None))
        if in_params:
            return self._constant(self.params[name], node, name)
        if in_fields:
            column = self.fields[name]
            self.used_fields.add(column)
            hint = _KIND_OF_TYPE.get(self.types.get(column, ""), "any")
            offset = self.offset(node)

            def run(ctx: _Context) -> Value:
                return ctx.column(column, hint, offset)

            return _Node(hint, run, offset)
        if name in FUNCTIONS:
            raise self.error(f"function {name!r} must be called, as {name}(...)", node,
                             zh=(f"函数 {name} 要带括号调用, 写成 {name}(...)", None))
        close = difflib.get_close_matches(name, [*self.fields, *self.params], n=1)
        words = (f"unknown name {name!r}", f"未知的名称 {name}(既不是字段也不是参数)")
        raise self.fail(words, node, _did_you_mean(close))

    def _refuse_dunder(self, name: str, node: ast.AST) -> None:
        if name.startswith("__"):
            raise self.error(f"dunder name {name!r} is not allowed", node, zh=(f"不能使用以 __ 开头的名称 {name}", None))

    def visit_sequence(self, node: ast.AST) -> _Node:
        raise self.error("a list, tuple or set is only allowed on the right of 'in' / 'not in'", node,
                         zh=("列表只能写在 in 或 not in 的右边", None))

    def _sequence(self, node: ast.List | ast.Tuple | ast.Set) -> _Node:
        """The literal list on the right of in / not in."""
        items: list[Scalar] = []
        kinds: set[Kind] = set()
        for element in node.elts:
            item = self.visit(element)
            if not item.constant:
                raise self.error("a list after 'in' may only hold literals or parameters", element,
                                 zh=("in 后面的列表里只能写值或参数", None))
            assert item.value is not None
            items.append(item.value)
            kinds.add(item.kind)
        if len(kinds) > 1:
            raise self.error("a list after 'in' must hold values of one kind", node, zh=("in 后面的列表里的值应为同一类型", None))
        kind: Kind = kinds.pop() if kinds else "any"

        def run(ctx: _Context) -> Value:  # pragma: no cover - never run directly
            raise ctx.error(("a list is only allowed after 'in'", "列表只能写在 in 后面"), None)

        return _Node(kind, run, self.offset(node), items=tuple(items))

    def visit_unary(self, node: ast.UnaryOp) -> _Node:
        if type(node.op) in _FORBIDDEN_OPS:
            raise self.fail(_not_allowed(_FORBIDDEN_OPS[type(node.op)]), node)
        operand = self.visit(node.operand)
        offset = self.offset(node)
        run_operand = operand.run
        if isinstance(node.op, ast.Not):
            self._require(operand, ("bool",), node.operand, _op("not"))
            if operand.constant:
                return self._constant(not operand.value, node, None)

            def run_not(ctx: _Context) -> Value:
                value = run_operand(ctx)
                _require_runtime(value, ("bool",), _op("not"), ctx, offset)
                if isinstance(value, pd.Series):
                    return ~value
                return not value

            return _Node("bool", run_not, offset)
        negate = isinstance(node.op, ast.USub)
        sign = "-" if negate else "+"
        what = (f"unary '{sign}'", f"正负号 {sign}")
        self._require(operand, ("number",), node.operand, what)
        if operand.constant and isinstance(operand.value, (int, float)):
            value = operand.value
            return self._constant(-value if negate else value, node, None)

        def run_sign(ctx: _Context) -> Value:
            value = run_operand(ctx)
            _require_runtime(value, ("number",), what, ctx, offset)
            return -value if negate else value  # type: ignore[operator]

        return _Node("number", run_sign, offset)

    def visit_binop(self, node: ast.BinOp) -> _Node:
        op_type = type(node.op)
        if op_type in _FORBIDDEN_OPS:
            raise self.fail(_not_allowed(_FORBIDDEN_OPS[op_type]), node)
        symbol, func = _ARITH_OPS[op_type]
        left, right = self.visit(node.left), self.visit(node.right)
        allowed: tuple[Kind, ...] = ("number", "text") if symbol == "+" else ("number",)
        for side, child in ((left, node.left), (right, node.right)):
            self._require(side, allowed, child, _op(symbol))
        known = {left.kind, right.kind} - {"any"}
        if len(known) > 1:
            raise self.fail(_arith_problem(symbol, left.kind, right.kind) or ("", ""), node)
        kind: Kind = known.pop() if known else ("number" if symbol != "+" else "any")
        offset = self.offset(node)
        run_left, run_right = left.run, right.run

        def run(ctx: _Context) -> Value:
            return _arith(symbol, func, run_left(ctx), run_right(ctx), ctx, offset)

        return _Node(kind, run, offset)

    def visit_boolop(self, node: ast.BoolOp) -> _Node:
        is_and = isinstance(node.op, ast.And)
        word = "and" if is_and else "or"
        parts = []
        for child in node.values:
            part = self.visit(child)
            self._require(part, ("bool",), child, _op(word))
            parts.append(part)
        runners = [part.run for part in parts]
        offset = self.offset(node)
        combine = operator.and_ if is_and else operator.or_

        def run(ctx: _Context) -> Value:
            result: pd.Series | None = None
            for runner in runners:
                value = runner(ctx)
                _require_runtime(value, ("bool",), _op(word), ctx, offset)
                series = _broadcast(value, ctx)
                result = series if result is None else combine(result, series)
            assert result is not None
            return result

        return _Node("bool", run, offset)

    def visit_compare(self, node: ast.Compare) -> _Node:
        operands = [self.visit(node.left)]
        steps: list[tuple[str, Callable[[object, object], object] | None, bool]] = []
        for index, (op, comparator) in enumerate(zip(node.ops, node.comparators, strict=True)):
            op_type = type(op)
            if op_type in _FORBIDDEN_OPS:
                raise self.fail(_not_allowed(_FORBIDDEN_OPS[op_type]), node)
            left = operands[-1]
            if op_type in (ast.In, ast.NotIn):
                word = "in" if op_type is ast.In else "not in"
                if not isinstance(comparator, (ast.List, ast.Tuple, ast.Set)):
                    raise self.error(f"'{word}' needs a list of literals on its right, like [1, 2]", comparator,
                                     zh=(f"{word} 的右边应为写在规则里的列表, 如 [1, 2]", None))
                if index + 1 < len(node.ops):
                    raise self.error("a list cannot be compared", comparator, zh=("列表不能再拿来比较", None))
                right = self._sequence(comparator)
                self._check_membership(word, left, right, node)
                operands.append(right)
                steps.append((word, None, op_type is ast.NotIn))
                continue
            symbol, func = _COMPARE_OPS[op_type]
            right = self.visit(comparator)
            problem = _compare_problem(symbol, left, right)
            if problem:
                raise self.fail(problem, node)
            operands.append(right)
            steps.append((symbol, func, False))
        offset = self.offset(node)
        runners = [operand.run for operand in operands]
        item_lists = [operand.items for operand in operands]

        def run(ctx: _Context) -> Value:
            values: list[Value | None] = [
                None if items is not None else runner(ctx)
                for runner, items in zip(runners, item_lists, strict=True)
            ]
            result: pd.Series | None = None
            for index, (symbol, func, negate) in enumerate(steps):
                left = values[index]
                assert left is not None
                items = item_lists[index + 1]
                if items is not None:
                    part = _membership(left, items, negate, symbol, ctx, offset)
                else:
                    right = values[index + 1]
                    assert right is not None and func is not None
                    part = _compare(symbol, func, left, right, ctx, offset)
                result = part if result is None else result & part
            assert result is not None
            return result

        return _Node("bool", run, offset)

    def _check_membership(self, word: str, left: _Node, right: _Node, node: ast.AST) -> None:
        if left.kind == "any" or right.kind == "any":
            return
        if left.kind == "date" and right.kind == "text":
            for item in right.items or ():
                if _to_timestamp(item) is None:
                    raise self.fail(_not_a_date(item), node)
            return
        if left.kind != right.kind:
            raise self.fail(_not_in_list_of(word, left.kind, right.kind), node)

    def visit_call(self, node: ast.Call) -> _Node:
        func = node.func
        if not isinstance(func, ast.Name):
            if isinstance(func, ast.Attribute):
                raise self.fail(_not_allowed(_FORBIDDEN_NODES[ast.Attribute]), func)
            raise self.error("only calls to the listed functions are allowed", func, zh=("只能调用规则语言列出的函数", None))
        name = func.id
        self._refuse_dunder(name, func)
        if name not in _SPECS:
            close = difflib.get_close_matches(name, list(FUNCTIONS), n=1)
            allowed = ("allowed functions: " + ", ".join(FUNCTIONS), "可用的函数: " + "、".join(FUNCTIONS))
            raise self.fail((f"function {name!r} is not allowed", f"不能使用函数 {name}"), func, _did_you_mean(close) or allowed)
        if node.keywords:
            raise self.error(f"keyword arguments are not allowed ({name}())", node.keywords[0],
                             zh=(f"{name}() 的参数不能写成 名称=值", None))
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.error("starred arguments (*x) are not allowed", arg, zh=("不能使用带星号的参数(*x)", None))
        spec = _SPECS[name]
        count = len(node.args)
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            raise self.fail(_arity(name, spec, count), node)
        args = [self.visit(arg) for arg in node.args]
        return spec.build(self, node, args)

    # -- static type checks ------------------------------------------------

    def _require(self, node: _Node, kinds: tuple[Kind, ...], child: ast.AST, what: _Words) -> None:
        if node.kind != "any" and node.kind not in kinds:
            raise self.fail(_needs(what, kinds, node.kind), child)

    def literal_text(self, node: _Node, child: ast.AST, what: _Words) -> str:
        if not node.constant or not isinstance(node.value, str):
            raise self.error(f'{what[0]} must be text written in the rule, like "abc"', child,
                             zh=(f'{what[1]}应为写在规则里的文字, 如 "abc"', None))
        return node.value


_HANDLERS: dict[type[ast.AST], Callable[[_Compiler, Any], _Node]] = {
    ast.Constant: _Compiler.visit_constant,
    ast.Name: _Compiler.visit_name,
    ast.List: _Compiler.visit_sequence,
    ast.Tuple: _Compiler.visit_sequence,
    ast.Set: _Compiler.visit_sequence,
    ast.UnaryOp: _Compiler.visit_unary,
    ast.BinOp: _Compiler.visit_binop,
    ast.BoolOp: _Compiler.visit_boolop,
    ast.Compare: _Compiler.visit_compare,
    ast.Call: _Compiler.visit_call,
}


def _require_runtime(
    value: Value, kinds: tuple[Kind, ...], what: _Words, ctx: _Context, offset: int | None
) -> None:
    kind = _kind_of(value)
    if kind not in kinds:
        raise ctx.error(_needs(what, kinds, kind), offset)


def _arity(name: str, spec: _FunctionSpec, count: int) -> _Words:
    """'len() takes 1 argument, got 2': a call with too few or too many arguments."""
    if spec.max_args is None:
        wanted, wanted_zh = f"at least {spec.min_args}", f"{spec.min_args} 个或更多"
    elif spec.min_args == spec.max_args:
        wanted, wanted_zh = str(spec.min_args), f"{spec.min_args} 个"
    else:  # pragma: no cover - no such function today
        wanted, wanted_zh = f"{spec.min_args} to {spec.max_args}", f"{spec.min_args} 到 {spec.max_args} 个"
    plural = "" if wanted == "1" else "s"
    return f"{name}() takes {wanted} argument{plural}, got {count}", f"{name}() 需要 {wanted_zh}参数, 现有 {count} 个"


def _arith_problem(symbol: str, left: Kind, right: Kind) -> _Words | None:
    if left == right == "number":
        return None
    if symbol == "+" and left == right == "text":
        return None
    return (f"cannot apply '{symbol}' to {_KIND_LABEL[left]} and {_KIND_LABEL[right]}",
            f"不能对{_KIND_ZH[left]}和{_KIND_ZH[right]}做 {symbol} 运算")


def _arith(
    symbol: str,
    func: Callable[[object, object], object],
    left: Value,
    right: Value,
    ctx: _Context,
    offset: int | None,
) -> pd.Series:
    problem = _arith_problem(symbol, _kind_of(left), _kind_of(right))
    if problem:
        raise ctx.error(problem, offset)
    left = _broadcast(left, ctx)
    if symbol == "+" and _kind_of(left) == "text":
        return func(left, right)  # type: ignore[return-value]
    with np.errstate(all="ignore"):
        result = func(left, right)
    assert isinstance(result, pd.Series)
    if symbol in ("/", "//", "%"):
        if isinstance(right, pd.Series):
            zero = (right == 0).to_numpy(dtype=bool, na_value=False)
        else:
            zero = np.full(len(result), right == 0)
        result = result.mask(zero)
    return _float_series(result)


def _compare_problem(symbol: str, left: _Node, right: _Node) -> _Words | None:
    lk, rk = left.kind, right.kind
    if "any" in (lk, rk):
        return None
    if lk == "date" and rk == "text" and right.constant:
        return None if _to_timestamp(right.value) else _not_a_date(right.value)
    if rk == "date" and lk == "text" and left.constant:
        return None if _to_timestamp(left.value) else _not_a_date(left.value)
    return _kinds_problem(symbol, lk, rk)


def _kinds_problem(symbol: str, lk: Kind, rk: Kind) -> _Words | None:
    if lk != rk:
        return (f"cannot compare {_KIND_LABEL[lk]} with {_KIND_LABEL[rk]} ('{symbol}')",
                f"不能用 {symbol} 比较{_KIND_ZH[lk]}和{_KIND_ZH[rk]}")
    if lk == "bool" and symbol not in ("==", "!="):
        return (f"true/false values can only be compared with == or != (not '{symbol}')",
                f"是/否只能用 == 或 != 比较(不能用 {symbol})")
    return None


def _not_in_list_of(word: str, kind: Kind, item_kind: Kind) -> _Words:
    """'in' between a value and a list of another kind, as a number in a list of texts."""
    return (f"cannot look for {_KIND_LABEL[kind]} in a list holding {_KIND_LABEL[item_kind]} ('{word}')",
            f"不能用 {word} 在{_KIND_ZH[item_kind]}的列表里找{_KIND_ZH[kind]}")


def _compare(
    symbol: str,
    func: Callable[[object, object], object],
    left: Value,
    right: Value,
    ctx: _Context,
    offset: int | None,
) -> pd.Series:
    lk, rk = _kind_of(left), _kind_of(right)
    if lk == "date" and rk == "text" and not isinstance(right, pd.Series):
        right, rk = _to_timestamp(right) or right, "date"
        if isinstance(right, str):
            raise ctx.error(_not_a_date(right), offset)
    if rk == "date" and lk == "text" and not isinstance(left, pd.Series):
        left, lk = _to_timestamp(left) or left, "date"
        if isinstance(left, str):
            raise ctx.error(_not_a_date(left), offset)
    problem = _kinds_problem(symbol, lk, rk)
    if problem:
        raise ctx.error(problem, offset)
    unknown = _unknown(left) | _unknown(right)
    left = _broadcast(left, ctx)
    try:
        result = func(left, right)
    except (TypeError, ValueError) as exc:
        raise ctx.error((f"cannot compare ('{symbol}'): {exc}", f"无法用 {symbol} 比较: {exc}"), offset) from None
    assert isinstance(result, pd.Series)
    values = result.to_numpy(dtype=bool, na_value=False)
    return _bool_series(values, np.broadcast_to(unknown, values.shape), ctx.index)


def _membership(
    value: Value,
    items: tuple[Scalar, ...],
    negate: bool,
    word: str,
    ctx: _Context,
    offset: int | None,
) -> pd.Series:
    kind = _kind_of(value)
    if items:
        item_kind = _kind_of(items[0])
        if kind == "date" and item_kind == "text":
            stamps = [_to_timestamp(item) for item in items]
            bad = [item for item, stamp in zip(items, stamps, strict=True) if stamp is None]
            if bad:
                raise ctx.error(_not_a_date(bad[0]), offset)
            items = tuple(stamps)  # type: ignore[arg-type]
        elif item_kind != kind:
            raise ctx.error(_not_in_list_of(word, kind, item_kind), offset)
    series = _broadcast(value, ctx)
    hit = series.isin(list(items)).to_numpy(dtype=bool, na_value=False)
    if negate:
        hit = ~hit
    return _bool_series(hit, series.isna().to_numpy(dtype=bool), ctx.index)


# --------------------------------------------------------------------------
# Functions


@dataclass(frozen=True)
class _FunctionSpec:
    min_args: int
    max_args: int | None
    build: Callable[[_Compiler, ast.Call, list[_Node]], _Node]


def _build_blank(negate: bool) -> Callable[[_Compiler, ast.Call, list[_Node]], _Node]:
    def build(compiler: _Compiler, node: ast.Call, args: list[_Node]) -> _Node:
        run_arg = args[0].run

        def run(ctx: _Context) -> Value:
            value = run_arg(ctx)
            if not isinstance(value, pd.Series):
                return negate
            blank = value.isna().to_numpy(dtype=bool)
            return _bool_series(~blank if negate else blank, np.zeros(len(blank), bool), ctx.index)

        return _Node("bool", run, compiler.offset(node))

    return build


def _text_function(
    name: str,
    result: Kind,
    apply: Callable[[pd.Series, str | None], pd.Series],
    literal: bool,
    check_literal: Callable[[_Compiler, ast.AST, str], None] | None = None,
) -> Callable[[_Compiler, ast.Call, list[_Node]], _Node]:
    def build(compiler: _Compiler, node: ast.Call, args: list[_Node]) -> _Node:
        compiler._require(args[0], ("text",), node.args[0], _function(name))
        argument: str | None = None
        if literal:
            second = (f"the second argument of {name}()", f"{name}() 的第二个参数")
            argument = compiler.literal_text(args[1], node.args[1], second)
            if check_literal is not None:
                check_literal(compiler, node.args[1], argument)
        run_arg = args[0].run
        offset = compiler.offset(node)

        def run(ctx: _Context) -> Value:
            value = run_arg(ctx)
            _require_runtime(value, ("text",), _function(name), ctx, offset)
            return apply(_broadcast(value, ctx), argument)

        return _Node(result, run, offset)

    return build


def _check_pattern(compiler: _Compiler, node: ast.AST, pattern: str) -> None:
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise compiler.error(f"regular expression is too long (at most {MAX_PATTERN_LENGTH} characters)", node,
                             zh=(f"正则表达式太长(最多 {MAX_PATTERN_LENGTH} 个字符)", None))
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        raise compiler.error(f"invalid regular expression: {exc}", node, zh=(f"正则表达式写法有误: {exc}", None)) from None
    if _repeats_repetition(pattern):
        raise compiler.error("regular expression repeats a repetition (like (a+)+), which can take exponential time", node,
                             zh=("正则表达式里重复的部分又被重复(如 (a+)+), 匹配可能慢得无法完成", None))


def _as_boolean(series: pd.Series) -> pd.Series:
    return series.astype("boolean")


def _len(series: pd.Series, _: str | None) -> pd.Series:
    return _float_series(series.str.len())


def _contains(series: pd.Series, sub: str | None) -> pd.Series:
    return _as_boolean(series.str.contains(sub or "", regex=False))


def _matches(series: pd.Series, pattern: str | None) -> pd.Series:
    # Python's re decides, whatever the storage (pyarrow's RE2 differs on some patterns).
    return _as_boolean(series.astype(_STRING).str.fullmatch(pattern or ""))


def _startswith(series: pd.Series, prefix: str | None) -> pd.Series:
    return _as_boolean(series.str.startswith(prefix or ""))


def _build_abs(compiler: _Compiler, node: ast.Call, args: list[_Node]) -> _Node:
    compiler._require(args[0], ("number",), node.args[0], _function("abs"))
    run_arg = args[0].run
    offset = compiler.offset(node)

    def run(ctx: _Context) -> Value:
        value = run_arg(ctx)
        _require_runtime(value, ("number",), _function("abs"), ctx, offset)
        return abs(value)  # type: ignore[arg-type]

    return _Node("number", run, offset)


def _build_extreme(smallest: bool) -> Callable[[_Compiler, ast.Call, list[_Node]], _Node]:
    name = "min" if smallest else "max"
    pick = np.minimum if smallest else np.maximum

    def build(compiler: _Compiler, node: ast.Call, args: list[_Node]) -> _Node:
        for arg, child in zip(args, node.args, strict=True):
            compiler._require(arg, ("number",), child, _function(name))
        runners = [arg.run for arg in args]
        offset = compiler.offset(node)

        def run(ctx: _Context) -> Value:
            result: np.ndarray | None = None
            for runner in runners:
                value = runner(ctx)
                _require_runtime(value, ("number",), _function(name), ctx, offset)
                array = _broadcast(value, ctx).to_numpy(dtype="float64", na_value=np.nan)
                result = array if result is None else pick(result, array)
            return pd.Series(result, index=ctx.index, dtype="Float64")

        return _Node("number", run, offset)

    return build


def _build_year(compiler: _Compiler, node: ast.Call, args: list[_Node]) -> _Node:
    compiler._require(args[0], ("date", "text"), node.args[0], _function("year"))
    run_arg = args[0].run
    offset = compiler.offset(node)

    def run(ctx: _Context) -> Value:
        value = run_arg(ctx)
        _require_runtime(value, ("date", "text"), _function("year"), ctx, offset)
        series = _broadcast(value, ctx)
        if _kind_of(series) == "text":
            series = _coerce(series, "date")
        return _float_series(series.dt.year)

    return _Node("number", run, offset)


def _mixed_kinds(kinds: list[Kind]) -> _Words:
    """coalesce() of values of different kinds, which has no one kind of result."""
    labels, labels_zh = _kinds(kinds, " and ", "和")
    return f"coalesce() needs values of one kind, got {labels}", f"coalesce() 里的值应为同一类型, 现有{labels_zh}"


def _build_coalesce(compiler: _Compiler, node: ast.Call, args: list[_Node]) -> _Node:
    kinds = {arg.kind for arg in args} - {"any"}
    if len(kinds) > 1:
        raise compiler.fail(_mixed_kinds(sorted(kinds, key=_KIND_LABEL.__getitem__)), node)
    kind: Kind = kinds.pop() if kinds else "any"
    runners = [arg.run for arg in args]
    offset = compiler.offset(node)

    def run(ctx: _Context) -> Value:
        result: Value | None = None
        for runner in runners:
            value = runner(ctx)
            if result is None:
                result = value
                continue
            if _kind_of(value) != _kind_of(result):
                raise ctx.error(_mixed_kinds([_kind_of(result), _kind_of(value)]), offset)
            if not isinstance(result, pd.Series):
                return result
            result = result.where(result.notna(), _broadcast(value, ctx))
        assert result is not None
        return result

    return _Node(kind, run, offset)


_SPECS: dict[str, _FunctionSpec] = {
    "isblank": _FunctionSpec(1, 1, _build_blank(False)),
    "notblank": _FunctionSpec(1, 1, _build_blank(True)),
    "len": _FunctionSpec(1, 1, _text_function("len", "number", _len, literal=False)),
    "contains": _FunctionSpec(2, 2, _text_function("contains", "bool", _contains, True)),
    "matches": _FunctionSpec(
        2, 2, _text_function("matches", "bool", _matches, True, _check_pattern)
    ),
    "startswith": _FunctionSpec(2, 2, _text_function("startswith", "bool", _startswith, True)),
    "abs": _FunctionSpec(1, 1, _build_abs),
    "min": _FunctionSpec(2, None, _build_extreme(True)),
    "max": _FunctionSpec(2, None, _build_extreme(False)),
    "year": _FunctionSpec(1, 1, _build_year),
    "coalesce": _FunctionSpec(2, None, _build_coalesce),
}
assert set(_SPECS) == set(FUNCTIONS)
