"""WPS 表格's own files (.et workbooks, .ett templates), which many county offices save: read as
what their content is, found in a folder like any spreadsheet, and when one cannot be read the
message says to save it from WPS as .xlsx, not only that it is corrupt."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import exitcheck
from builders import AS_OF, base_county

pytest.importorskip("xlwt")


def wps_file(tmp_path: Path, name: str = "登记表.et") -> Path:
    """The test county as WPS keeps it in an .et: the .xls layout (BIFF8 in an OLE file)."""
    made = base_county().write(tmp_path / "made.xls")
    return Path(shutil.move(made, tmp_path / name))


def test_an_et_file_is_read_as_what_it_holds(tmp_path: Path, run_cli) -> None:
    path = wps_file(tmp_path)
    registers = exitcheck.load([path])
    assert len(registers.raw["households"]) == len(base_county().households)
    assert (f"{path}: WPS 表格文件, 已按其内容(.xls 格式)读取",
            f"{path}: a WPS Spreadsheets file, read as what it holds (.xls)") in registers.notes
    done = run_cli("validate", str(path), "--as-of", AS_OF.isoformat())
    assert done.returncode == 0, done.stderr
    assert "扩展名不符" not in done.stderr  # WPS's own extension is no mistake


def test_a_folder_of_et_files_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "registers"
    folder.mkdir()
    wps_file(folder, "越西县.et")
    registers = exitcheck.load([folder])
    assert registers.inputs == [str(folder / "越西县.et")]


def test_an_et_file_that_cannot_be_read_says_to_save_it_as_xlsx(tmp_path: Path, run_cli) -> None:
    path = tmp_path / "登记表.et"
    path.write_bytes(b"\x00\x01 not a spreadsheet \xff" * 64)
    done = run_cli("validate", str(path), "--as-of", AS_OF.isoformat())
    assert done.returncode == 3 and "Traceback" not in done.stderr
    hint = "这是 WPS 表格文件(.et): 请在 WPS 中「另存为」Excel 工作簿(.xlsx)后再核查"
    assert "".join(hint.split()) in "".join(done.stderr.split()), done.stderr  # the terminal wraps long lines
    english = run_cli("validate", str(path), "--as-of", AS_OF.isoformat(), "--lang", "en")
    assert "save it from WPS as an Excel workbook (.xlsx)" in " ".join(english.stderr.split()), english.stderr


def test_an_et_file_cut_short_is_told_to_be_copied_again_not_saved_again(tmp_path: Path, run_cli) -> None:
    path = tmp_path / "登记表.et"
    path.write_bytes(b"PK\x03\x04 broken zip" * 8)
    done = run_cli("validate", str(path))
    assert done.returncode == 3 and "请重新导出或重新拷贝" in done.stderr and "WPS 表格文件" not in done.stderr


def test_an_xlsx_file_that_cannot_be_read_gets_no_wps_hint(tmp_path: Path, run_cli) -> None:
    path = tmp_path / "登记表.xlsx"
    path.write_bytes(b"\x00\x01 not a spreadsheet \xff" * 64)
    done = run_cli("validate", str(path))
    assert done.returncode == 3 and "WPS 表格文件" not in done.stderr


def test_a_text_file_named_et_is_a_damaged_wps_file_not_a_csv(tmp_path: Path, run_cli) -> None:
    """Bytes that read as text in an .et are no CSV a clerk renamed (as in an .xlsx they may be):
    renaming it to .csv would not help; saving it again from WPS may."""
    path = tmp_path / "登记表.et"
    path.write_bytes(b"garbage")
    done = run_cli("validate", str(path))
    assert done.returncode == 3 and "CSV" not in done.stderr and "不是可识别的电子表格" in done.stderr
    assert "另存为」Excel工作簿(.xlsx)" in "".join(done.stderr.split()), done.stderr


def test_a_wps_template_in_a_folder_is_not_read_but_one_named_is(tmp_path: Path) -> None:
    """A 模板 (.ett) left beside the registers, with its example rows, would join them."""
    folder = tmp_path / "registers"
    folder.mkdir()
    wps_file(folder, "越西县.et")
    wps_file(folder, "模板.ett")
    assert exitcheck.load([folder]).inputs == [str(folder / "越西县.et")]
    assert exitcheck.load([folder / "模板.ett"]).inputs == [str(folder / "模板.ett")]
