"""The workbooks as a clerk prints them: every list row boxed and top-aligned, widths that fit
the headers of the chosen language, no word of the other language, numbers set apart.

The outputs are those of the real CLI over the sample county (`exitcheck sample`), the county
the reviewers print: its reasons wrap over several lines and its data issues are of every kind.
"""

from __future__ import annotations

import csv
import itertools
import re
import shutil
import subprocess
from pathlib import Path

import openpyxl
import pytest
from openpyxl.utils import get_column_letter

from cli_process import exitcheck

AS_OF = "2020-06-30"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return exitcheck(*args, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def printed(tmp_path_factory) -> Path:
    """The sample county's outputs, in both languages: zh/, en/, towns/ (a book per township),
    bands/, bands_en/, val/."""
    folder = tmp_path_factory.mktemp("printed")
    assert _cli("sample", "registers.xlsx", cwd=folder).returncode == 0
    runs = [
        ("audit", "registers.xlsx", "--out", "zh", "--as-of", AS_OF, "--format", "xlsx,csv"),
        ("audit", "registers.xlsx", "--out", "en", "--as-of", AS_OF, "--lang", "en", "--format", "xlsx,csv"),
        ("audit", "registers.xlsx", "--out", "towns", "--as-of", AS_OF, "--format", "xlsx", "--split-by", "township"),
        ("bands", "registers.xlsx", "--out", "bands", "--as-of", AS_OF),
        ("bands", "registers.xlsx", "--out", "bands_en", "--as-of", AS_OF, "--lang", "en"),
        ("validate", "registers.xlsx", "--out", "val"),
    ]
    for args in runs:
        run = _cli(*args, cwd=folder)
        assert run.returncode in (0, 1), run.stdout + run.stderr
        (folder / f"{args[args.index('--out') + 1]}.log").write_text(run.stdout, encoding="utf-8")
    return folder


def _book(printed: Path, name: str) -> openpyxl.Workbook:
    return openpyxl.load_workbook(printed / name)


LIST_SHEETS = {
    "zh/gaps.xlsx": ["户清单", "村清单", "乡镇清单", "县", "风险清单", "数据问题"],
    "en/gaps.xlsx": ["Households", "Villages", "Townships", "County", "Risks", "Data issues"],
    "val/issues.xlsx": ["数据问题"],
    "bands/bands.xlsx": None,  # every sheet
}


def _list_sheets(printed: Path):
    for name, sheets in LIST_SHEETS.items():
        book = _book(printed, name)
        for sheet in sheets or book.sheetnames:
            yield name, book[sheet]


def _header_row(sheet) -> int:
    """The header row: under the title line when there is one."""
    return 2 if sheet.auto_filter.ref and sheet.auto_filter.ref[1] == "2" else 1


def _data_cells(sheet):
    top = _header_row(sheet)
    width = len([c for c in sheet[top] if c.value is not None])
    for row in sheet.iter_rows(min_row=top + 1, max_row=sheet.max_row, max_col=width):
        # the cells under a merge (an empty list's one-line note) take the merge's first cell's look
        yield from (cell for cell in row if type(cell).__name__ != "MergedCell")


def _always_boxed(sheet) -> list:
    """The ranges a conditional format boxes whatever their cells hold (a blank list cell is not
    written: the list's box draws its border)."""
    return [cf.sqref for cf in sheet.conditional_formatting for rule in cf.rules
            if rule.type == "expression" and rule.formula == ["TRUE"] and rule.dxf.border.left.style == "thin"
            and rule.dxf.border.bottom.style == "thin"]


def test_every_cell_of_a_list_row_is_top_aligned_and_boxed(printed):
    """A reason over three lines must start level with the name it belongs to, and rows must
    be told apart on paper, where gridlines are not printed."""
    checked = boxed_blank = 0
    for name, sheet in _list_sheets(printed):
        always = _always_boxed(sheet)
        for cell in _data_cells(sheet):
            where = f"{name} {sheet.title}!{cell.coordinate}"
            if cell.value is None and any(cell.coordinate in ranges for ranges in always):
                boxed_blank += 1
                continue
            assert cell.alignment.vertical == "top", where
            assert cell.border.left.style == "thin" and cell.border.bottom.style == "thin", where
            checked += 1
    assert checked > 1000 and boxed_blank > 100


def test_the_mark_columns_are_narrow_with_their_headers_top_to_bottom(printed):
    """The household list's ✗/? columns take the width of a mark, not of the indicator's name:
    a list of twelve indicators still prints large enough to read. Chinese names are stacked,
    a character under the other; English ones turned; the header row is tall enough."""
    for name, sheet_name, rotation in (("zh/gaps.xlsx", "户清单", 255), ("en/gaps.xlsx", "Households", 90)):
        sheet = _book(printed, name)[sheet_name]
        marks = [c for c in sheet[1] if c.alignment.textRotation]
        assert len(marks) >= 10 and all(c.alignment.textRotation == rotation for c in marks), name
        assert all(_width(sheet, c.column_letter) <= 5 for c in marks), name
        longest = max(len(c.value) for c in marks)
        assert sheet.row_dimensions[1].height >= (15 * longest if rotation == 255 else 7 * longest), name


#: What a landscape A4 page prints across at 0.4" margins, in pixels at 96 to the inch.
A4_ACROSS = (11.69 - 0.8) * 96


def _pixels(sheet) -> int:
    """The list's width on screen at 100 %, from the widths stored in the file."""
    count = len([c for c in sheet[_header_row(sheet)] if c.value is not None])
    return sum(round(_width(sheet, get_column_letter(index)) * 7) for index in range(1, count + 1))


def test_wide_lists_print_at_a_size_that_reads_on_a4(printed):
    """The household list (24 columns) and the data issues (13) were fitted to one A4 width
    at about half size, 5-point text; now their columns of running text are narrowed and wrap
    until the list prints at two thirds of its size or more (11 points → 7.5), on A4 still."""
    wide = [("zh/gaps.xlsx", "户清单"), ("en/gaps.xlsx", "Households"), ("zh/gaps.xlsx", "数据问题"), ("val/issues.xlsx", "数据问题")]
    for name, sheet_name in wide:
        sheet = _book(printed, name)[sheet_name]
        setup = sheet.page_setup
        assert (setup.paperSize, setup.orientation, setup.fitToWidth or 1) == (9, "landscape", 1), name
        assert sheet.sheet_properties.pageSetUpPr.fitToPage, name
        assert A4_ACROSS / _pixels(sheet) >= 0.66, (name, sheet_name, _pixels(sheet))
    households = _book(printed, "zh/gaps.xlsx")["户清单"]
    reasons = [c for c in households[1] if c.value == "原因(✗未达标 ?待核实)"][0]
    assert households.cell(2, reasons.column).alignment.wrap_text
    assert 24 <= _width(households, reasons.column_letter) < 30
    id_column = [c for c in households[1] if c.value == "户编号"][0]
    assert _width(households, id_column.column_letter) >= 18 + 2  # an ID is never broken


def test_every_printed_page_of_a_list_says_which_list_of_where_and_when(printed):
    """A page that comes loose from a 20-page household list still says what it is: the list,
    the township in a township's book, and the reference date, at the head of every page; a
    band list's title line is printed on every page with the headers."""
    for name, expected in (("zh/gaps.xlsx", "{sheet} 基准日 2020-06-30"), ("en/gaps.xlsx", "{sheet} as of 2020-06-30"),
                           ("towns/townships/越城镇.xlsx", "越城镇 {sheet} 基准日 2020-06-30")):
        book = _book(printed, name)
        for sheet in book.worksheets[1:]:
            assert sheet.oddHeader.left.text == expected.format(sheet=sheet.title), (name, sheet.title)
            assert sheet.print_title_rows == "$1:$1", (name, sheet.title)
    for sheet in _book(printed, "bands/bands.xlsx").worksheets[1:]:
        assert sheet.print_title_rows == "$1:$2", sheet.title


def test_a_row_of_several_lines_is_tall_enough_for_its_reason(printed):
    sheet = _book(printed, "zh/gaps.xlsx")["户清单"]
    headers = [c.value for c in sheet[1]]
    reasons = headers.index("原因(✗未达标 ?待核实)") + 1
    long_rows = [r for r in range(2, sheet.max_row + 1) if len(sheet.cell(r, reasons).value or "") > 60]
    assert long_rows
    for row in long_rows:
        assert (sheet.row_dimensions[row].height or 15) >= 30, row


def _display_len(text: str) -> int:
    """Columns a text takes in a spreadsheet: a Chinese character two."""
    return sum(2 if ord(ch) >= 0x2E81 else 1 for ch in text)


def _width(sheet, column_letter: str) -> float:
    """The column's width; openpyxl keeps a run of equal widths (<col min max>) under its first
    letter only, and gives any other letter its default."""
    from openpyxl.utils import column_index_from_string

    index = column_index_from_string(column_letter)
    for dimension in sheet.column_dimensions.values():
        if dimension.min is not None and dimension.min <= index <= dimension.max:
            return dimension.width
    return sheet.column_dimensions[column_letter].width


def _lines_at(text: str, room: float) -> int:
    """Lines English words take in `room` columns, never broken inside a word."""
    lines, used = 1, 0
    for word in text.split():
        if used and used + 1 + len(word) > room:
            lines, used = lines + 1, 0
        used += len(word) + (1 if used else 0)
    return lines


def test_english_headers_fit_whole_words_and_their_lines(printed):
    """Widths are worked out from the English text: no header word is cut, and the header row
    is tall enough for the lines its headers wrap to."""
    for name in ("en/gaps.xlsx", "bands_en/bands.xlsx"):
        book = _book(printed, name)
        for sheet in book.worksheets[1:]:  # the list sheets (the summary has tables of its own)
            top = _header_row(sheet)
            height = sheet.row_dimensions[top].height or 15
            for cell in sheet[top]:
                if not cell.value:
                    continue
                width = _width(sheet, cell.column_letter)
                where = f"{name} {sheet.title}!{cell.coordinate} {cell.value!r} at width {width}"
                if cell.alignment.textRotation:  # a mark column's header, turned: the row is tall enough
                    assert height >= 7 * len(cell.value), where
                    continue
                assert max(_display_len(word) for word in cell.value.split()) < width, where
                assert height >= 15 * _lines_at(cell.value, width - 1) if cell.value.isascii() else True, where


def test_cells_that_do_not_wrap_fit_their_column(printed):
    """Every text cell either fits its column's width or wraps (and its row is tall enough),
    in either language: the Summary's labels too."""
    for name in ("zh/gaps.xlsx", "en/gaps.xlsx", "bands/bands.xlsx", "bands_en/bands.xlsx", "val/issues.xlsx"):
        for sheet in _book(printed, name).worksheets:
            for row in sheet.iter_rows(min_row=_header_row(sheet) + 1):
                for cell in row:
                    if not isinstance(cell.value, str) or cell.font.b and cell.font.sz == 14:  # a title spills over
                        continue
                    merged = next((r for r in sheet.merged_cells.ranges if cell.coordinate in r), None)
                    letters = [get_column_letter(c) for c in range(merged.min_col, merged.max_col + 1)] if merged else [cell.column_letter]
                    width = sum(_width(sheet, letter) for letter in letters)  # an empty list's note spans the list
                    where = f"{name} {sheet.title}!{cell.coordinate} {cell.value!r} at width {width}"
                    if cell.alignment.wrap_text:
                        needed = -(-_display_len(cell.value) // width)
                        assert (sheet.row_dimensions[cell.row].height or 15) >= 15 * needed, where
                    else:
                        assert _display_len(cell.value) <= width, where


def test_summary_labels_fit_in_english(printed):
    sheet = _book(printed, "en/gaps.xlsx")["Summary"]
    labels = [sheet.cell(row, 1).value for row in range(3, 11)]
    assert "Households with a failing indicator" in labels
    assert _width(sheet, "A") > len("Households with a failing indicator")


def _has_chinese(text: str) -> bool:
    return any(ord(ch) >= 0x2E81 for ch in text)


def test_english_headers_and_lists_have_no_chinese(printed):
    """The county's 备注 column is 'Notes' in English; lists in English text are joined with
    ', ', not with the Chinese list comma."""
    for name in ("en/gaps.xlsx", "bands_en/bands.xlsx"):
        for sheet in _book(printed, name).worksheets[1:]:
            headers = [c.value for c in sheet[_header_row(sheet)] if c.value]
            assert not [h for h in headers if _has_chinese(h)], f"{name} {sheet.title}: {headers}"
    assert "Notes" in [c.value for c in _book(printed, "en/gaps.xlsx")["Households"][1]]
    assert "备注" in [c.value for c in _book(printed, "zh/gaps.xlsx")["户清单"][1]]
    def messages_of(sheet, header: str) -> list[str]:
        column = [c.value for c in sheet[1]].index(header)
        return [row[column] for row in sheet.iter_rows(min_row=2, values_only=True)]

    messages = messages_of(_book(printed, "en/gaps.xlsx")["Data issues"], "Message")
    duplicates = [m for m in messages if "appears on rows" in m or "also registered" in m]
    assert duplicates and not [m for m in duplicates if "、" in m]
    assert any(re.search(r"rows \d+, \d+", m) for m in duplicates)
    chinese = messages_of(_book(printed, "zh/gaps.xlsx")["数据问题"], "说明")
    assert any(re.search(r"\d+、\d+", m) for m in chinese)


def test_special_groups_are_listed_in_the_language_of_the_book(printed):
    def specials(name: str, header: str) -> list[str]:
        sheet = _book(printed, name).worksheets[1]
        column = [c.value for c in sheet[2]].index(header)
        return [row[column] for row in sheet.iter_rows(min_row=3, values_only=True) if row[column]]

    english = specials("bands_en/bands.xlsx", "Special groups")
    assert any(", " in s for s in english) and not any("、" in s or _has_chinese(s) for s in english)
    assert any("、" in s for s in specials("bands/bands.xlsx", "特殊群体"))


def _issue_columns(sheet, *names: str) -> list[tuple]:
    headers = [c.value for c in sheet[1]]
    columns = [headers.index(name) for name in names]
    return [tuple(row[c] for c in columns) for row in sheet.iter_rows(min_row=2, values_only=True)]


def test_severity_and_field_speak_the_language_of_the_book(printed):
    """级别 says 错误/警告 and 字段 names the field as the register does, as `exitcheck explain`
    does; the English book says error/warning and the field's English name."""
    for name, sheet in (("zh/gaps.xlsx", "数据问题"), ("val/issues.xlsx", "数据问题")):
        rows = _issue_columns(_book(printed, name)[sheet], "级别", "字段")
        assert {severity for severity, _ in rows} == {"错误", "警告"}, name
        assert all(_has_chinese(field) for _, field in rows), name
    rows = _issue_columns(_book(printed, "en/gaps.xlsx")["Data issues"], "Severity", "Field")
    assert {severity for severity, _ in rows} == {"error", "warning"}
    assert "Gender" in {field for _, field in rows} and not [f for _, f in rows if "_" in f or _has_chinese(f)]
    console = (printed / "val.log").read_text(encoding="utf-8")
    assert "错误" in console and "警告" in console
    assert not re.search(r"\b(error|warning)\b", console)


def test_band_lists_show_incomes_alike_and_special_groups_stand_out(printed):
    """Incomes with two decimals (3,101.00 beside 2,825.99); households under the five
    guarantees or with a disabled member shaded, as domain.md asks; the summary's filter stops
    above the 合计 row, so sorting it leaves the total at the bottom."""
    for name, income, special, standing_out in (
        ("bands/bands.xlsx", "人均纯收入", "特殊群体", ("五保/特困供养", "残疾")),
        ("bands_en/bands.xlsx", "Per-capita net income", "Special groups", ("five guarantees / extreme-poverty support", "member with a disability")),
    ):
        book = _book(printed, name)
        shaded = plain = 0
        for sheet in book.worksheets[1:]:
            headers = [c.value for c in sheet[2]]
            for row in sheet.iter_rows(min_row=3):
                assert row[headers.index(income)].number_format == "#,##0.00", f"{name} {sheet.title}"
                groups = row[headers.index(special)].value or ""
                fills = {cell.fill.fgColor.rgb for cell in row}
                if any(group in groups for group in standing_out):
                    assert fills == {"FFFCE4D6"}, f"{name} {sheet.title} row {row[0].row}: {groups}"
                    shaded += 1
                else:
                    assert fills == {"00000000"}, f"{name} {sheet.title} row {row[0].row}: {groups}"
                    plain += 1
        assert shaded and plain
        summary = book.worksheets[0]
        last = summary.max_row
        assert summary.cell(last, 1).value in ("合计", "Total") and summary.cell(last, 1).font.b
        assert summary.auto_filter.ref == f"A2:{summary.cell(last, summary.max_column).column_letter}{last - 1}"


def test_numbers_are_kept_off_the_next_column(printed):
    """A number right-aligned against the next column's text printed as '615E' or
    '0农业农村局': every number in a list, and in the Summary's tables, is boxed and indented."""
    numbers = 0
    for name, sheet in _list_sheets(printed):
        for cell in _data_cells(sheet):
            if isinstance(cell.value, int | float):
                assert cell.alignment.horizontal == "right" and cell.alignment.indent >= 1, f"{name} {sheet.title}!{cell.coordinate}"
                numbers += 1
    assert numbers > 300
    summary = _book(printed, "zh/gaps.xlsx")["汇总"]
    tables = [row for row in summary.iter_rows() if row[0].value in ("规则", "乡镇") and row[0].font.b]
    assert len(tables) == 2
    for header in tables:
        below = summary.iter_rows(min_row=header[0].row + 1, max_col=len([c for c in header if c.value]))
        rows = list(itertools.takewhile(lambda row: row[0].value is not None, below))
        assert rows
        for cell in (cell for row in rows for cell in row):
            assert cell.border.left.style == "thin" and cell.alignment.vertical == "top", cell.coordinate
            if isinstance(cell.value, int | float):
                assert cell.alignment.indent >= 1, cell.coordinate


def _csv_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def test_the_clerks_csv_keeps_long_numbers_as_text_the_programs_csv_as_they_are(printed):
    clerks = _csv_rows(printed / "zh" / "gaps_households.csv")
    ids = [row[clerks[0].index("户编号")] for row in clerks[1:]]
    phones = [row[clerks[0].index("联系电话")] for row in clerks[1:] if row[clerks[0].index("联系电话")]]
    assert ids and all(re.fullmatch(r"\t\d{18}", hid) for hid in ids)
    assert phones and all(re.fullmatch(r"\t\d{11}", phone) for phone in phones)
    programs = _csv_rows(printed / "zh" / "gaps.csv")
    assert programs[0][:4] == ["level", "rule", "status", "household_id"]
    assert {row[3].lstrip("\t") for row in programs[1:] if row[3]} >= {hid.lstrip("\t") for hid in ids}
    assert not [row for row in programs[1:] if row[3].startswith("\t")]


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_libreoffice_opens_the_clerks_csv_with_ids_whole(printed, tmp_path):
    """As a clerk opens it: LibreOffice's CSV import (UTF-8) reads the IDs as text, all 18
    digits, not 5.13434002001e+17."""
    subprocess.run(["soffice", "--headless", "--infilter=CSV:44,34,76", "--convert-to", "xlsx", "--outdir", str(tmp_path),
                    str(printed / "zh" / "gaps_households.csv")],
                   check=True, capture_output=True, timeout=180, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    sheet = openpyxl.load_workbook(tmp_path / "gaps_households.xlsx").active
    column = [c.value for c in sheet[1]].index("户编号")
    ids = [row[column] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert ids and all(isinstance(hid, str) and re.fullmatch(r"\s?\d{18}", hid) for hid in ids), ids[:3]


def test_fitting_to_the_page_narrows_running_text_only_and_never_below_its_floor():
    from exitcheck.report.sheets import NARROWEST_WRAP, fit_to_page

    narrow = [10.0, 20.0, 48.0]
    assert fit_to_page(narrow, ["a", "b", "c"], lambda i: True) == narrow  # fits already: left alone
    widths = [20.0] * 8 + [48.0, 48.0, 30.0]  # eight ID-like columns and three of running text
    fitted = fit_to_page(widths, ["x"] * 11, lambda i: i >= 8)
    assert fitted[:8] == widths[:8]
    assert fitted[8] == fitted[9] < 48 and all(w >= NARROWEST_WRAP for w in fitted[8:])
    hopeless = fit_to_page([30.0] * 20 + [48.0], ["x"] * 21, lambda i: i == 20)
    assert hopeless == [30.0] * 20 + [NARROWEST_WRAP]  # too wide whatever is done: the floor, not less
    long_header = "a header far too long to fit in twenty-four columns on three lines, wrapped at every space it has"
    assert fit_to_page([30.0] * 20 + [48.0], ["x"] * 20 + [long_header], lambda i: i == 20)[20] > NARROWEST_WRAP
