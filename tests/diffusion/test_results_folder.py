"""utils.io.ResultsFolder: a command writes only into a folder it made, and never loses files.

A results folder is new, empty, or holds the marker of the same command; anything else is refused
before any work, with the folder left exactly as it was.
"""

import errno
import fcntl
import os

import click
import pytest
from diffusion_helpers import tree

from utils import io
from utils.io import MARKER, ResultsFolder

OWNER = "execute_DDPM_DDIM.py --scheduler_name DDPM"


def write_results(folder, text="new", owner=OWNER):
    with ResultsFolder(folder, owner) as tmp:
        (tmp / "image0.png").write_text(text)
    return folder


def someones_folder(folder):
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "main.py").write_text("print('mine')")
    (folder / "thesis.tex").write_text("\\chapter{One}")
    return folder


def test_a_new_folder_gets_the_results_and_a_marker(tmp_path):
    out = write_results(tmp_path / "sub" / "DDPM_results")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "image0.png"]
    assert (out / MARKER).read_text().strip() == OWNER
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["DDPM_results"], "nothing else left"


def test_own_earlier_results_are_replaced_only_when_the_run_succeeds(tmp_path, capsys):
    out = write_results(tmp_path / "out", "first")
    with pytest.raises(RuntimeError), ResultsFolder(out, OWNER) as tmp:
        (tmp / "image0.png").write_text("half")
        raise RuntimeError("killed")
    assert (out / "image0.png").read_text() == "first", "a failed run keeps the old results"
    with ResultsFolder(out, OWNER) as tmp:
        (tmp / "image1.png").write_text("second")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "image1.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert "replaced" in capsys.readouterr().err


def test_an_empty_folder_is_adopted(tmp_path):
    (tmp_path / "out").mkdir()
    write_results(tmp_path / "out")
    assert (tmp_path / "out" / "image0.png").read_text() == "new"


@pytest.mark.parametrize("name", ["thesis", "scheduler"])
def test_a_folder_with_other_files_is_refused_and_left_alone(tmp_path, name):
    folder = someones_folder(tmp_path / name)
    before = tree(tmp_path)
    with pytest.raises(click.BadParameter) as error, ResultsFolder(folder, OWNER):
        pytest.fail("the block must not run")
    message = error.value.format_message()
    assert "did not write (src, thesis.tex)" in message and "choose a new folder name" in message
    assert tree(tmp_path) == before


def test_results_of_another_command_are_refused(tmp_path):
    out = write_results(tmp_path / "DDPM_results")
    before = tree(tmp_path)
    other = "execute_DDPM_DDIM.py --scheduler_name DDIM"
    with (
        pytest.raises(click.BadParameter, match=f"results of `{OWNER}`"),
        ResultsFolder(out, other),
    ):
        pytest.fail("the block must not run")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("outdir", [".", "..", "/"])
def test_the_current_folder_and_those_above_it_are_refused(tmp_path, monkeypatch, outdir):
    here = tmp_path / "here"
    here.mkdir()  # empty: it would be "adopted" if it were not the current folder
    monkeypatch.chdir(here)
    with pytest.raises(click.BadParameter, match="the folder you run from"):
        with ResultsFolder(outdir, OWNER):
            pytest.fail("the block must not run")
    assert [p.name for p in tmp_path.iterdir()] == ["here"] and not list(here.iterdir())


def test_a_file_is_refused(tmp_path):
    (tmp_path / "out").write_text("notes")
    with (
        pytest.raises(click.BadParameter, match="is a file"),
        ResultsFolder(tmp_path / "out", OWNER),
    ):
        pytest.fail("the block must not run")
    assert (tmp_path / "out").read_text() == "notes"


def test_leftovers_of_killed_runs_are_removed_by_the_next_run(tmp_path):
    killed = tmp_path / ".out.tmp-killed"
    killed.mkdir()
    (killed / MARKER).write_text(OWNER)
    (killed / "image0.png").write_text("half")
    running = tmp_path / ".out.tmp-running"  # a run that is still going holds its lock
    running.mkdir()
    (running / MARKER).write_text(OWNER)
    not_ours = tmp_path / ".out.tmp-someone"  # our name pattern, but no marker: not ours
    not_ours.mkdir()
    with open(running / MARKER) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        write_results(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.tmp-running", ".out.tmp-someone",
                                                          "out"]  # fmt: skip


def test_a_folder_that_cannot_be_written_is_refused_before_the_work(tmp_path, monkeypatch):
    def read_only(dir, prefix):
        raise PermissionError(errno.EACCES, "Permission denied", dir)

    monkeypatch.setattr(io.tempfile, "mkdtemp", read_only)
    with pytest.raises(click.BadParameter, match="cannot be written .Permission denied"):
        with ResultsFolder(tmp_path / "new" / "out", OWNER):
            pytest.fail("the block must not run")
    assert list(tmp_path.iterdir()) == [], "the folders made for it are removed again"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_parent_is_refused(tmp_path):
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        with pytest.raises(click.BadParameter, match="cannot be written"):
            with ResultsFolder(parent / "out", OWNER):
                pytest.fail("the block must not run")
        assert list(parent.iterdir()) == []
    finally:
        parent.chmod(0o755)


def test_a_failed_write_is_one_sentence_and_keeps_the_old_results(tmp_path):
    out = write_results(tmp_path / "out", "first")
    with pytest.raises(click.ClickException, match="No space left on device") as error:
        with ResultsFolder(out, OWNER) as tmp:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp / "image0.png"))
    assert not isinstance(error.value, click.BadParameter)
    assert (out / "image0.png").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_files_added_during_the_run_keep_the_folder_and_the_new_results(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(click.ClickException, match="left alone") as error:
        with ResultsFolder(out, OWNER) as tmp:
            (tmp / "image0.png").write_text("new")
            someones_folder(out)
    assert (out / "thesis.tex").exists()
    kept = [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp-")]
    assert len(kept) == 1 and (kept[0] / "image0.png").read_text() == "new"
    assert str(kept[0]) in error.value.format_message()
    write_results(tmp_path / "elsewhere")
    assert kept[0].exists(), "the next run does not clean up results it was told about"
