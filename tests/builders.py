"""Small, exact register workbooks for tests: every row known, problems planted by hand.

`County` holds plain rows keyed by Chinese header; `write()` lays them out as a county sheet
really looks (title line, fill-in line, merged group headers, header row, a totals row), so the
tests exercise the loader on the real layout. Row numbers of the data are predictable:
`excel_row(sheet, i)` gives the Excel row of the i-th record.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import xlsxwriter

from exitcheck.idcard import check_digit

TITLE_ROWS = 2  # title line + 填报单位 line
GROUP_ROW = {"户表": True, "成员表": True, "村表": False, "乡镇表": False}


def make_id(birth: date, serial: int, male: bool, region: str = "513434") -> str:
    """A valid 18-character ID number."""
    seq = f"{serial % 100:02d}{(1 if male else 2) + 2 * (serial % 4)}"
    first17 = f"{region}{birth:%Y%m%d}{seq}"
    return first17 + check_digit(first17)


def household(hid: str, township: str, village: str, head: str, size: int, income: Any = 8000, **extra: Any) -> dict[str, Any]:
    row = {
        "户编号": hid, "乡镇": township, "行政村": village, "村民小组": "一组", "户主姓名": head,
        "农户类别": "建档立卡户", "贫困户属性": "一般贫困户", "脱贫状态": "已脱贫", "脱贫年度": 2018,
        "家庭人口数": size, "人均纯收入": income, "住房安全等级": "A", "住房编号": f"F{hid}",
        "安全饮水": "是", "生活用电": "是", "广播电视": "是", "政策知晓": "是", "人居环境达标": "是",
        "感恩袋": "是", "认可度": "满意", "易地扶贫搬迁": "否", "帮扶责任人": "王干部",
        "帮扶责任人电话": "13800000000", "备注": "",
    }
    row.update(extra)
    return row


def member(hid: str, name: str, id_number: Any, relation: str, gender: str, birth: Any, **extra: Any) -> dict[str, Any]:
    row = {
        "户编号": hid, "姓名": name, "证件号码": id_number, "与户主关系": relation, "性别": gender,
        "出生日期": birth, "在校生状况": "非在校生", "城乡居民基本医疗保险": "是", "健康状况": "健康",
        "劳动技能": "普通劳动力", "务工状况": "县内务工", "人员状态": "正常",
    }
    row.update(extra)
    return row


def village(township: str, name: str, population: int, poor: str = "是", income: Any = 5000, **extra: Any) -> dict[str, Any]:
    row = {
        "乡镇": township, "行政村": name, "是否贫困村": poor, "户籍人口": population, "村集体经济收入": income,
        "通硬化路": "是", "卫生室": "是", "文化室": "是", "通信网络": "是", "安全饮水": "是", "生活用电": "是", "广播电视": "是",
    }
    row.update(extra)
    return row


def township(name: str, **extra: Any) -> dict[str, Any]:
    row = {"乡镇": name, "标准中心校": "是", "达标卫生院": "是", "便民服务中心": "是"}
    row.update(extra)
    return row


@dataclass
class County:
    households: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)
    villages: list[dict[str, Any]] = field(default_factory=list)
    townships: list[dict[str, Any]] = field(default_factory=list)
    totals_row: bool = True

    def copy(self) -> County:
        return copy.deepcopy(self)

    def sheets(self) -> dict[str, list[dict[str, Any]]]:
        out = {"户表": self.households, "成员表": self.members}
        if self.villages:
            out["村表"] = self.villages
        if self.townships:
            out["乡镇表"] = self.townships
        return out

    def write(self, path: Path) -> Path:
        """The county as a workbook, in the format its suffix names: .xlsx (xlsxwriter), .xls
        (xlwt) or .ods; each sheet laid out the same way (`lay_out`)."""
        if path.suffix in (".xls", ".ods"):
            layouts = [lay_out(name, rows, totals=self.totals_row and name == "户表") for name, rows in self.sheets().items()]
            (write_xls if path.suffix == ".xls" else write_ods)(path, layouts)
            return path
        workbook = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_numbers": False})
        for sheet_name, rows in self.sheets().items():
            write_sheet(workbook, sheet_name, rows, totals=self.totals_row and sheet_name == "户表")
        workbook.close()
        return path


def header_row(sheet: str) -> int:
    """Excel row number of the header row of a sheet written by `write_sheet`."""
    return TITLE_ROWS + (1 if GROUP_ROW.get(sheet, False) else 0) + 1


def excel_row(sheet: str, index: int) -> int:
    return header_row(sheet) + 1 + index


@dataclass(frozen=True)
class FormulaError:
    """A formula cell whose saved value is an Excel error, as Excel saves a VLOOKUP that failed."""

    text: str  # "#N/A", "#DIV/0!", ...


@dataclass
class SheetLayout:
    """A register sheet as a county lays it out: title line, fill-in line, merged group headers,
    header row, the records and a totals row. Positions are 0-based."""

    name: str
    cells: dict[tuple[int, int], Any] = field(default_factory=dict)  # (row, column) -> value
    merges: list[tuple[int, int, int, str]] = field(default_factory=list)  # (row, first, last column, text)


def lay_out(name: str, rows: list[dict[str, Any]], *, totals: bool = False) -> SheetLayout:
    layout = SheetLayout(name)
    headers: list[str] = []
    for row in rows:
        for key in row:
            if key not in headers:
                headers.append(key)
    layout.merges.append((0, 0, max(len(headers) - 1, 1), f"越西县2020年{name}"))
    layout.cells[(1, 0)] = "填报单位: 越西县扶贫开发局    填报日期: 2020年6月30日"
    top = TITLE_ROWS
    if GROUP_ROW.get(name, False):
        layout.merges += [(top, 0, 4, "基本信息"), (top, 5, max(len(headers) - 1, 6), "指标")]
        top += 1
    layout.cells.update({(top, col): header for col, header in enumerate(headers)})
    for offset, row in enumerate(rows, start=1):
        for col, key in enumerate(headers):
            value = row.get(key)
            if value is not None and value != "":
                layout.cells[(top + offset, col)] = value
    if totals:
        layout.cells[(top + len(rows) + 1, 0)] = "合计"
        sizes = [r.get("家庭人口数") for r in rows if isinstance(r.get("家庭人口数"), int)]
        if "家庭人口数" in headers:
            layout.cells[(top + len(rows) + 1, headers.index("家庭人口数"))] = sum(sizes)
    return layout


def write_sheet(workbook: Any, name: str, rows: list[dict[str, Any]], *, totals: bool = False) -> None:
    """One register sheet into an xlsxwriter workbook."""
    from datetime import datetime

    layout = lay_out(name, rows, totals=totals)
    sheet = workbook.add_worksheet(name)
    for row, first, last, text in layout.merges:
        sheet.merge_range(row, first, row, last, text)
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    for (row, col), value in layout.cells.items():
        if isinstance(value, FormulaError):
            sheet.write_formula(row, col, "=NA()", None, value.text)
        elif isinstance(value, str):
            sheet.write_string(row, col, value)
        elif isinstance(value, date):
            sheet.write_datetime(row, col, datetime(value.year, value.month, value.day), date_format)
        else:
            sheet.write_number(row, col, value)


#: BIFF's codes of the error values (an .xls BOOLERR record holds the code, not the text).
XLS_ERROR_CODES = {"#NULL!": 0x00, "#DIV/0!": 0x07, "#VALUE!": 0x0F, "#REF!": 0x17, "#NAME?": 0x1D, "#NUM!": 0x24, "#N/A": 0x2A}


def write_xls(path: Path, layouts: list[SheetLayout]) -> None:
    """The sheets as an .xls (BIFF8, xlwt). An error value is a BOOLERR record: xlwt cannot save
    a formula's result (tests/data/error-cells.xls holds formulas with saved errors)."""
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    date_style = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    for layout in layouts:
        sheet = book.add_sheet(layout.name)
        for row, first, last, text in layout.merges:
            sheet.write_merge(row, row, first, last, text)
        for (row, col), value in layout.cells.items():
            if isinstance(value, FormulaError):
                sheet.row(row).set_cell_error(col, XLS_ERROR_CODES[value.text])
            elif isinstance(value, date):
                sheet.write(row, col, value, date_style)
            else:
                sheet.write(row, col, value)
    book.save(str(path))


def write_ods(path: Path, layouts: list[SheetLayout]) -> None:
    """The sheets as an .ods, each cell written as LibreOffice writes it: a merge is a spanning
    cell and covered cells, an error value a formula cell whose value-type is "error"."""
    from xml.sax.saxutils import escape, quoteattr

    def cell(value: Any, span: int = 1) -> str:
        spanned = f' table:number-columns-spanned="{span}" table:number-rows-spanned="1"' if span > 1 else ""
        if value is None:
            return f"<table:table-cell{spanned}/>"
        if isinstance(value, FormulaError):
            return ('<table:table-cell table:formula="of:=NA()" office:value-type="string" office:string-value=""'
                    f' calcext:value-type="error"><text:p>{escape(value.text)}</text:p></table:table-cell>')
        if isinstance(value, str):
            return f'<table:table-cell office:value-type="string"{spanned}><text:p>{escape(value)}</text:p></table:table-cell>'
        if isinstance(value, date):
            return f'<table:table-cell office:value-type="date" office:date-value="{value.isoformat()}"><text:p>{value}</text:p></table:table-cell>'
        return f'<table:table-cell office:value-type="float" office:value="{value!r}"><text:p>{value}</text:p></table:table-cell>'

    tables = []
    for layout in layouts:
        spans = {(row, first): (last - first + 1, text) for row, first, last, text in layout.merges}
        covered = {(row, col) for row, first, last, _ in layout.merges for col in range(first + 1, last + 1)}
        last_column: dict[int, int] = {}
        for row, col in [*layout.cells, *spans, *covered]:
            last_column[row] = max(last_column.get(row, 0), col)
        rows = []
        for row in range(max(last_column) + 1):
            xml = []
            for col in range(last_column[row] + 1 if row in last_column else 0):
                if (row, col) in covered:
                    xml.append("<table:covered-table-cell/>")
                elif (row, col) in spans:
                    xml.append(cell(spans[(row, col)][1], spans[(row, col)][0]))
                else:
                    xml.append(cell(layout.cells.get((row, col))))
            rows.append(f"<table:table-row>{''.join(xml)}</table:table-row>")
        tables.append(f"<table:table table:name={quoteattr(layout.name)}>{''.join(rows)}</table:table>")
    write_ods_tables(path, "".join(tables))


ODS_NAMESPACES = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:calcext="urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0" '
    'xmlns:of="urn:oasis:names:tc:opendocument:xmlns:of:1.2"'
)


def write_ods_tables(path: Path, tables: str, *, prolog: str = "") -> None:
    """An .ods package whose content.xml holds `tables` (<table:table> elements) as they are."""
    import zipfile

    content = (f'<?xml version="1.0" encoding="UTF-8"?>{prolog}<office:document-content {ODS_NAMESPACES} office:version="1.3">'
               f"<office:body><office:spreadsheet>{tables}</office:spreadsheet></office:body></office:document-content>")
    manifest = ('<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">'
                '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet", zipfile.ZIP_STORED)
        archive.writestr("META-INF/manifest.xml", manifest)
        archive.writestr("content.xml", content)


def base_county() -> County:
    """A clean little county: 2 townships, 3 villages, 6 households, every indicator met."""
    county = County()
    county.townships = [township("越城镇"), township("中所镇")]
    county.villages = [village("越城镇", "瓦曲村", 400), village("越城镇", "马拖村", 300, poor="否"), village("中所镇", "新民村", 500)]
    places = [("越城镇", "瓦曲村"), ("越城镇", "瓦曲村"), ("越城镇", "马拖村"), ("中所镇", "新民村"), ("中所镇", "新民村"), ("中所镇", "新民村")]
    serial = 1
    for number, (town, vil) in enumerate(places, start=1):
        hid = f"51343400{number:04d}"
        head = f"户主{number}"
        county.households.append(household(hid, town, vil, head, 3))
        people = [
            (head, "户主", "男", date(1970, 1, number)),
            (f"配偶{number}", "配偶", "女", date(1972, 3, number)),
            (f"子{number}", "之子", "男", date(2000, 5, number)),
        ]
        for name, relation, gender, birth in people:
            county.members.append(member(hid, name, make_id(birth, serial, gender == "男"), relation, gender, birth.isoformat()))
            serial += 1
    return county


def recode(county: County, code: str, town_prefix: str = "") -> County:
    """The county under another county code: household ids, house ids and ID numbers (so that
    nobody is registered in two counties), optionally its townships renamed."""
    for row in county.households:
        row["户编号"] = code + row["户编号"][6:]
        row["住房编号"] = "F" + row["户编号"]
    for row in county.members:
        row["户编号"] = code + row["户编号"][6:]
        body = code + row["证件号码"][6:17]
        row["证件号码"] = body + check_digit(body)
    for row in [*county.households, *county.villages, *county.townships]:
        row["乡镇"] = town_prefix + row["乡镇"]
    return county


AS_OF = date(2020, 6, 30)
