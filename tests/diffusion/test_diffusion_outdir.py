"""The output folders of execute_DDPM_DDIM.py, execute_DPS.py and execute_SDS_VSD.py.

A mistyped --outdir / --store_dir must never cost anyone a file: a folder that holds anything but
this command's own earlier results is refused with one sentence before the model is even loaded,
and a folder that cannot be written is found out before hours of sampling, not after.
"""

import errno
import shutil

import execute_DDPM_DDIM
import execute_DPS
import execute_SDS_VSD
import pytest
from diffusion_helpers import DDIM, DIFFUSION_DIR, DPS_UPDATE, assert_clean_failure, invoke, tree
from PIL import Image

from utils import io
from utils.io import MARKER

# (command, its arguments before the output folder flag, the flag)
COMMANDS = {
    "DDPM": (execute_DDPM_DDIM.main, ["--scheduler_name", "DDPM"], "--outdir"),
    "DPS": (execute_DPS.main, [], "--outdir"),
    "SDS": (execute_SDS_VSD.main, ["--generation_mode=sds"], "--store_dir"),
}


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a script gets as far as looking for its model."""

    def started(*args, **kwargs):
        raise AssertionError("the work started before the output folder was checked")

    monkeypatch.setattr(execute_DDPM_DDIM, "load_unet_and_scheduler", started)
    monkeypatch.setattr(execute_DPS, "load_unet_and_scheduler", started)
    monkeypatch.setattr(execute_SDS_VSD, "resolve_model", started)


def run(name, outdir, *extra):
    command, args, flag = COMMANDS[name]
    return invoke(command, *args, flag, outdir, *extra)


def assert_refused(result, *phrases):
    """Refused as a bad option value (exit 2), in one sentence."""
    assert result.exit_code == 2, result.output
    assert_clean_failure(result.output, result.exit_code, "nothing was changed", *phrases)


def someones_folder(folder):
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "main.py").write_text("print('mine')")
    (folder / "thesis.tex").write_text("\\chapter{One}")
    return folder


@pytest.mark.parametrize("name", COMMANDS)
def test_a_folder_with_someones_files_is_refused_before_any_work(tmp_path, no_work, name):
    folder = someones_folder(tmp_path / "thesis")
    before = tree(tmp_path)
    result = run(name, folder)
    assert_refused(result, str(folder), "did not write (src, thesis.tex)")
    assert tree(tmp_path) == before


def fake_repository(root):
    """A checkout: .git, a README and the homework folder with its scheduler files."""
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "README.md").write_text("# HW5\n")
    shutil.copytree(DIFFUSION_DIR / "scheduler", root / "Diffusion_homework" / "scheduler")
    return root


@pytest.mark.parametrize("name", COMMANDS)
def test_the_repository_root_is_refused(tmp_path, monkeypatch, no_work, name):
    repo = fake_repository(tmp_path / "repo")
    before = tree(tmp_path)
    monkeypatch.chdir(repo / "Diffusion_homework")
    assert_refused(run(name, ".."), "is the folder you run from (or holds it)")
    monkeypatch.chdir(tmp_path)
    assert_refused(run(name, repo), "did not write (.git, Diffusion_homework, README.md)")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("name", COMMANDS)
def test_the_current_folder_is_refused_even_when_empty(tmp_path, monkeypatch, no_work, name):
    monkeypatch.chdir(tmp_path)
    assert_refused(run(name, "."), "is the folder you run from")
    assert list(tmp_path.iterdir()) == []


def test_the_scheduler_folder_is_refused(tmp_path, monkeypatch, no_work):
    homework = tmp_path / "Diffusion_homework"
    shutil.copytree(DIFFUSION_DIR / "scheduler", homework / "scheduler")
    before = tree(tmp_path)
    monkeypatch.chdir(homework)
    assert_refused(run("DDPM", "scheduler"), "DDIM_scheduler.py, DDPM_scheduler.py")
    assert tree(tmp_path) == before


@pytest.mark.needs(*DDIM)
def test_a_rerun_replaces_its_own_earlier_results(tmp_path, tiny_model):
    outdir = tmp_path / "DDIM_results"
    common = ["--scheduler_name", "DDIM", "--model_id", tiny_model, "--num_inference_steps", 2]
    first = invoke(execute_DDPM_DDIM.main, *common, "--num_images", 3, "--outdir", outdir)
    assert first.exit_code == 0, first.output
    assert (outdir / MARKER).read_text().strip() == "execute_DDPM_DDIM.py --scheduler_name DDIM"
    again = invoke(execute_DDPM_DDIM.main, *common, "--num_images", 2, "--outdir", outdir)
    assert again.exit_code == 0, again.output
    assert "holds earlier results: they are replaced at the end" in again.output
    assert sorted(p.name for p in outdir.iterdir()) == [
        MARKER, "DDIM_generated_image0.png", "DDIM_generated_image1.png"
    ]  # fmt: skip
    assert [p.name for p in tmp_path.iterdir()] == ["DDIM_results"]


def test_results_of_the_other_scheduler_are_not_replaced(tmp_path, tiny_model, no_work):
    outdir = tmp_path / "DDIM_results"
    outdir.mkdir()
    (outdir / MARKER).write_text("execute_DDPM_DDIM.py --scheduler_name DDIM\n")
    (outdir / "DDIM_generated_image0.png").write_bytes(b"a face")
    before = tree(tmp_path)
    result = run("DDPM", outdir, "--model_id", tiny_model)
    assert_refused(result, "holds the results of `execute_DDPM_DDIM.py --scheduler_name DDIM`")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("name", COMMANDS)
def test_a_folder_that_cannot_be_written_is_found_before_the_work(
    tmp_path, monkeypatch, no_work, name
):
    def read_only(dir, prefix):
        raise PermissionError(errno.EACCES, "Permission denied", dir)

    monkeypatch.setattr(io.tempfile, "mkdtemp", read_only)
    result = run(name, tmp_path / "results")
    assert_refused(result, "cannot be written (Permission denied")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.needs(*DDIM)
def test_a_write_that_fails_after_sampling_is_one_sentence(tmp_path, monkeypatch, tiny_model):
    outdir = tmp_path / "DDIM_results"
    common = ["--scheduler_name", "DDIM", "--model_id", tiny_model, "--num_inference_steps", 2]
    assert invoke(execute_DDPM_DDIM.main, *common, "--outdir", outdir).exit_code == 0
    before = tree(tmp_path)

    def disk_full(image, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(execute_DDPM_DDIM, "save_image", disk_full)
    result = invoke(execute_DDPM_DDIM.main, *common, "--outdir", outdir)
    assert result.exit_code == 1
    assert_clean_failure(result.output, 1, "Could not write the results into", "No space left")
    assert tree(tmp_path) == before, "the earlier results stay, no temporary folder is left"


@pytest.mark.needs(*DDIM, DPS_UPDATE)
def test_dps_writes_a_marker_beside_its_images(tmp_path, tiny_model):
    outdir = tmp_path / "DPS_results"
    args = ["--model_id", tiny_model, "--num_inference_steps", 2, "--outdir", outdir]
    result = invoke(execute_DPS.main, *args)
    assert result.exit_code == 0, result.output
    assert (outdir / MARKER).read_text().strip() == "execute_DPS.py"
    assert Image.open(outdir / "DPS_grid.png").size == (3 * 16, 3 * 16)
    again = invoke(execute_DPS.main, *args)
    assert again.exit_code == 0, again.output
