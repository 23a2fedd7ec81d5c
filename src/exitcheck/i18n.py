"""Choosing between the Chinese and English form of a text (Chinese is the default)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial


def pick(lang: str, zh: str, en: str) -> str:
    return en if lang == "en" else zh


@dataclass(frozen=True)
class Bilingual:
    """A text in Chinese and English, kept whole for whoever shows it later, in either language
    (a delivery's error: printed by this run, stored in the ledger, listed by a later
    `exitcheck deliveries --lang X`)."""

    zh: str
    en: str

    @classmethod
    def same(cls, text: str) -> Bilingual:
        """A text that has only one form, shown as it is in both languages (a ledger row written
        before texts had two)."""
        return cls(text, text)

    def text(self, lang: str) -> str:
        return pick(lang, self.zh, self.en)

    def map(self, change: Callable[[str], str]) -> Bilingual:
        """Both forms passed through `change` (a secret scrubbed, an ID number masked)."""
        return Bilingual(change(self.zh), change(self.en))


def chooser(lang: str) -> Callable[[str, str], str]:
    """t("中文", "English") for one language, as the report writers use it."""
    return partial(pick, lang)


def join_list(items: Iterable[object], lang: str) -> str:
    """A list in running text: 甲、乙 in Chinese, "a, b" in English."""
    return pick(lang, "、", ", ").join(str(item) for item in items)


def listed(items: Iterable[object]) -> dict[str, str]:
    """A list as a message parameter in both languages ({"zh": "甲、乙", "en": "a, b"})."""
    items = list(items)
    return {"zh": join_list(items, "zh"), "en": join_list(items, "en")}


#: Columns a county often adds to its register, for an English header; any other column the
#: county added keeps its own header, the one a clerk finds in the register.
REGISTER_COLUMNS_EN = {"备注": "Notes", "备注栏": "Notes", "说明": "Remarks", "其他": "Other"}


def register_column_label(name: str, lang: str) -> str:
    """The header of a column the county added to its register, carried into a list."""
    return pick(lang, name, REGISTER_COLUMNS_EN.get(name, name))


def did_you_mean(word: str, choices: Iterable[str]) -> tuple[str, str]:
    """('; 是否指 X?', '; did you mean X?') for the closest choice, or ('', '') when none is close."""
    import difflib

    near = difflib.get_close_matches(str(word), list(choices), n=1)
    if not near:
        return "", ""
    return f"; 是否指 {near[0]}?", f"; did you mean {near[0]!r}?"
