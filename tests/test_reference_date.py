"""--as-of (and a workspace's as_of): every form a register's date cell accepts, and a clear,
bilingual usage error (exit 2) for a date that is none, whatever the command."""

from __future__ import annotations

import json

import pytest

from builders import AS_OF, base_county

ACCEPTED = ["2020-06-30", "2020/06/30", "2020/6/30", "2020.06.30", "20200630", "2020年6月30日", "２０２０年６月３０日"]


@pytest.mark.parametrize("command", ["validate", "audit", "bands", "run"])
def test_a_day_not_in_the_calendar_is_a_usage_error_in_the_clerks_language(tmp_path, run_cli, command):
    """It was typer's English "Invalid value ... expected YYYY-MM-DD" in Chinese mode too; `run`
    looked for its workspace first and exited 4 without a word on the date."""
    given = [] if command == "run" else [str(base_county().write(tmp_path / "c.xlsx")), "--out", str(tmp_path / "o")]
    for lang, words in (("zh", "「2020-13-01」不是有效的日期"), ("en", "'2020-13-01' is not a valid date")):
        result = run_cli(command, *given, "--as-of", "2020-13-01", "--lang", lang)
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"--as-of: {words}" in result.stderr and "2020年6月30日" in result.stderr, result.stderr
        assert "Invalid value" not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("written", ACCEPTED[1:])
def test_as_of_takes_every_form_a_register_date_cell_takes(tmp_path, run_cli, written):
    """2020/06/30 was refused on the command line although a register cell may hold it."""
    county = base_county().write(tmp_path / "c.xlsx")
    result = run_cli("audit", str(county), "--as-of", written, "--out", str(tmp_path / "o"), "--format", "json", "-q")
    assert result.returncode in (0, 1), result.stderr
    assert json.loads((tmp_path / "o" / "gaps.json").read_text(encoding="utf-8"))["as_of"] == AS_OF.isoformat()


def test_the_day_parser_reads_text_as_the_register_does():
    import pandas as pd

    from exitcheck.days import parse_day
    from exitcheck.registers.normalise import date as register_dates

    texts = [*ACCEPTED, " 2020-6-30 ", "2020-06-30 08:00", "2020-13-01", "2020-06-31", "6/30/2020", "2020-W27-2", "abc"]
    cells = register_dates(pd.Series(texts, dtype=object)).values
    assert [parse_day(text) for text in texts] == [None if pd.isna(cell) else cell.date() for cell in cells]
    assert parse_day("2020/06/30") == AS_OF and parse_day("2020-W27-2") is None


def test_a_workspace_as_of_takes_the_same_forms(tmp_path):
    from exitcheck.errors import ConfigError
    from exitcheck.workspace import load_config

    path = tmp_path / "exitcheck.yaml"
    path.write_text("as_of: 2020/06/30\n", encoding="utf-8")
    assert load_config(path).as_of == AS_OF
    path.write_text("as_of: 2020-13-01\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert f"{path}:1: as_of: " in caught.value.zh and "「2020-13-01」不是有效的日期" in caught.value.zh
    assert "'2020-13-01' is not a valid date" in caught.value.en
