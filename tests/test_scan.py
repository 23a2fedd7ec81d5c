"""The package scan's promise: a sheet it lets through is never laid out by calamine beyond the
limits. calamine itself is the judge: every generated sheet that passes the scan is opened with
python-calamine and its grid measured.

The sheets are hostile on purpose: references a writer would never produce but calamine
honours (a second r attribute, spaced, single-quoted, prefixed, lower-case), cells without a
reference placed by counting, prefixed cell elements, and text, comments and CDATA that spell
tag names.
"""

from __future__ import annotations

import base64
import os
import struct
import warnings
import zipfile
from pathlib import Path

import pytest
import python_calamine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exitcheck.errors import InputError
from exitcheck.registers.limits import CHUNK, Limits, QuickBound, check_zip, scan_package
from exitcheck.registers.read import column_letter, read_file

#: Small limits, so that small sheets cross them; the quick bound is then 99 rows x 45 columns.
LIMITS = Limits(max_rows=150, max_columns=50, max_cells=150 * 30)
DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'
ROOT = (
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    b'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" '
    b'xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
)
PARTS = {
    "[Content_Types].xml": b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    b'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
    "_rels/.rels": b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    "xl/workbook.xml": b'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    b'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>',
    "xl/_rels/workbook.xml.rels": b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
}


def package(path: Path, sheets: list[tuple[str, bytes]], names: list[str] | None = None, extra: tuple = ()) -> Path:
    """An xlsx of `sheets` (part name under xl/, XML), named `names` (S, S2, ...), with `extra`
    members (name, bytes) added as they are, duplicates included."""
    names = names or ["S"] + [f"S{n}" for n in range(2, len(sheets) + 1)]
    book = PARTS["xl/workbook.xml"].replace(
        b'<sheet name="S" sheetId="1" r:id="rId1"/>',
        b"".join(b'<sheet name="%s" sheetId="%d" r:id="rId%d"/>' % (name.encode(), n, n) for n, name in enumerate(names, 1)),
    )
    rels = PARTS["xl/_rels/workbook.xml.rels"].replace(
        b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>',
        b"".join(b'<Relationship Id="rId%d" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="%s"/>'
                 % (n, target.encode()) for n, (target, _) in enumerate(sheets, 1)),
    )
    members = [*{**PARTS, "xl/workbook.xml": book, "xl/_rels/workbook.xml.rels": rels}.items(),
               *((f"xl/{target}", xml) for target, xml in sheets), *extra]
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        warnings.simplefilter("ignore")  # a duplicate name is the point of one case
        for name, content in members:
            archive.writestr(name, content)
    return path


def sheet(data: bytes, before: bytes = b'<cols><col min="1" max="3" width="9"/></cols>', prefix: bytes = DECLARATION) -> bytes:
    return prefix + ROOT + before + b"<sheetData>" + data + b"</sheetData></worksheet>"


def workbook(path: Path, sheet_data: bytes) -> Path:
    return package(path, [("worksheets/sheet1.xml", sheet(sheet_data))])


def ref(row: int, column: int) -> str:
    return f"{column_letter(column - 1)}{row}"


#: How a cell carries its place: what calamine reads, in the forms the scan must not miss.
FORMS = {
    "plain": lambda r, c: f'<c r="{ref(r, c)}" s="1">',
    "after style": lambda r, c: f'<c s="1" r="{ref(r, c)}">',
    "none": lambda r, c: "<c>",
    "spaced": lambda r, c: f'<c r = "{ref(r, c)}">',
    "single quotes": lambda r, c: f"<c r='{ref(r, c)}'>",
    "second r": lambda r, c: f'<c r="A1" s="1" r="{ref(r, c)}">',
    "second r, single quotes": lambda r, c: f"<c r=\"A1\" r='{ref(r, c)}'>",
    "second r, spaced": lambda r, c: f'<c r="A1" r ="{ref(r, c)}">',
    "lower case": lambda r, c: f'<c r="{ref(r, c).lower()}">',
    "newline before r": lambda r, c: f'<c\nr="{ref(r, c)}">',
    "second r, no space": lambda r, c: f"<c r=\"A1\" t=\"n\"r='{ref(r, c)}'>",
    "leading zeros": lambda r, c: f'<c r="{column_letter(c - 1)}{r:010d}">',
    "no r, r= in another name": lambda r, c: '<c ar="A1">',
}
cells = st.tuples(st.sampled_from(sorted(FORMS)), st.integers(1, 400), st.integers(1, 80), st.booleans())
rows = st.lists(
    st.tuples(st.one_of(st.none(), st.integers(1, 400)), st.lists(cells, max_size=6), st.sampled_from(["", "sheetData", "<!-- </sheetData> -->"])),
    min_size=1, max_size=8,
)


def render(generated: list) -> bytes:
    out = []
    for row_number, row_cells, noise in generated:
        out.append(f'<row r="{row_number}">' if row_number else "<row>")
        for form, r, c, prefixed in row_cells:
            tag = FORMS[form](r, c)
            if prefixed:
                tag = tag.replace("<c", "<x:c", 1)
            end = "</x:c>" if prefixed else "</c>"
            out.append(f"{tag}<v>1</v>{end}")
        if noise == "sheetData":
            out.append('<c r="A1" t="inlineStr"><is><t>sheetData</t></is></c>')
        elif noise:
            out.append(noise)
        out.append("</row>")
    return "".join(out).encode()


def calamine_grid(path: Path) -> tuple[int, int] | None:
    """The grid calamine lays the sheet out on (rows, columns), or None if it refuses the file."""
    try:
        end = python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_name("S").end
    except Exception:  # calamine refused the file: nothing was laid out
        return None
    return (end[0] + 1, end[1] + 1) if end else (0, 0)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=rows)
def test_a_sheet_the_scan_passes_is_within_the_limits_in_calamine(tmp_path: Path, generated: list) -> None:
    path = workbook(tmp_path / "s.xlsx", render(generated))
    try:
        scan_package(path, path.name, check_zip(path, path.name, LIMITS), LIMITS).close()
    except InputError:
        return  # refused before any reader touched it
    grid = calamine_grid(path)
    if grid is not None:
        rows, columns = grid
        assert rows <= LIMITS.max_rows and columns <= LIMITS.max_columns and rows * columns <= LIMITS.max_cells, grid


@pytest.mark.parametrize("form", sorted(set(FORMS) - {"plain", "after style", "none"}))
def test_a_far_cell_in_any_form_calamine_reads_is_refused(tmp_path: Path, form: str) -> None:
    # A6000 and AX1 are inside the limits alone; together they make a 6000 x 50 grid
    far = FORMS[form](6000, 1) + "<v>1</v></c>"
    path = workbook(tmp_path / "far.xlsx", f'<row r="1"><c r="AX1"><v>1</v></c></row><row r="6000">{far}</row>'.encode())
    with pytest.raises(InputError):
        scan_package(path, path.name, check_zip(path, path.name, LIMITS), LIMITS).close()


def test_the_quick_bound_is_inside_the_limits() -> None:
    for limits in (Limits(), LIMITS, Limits(max_rows=10), Limits(max_cells=1000), Limits(max_columns=30)):
        bound = QuickBound.within(limits)
        if bound is not None:
            assert bound.rows <= limits.max_rows and bound.columns <= limits.max_columns
            assert bound.rows * bound.columns <= limits.max_cells
    assert QuickBound.within(Limits()).rows == 999_999  # a prefecture's member sheet stays quick
    assert QuickBound.within(Limits(max_cells=100)) is None


def test_common_writers_take_the_quick_path() -> None:
    bound = QuickBound.within(Limits())

    def quick(tag: bytes) -> bool:
        data = b'<cols><col min="1"/></cols><sheetData><row r="1">' + tag + b"</row></sheetData>"
        return bound.bounds(data, len(data))

    for tag in (b'<c r="A1" s="1" t="s">', b'<c r="B2" t="n">', b'<c r="AN90000" t="inlineStr">', b'<c r="C3"/>',
                b'<c r="AB999999" s="12" t="s" cm="1" vm="2" ph="1"/>', b'<c r="Z9" s="">'):
        assert quick(tag), tag
    for tag in (b'<c r="AO1">', b'<c r="A1000000">', b'<c s="1" r="A1">', b"<c>", b'<x:c r="A1">', b'<c r="A1" r="B2">',
                b'<c r="AAA1">', b'<c r="A1" s="1" r="B2"/>', b'<c r="A1" foo="1">', b'<c r="A1"s="1">', b'<c r="A1" t="s" >',
                b'<c r="A1" s="1>', b'<c r="A01">', b'<c r="1A">', b'<c\tr="A1">'):
        assert not quick(tag), tag


# ---- the ways past the scan a review found (each made calamine lay out 60 million cells) ------

TOP = b'<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row>'
FAR = b'<row r="6000"><c r="AX6000"><v>1</v></c></row>'  # 6000 x 50: over LIMITS, inside Limits()


def split_at_chunk(before: bytes, after: bytes) -> bytes:
    """A sheet whose first 4 MiB stretch ends with `before` (a long attribute value leaves no
    '<' near the end) and whose next one starts with `after`."""
    head = DECLARATION + ROOT + b"<sheetData>" + TOP + b'<row r="6000"><c r="A1" t="n" p="'
    filler = base64.b64encode(os.urandom(CHUNK))[: CHUNK - len(head) - len(before)]
    return head + filler + before + after + b"<v>1</v></c></row></sheetData></worksheet>"


BYPASSES: dict[str, list[tuple[str, bytes]]] = {
    "a UTF-16 mark before UTF-8 bytes": [("worksheets/sheet1.xml", sheet(TOP + FAR, prefix=b"\xff\xfe" + DECLARATION))],
    "a NUL byte in a comment": [("worksheets/sheet1.xml", sheet(TOP + FAR, before=b"<!--\x00-->"))],
    "leading zeros in a row": [("worksheets/sheet1.xml", sheet((TOP + FAR).replace(b'r="A1"', b'r="A0000000001"')))],
    "r=\"A1\" in a text": [("worksheets/sheet1.xml", sheet(b'<row r="1"><c r="AX1"><v>1</v></c></row><row r="6000"><c t="inlineStr"><is><t>r="A1"</t></is></c></row>'))],
    "a second r with no space": [("worksheets/sheet1.xml", sheet(TOP + FAR.replace(b'<c r="AX6000">', b"<c r=\"A1\" t=\"n\"r='AX6000'>")))],
    "a chunk's end before r='..'": [("worksheets/sheet1.xml", split_at_chunk(b'" ', b"r='AX6000'>"))],
    "a chunk's end between r and its value": [("worksheets/sheet1.xml", split_at_chunk(b'" r', b'="AX6000">'))],
    "an empty string value": [("worksheets/sheet1.xml", sheet(TOP + FAR.replace(b"><v>1</v>", b' t="str"><v/>')))],
    "an empty date value": [("worksheets/sheet1.xml", sheet(TOP + FAR.replace(b"><v>1</v>", b' t="d"><v></v>')))],
    "a sheet part not named .xml": [("worksheets/sheet1.bin", sheet(TOP + FAR))],
    # value_extent must place cells as calamine does (a second review, helper-12)
    "letters before a row's number": [("worksheets/sheet1.xml", sheet(TOP + b'<row r="A6000">' + b"<c><v>1</v></c>" * 40 + b"</row>"))],
    "a row inside a formula": [("worksheets/sheet1.xml", sheet(b"".join(b"<row>" + b'<c><f><row r="1"/></f><v>1</v></c>' * 40 + b"</row>" for _ in range(200))))],
    "a cell inside a formula": [("worksheets/sheet1.xml", sheet(TOP + b'<row r="6000"><c r="AX6000"><f><c r="A1"/></f><v>1</v></c></row>'))],
    "a cell inside a value": [("worksheets/sheet1.xml", sheet(TOP + b'<row r="6000"><c r="AX6000"><v>1<c r="A1"/></v></c></row>'))],
    # calamine opens "xl/" + Target as written: a reader that normalises it looks elsewhere
    "a target through ./": [("./s.bin", sheet(TOP + FAR))],
    "a target through ../": [("a/../s.bin", sheet(TOP + FAR))],
    "a target through //": [("a//s.bin", sheet(TOP + FAR))],
    "a target with an entity": [("s&amp;.bin", sheet(TOP + FAR))],
}


@pytest.mark.parametrize("case", sorted(BYPASSES))
def test_a_crafted_sheet_is_refused_before_calamine(tmp_path: Path, case: str) -> None:
    path = package(tmp_path / "crafted.xlsx", BYPASSES[case])
    assert calamine_grid(path) not in (None, (0, 0))  # calamine reads it, far cell included
    with pytest.raises(InputError):
        scan_package(path, path.name, check_zip(path, path.name, LIMITS), LIMITS).close()


def test_two_sheets_of_one_name_wait_for_every_part(tmp_path: Path) -> None:
    # calamine reads the first sheet named S; a map by name pointed at the second (the hostile
    # corpus runs this through the CLI under the memory cap: two_sheets_one_name)
    from exitcheck.registers.limits import _sheet_parts, sheet_members

    path = package(tmp_path / "twice.xlsx", [("worksheets/sheet1.xml", sheet(TOP + FAR)), ("worksheets/sheet2.xml", sheet(TOP))],
                   names=["S", "S"])
    with zipfile.ZipFile(path) as archive:
        assert _sheet_parts(archive, set(archive.namelist()), sheet_members(archive, set(archive.namelist()))) == {}
    with pytest.raises(InputError, match="6000 rows"):
        read_file(path, path.name, LIMITS)


def test_two_members_of_one_name_are_refused(tmp_path: Path) -> None:
    path = package(tmp_path / "twice.xlsx", [("worksheets/sheet1.xml", sheet(TOP))],
                   extra=(("xl/worksheets/sheet1.xml", sheet(TOP + FAR, before=b"<!--" + b"z" * 2000 + b"-->")),))
    with pytest.raises(InputError, match="two members"):
        check_zip(path, path.name, LIMITS)


def test_a_long_text_across_a_chunk_end_is_measured(tmp_path: Path) -> None:
    opening = b'<c r="A1" t="inlineStr"><is><t>'
    head = DECLARATION + ROOT + b"<sheetData><row r=\"1\">"
    filler = b"<!--" + b"x" * (CHUNK - 30_000 - len(head) - len(opening) - 7) + b"-->"
    text = base64.b64encode(os.urandom(300_000))[:300_000]
    path = package(tmp_path / "long.xlsx", [("worksheets/sheet1.xml", head + filler + opening + text + b"</t></is></c></row></sheetData></worksheet>")])
    with pytest.raises(InputError, match="max_cell_chars"):
        read_file(path, path.name, Limits())


def test_a_compression_method_zipfile_lacks_is_an_input_error(tmp_path: Path) -> None:
    path = workbook(tmp_path / "deflate64.xlsx", TOP)
    data = bytearray(path.read_bytes())
    name, at = b"xl/workbook.xml", 0
    while (at := data.find(name, at + 1)) > 0:  # method 9, Deflate64, in both headers
        if data[at - 30 : at - 26] == b"PK\x03\x04":
            struct.pack_into("<H", data, at - 22, 9)
        if data[at - 46 : at - 42] == b"PK\x01\x02":
            struct.pack_into("<H", data, at - 36, 9)
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="corrupt"):
        read_file(path, path.name, LIMITS)


def test_a_sheet_with_two_ids_waits_for_every_part(tmp_path: Path) -> None:
    # <sheet o:id="rId1" r:id="rId2">: calamine follows r:id, a map might follow the other
    path = package(tmp_path / "ids.xlsx", [("worksheets/sheet1.xml", sheet(TOP)), ("data.bin", sheet(TOP + FAR))], names=["S", "T"])
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["xl/workbook.xml"] = (members["xl/workbook.xml"].replace(b"<workbook ", b'<workbook xmlns:o="urn:x" ')
                                  .replace(b'<sheet name="T" sheetId="2" r:id="rId2"/>', b"")
                                  .replace(b'r:id="rId1"', b'o:id="rId1" r:id="rId2"'))
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    assert calamine_grid(path) == (6000, 50)
    from exitcheck.registers.limits import _sheet_parts, sheet_members

    with zipfile.ZipFile(path) as archive:
        assert _sheet_parts(archive, set(archive.namelist()), sheet_members(archive, set(archive.namelist()))) == {}  # no name map to trust
    with pytest.raises(InputError, match="6000 rows"):  # the part r:id leads to is scanned
        scan_package(path, path.name, check_zip(path, path.name, LIMITS), LIMITS).close()


@pytest.mark.parametrize("where", ["outside sheetData", "inside an element in sheetData"])
def test_the_exact_pass_holds_only_the_open_elements(tmp_path: Path, where: str) -> None:
    # The exact pass (value_extent) runs on a sheet over the quick bound; rows it kept once
    # measured (those not directly under sheetData) would fill memory on a crafted sheet.
    import tracemalloc

    from exitcheck.registers.limits import value_extent

    many = b'<row r="1"><c r="A1"><v>1</v></c></row>' * 60_000
    far = b'<row r="6000"><c r="AX6000"><v>1</v></c></row>'  # over LIMITS: the exact pass runs
    body = ROOT + (many + b"<sheetData>" + far + b"</sheetData>" if where == "outside sheetData"
                   else b"<sheetData><x>" + many + b"</x>" + far + b"</sheetData>") + b"</worksheet>"
    path = package(tmp_path / "book.xlsx", [("worksheets/sheet1.xml", DECLARATION + body)])
    with zipfile.ZipFile(path) as archive:
        tracemalloc.start()
        try:
            extent = value_extent(archive, "xl/worksheets/sheet1.xml")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert extent == (6000, 50)
    assert peak < 8 * 2**20  # 60,000 rows of kept elements took ~60 MiB


def test_a_sheet_nested_too_deep_for_the_exact_pass_is_refused(tmp_path: Path) -> None:
    # A cell not in the plain form sends the sheet to the exact pass, whose parser holds every
    # open element: millions of levels would fill memory before the first cell.
    deep = b"<x>" * 200 + b"</x>" * 200
    cell = b'<row r="1"><c t="n" r="A1"><v>1</v></c></row>'
    path = package(tmp_path / "book.xlsx", [("worksheets/sheet1.xml", sheet(deep + cell))])
    with pytest.raises(InputError, match="nests more than 64 levels deep") as refused:
        scan_package(path, path.name, check_zip(path, path.name, LIMITS), LIMITS)
    assert "sheet 'S'" in str(refused.value) and "工作表「S」" in str(refused.value)  # named
    assert "corrupt" not in str(refused.value)  # over a limit, not damaged: the clerk re-saves it
    shallow = package(tmp_path / "shallow.xlsx", [("worksheets/sheet1.xml", sheet(b"<x>" * 20 + b"</x>" * 20 + cell))])
    scan_package(shallow, shallow.name, check_zip(shallow, shallow.name, LIMITS), LIMITS)


def test_a_sheet_member_flagged_as_encrypted_is_an_encrypted_workbook(tmp_path: Path) -> None:
    # zipfile raises RuntimeError for a member with the encryption flag (in the background
    # scan of the sheets): the clerk is told the workbook has a password, not an internal error
    path = workbook(tmp_path / "book.xlsx", b'<row r="1"><c r="A1"><v>1</v></c></row>')
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")  # the central directory
    while at >= 0:
        length = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46: at + 46 + length]) == b"xl/worksheets/sheet1.xml":
            struct.pack_into("<H", data, at + 8, struct.unpack_from("<H", data, at + 8)[0] | 1)
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="password-protected"):
        read_file(path, path.name, Limits())
