"""The submission packer (tools/submit.py) on a made-up student checkout."""

import os
import zipfile

from tool_helpers import run_tool


def write(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def student_checkout(root, gan_runs=True, diffusion=True):
    write(root / "GAN_homework/train.py", "print('train')\n")
    write(root / "GAN_homework/training/loss.py", "loss = 1\n")
    write(root / "GAN_homework/training/__pycache__/loss.cpython-311.pyc")
    write(root / "GAN_homework/many_shot_dog/0.png")
    write(root / "GAN_homework/many_shot_dog/helper.py", "x = 1\n")
    write(root / "GAN_homework/checkpoint/part1-10K.pkl")
    write(root / "GAN_homework/answers.md", "Task 2: ...\n")
    if gan_runs:
        flags = [("False", "False"), ("True", "False")]  # part 3 not run yet
        for i, (r1, aug) in enumerate(flags):
            run = root / f"GAN_homework/training-runs/0000{i}-many_shot_dog-low_shot"
            write(run / "log.txt", f"use_r1_regularization={r1} use_diffaug={aug}\nmore\n")
            write(run / "fakes000100iter_trained.png")
            write(run / "fakes004500iter_trained.png")
            write(run / "fakes000900iter_trained.png")
            write(run / "reals.png")
            write(run / "network-snapshot-004500.pkl")
    write(root / "Diffusion_homework/scheduler/DDPM_scheduler.py", "x = 1\n")
    if diffusion:
        for i in range(10):
            write(root / f"Diffusion_homework/DDPM_results/DDPM_generated_image{i}.png")
        for i in range(3):
            write(root / f"Diffusion_homework/DPS_results/DPS_generated_image{i}.png")
            write(root / f"Diffusion_homework/DPS_results/DPS_masked_input_image{i}.png")
        for store in ("SDS_results", "SDS_results_cfg100", "VSD_results"):
            write(root / f"Diffusion_homework/{store}/generated_progressive.png")
            write(root / f"Diffusion_homework/{store}/generated_image.png")
            write(root / f"Diffusion_homework/{store}/lora.safetensors")
    write(root / "Diffusion_homework/model/unet.bin")
    return root


def test_zip_has_code_images_answers_and_nothing_heavy(tmp_path):
    root = student_checkout(tmp_path / "repo")
    result = run_tool("submit", cwd=root / "GAN_homework")  # run from a homework folder
    assert result.returncode == 0, result.stderr
    out = root / "HW5_submission.zip"
    names = set(zipfile.ZipFile(out).namelist())
    run0 = "GAN_homework/training-runs/00000-many_shot_dog-low_shot"
    expected = {
        "GAN_homework/train.py",
        "GAN_homework/training/loss.py",
        "GAN_homework/answers.md",
        f"{run0}/fakes004500iter_trained.png",
        f"{run0}/log.txt",
        "Diffusion_homework/scheduler/DDPM_scheduler.py",
        "Diffusion_homework/DDPM_results/DDPM_generated_image9.png",
        "Diffusion_homework/DPS_results/DPS_masked_input_image2.png",
        "Diffusion_homework/SDS_results_cfg100/generated_progressive.png",
        "Diffusion_homework/VSD_results/generated_image.png",
    }
    assert expected <= names, expected - names
    for name in names:
        assert not name.endswith((".pkl", ".pyc", ".bin", ".safetensors")), name
        assert "many_shot_dog/" not in name and "checkpoint/" not in name
        assert "fakes000100" not in name and "reals.png" not in name
    assert "GAN_homework/training/loss.py" in result.stdout
    # what is missing is named, the zip is still written
    assert "warning: Diffusion_homework/DDIM_results/ has 0 PNG images" in result.stdout
    assert "part 3 (R1 + DiffAug)" in result.stdout
    assert "Diffusion_homework/answers.md" in result.stdout


def test_missing_images_are_warnings(tmp_path):
    root = student_checkout(tmp_path / "repo", gan_runs=False, diffusion=False)
    out = tmp_path / "mine.zip"
    result = run_tool("submit", "--out", out, cwd=root)
    assert result.returncode == 0, result.stderr
    assert out.exists()
    for words in (
        "No GAN sample grid",
        "DDPM_results/ has 0",
        "DPS_results/ has 0",
        "0 SDS",
        "0 VSD",
    ):
        assert words in result.stdout, words


def test_refuses_ten_megabytes_and_lists_the_largest_items(tmp_path):
    root = student_checkout(tmp_path / "repo")
    write(
        root / "Diffusion_homework/DDIM_results/DDIM_generated_image0.png", os.urandom(11_000_000)
    )
    result = run_tool("submit", cwd=root)
    assert result.returncode != 0
    assert "over the 10 MB limit" in result.stderr and "DDIM_generated_image0.png" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (root / "HW5_submission.zip").exists()
    assert [p.name for p in root.iterdir() if p.suffix in (".zip", ".part")] == []


def test_outside_a_checkout_is_one_sentence(tmp_path):
    result = run_tool("submit", cwd=tmp_path)
    assert result.returncode != 0 and "No GAN_homework/ or Diffusion_homework/" in result.stderr
