"""execute_DDPM_DDIM.py and execute_DPS.py end to end on a tiny local model, and their bad input.

The real command lines run in subprocesses (as students run them, from their own folder); the
other cases run in process with click's runner, which is much faster.
"""

import re
import shutil
import signal
import subprocess
import sys
import time

import execute_DDPM_DDIM
import execute_DPS
import pytest
import torch
from diffusion_helpers import (
    DDIM,
    DDPM,
    DIFFUSION_DIR,
    DPS_UPDATE,
    assert_clean_failure,
    env,
    invoke,
    run_script,
)
from PIL import Image

import utils.hub
from scheduler.DDIM_scheduler import DDIMScheduler
from tools import markers
from tools.demo.tiny_sd import build_tiny_sd
from tools.markers import starterize
from utils.cli import STARTER_MESSAGE_RE, todo_errors
from utils.io import MARKER

DDPM_DDIM = str(DIFFUSION_DIR / "execute_DDPM_DDIM.py")
DPS = str(DIFFUSION_DIR / "execute_DPS.py")
TIMING = re.compile(r"in [\d.]+ s \([\d.]+ s per image\)")


def image_sizes(folder):
    """Sizes of the images in folder; fails on any other file but the results marker."""
    files = sorted(p for p in folder.iterdir() if p.name != MARKER)
    return {path.name: Image.open(path).size for path in files}


@pytest.mark.slow
@pytest.mark.needs(*DDPM)
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


@pytest.mark.needs(*DDIM)
def test_ddim_defaults_to_50_steps_and_its_own_folder(tmp_path, tiny_model, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--scheduler_name", "DDIM", "--model_id", tiny_model, "--num_images", 2]
    result = invoke(execute_DDPM_DDIM.main, *args)
    assert result.exit_code == 0, result.output
    assert "50 steps" in result.output and TIMING.search(result.output), result.output
    expected = {f"DDIM_generated_image{i}.png": (16, 16) for i in range(2)}
    assert image_sizes(tmp_path / "DDIM_results") == expected


@pytest.mark.slow
@pytest.mark.needs(*DDIM, DPS_UPDATE)
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


@pytest.mark.needs(*DDIM, DPS_UPDATE)
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
    args = ["--model_id", tiny_model, "--num_inference_steps", 1001, "--outdir", tmp_path / "d"]
    result = invoke(execute_DPS.main, *args)
    assert_clean_failure(result.output, result.exit_code, "--num_inference_steps", "1000")
    assert result.exit_code == 2 and not (tmp_path / "d").exists()


@pytest.mark.slow
@pytest.mark.needs(*DDPM)
def test_a_killed_run_keeps_the_old_results_and_the_next_run_cleans_up(tmp_path, tiny_model):
    old = tmp_path / "DDPM_results"
    old.mkdir()
    (old / MARKER).write_text("execute_DDPM_DDIM.py --scheduler_name DDPM\n")
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
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers and all(name.startswith(".DDPM_results.tmp-") for name in leftovers)

    args = ["--model_id", tiny_model, "--num_images", 1, "--num_inference_steps", 2]
    result = run_script(DDPM_DDIM, "--scheduler_name", "DDPM", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["DDPM_results"], "the leftover is removed"
    assert image_sizes(old) == {"DDPM_generated_image0.png": (16, 16)}


def test_random_pixel_mask_removes_30_to_70_percent_of_each_image():
    masks = execute_DPS.random_pixel_mask((6, 3, 20, 30), torch.Generator().manual_seed(0))
    removed = 1 - masks[:, 0].mean(dim=(1, 2))
    assert ((removed >= 0.3 - 1e-3) & (removed <= 0.7 + 1e-3)).all(), removed
    assert len(set(removed.tolist())) > 1, "each image draws its own fraction"
    assert torch.equal(masks[:, 0], masks[:, 2]), "a pixel is removed in all channels"
    assert set(masks.unique().tolist()) == {0.0, 1.0}


def broken_copy(tiny_model, tmp_path, damage):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    damage(folder)
    return folder


def garbage_weights(folder):
    (folder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"\0" * 64)


def truncated_weights(folder):
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:4096])


def bad_scheduler_json(folder):
    (folder / "scheduler" / "scheduler_config.json").write_text('{"beta_start": 0.0001,')


@pytest.mark.parametrize(
    "damage, message",
    [
        (garbage_weights, "Cannot load the UNet from"),
        (truncated_weights, "Cannot load the UNet from"),
        (bad_scheduler_json, "Cannot load the scheduler config from"),
    ],
)
def test_a_damaged_model_is_one_sentence(tmp_path, tiny_model, damage, message):
    model = broken_copy(tiny_model, tmp_path, damage)
    outdir = tmp_path / "DDPM_results"
    result = invoke(
        execute_DDPM_DDIM.main, "--scheduler_name", "DDPM", "--model_id", model, "--outdir", outdir
    )
    assert result.exit_code == 1
    assert_clean_failure(result.output, result.exit_code, message, "download it again")
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not outdir.exists() and not list(tmp_path.glob(".DDPM_results*"))


def test_a_stable_diffusion_folder_is_not_a_ddpm_model(tmp_path):
    model = build_tiny_sd(tmp_path / "tiny-sd")
    for command, args in [(execute_DDPM_DDIM.main, ["--scheduler_name", "DDIM"]),
                          (execute_DPS.main, [])]:  # fmt: skip
        result = invoke(command, *args, "--model_id", model, "--outdir", tmp_path / "out")
        assert result.exit_code == 1
        assert_clean_failure(result.output, 1, "is a text-to-image model", "UNet2DModel")
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-sd"]


@pytest.mark.parametrize("assets", ["missing", "empty"])
def test_dps_without_the_handout_images_is_one_sentence(tmp_path, monkeypatch, tiny_model, assets):
    folder = tmp_path / "__asset__"
    if assets == "empty":
        folder.mkdir()
        (folder / "SOURCES.md").write_text("sources")
    monkeypatch.setattr(execute_DPS, "ASSETS", folder)
    outdir = tmp_path / "DPS_results"
    result = invoke(execute_DPS.main, "--model_id", tiny_model, "--outdir", outdir)
    expected = "is missing" if assets == "missing" else "holds no PNG or JPEG image"
    assert result.exit_code == 1
    assert_clean_failure(result.output, 1, str(folder), expected, "--images")
    assert not outdir.exists()


def unfilled(todo):
    def step(*args, **kwargs):
        raise NotImplementedError(todo)

    return step


@pytest.mark.slow
def test_an_unfilled_todo_of_the_starter_is_one_line(tmp_path, tiny_model):
    homework = tmp_path / "Diffusion_homework"
    shutil.copytree(DIFFUSION_DIR, homework, ignore=shutil.ignore_patterns("__pycache__"))
    relpath = "Diffusion_homework/scheduler/DDPM_scheduler.py"
    scheduler = homework / "scheduler" / "DDPM_scheduler.py"
    scheduler.write_text(starterize(scheduler.read_text(), relpath))
    args = ["--model_id", tiny_model, "--num_images", 1, "--num_inference_steps", 2]
    result = run_script("execute_DDPM_DDIM.py", "--scheduler_name", "DDPM", *args, cwd=homework)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"Error: TODO #1 in {relpath} is not implemented yet: fill it in (see the handout) and "
        "run again."
    )
    assert not list(homework.glob("*DDPM_results*")) and not list(homework.glob(".DDPM*"))


@pytest.mark.parametrize(
    "command, args, todo",
    [
        (execute_DDPM_DDIM.main, ["--scheduler_name", "DDIM"], "TODO #1 in %s"),
        (execute_DPS.main, [], "TODO #3 in %s"),
    ],
)
def test_an_unfilled_ddim_todo_is_one_line(tmp_path, monkeypatch, tiny_model, command, args, todo):
    todo %= "Diffusion_homework/scheduler/DDIM_scheduler.py"
    monkeypatch.setattr(DDIMScheduler, "step", unfilled(todo))
    outdir = tmp_path / "out"
    result = invoke(command, *args, "--model_id", tiny_model, "--outdir", outdir)
    assert result.exit_code == 1
    assert_clean_failure(result.output, 1, f"Error: {todo} is not implemented yet")
    assert list(tmp_path.iterdir()) == []


def test_the_unfilled_todo_is_recognized_as_tools_markers_writes_it():
    assert STARTER_MESSAGE_RE.pattern == markers.STARTER_MESSAGE_RE.pattern


def test_other_not_implemented_errors_keep_their_traceback():
    with pytest.raises(NotImplementedError, match="float64 on MPS"), todo_errors():
        raise NotImplementedError("float64 on MPS")


@pytest.mark.parametrize(
    "command, args",
    [(execute_DDPM_DDIM.main, ["--scheduler_name", "DDIM"]), (execute_DPS.main, [])],
)
def test_dtype_has_one_vocabulary(command, args, tmp_path):
    help_text = invoke(command, "--help").output
    assert "[auto|fp32|fp16|bf16]" in help_text and "float16" not in help_text
    result = invoke(command, *args, "--dtype", "half", "--outdir", tmp_path / "out")
    assert result.exit_code == 2 and "'half' is not one of" in result.output
