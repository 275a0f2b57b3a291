"""tools.files: output files and folders written under a temporary name, then renamed."""

import os
import stat

import pytest

from tools.files import atomic_file, atomic_folder, write_atomic


@pytest.mark.parametrize("old", [None, b"old"])
def test_atomic_file_failure_keeps_the_target_and_leaves_no_temporary_file(tmp_path, old):
    target = tmp_path / "results.json"
    if old is not None:
        target.write_bytes(old)
    with pytest.raises(RuntimeError, match="killed"), atomic_file(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_bytes(b"half a file")
        raise RuntimeError("killed")
    if old is None:
        assert not target.exists()
    else:
        assert target.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ([] if old is None else ["results.json"])


def test_atomic_file_success_replaces_the_target_readable_by_all(tmp_path):
    target = tmp_path / "new" / "report.html"
    with atomic_file(target) as tmp:
        tmp.write_text("<p>new</p>")
        assert not target.exists(), "the target appears only at the end"
    assert target.read_text() == "<p>new</p>"
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


def test_atomic_file_names_are_fresh_and_never_a_planted_file(tmp_path):
    target = tmp_path / "out.zip"
    planted = tmp_path / ".out.zip.tmp"
    planted.write_text("someone else's")
    with atomic_file(target) as first, atomic_file(target) as second:
        assert first != second and planted not in (first, second)
        first.write_text("first")
        second.write_text("second")
    assert target.read_text() == "first", "the outer block renames last"
    assert planted.read_text() == "someone else's"


def test_write_atomic_replaces_an_owner_only_file(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    target.chmod(0o600)
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new" and target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


@pytest.mark.parametrize("old", ["absent", "empty"])
def test_atomic_folder_failure_leaves_the_target_as_it_was(tmp_path, old):
    target = tmp_path / "starter"
    if old == "empty":
        target.mkdir()
    with pytest.raises(RuntimeError, match="killed"), atomic_folder(target) as tmp:
        (tmp / "half.py").write_text("x = 1\n")
        raise RuntimeError("killed")
    assert [p.name for p in tmp_path.iterdir()] == ([] if old == "absent" else ["starter"])
    assert old == "absent" or list(target.iterdir()) == []


def test_atomic_folder_success_publishes_the_folder_readable_by_all(tmp_path):
    target = tmp_path / "out" / "starter"
    with atomic_folder(target) as tmp:
        (tmp / "a.py").write_text("x = 1\n")
        assert not target.exists(), "the folder appears only at the end"
    assert (target / "a.py").read_text() == "x = 1\n"
    assert target.stat().st_mode & 0o777 == 0o755
    assert [p.name for p in target.parent.iterdir()] == ["starter"]


def test_atomic_file_syncs_the_file_and_then_its_folder(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with atomic_file(tmp_path / "grid.png") as tmp:
        assert tmp.name.startswith(".grid.png.tmp-") and tmp.suffix == ".png", "same suffix"
        tmp.write_bytes(b"png")
    assert synced == ([False, True] if os.name == "posix" else [False])
