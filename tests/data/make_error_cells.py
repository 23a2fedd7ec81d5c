"""Makes error-cells.xlsx, and from it error-cells.xls and error-cells.ods with LibreOffice.

    python tests/data/make_error_cells.py     (LibreOffice's soffice on the PATH)

The three files are committed: LibreOffice is too slow and too variable to run in the tests.
The .xls holds FORMULA records with a saved error result (xlwt, which the tests use to write
.xls files, can only write BOOLERR ones) and the .ods the cells as LibreOffice writes them
(calcext:value-type="error", the text in <text:p>, covered cells under a merge, repeated empty
rows and columns). LibreOffice recalculates the formulas when it converts, so a few texts differ
by format: =SQRT(-4) is #NUM! in the xlsx, #VALUE! in the .xls and Err:502 in the .ods.
Made with LibreOffice 7.4.7 (Debian) and xlsxwriter 3.3.1.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import xlsxwriter

HERE = Path(__file__).resolve().parent

#: (text of the saved error, formula) on the first sheet, from row 3, column B
FIRST_SHEET = [("#N/A", "=NA()"), ("#DIV/0!", "=1/0"), ("#VALUE!", '="a"+1'), ("#NAME?", "=NOSUCHFUNCTION()"),
               ("#N/A", '=VLOOKUP("x",A1:B2,2,FALSE)'), ("#NUM!", "=SQRT(-4)"), ("#REF!", "=#REF!")]


def write_xlsx(path: Path) -> None:
    book = xlsxwriter.Workbook(str(path))
    first = book.add_worksheet("户表")
    first.write_row(0, 0, ["kind", "value"])
    first.write_row(1, 0, ["ok", 1])
    for row, (text, formula) in enumerate(FIRST_SHEET, start=2):
        first.write(row, 0, text)
        first.write_formula(row, 1, formula, None, text)
    offset = book.add_worksheet("offset")  # the data starts at C5
    offset.write("C5", "head")
    offset.merge_range("D5:F5", "merged", book.add_format({"align": "center"}))
    offset.write_formula("G5", "=NA()", None, "#N/A")  # after the covered cells of the merge
    offset.write("C6", 1)
    offset.write_formula("D6", "=1/0", None, "#DIV/0!")
    for column in "CDE":
        offset.write_formula(f"{column}8", "=NA()", None, "#N/A")
    for row in (10, 11, 12):
        offset.write(f"C{row}", "same")
        offset.write_formula(f"D{row}", "=NA()", None, "#N/A")
    offset.write_formula("J15", "=1/0", None, "#DIV/0!")  # the last cell of the sheet
    clean = book.add_worksheet("clean")
    clean.write_row(0, 0, ["no", "errors", "here"])
    clean.write_row(1, 0, [1, 2, 3])
    book.close()


def main() -> None:
    source = HERE / "error-cells.xlsx"
    write_xlsx(source)
    for kind in ("xls", "ods"):
        subprocess.run(["soffice", "--headless", "--convert-to", kind, "--outdir", str(HERE), str(source)], check=True)


if __name__ == "__main__":
    main()
