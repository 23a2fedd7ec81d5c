"""The rule language's syntax, checked without pandas.

A rule set's expressions are parsed here when the rule-set file is read (rules/model.py), so
that a typo in a rule is reported at once, with its line, before the registers are read; the
compiler (rules/expr.py) starts from the same parse. Parsing is Python's own `ast.parse` of
the text, which is only ever looked at, never run.
"""

from __future__ import annotations

import ast
import re
import warnings

MAX_TEXT_LENGTH = 2000
MAX_NODES = 300
MAX_DEPTH = 40

_LEAF_NODES = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)


class ExpressionError(ValueError):
    """An expression that cannot be compiled or evaluated.

    ``message`` describes the problem, ``offset`` is the 0-based character
    position in ``expression`` (or None) and ``hint`` an optional suggestion.
    ``str(error)`` is a single line such as ``unknown name 'incme' at column
    1; did you mean 'income'?``.
    """

    def __init__(
        self,
        message: str,
        *,
        expression: str = "",
        offset: int | None = None,
        hint: str | None = None,
        zh: tuple[str, str | None] | None = None,
    ) -> None:
        self.message = " ".join(message.split())
        self.expression = expression
        self.offset = offset
        self.hint = hint
        #: (message, hint) in Chinese, where the raiser gave them; else the English is shown.
        self.zh = zh
        super().__init__(str(self))

    def __str__(self) -> str:
        text = self.message
        if self.offset is not None:
            text += f" at column {self.offset + 1}"
        if self.hint:
            text += f"; {' '.join(self.hint.split())}"
        return text

    def in_chinese(self) -> str:
        """The one line in Chinese: its message and hint as the raiser wrote them in Chinese,
        or in English where it did not."""
        message, hint = self.zh or (self.message, self.hint)
        text = message + (f"(第 {self.offset + 1} 个字符处)" if self.offset is not None else "")
        return text + (f"; {' '.join(hint.split())}" if hint else "")


class Source:
    """An expression's text, and the column in it of a position Python's parser reports."""

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise ExpressionError("expression must be text", expression=str(text), zh=("表达式应为文字", None))
        if len(text) > MAX_TEXT_LENGTH:
            raise ExpressionError(f"expression is too long ({len(text)} characters, at most {MAX_TEXT_LENGTH})", expression=text,
                                  zh=(f"表达式太长({len(text)} 个字符, 最多 {MAX_TEXT_LENGTH} 个)", None))
        self.text = text
        stripped = text.lstrip()
        self.lead = len(text) - len(stripped)  # parsed without its leading blanks: offsets add them back
        self.body = stripped.rstrip()
        self.lines = re.split(r"(?<=\n)|(?<=\r)(?!\n)", self.body)

    def error(self, message: str, node: ast.AST | None = None, hint: str | None = None,
              zh: tuple[str, str | None] | None = None) -> ExpressionError:
        return ExpressionError(message, expression=self.text, offset=self.offset(node), hint=hint, zh=zh)

    def offset(self, node: ast.AST | None) -> int | None:
        if node is None or not hasattr(node, "lineno"):
            return None
        return self.char_offset(node.lineno, node.col_offset, in_bytes=True)

    def char_offset(self, lineno: int, column: int, *, in_bytes: bool) -> int:
        lines = self.lines
        row = max(0, min(lineno - 1, len(lines) - 1)) if lines else 0
        before = sum(len(line) for line in lines[:row])
        line = lines[row] if lines else ""
        if in_bytes:
            column = len(line.encode("utf-8", "surrogatepass")[:column].decode("utf-8", "ignore"))
        return self.lead + before + max(0, min(column, len(line)))


def parse(source: Source) -> ast.Expression:
    """The expression's syntax tree; ExpressionError for text that is not an expression, or one
    too large or too deeply nested to be checked."""
    if not source.body:
        raise source.error("expression is empty", zh=("表达式为空", None))
    try:
        with warnings.catch_warnings():
            # e.g. "invalid decimal literal" for 1and: the error, if any, is ours
            warnings.simplefilter("ignore")
            tree = ast.parse(source.body, mode="eval")
    except SyntaxError as exc:
        offset = None
        if exc.lineno is not None and exc.offset is not None:
            offset = source.char_offset(exc.lineno, exc.offset - 1, in_bytes=False)
        raise ExpressionError(f"syntax error: {exc.msg}", expression=source.text, offset=offset,
                              zh=(f"语法错误({exc.msg})", None)) from None
    except (RecursionError, MemoryError):
        raise source.error("expression is too deeply nested", zh=("表达式嵌套太深", None)) from None
    except (ValueError, OverflowError, TypeError) as exc:
        raise source.error(f"syntax error: {exc}", zh=(f"语法错误({exc})", None)) from None
    _check_size(source, tree)
    return tree


def used_names(text: str) -> set[str]:
    """The plain names an expression uses (fields, params, functions)."""
    return {node.id for node in ast.walk(parse(Source(text))) if isinstance(node, ast.Name)}


def check(text: str) -> None:
    """ExpressionError if `text` is not an expression of the rule language's syntax."""
    parse(Source(text))


def _check_size(source: Source, tree: ast.Expression) -> None:
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, _LEAF_NODES):
            continue
        count += 1
        if count > MAX_NODES:
            raise source.error(f"expression is too large (more than {MAX_NODES} elements)",
                               zh=(f"表达式太大(超过 {MAX_NODES} 个部分)", None))
        if depth > MAX_DEPTH:
            raise source.error(f"expression is nested too deeply (more than {MAX_DEPTH} levels)", node,
                               zh=(f"表达式嵌套太深(超过 {MAX_DEPTH} 层)", None))
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
