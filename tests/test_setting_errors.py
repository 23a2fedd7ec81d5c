"""A mistake in exitcheck.yaml in the clerk's words: Chinese by default, English with --lang en,
naming the file, the line, the key, the value written and what is expected, never pydantic's
own English ("Input should be a valid integer")."""

from __future__ import annotations

from pathlib import Path

import pytest

from exitcheck.errors import ConfigError
from exitcheck.workspace import load_config


def refused(tmp_path: Path, text: str) -> tuple[Path, ConfigError]:
    path = tmp_path / "exitcheck.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return path, caught.value


def test_a_word_for_a_number_names_file_line_key_value_and_what_is_expected(tmp_path, run_cli):
    path = tmp_path / "exitcheck.yaml"
    path.write_text("registers: [data/registers.xlsx]\n# kept 60 days by default\nretention_days: sixty\n", encoding="utf-8")
    for lang, words in (("zh", "retention_days: 应为整数, 现为「sixty」"), ("en", "retention_days: expected a whole number, found 'sixty'")):
        result = run_cli("run", "--lang", lang, cwd=tmp_path)
        assert result.returncode == 4, result.stdout + result.stderr
        assert f"{path}:3: {words}" in result.stderr, result.stderr
        assert "Input should" not in result.stderr


@pytest.mark.parametrize(("text", "line", "zh", "en"), [
    ("limits:\n  max_rows: -1\n", 2, "limits.max_rows: 应为大于 0 的数, 现为「-1」", "limits.max_rows: expected a number greater than 0, found -1"),
    ("engine: spark\n", 1, "engine: 应为 local、dask 之一, 现为「spark」", "engine: expected 'local' or 'dask', found 'spark'"),
    ("registers: [a.xlsx]\nretention_days: 0\n", 2, "retention_days: 应为 1 到 36500 天(100 年)之间的整数, 现为 0",
     "retention_days: must be a whole number of days from 1 to 36500 (100 years), found 0"),
    ("departments:\n  civil:\n    deliver: {type: http, url: 'https://x', timeout: fast}\n", 3,
     "departments.civil.deliver.timeout: 应为数字, 现为「fast」", "departments.civil.deliver.timeout: expected a number, found 'fast'"),
    ("departments:\n  civil:\n    deliver: {type: ftp}\n", 3,
     "departments.civil.deliver.type: 应为 dir、http、email 之一, 现为「ftp」", "departments.civil.deliver.type: expected one of 'dir', 'http', 'email', found 'ftp'"),
    ("departments:\n  civil:\n    deliver: {type: email, host: h, from: a@b}\n", 3,
     "departments.civil.deliver.to: 缺少这一项(必填)", "departments.civil.deliver.to: missing (it is required)"),
    ("departments:\n  civil:\n    deliver: {type: http, url: 'ftp://x'}\n", 3,
     "departments.civil.deliver.url: 应为 http:// 或 https:// 开头的网址", "departments.civil.deliver.url: url must be an http:// or https:// address"),
    ("departments:\n  civil:\n    columns: [head_nam]\n", 3,
     "departments.civil.columns: 没有 head_nam 这一列; 是否指 head_name?", "departments.civil.columns: unknown column 'head_nam'; did you mean 'head_name'?"),
    ("file_mode: 'rw'\n", 1, "file_mode: 应为八进制的权限", "file_mode: file_mode must be an octal mode"),
], ids=["range", "choice", "retention", "nested-number", "delivery-type", "missing", "url", "column", "file-mode"])
def test_every_kind_of_field_error_reads_like_the_projects_messages(tmp_path, text, line, zh, en):
    path, error = refused(tmp_path, text)
    assert error.zh == f"{path}:{line}: {zh}" or error.zh.startswith(f"{path}:{line}: {zh}"), error.zh
    assert error.en.startswith(f"{path}:{line}: {en}"), error.en


def test_a_token_typed_where_its_variable_belongs_is_not_repeated(tmp_path):
    path, error = refused(tmp_path, "departments:\n  civil:\n    deliver: {type: http, url: 'https://x', token_env: 'sk-1234 secret'}\n")
    assert error.zh == f"{path}:3: departments.civil.deliver.token_env: 应为环境变量名(字母、数字和下划线, 不以数字开头)"
    assert "sk-1234" not in error.zh + error.en and "environment variable" in error.en
