"""Work-folder paths: uploads, listing and downloads never leave the folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kernel import list_files, read_file, resolve_in_workdir, save_upload
from kernel.errors import KernelError, WorkdirPathError


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    (tmp_path / "secret.txt").write_text("outside")
    return folder


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../secret.txt", "contains '..'"),
        ("sub/../../secret.txt", "contains '..'"),
        ("/etc/passwd", "absolute path"),
        ("~/x", "absolute path"),
        ("", "not a file name"),
        ("a\x00b", "not a file name"),
    ],
)
def test_bad_names_are_refused_with_a_clear_message(workdir: Path, name: str, message: str) -> None:
    with pytest.raises(WorkdirPathError, match=message):
        resolve_in_workdir(workdir, name)


def test_symlinks_pointing_outside_are_refused(workdir: Path) -> None:
    (workdir / "leak").symlink_to(workdir.parent / "secret.txt")
    (workdir / "etc").symlink_to("/etc")
    for name in ("leak", "etc/passwd"):
        with pytest.raises(WorkdirPathError, match="outside the work folder"):
            read_file(workdir, name)
    with pytest.raises(WorkdirPathError, match="outside the work folder"):
        save_upload(workdir, "leak", b"overwrite")
    assert (workdir.parent / "secret.txt").read_text() == "outside"


def test_symlinks_inside_are_followed(workdir: Path) -> None:
    (workdir / "real.txt").write_text("inside")
    (workdir / "alias.txt").symlink_to("real.txt")
    assert read_file(workdir, "alias.txt") == b"inside"
    assert resolve_in_workdir(workdir, "alias.txt") == (workdir / "real.txt").resolve()


def test_upload_list_and_read_round_trip(workdir: Path) -> None:
    path = save_upload(workdir, "data.csv", b"a,b\n1,2\n")
    assert path == (workdir / "data.csv").resolve()
    (workdir / "out").mkdir()
    (workdir / "out" / "plot.png").write_bytes(b"png")
    (workdir / "link").symlink_to("data.csv")
    files = list_files(workdir)
    assert [(f.name, f.size) for f in files] == [("data.csv", 8), ("out/plot.png", 3)]
    assert read_file(workdir, "out/plot.png") == b"png"
    save_upload(workdir, "data.csv", b"new")
    assert read_file(workdir, "data.csv") == b"new"


def test_missing_files_folders_and_fifos_are_refused_without_hanging(workdir: Path) -> None:
    os.mkfifo(workdir / "pipe")
    (workdir / "folder").mkdir()
    with pytest.raises(WorkdirPathError, match="not a regular file"):
        read_file(workdir, "pipe")
    with pytest.raises(WorkdirPathError, match="not a regular file"):
        read_file(workdir, "folder")
    with pytest.raises(WorkdirPathError, match="does not exist"):
        read_file(workdir, "nothing.txt")


def test_read_refuses_files_over_the_limit(workdir: Path) -> None:
    (workdir / "big").write_bytes(b"x" * 100)
    with pytest.raises(KernelError, match="over the 10-byte download limit"):
        read_file(workdir, "big", max_bytes=10)


def test_list_files_stops_at_the_cap(workdir: Path) -> None:
    for i in range(30):
        (workdir / f"f{i:02}").write_text("x")
    assert len(list_files(workdir, max_files=10)) == 10
