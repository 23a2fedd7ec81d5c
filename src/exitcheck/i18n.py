"""Choosing between the Chinese and English form of a text (Chinese is the default)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial


def pick(lang: str, zh: str, en: str) -> str:
    return en if lang == "en" else zh


def chooser(lang: str) -> Callable[[str, str], str]:
    """t("中文", "English") for one language, as the report writers use it."""
    return partial(pick, lang)
