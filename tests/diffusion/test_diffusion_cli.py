"""execute_DDPM_DDIM.py and execute_DPS.py end to end on a tiny local model, and their bad input.

The real command lines run in subprocesses (as students run them, from their own folder); the
other cases run in process with click's runner, which is much faster.
"""

import re
import signal
import subprocess
import sys
import time

import execute_DDPM_DDIM
import execute_DPS
import pytest
import torch
from click.testing import CliRunner
from diffusion_helpers import DIFFUSION_DIR, env, run_script
from PIL import Image

import utils.hub

DDPM_DDIM = str(DIFFUSION_DIR / "execute_DDPM_DDIM.py")
DPS = str(DIFFUSION_DIR / "execute_DPS.py")
TIMING = re.compile(r"in [\d.]+ s \([\d.]+ s per image\)")


def invoke(command, *args):
    return CliRunner().invoke(command, [str(arg) for arg in args])


def assert_clean_failure(output, exit_code, *phrases):
    """Exit status non-zero, a message, no traceback."""
    assert exit_code not in (0, None), output
    assert "Traceback" not in output, output
    for phrase in phrases:
        assert phrase in output, output


def image_sizes(folder):
    return {path.name: Image.open(path).size for path in sorted(folder.iterdir())}


@pytest.mark.slow
def test_ddpm_command_line_writes_the_handout_file_names(tmp_path, tiny_model):
    args = ["--scheduler_name", "DDPM", "--model_id", tiny_model, "--num_images", 3]
    result = run_script(
        DDPM_DDIM, *args, "--batch_size", 2, "--num_inference_steps", 20, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert TIMING.search(result.stdout), result.stdout
    expected = {f"DDPM_generated_image{i}.png": (16, 16) for i in range(3)}
    assert image_sizes(tmp_path / "DDPM_results") == expected  # the default output folder
    assert [p.name for p in tmp_path.iterdir()] == ["DDPM_results"], "no temporary folder left"


def test_ddim_defaults_to_50_steps_and_its_own_folder(tmp_path, tiny_model, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--scheduler_name", "DDIM", "--model_id", tiny_model, "--num_images", 2]
    result = invoke(execute_DDPM_DDIM.main, *args)
    assert result.exit_code == 0, result.output
    assert "50 steps" in result.output and TIMING.search(result.output), result.output
    expected = {f"DDIM_generated_image{i}.png": (16, 16) for i in range(2)}
    assert image_sizes(tmp_path / "DDIM_results") == expected


@pytest.mark.slow
def test_dps_command_line_writes_masked_inputs_results_and_grid(tmp_path, tiny_model):
    outdir = tmp_path / "dps"
    args = ["--model_id", tiny_model, "--num_inference_steps", 5, "--outdir", outdir]
    result = run_script(DPS, *args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert TIMING.search(result.stdout), result.stdout
    expected = {
        f"DPS_{kind}_image{i}.png": (16, 16)
        for kind in ("masked_input", "generated")
        for i in range(3)
    }
    expected["DPS_grid.png"] = (3 * 16, 3 * 16)  # rows: original | masked input | result
    assert image_sizes(outdir) == expected


def test_dps_takes_given_images_of_any_size(tmp_path, tiny_model):
    paths = []
    for i, size in enumerate([(40, 24), (20, 20)]):
        paths += ["--images", tmp_path / f"face{i}.jpg"]
        Image.new("RGB", size, (200, 120, 90)).save(paths[-1])
    args = [
        *paths,
        "--model_id",
        tiny_model,
        "--num_inference_steps",
        3,
        "--outdir",
        tmp_path / "o",
    ]
    result = invoke(execute_DPS.main, *args)
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "o").glob("DPS_generated_image*.png"))) == 2
    assert Image.open(tmp_path / "o" / "DPS_grid.png").size == (3 * 16, 2 * 16)


def test_unknown_scheduler_name_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(execute_DDPM_DDIM.main, "--scheduler_name", "PNDM")
    # The names are accepted in any case, and click may list them in lower case.
    assert_clean_failure(
        result.output.upper(), result.exit_code, "--SCHEDULER_NAME", "DDPM", "DDIM"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_missing_model_offline_gives_one_sentence(tmp_path):
    result = run_script(
        DDPM_DDIM, "--scheduler_name", "DDIM", cwd=tmp_path, HF_HOME=str(tmp_path / "empty")
    )
    output = result.stdout + result.stderr
    assert_clean_failure(output, result.returncode, "google/ddpm-celebahq-256", "HF_HOME")
    assert "hf download google/ddpm-celebahq-256" in output
    assert result.returncode == 1
    assert list(tmp_path.iterdir()) == [], "nothing written"


def test_dps_missing_model_offline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(utils.hub.constants, "is_offline_mode", lambda: True)
    result = invoke(execute_DPS.main, "--model_id", "nobody/no-such-model")
    assert_clean_failure(result.output, result.exit_code, "nobody/no-such-model", "hf download")
    assert result.exit_code == 1 and list(tmp_path.iterdir()) == []


def test_missing_local_model_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(execute_DDPM_DDIM.main, "--scheduler_name", "DDPM", "--model_id", "./nope")
    assert_clean_failure(result.output, result.exit_code, "./nope", "does not exist")


def test_unreadable_image_is_refused(tmp_path, tiny_model):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    outdir = tmp_path / "DPS_results"
    result = invoke(
        execute_DPS.main, "--model_id", tiny_model, "--images", broken, "--outdir", outdir
    )
    assert_clean_failure(result.output, result.exit_code, "cannot read image", "broken.png")
    assert not outdir.exists()


def test_missing_image_is_refused(tmp_path, tiny_model):
    result = invoke(execute_DPS.main, "--model_id", tiny_model, "--images", tmp_path / "no.png")
    assert_clean_failure(result.output, result.exit_code, "no.png", "does not exist")


def test_too_many_steps_is_refused(tmp_path, tiny_model):
    args = ["--scheduler_name", "DDIM", "--model_id", tiny_model, "--num_inference_steps", 1001]
    result = invoke(execute_DDPM_DDIM.main, *args, "--outdir", tmp_path / "o")
    assert_clean_failure(result.output, result.exit_code, "--num_inference_steps", "1000")
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_killed_run_leaves_the_old_results_and_no_complete_looking_folder(tmp_path, tiny_model):
    old = tmp_path / "DDPM_results"
    old.mkdir()
    (old / "DDPM_generated_image0.png").write_bytes(b"previous run")
    process = subprocess.Popen(
        [sys.executable, DDPM_DDIM, "--scheduler_name", "DDPM", "--model_id", tiny_model],
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = ""
    while "it/s" not in seen and process.poll() is None:  # wait until sampling has started
        seen += process.stdout.read(1)  # tqdm ends its updates with \r, not \n
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode != 0
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["DDPM_results"]
    assert (old / "DDPM_generated_image0.png").read_bytes() == b"previous run"
    assert all(".tmp-" in p.name for p in tmp_path.iterdir() if p.name.startswith("."))


def test_random_pixel_mask_removes_30_to_70_percent_of_each_image():
    masks = execute_DPS.random_pixel_mask((6, 3, 20, 30), torch.Generator().manual_seed(0))
    removed = 1 - masks[:, 0].mean(dim=(1, 2))
    assert ((removed >= 0.3 - 1e-3) & (removed <= 0.7 + 1e-3)).all(), removed
    assert len(set(removed.tolist())) > 1, "each image draws its own fraction"
    assert torch.equal(masks[:, 0], masks[:, 2]), "a pixel is removed in all channels"
    assert set(masks.unique().tolist()) == {0.0, 1.0}
