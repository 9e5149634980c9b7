"""Crash-safe output: atomic writes, write faults as one OutputError line, streamed CSV rows."""

import errno

import pytest

from behavior.io import files
from behavior.io.files import CsvStream, OutputError


def test_os_errors_become_one_line_naming_the_path_and_the_cause():
    full = OSError(errno.ENOSPC, "No space left on device", "/data/x.jpg")
    assert files.os_error_text(full) == "cannot write /data/x.jpg: no space left on device (disk full)"
    read_only = OSError(errno.EROFS, "Read-only file system")
    assert files.os_error_text(read_only, "out") == "cannot write out: read-only file system"
    with pytest.raises(OutputError, match="cannot write out/a.json: permission denied"):
        with files.writing("out/a.json"):
            raise PermissionError(errno.EACCES, "Permission denied")


def test_atomic_write_failures_are_output_errors(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OutputError, match=r"cannot write .*file/x.json"):
        files.write_json(tmp_path / "file" / "x.json", {"a": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["file"]  # no temporary file left behind


def test_ensure_writable_creates_the_folder_and_leaves_nothing(tmp_path):
    folder = files.ensure_writable(tmp_path / "a" / "b")
    assert folder.is_dir() and list(folder.iterdir()) == []
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(OutputError, match="blocker"):
        files.ensure_writable(tmp_path / "blocker" / "c")


def test_foreign_entries_ignore_our_files_and_hidden_work_files(tmp_path):
    for name in ("summary.json", ".partial", "notes.txt"):
        (tmp_path / name).write_text("x")
    assert files.foreign_entries(tmp_path, {"summary.json"}) == ["notes.txt"]
    assert files.foreign_entries(tmp_path / "missing", set()) == []


def test_csv_stream_writes_rows_as_they_come(tmp_path):
    path = tmp_path / "rows.csv"
    with CsvStream(path, ["frame", "x"]) as out:
        for i in range(20_000):
            out.write([[i, f"{i * 0.5:.1f}"]])
    lines = path.read_text().splitlines()
    assert lines[0] == "frame,x" and len(lines) == 20_001 and lines[-1] == "19999,9999.5"
    assert out.rows == 20_000


def test_csv_stream_reports_a_write_error(tmp_path):
    out = CsvStream(tmp_path / "rows.csv", ["a"])

    def disk_full(rows):
        raise OSError(errno.ENOSPC, "No space left on device")

    out._writer = type("Full", (), {"writerows": staticmethod(disk_full)})()
    out.write([[1]])
    with pytest.raises(OutputError, match=r"rows.csv: no space left on device \(disk full\)"):
        out.close()
