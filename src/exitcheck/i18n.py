"""Choosing between the Chinese and English form of a text (Chinese is the default)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial


def pick(lang: str, zh: str, en: str) -> str:
    return en if lang == "en" else zh


def chooser(lang: str) -> Callable[[str, str], str]:
    """t("中文", "English") for one language, as the report writers use it."""
    return partial(pick, lang)


def did_you_mean(word: str, choices: Iterable[str]) -> tuple[str, str]:
    """('; 是否指 X?', '; did you mean X?') for the closest choice, or ('', '') when none is close."""
    import difflib

    near = difflib.get_close_matches(str(word), list(choices), n=1)
    if not near:
        return "", ""
    return f"; 是否指 {near[0]}?", f"; did you mean {near[0]!r}?"
