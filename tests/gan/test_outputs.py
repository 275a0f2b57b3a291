"""outputs.atomic_write, the one way the GAN code writes a file: whole or not at all; and
outputs.ResultsFolder, the one way it fills an output folder."""

import errno
import os
import stat

import click
import outputs
import pytest
from outputs import MARKER, ResultsFolder, atomic_write


def test_a_write_lands_whole_and_readable(tmp_path):
    target = tmp_path / "grid.png"
    atomic_write(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert os.listdir(tmp_path) == ["grid.png"]


@pytest.mark.parametrize("existing", [None, b"old"])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path, existing):
    target = tmp_path / "checkpoint-000008.pt"
    if existing is not None:
        target.write_bytes(existing)

    def half_then_fail(f):
        f.write(b"half a file")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, half_then_fail)
    assert (target.read_bytes() if target.exists() else None) == existing
    assert sorted(os.listdir(tmp_path)) == ([target.name] if existing else [])


def test_an_interrupt_also_removes_the_temporary_file(tmp_path):
    def interrupted(f):
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "log.png", interrupted)
    assert os.listdir(tmp_path) == []


# outputs.ResultsFolder (a copy of Diffusion_homework/utils/io.py's): dataset_download.py's --out.
# The refusals are the Diffusion homework's, word for word.
OWNER = "dataset_download.py"


def test_a_file_given_as_the_folder_is_refused_and_kept(tmp_path):
    (tmp_path / "dogs").write_text("notes")
    with (
        pytest.raises(click.BadParameter) as error,
        ResultsFolder(tmp_path / "dogs", OWNER, "--out"),
    ):
        pytest.fail("the block must not run")
    assert error.value.format_message() == (
        f"Invalid value for --out: {tmp_path / 'dogs'} is a file; nothing was changed: "
        "choose a new folder name."
    )
    assert sorted(os.listdir(tmp_path)) == ["dogs"] and (tmp_path / "dogs").read_text() == "notes"


def test_read_only_earlier_results_are_refused_and_kept(tmp_path, monkeypatch):
    out = tmp_path / "dogs"
    with ResultsFolder(out, OWNER, "--out") as tmp:
        (tmp / "0.png").write_bytes(b"old")
    out.chmod(0o555)
    if os.geteuid() == 0:  # root may write anywhere: read-only as seen by anyone else
        access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: p != out and access(p, mode))
    try:
        with pytest.raises(click.BadParameter, match="holds earlier results that are read-only"):
            with ResultsFolder(out, OWNER, "--out"):
                pytest.fail("the block must not run")
        assert sorted(os.listdir(out)) == [MARKER, "0.png"]
        assert os.listdir(tmp_path) == ["dogs"]
    finally:
        out.chmod(0o755)


@pytest.mark.parametrize("when", ["on entering", "during the run"])
def test_a_failure_removes_the_parent_folders_it_made(tmp_path, monkeypatch, when):
    if when == "on entering":

        def read_only(dir, prefix):
            raise PermissionError(errno.EACCES, "Permission denied", dir)

        monkeypatch.setattr(outputs.tempfile, "mkdtemp", read_only)
    with pytest.raises((click.BadParameter, RuntimeError)) as error:
        with ResultsFolder(tmp_path / "data" / "dogs", OWNER, "--out"):
            raise RuntimeError("killed")
    assert (when == "on entering") == isinstance(error.value, click.BadParameter)
    assert os.listdir(tmp_path) == []


def test_files_added_during_the_run_keep_the_folder_and_the_new_results(tmp_path):
    out = tmp_path / "dogs"
    with pytest.raises(click.ClickException, match="received other files") as error:
        with ResultsFolder(out, OWNER, "--out") as tmp:
            (tmp / "0.png").write_bytes(b"new")
            out.mkdir()
            (out / "holiday.png").write_bytes(b"mine")
    assert os.listdir(out) == ["holiday.png"]
    kept = [p for p in tmp_path.iterdir() if p.name.startswith(".dogs.tmp-")]
    assert len(kept) == 1 and (kept[0] / "0.png").read_bytes() == b"new"
    assert str(kept[0]) in error.value.format_message()
