"""A command's own output paths given wrong (--out on a file, a sample's folder that does not
exist): the clerk's mistake to fix, so exit 74 with the path and how, never "internal error"."""

from __future__ import annotations

import pytest

from builders import AS_OF, base_county


def _plain_failure(result, code: int = 74) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert "内部错误" not in result.stderr and "internal error" not in result.stderr
    return result.stderr


@pytest.mark.parametrize("command", ["audit", "validate", "bands"])
def test_out_naming_a_file_is_exit_74_saying_to_give_out_a_folder(tmp_path, run_cli, command):
    registers = base_county().write(tmp_path / "registers.xlsx")
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    zh = _plain_failure(run_cli(command, str(registers), "--out", str(afile), "--as-of", AS_OF.isoformat()))
    assert f"输出目录 {afile} 无法成为目录: {afile} 是一个文件" in zh and "请用 --out 指定一个目录" in zh
    under = afile / "sub"
    en = _plain_failure(run_cli(command, str(registers), "--out", str(under), "--as-of", AS_OF.isoformat(), "--lang", "en"))
    assert f"the output folder {under} cannot be a folder" in en and f"{afile} is a file" in en and "give --out a folder" in en
    assert afile.read_text() == "not a folder"


def test_out_that_fails_while_writing_is_exit_74_naming_the_file_in_the_way(tmp_path, run_cli):
    """The check before the audit cannot see everything: a `townships` file in the output
    folder stops only the writing of the township books."""
    registers = base_county().write(tmp_path / "registers.xlsx")
    out = tmp_path / "out"
    out.mkdir()
    (out / "townships").write_text("")
    stderr = _plain_failure(run_cli("audit", str(registers), "--out", str(out), "--split-by", "township",
                                    "--as-of", AS_OF.isoformat()))
    assert f"{out / 'townships'} 是一个文件" in stderr and "--out" in stderr


def test_an_unreadable_input_still_leaves_no_output_folder(tmp_path, run_cli):
    """The check of --out makes nothing: exit 3 for the input, and no folder behind."""
    done = run_cli("audit", str(tmp_path / "nope.xlsx"), "--out", str(tmp_path / "out"))
    assert done.returncode == 3 and not (tmp_path / "out").exists()


def test_sample_into_a_folder_that_does_not_exist_says_which_and_how(tmp_path, run_cli):
    target = tmp_path / "no" / "such" / "x.xlsx"
    zh = _plain_failure(run_cli("sample", str(target), "--households", "5"))
    assert f"无法写入样例登记表 {target}: 目录 {target.parent} 不存在" in zh and f"mkdir -p {target.parent}" in zh
    en = _plain_failure(run_cli("sample", str(target), "--households", "5", "--lang", "en"))
    assert f"the folder {target.parent} does not exist; create it first (mkdir -p {target.parent})" in en
    assert not (tmp_path / "no").exists()


def test_sample_onto_a_folder_or_under_a_file_is_exit_74(tmp_path, run_cli):
    folder = _plain_failure(run_cli("sample", str(tmp_path), "--households", "5"))
    assert f"{tmp_path} 是一个目录, 不是文件" in folder and str(tmp_path / "registers.xlsx") in folder
    afile = tmp_path / "afile"
    afile.write_text("")
    under = _plain_failure(run_cli("sample", str(afile / "x.xlsx"), "--households", "5", "--lang", "en"))
    assert f"{afile} is a file" in under


def test_init_on_a_file_is_exit_74(tmp_path, run_cli):
    afile = tmp_path / "afile"
    afile.write_text("")
    stderr = _plain_failure(run_cli("init", str(afile)))
    assert f"工作区目录 {afile} 无法成为目录" in stderr and "请给 exitcheck init 一个目录" in stderr


def test_a_folder_of_registers_that_is_also_the_out_folder_can_be_audited_again(tmp_path, run_cli):
    """The second audit of a folder that holds its first audit's outputs read gaps.xlsx as a
    register (its 户清单 looks like a 户表 lacking columns) and stopped with exit 3. A folder's
    outputs of exitcheck are left out, said so; a file named on the command line is read."""
    folder = tmp_path / "登记表"
    folder.mkdir()
    base_county().write(folder / "registers.xlsx")
    args = ("--out", str(folder), "--as-of", AS_OF.isoformat(), "--format", "xlsx,csv,json")
    first = run_cli("audit", str(folder), *args)
    assert first.returncode in (0, 1), first.stderr
    assert {"gaps.xlsx", "gaps.csv", "gaps_households.csv"} <= {p.name for p in folder.iterdir()}
    run_cli("validate", str(folder), "--out", str(folder))  # issues.xlsx too
    again = run_cli("audit", str(folder), *args)
    assert again.returncode == first.returncode, again.stderr
    assert f"{folder / 'gaps.xlsx'}: exitcheck 的输出文件, 未作为登记表读取" in again.stderr
    assert f"{folder / 'issues.xlsx'}: exitcheck 的输出文件" in again.stderr
    named = run_cli("validate", str(folder / "gaps.xlsx"), "--lang", "en")
    assert named.returncode == 3 and "an output of exitcheck" not in named.stderr  # read as asked, and refused


def test_township_books_an_earlier_audit_left_in_out_are_said_to_be_stale(tmp_path, run_cli):
    """An audit with --split-by township, then one without into the same folder: townships/
    still held the first run's books, which a clerk could hand out as the new ones."""
    registers = base_county().write(tmp_path / "registers.xlsx")
    out = tmp_path / "out"
    args = (str(registers), "--out", str(out), "--as-of", AS_OF.isoformat())
    split = run_cli("audit", *args, "--split-by", "township")
    assert "不是这次写的" not in split.stderr
    plain = run_cli("audit", *args)
    assert f"{out / 'townships'} 中有 2 个乡镇工作簿不是这次写的" in plain.stderr and "中所镇.xlsx" in plain.stderr
    assert "2 township book(s)" in run_cli("audit", *args, "--lang", "en").stderr
    assert "不是这次写的" not in run_cli("audit", *args, "--split-by", "township").stderr


def test_a_sample_register_is_written_whole_and_for_its_owner_only(tmp_path, run_cli):
    """A clerk copies the sample and fills it with real people: it is private like every output."""
    done = run_cli("sample", str(tmp_path / "registers.xlsx"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "registers.xlsx").stat().st_mode & 0o077 == 0
    assert [p.name for p in tmp_path.iterdir()] == ["registers.xlsx"]  # no temporary file left
    assert run_cli("init", str(tmp_path / "ws")).returncode == 0
    assert (tmp_path / "ws" / "data" / "registers.xlsx").stat().st_mode & 0o077 == 0
