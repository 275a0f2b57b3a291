"""The submission packer (tools/submit.py) on a made-up student checkout."""

import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, PngImagePlugin
from tool_helpers import REPO, run_tool

from tools import markers, todos
from tools.submit import required_tasks

RUNS = "GAN_homework/training-runs"
FILLED = "x = 1"


def write(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def todo_file(bodies: dict[int, str]) -> str:
    """A module whose TODO blocks (marker lines as in the course files) hold the given bodies."""
    lines = ["def step():"]
    for number, body in bodies.items():
        lines += [
            f"    # TODO #{number}: see the handout",
            f"    # ---------------- BEGIN TODO #{number} ----------------",
            *(f"    {line}" for line in body.splitlines()),
            f"    # ----------------- END TODO #{number} -----------------",
        ]
    return "\n".join(lines) + "\n"


def filled_todo_files(root, bodies=None):
    """Every file of the TODO registry, its blocks filled in (or as `bodies` maps a TODO id)."""
    bodies = bodies or {}
    for path in dict.fromkeys(todo.path for todo in todos.TODOS):
        numbers = [todo.number for todo in todos.TODOS if todo.path == path]
        write(root / path, todo_file({n: bodies.get(f"{path}#{n}", FILLED) for n in numbers}))


def answered(template: str, answer: str = "my answer") -> str:
    """The template with `answer` after every line that ends with a colon."""
    return "".join(
        line + (f"\n{answer}\n" if line.rstrip().endswith(":") else "\n")
        for line in template.splitlines()
    )


def gan_run(root, name, r1, aug, grids=(), extras=(), options="{}"):
    run = root / RUNS / name
    write(run / "log.txt", f"use_r1_regularization={r1} use_diffaug={aug}\noptions: {options}\n")
    for iteration in grids:
        write(run / f"fakes{iteration:06d}iter_trained.png")
    for extra in extras:
        write(run / extra)
    return run


def distillation_store(root, name, mode, guidance, age):
    store = root / "Diffusion_homework" / name
    write(store / ".hw5-results", f"execute_SDS_VSD.py --generation_mode={mode}")
    write(
        store / "log.txt",
        f"store_dir: {name}\ngeneration_mode: {mode}\nguidance_scale: {guidance}\n",
    )
    for image in ("generated_progressive.png", "generated_image.png", "loss_curve.png"):
        write(store / image)
        os.utime(store / image, (1e9 - age, 1e9 - age))
    if mode == "vsd":
        write(store / "lora_weights.safetensors")


def student_checkout(root, results=True):
    """A checkout with every TODO filled, answered templates and (with `results`) every result
    the handout asks for, among extra runs and images that must not be packed."""
    filled_todo_files(root)
    write(root / "GAN_homework/train.py", "print('train')\n")
    write(root / "GAN_homework/training/__pycache__/loss.cpython-311.pyc")
    write(root / "GAN_homework/many_shot_dog/0.png")
    write(root / "GAN_homework/many_shot_dog/helper.py", "x = 1\n")
    write(root / "GAN_homework/checkpoint/part1-10K.pkl")
    write(root / "GAN_homework/cutout_img.png")
    for part in ("GAN_homework", "Diffusion_homework"):
        write(root / part / "answers.md", answered((REPO / part / "answers.md").read_text()))
    write(root / "Diffusion_homework/model/unet.bin")
    if not results:
        return root
    extras = ("reals.png", "checkpoint-004500.pt", "stats.jsonl")
    gan_run(root, "00000-many_shot_dog-low_shot-nor1-noaug", False, False, (100, 4500), extras)
    gan_run(root, "00001-many_shot_dog-low_shot-nor1-noaug", False, False, (100, 900, 4600),
            (*extras, "training_curves.png"))  # fmt: skip
    gan_run(root, "00002-many_shot_dog-low_shot-r1-noaug", True, False, (4400,), extras)
    gan_run(root, "00003-many_shot_dog-low_shot-r1-diffaug", True, True, (3000,), extras)
    for i in range(10):
        write(root / f"Diffusion_homework/DDPM_results/DDPM_generated_image{i}.png")
        write(root / f"Diffusion_homework/DDIM_results/DDIM_generated_image{i}.png")
    for i in range(3):
        write(root / f"Diffusion_homework/DPS_results/DPS_generated_image{i}.png")
        write(root / f"Diffusion_homework/DPS_results/DPS_masked_input_image{i}.png")
    write(root / "Diffusion_homework/DPS_results/DPS_grid.png")
    write(root / "Diffusion_homework/DPS_results_100steps/DPS_grid.png")
    distillation_store(root, "SDS_results", "sds", 7.5, age=30)
    distillation_store(root, "SDS_results_cfg100", "sds", 100.0, age=20)
    distillation_store(root, "VSD_results", "vsd", 7.5, age=10)
    return root


def packed(root, out=None) -> set[str]:
    return set(zipfile.ZipFile(out or root / "HW5_submission.zip").namelist())


def warnings_of(result) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("warning: ")]


def test_packs_what_the_handout_asks_for_and_nothing_else(tmp_path):
    root = student_checkout(tmp_path / "repo")
    result = run_tool("submit", cwd=root / "GAN_homework")  # run from a homework folder
    assert result.returncode == 0, result.stderr
    assert warnings_of(result) == []
    run1 = f"{RUNS}/00001-many_shot_dog-low_shot-nor1-noaug"
    run2 = f"{RUNS}/00002-many_shot_dog-low_shot-r1-noaug"
    run3 = f"{RUNS}/00003-many_shot_dog-low_shot-r1-diffaug"
    home = "Diffusion_homework"
    assert {name for name in packed(root) if not name.endswith(".py")} == {
        f"{run1}/fakes004600iter_trained.png",
        f"{run1}/log.txt",
        f"{run1}/training_curves.png",
        f"{run2}/fakes004400iter_trained.png",
        f"{run2}/log.txt",
        f"{run3}/fakes003000iter_trained.png",
        f"{run3}/log.txt",
        *(f"{home}/DDPM_results/DDPM_generated_image{i}.png" for i in range(10)),
        *(f"{home}/DDIM_results/DDIM_generated_image{i}.png" for i in range(10)),
        *(f"{home}/DPS_results/DPS_generated_image{i}.png" for i in range(3)),
        *(f"{home}/DPS_results/DPS_masked_input_image{i}.png" for i in range(3)),
        f"{home}/SDS_results/generated_progressive.png",
        f"{home}/SDS_results_cfg100/generated_progressive.png",
        f"{home}/VSD_results/generated_progressive.png",
        "GAN_homework/answers.md",
        f"{home}/answers.md",
    }
    code = {name for name in packed(root) if name.endswith(".py")}
    assert "GAN_homework/train.py" in code and "GAN_homework/training/loss.py" in code
    assert not any("many_shot_dog/" in name for name in code)
    assert "GAN_homework/training/loss.py" in result.stdout


def test_newest_run_of_each_part_and_the_first_ten_images(tmp_path):
    root = student_checkout(tmp_path / "repo")
    gan_run(root, "00004-many_shot_dog-low_shot-r1-noaug", True, False)  # started, no grid yet
    gan_run(root, "00005-many_shot_dog-low_shot-noaug", False, True, (200,))
    shutil.rmtree(root / RUNS / "00003-many_shot_dog-low_shot-r1-diffaug")
    for i in range(10, 13):
        write(root / f"Diffusion_homework/DDPM_results/DDPM_generated_image{i}.png")
    distillation_store(root, "SDS_results_old", "sds", 7.5, age=50)
    distillation_store(root, "SDS_results_cfg50", "sds", 50, age=5)
    result = run_tool("submit", cwd=root)
    assert result.returncode == 0, result.stderr
    names = packed(root)
    assert f"{RUNS}/00002-many_shot_dog-low_shot-r1-noaug/fakes004400iter_trained.png" in names
    assert not any("/00004-" in n or "/00005-" in n or "/00000-" in n for n in names)
    assert "Diffusion_homework/DDPM_results/DDPM_generated_image10.png" not in names
    assert not any("SDS_results_old" in n or "cfg50" in n for n in names)
    assert warnings_of(result) == [
        "warning: GAN_homework/training-runs/00005-many_shot_dog-low_shot-noaug/ is left out: "
        "use_diffaug=True without R1 is none of the handout's three parts.",
        "warning: GAN part 2 (R1): GAN_homework/training-runs/00004-many_shot_dog-low_shot-"
        "r1-noaug/ has not trained yet (no sample grid beyond iteration 0), so the older "
        "GAN_homework/training-runs/00002-many_shot_dog-low_shot-r1-noaug/ (iteration 4400) is "
        "packed.",
        "warning: No sample grid of GAN part 3 (R1 + DiffAug) in GAN_homework/training-runs/ "
        "(train.py --use_r1_regularization True --use_diffaug True): the handout asks for its "
        "latest fakes<iter>iter_trained.png and log.txt.",
        "warning: Diffusion_homework/DDPM_results/ holds 13 images; packed the first 10, "
        "DDPM_generated_image0.png to DDPM_generated_image9.png (delete the ones you do not "
        "want to submit to pick others).",
        "warning: Diffusion_homework/SDS_results_cfg50/ is left out: SDS at guidance scale 50 "
        "is none of the handout's runs.",
        "warning: Diffusion_homework/SDS_results_old/ is left out: "
        "Diffusion_homework/SDS_results/ is a newer run of Task 6, SDS at guidance scale 7.5.",
    ]


def test_warns_of_blank_todo_blocks_and_unanswered_templates(tmp_path):
    root = student_checkout(tmp_path / "repo")
    loss = "GAN_homework/training/loss.py"
    starter = markers.starter_body(1, loss).strip()
    filled_todo_files(
        root,
        {
            f"{loss}#1": starter,
            f"{loss}#3": f"{FILLED}\n{starter}",
            f"{loss}#4": "# nothing yet",
        },
    )
    write(root / "Diffusion_homework/utils/sds_vsd_utils.py", "# BEGIN TODO #1\n")
    shutil.copy(REPO / "GAN_homework/answers.md", root / "GAN_homework/answers.md")
    diffusion = (REPO / "Diffusion_homework/answers.md").read_text()
    write(
        root / "Diffusion_homework/answers.md",
        diffusion.replace("over DDPM:\n", "over DDPM:\nFaster, a little less diverse.\n"),
    )
    result = run_tool("submit", cwd=root)
    assert result.returncode == 0, result.stderr
    assert warnings_of(result) == [
        f"warning: {loss}#1 (generator loss, Eq. (1)) is still blank.",
        f"warning: {loss}#3 still holds the starter's `raise NotImplementedError` line: delete "
        "it, or your code never runs.",
        f"warning: {loss}#4 (discriminator loss on reals, Eq. (2)) is still blank.",
        "warning: Diffusion_homework/utils/sds_vsd_utils.py, line 1: BEGIN TODO #1 has no END "
        "line: the grader cannot tell your TODO blocks apart there.",
        "warning: GAN_homework/answers.md is still the blank template: no answer to Task 2.",
        "warning: Diffusion_homework/answers.md: no answer to Task 5 yet.",
    ]


def test_the_templates_read_as_unanswered_until_answered():
    for part, tasks in (("GAN_homework", ["Task 2"]), ("Diffusion_homework", ["Task 3", "Task 5"])):
        template = (REPO / part / "answers.md").read_text()
        assert required_tasks(template) == [(task, False) for task in tasks]
        for answer in ("my answer", "\nmy answer", "\nIt differs in two ways:\n\n- one\n- two"):
            assert required_tasks(answered(template, answer)) == [(t, True) for t in tasks]
    timings = (REPO / "Diffusion_homework/answers.md").read_text()
    timings = timings.replace("| DDIM | 1000 | | |", "| DDIM | 1000 | 3.1 | 0.003 |")
    assert ("Task 5", True) in required_tasks(timings)


def test_missing_images_are_warnings(tmp_path):
    root = student_checkout(tmp_path / "repo", results=False)
    out = tmp_path / "mine.zip"
    result = run_tool("submit", "--out", out, cwd=root)
    assert result.returncode == 0, result.stderr
    assert out.exists()
    for words in (
        "No sample grid of GAN part 1",
        "No sample grid of GAN part 2",
        "No sample grid of GAN part 3",
        "DDPM_results/ has 0 of the 10",
        "DDIM_results/ has 0 of the 10",
        "DPS_results/ has 0 DPS_masked_input_image<i>.png and 0 DPS_generated_image<i>.png",
        "Task 6, SDS at guidance scale 7.5",
        "Task 6, SDS at guidance scale 100",
        "Task 7, VSD at guidance scale 7.5",
    ):
        assert words in result.stdout, words
    assert len(warnings_of(result)) == 9


def test_add_packs_one_more_file_of_the_checkout(tmp_path):
    root = student_checkout(tmp_path / "repo")
    grid = "Diffusion_homework/DPS_results_100steps/DPS_grid.png"
    result = run_tool("submit", "--add", grid, cwd=root)
    assert result.returncode == 0, result.stderr
    assert grid in packed(root)
    for bad, words in (
        ("GAN_homework/checkpoint/part1-10K.pkl", "no datasets, checkpoints or weights"),
        ("GAN_homework/many_shot_dog/0.png", "no datasets, checkpoints or weights"),
        (tmp_path / "elsewhere.png", "is not a file"),
        (write(tmp_path / "outside.png"), "is outside"),
    ):
        result = run_tool("submit", "--add", bad, "--out", tmp_path / "no.zip", cwd=root)
        assert result.returncode != 0 and words in result.stderr, result.stderr
        assert not (tmp_path / "no.zip").exists()


def test_refuses_ten_megabytes_and_keeps_the_old_zip(tmp_path):
    root = student_checkout(tmp_path / "repo")
    write(root / "HW5_submission.zip", b"the zip of yesterday")
    image = root / "Diffusion_homework/DDIM_results/DDIM_generated_image0.png"
    write(image, os.urandom(11_000_000))
    result = run_tool("submit", cwd=root)
    assert result.returncode != 0
    assert "over the handout's 10 MB limit" in result.stderr
    assert "DDIM_generated_image0.png" in result.stderr and "Traceback" not in result.stderr
    assert (root / "HW5_submission.zip").read_bytes() == b"the zip of yesterday"
    assert sorted(p.name for p in root.iterdir() if "zip" in p.name) == ["HW5_submission.zip"]


def one_sentence(result) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_bad_places_are_one_sentence_and_write_nothing(tmp_path):
    root = student_checkout(tmp_path / "repo")
    (tmp_path / "dangling.zip").symlink_to(tmp_path / "missing" / "x.zip")
    write(tmp_path / "a_file")
    for args, words in (
        (["--out", tmp_path], "is a folder"),
        (["--out", tmp_path / "dangling.zip"], "is a link to nothing"),
        (["--out", tmp_path / "a_file" / "x.zip"], "which is not a folder"),
        (["--out", tmp_path / "x.tar"], "should end in .zip"),
        (["--root", tmp_path], "holds no GAN_homework/ or Diffusion_homework/"),
    ):
        assert words in one_sentence(run_tool("submit", *args, cwd=root)), args
    assert "here or above" in one_sentence(run_tool("submit", cwd=tmp_path))
    assert list(tmp_path.rglob("*.zip*")) == [tmp_path / "dangling.zip"]
    assert not (tmp_path / "missing").exists()


@pytest.fixture
def shared_tmp():
    """A folder that another user can read (pytest's tmp_path is private to its owner)."""
    folder = Path(tempfile.mkdtemp(prefix="submit-test-"))
    folder.chmod(0o755)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(folder)


def run_unprivileged(cwd, *args):
    """tools.submit as a user who may read but not write the checkout (root bypasses
    permissions, so as root it runs as `nobody`, who may be unable to read the interpreter's
    real path that `python tools/submit.py` starts again by)."""
    command = [sys.executable, "-m", "tools.submit", *map(str, args)]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("needs setpriv to run as another user")
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONSAFEPATH": "1"}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def test_read_only_place_and_unreadable_image_are_one_sentence(shared_tmp):
    root = student_checkout(shared_tmp / "repo")
    for folder in [root, *root.rglob("*")]:
        if folder.is_dir():
            folder.chmod(0o755)
    if os.geteuid() != 0:
        root.chmod(0o555)
    probe = run_unprivileged(root, "--help")
    if probe.returncode != 0:
        pytest.skip(f"another user cannot run this interpreter: {probe.stderr[-200:]}")

    assert "cannot be written (no permission)" in one_sentence(run_unprivileged(root))
    assert not (root / "HW5_submission.zip").exists()

    writable = shared_tmp / "out"
    writable.mkdir(mode=0o777)
    writable.chmod(0o777)
    image = root / "Diffusion_homework/DDIM_results/DDIM_generated_image3.png"
    image.chmod(0o600 if os.geteuid() == 0 else 0o000)
    sentence = one_sentence(run_unprivileged(root, "--out", writable / "hw5.zip"))
    assert sentence.startswith("Could not read or write ") and image.name in sentence
    assert list(writable.iterdir()) == []


def test_an_interrupted_rerun_does_not_hide_the_run_that_trained(tmp_path):
    root = student_checkout(tmp_path / "repo")
    part1 = "many_shot_dog-low_shot-nor1-noaug"
    shutil.rmtree(root / RUNS / f"00000-{part1}")
    trained = gan_run(root, f"00004-{part1}", False, False, range(0, 4751, 250), ("log.txt",))
    gan_run(root, f"00005-{part1}", False, False, (0,))  # rerun, stopped before its first snap
    gan_run(root, f"00006-{part1}", False, False)  # and again, stopped before any grid
    part2 = "many_shot_dog-low_shot-r1-noaug"
    gan_run(root, f"00007-{part2}", True, False, (0, 250))  # a rerun that trained less
    result = run_tool("submit", cwd=root)
    assert result.returncode == 0, result.stderr
    names = packed(root)
    assert f"{RUNS}/00004-{part1}/fakes004750iter_trained.png" in names
    assert f"{RUNS}/00004-{part1}/log.txt" in names
    assert not any(f"/00001-{part1}/" in n or "/00005-" in n or "/00006-" in n for n in names)
    assert f"{RUNS}/00007-{part2}/fakes000250iter_trained.png" in names
    assert not any(f"/00002-{part2}/" in n for n in names)
    assert warnings_of(result) == [
        f"warning: GAN part 1 (no regularization): {RUNS}/00006-{part1}/, {RUNS}/00005-{part1}/ "
        f"have not trained yet (no sample grid beyond iteration 0), so the older "
        f"{RUNS}/00004-{part1}/ (iteration 4750) is packed.",
        f"warning: GAN part 2 (R1): {RUNS}/00007-{part2}/ is packed (iteration 250), but the "
        f"older {RUNS}/00002-{part2}/ trained further (iteration 4400); to submit that one, move "
        f"the newer runs of this part out of {RUNS}/.",
        f"warning: GAN part 2 (R1): {RUNS}/00007-{part2}/ is not the handout's setting: it "
        "trained only 250 iterations (fewer than 500; the handout's runs train thousands).",
    ]
    assert trained.is_dir()


def test_a_run_of_the_tiny_config_is_packed_with_a_warning(tmp_path):
    root = student_checkout(tmp_path / "repo")
    shutil.rmtree(root / RUNS / "00002-many_shot_dog-low_shot-r1-noaug")
    shutil.rmtree(root / RUNS / "00003-many_shot_dog-low_shot-r1-diffaug")
    tiny = '{"cfg": "tiny", "config": {"name": "tiny", "resolution": 32}, "iters": 2000}'
    gan_run(root, "00004-many_shot_dog-tiny-r1-noaug", True, False, (0, 1000, 2000), (), tiny)
    gan_run(root, "00005-dogs-tiny-r1-diffaug", True, True, (20, 40, 1500))  # name tells only
    result = run_tool("submit", cwd=root)
    assert result.returncode == 0, result.stderr
    names = packed(root)
    assert f"{RUNS}/00004-many_shot_dog-tiny-r1-noaug/fakes002000iter_trained.png" in names
    assert f"{RUNS}/00005-dogs-tiny-r1-diffaug/fakes001500iter_trained.png" in names
    assert warnings_of(result) == [
        f"warning: GAN part 2 (R1): {RUNS}/00004-many_shot_dog-tiny-r1-noaug/ is not the "
        "handout's setting: it is of the `tiny` config, not low_shot; its images are 32x32, "
        "not 256x256.",
        f"warning: GAN part 3 (R1 + DiffAug): {RUNS}/00005-dogs-tiny-r1-diffaug/ is not the "
        "handout's setting: it is of the `tiny` config, not low_shot; its images are 32x32, "
        "not 256x256.",
    ]


def png_bytes(image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def test_images_are_reencoded_without_loss_and_stored(tmp_path):
    """Every kind of PNG the course writes, saved at low compression, comes out smaller and with
    the same pixels; a 16-bit PNG and a file that is no PNG come out byte for byte."""
    root = student_checkout(tmp_path / "repo")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:96, 0:128]
    smooth = np.stack([x * 2, y * 2, x + y], -1) + rng.integers(0, 6, (96, 128, 3))
    rgb = Image.fromarray(smooth.astype(np.uint8))
    alpha = Image.fromarray((x * 2).astype(np.uint8))
    transparent = rgb.copy()
    transparent.putalpha(alpha)
    opaque = rgb.convert("RGBA")
    text = PngImagePlugin.PngInfo()
    text.add_text("Software", "Matplotlib version3.9")
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    images = {
        "DDPM_results/DDPM_generated_image0.png": png_bytes(rgb, compress_level=0),
        "DDPM_results/DDPM_generated_image1.png": png_bytes(rgb, icc_profile=srgb),
        "DDIM_results/DDIM_generated_image0.png": png_bytes(transparent, compress_level=1),
        "DDIM_results/DDIM_generated_image1.png": png_bytes(opaque, pnginfo=text, dpi=(100, 100)),
        "DPS_results/DPS_masked_input_image0.png": png_bytes(rgb.convert("L"), compress_level=0),
        "DPS_results/DPS_generated_image0.png": png_bytes(
            rgb.quantize(64), compress_level=0, transparency=3
        ),
        "DPS_results/DPS_generated_image1.png": png_bytes(
            Image.fromarray((smooth[..., 0] * 250).astype(np.uint16)), compress_level=0
        ),
        "DPS_results/DPS_generated_image2.png": b"not a PNG at all",
    }
    for name, data in images.items():
        write(root / "Diffusion_homework" / name, data)
    result = run_tool("submit", cwd=root)
    assert result.returncode == 0, result.stderr
    assert "PNG images re-encoded without loss: " in result.stdout
    zipped = zipfile.ZipFile(root / "HW5_submission.zip")
    for name, data in images.items():
        info = zipped.getinfo(f"Diffusion_homework/{name}")
        assert info.compress_type == zipfile.ZIP_STORED, name
        packed_data = zipped.read(info)
        if name.endswith(("image1.png", "image2.png")) and name.startswith("DPS_"):
            assert packed_data == data, name  # 16 bits, or no PNG: as they were
            continue
        assert len(packed_data) < len(data), name
        before, after = Image.open(io.BytesIO(data)), Image.open(io.BytesIO(packed_data))
        assert after.size == before.size, name
        assert np.array_equal(
            np.asarray(after.convert("RGBA")), np.asarray(before.convert("RGBA"))
        ), name
        if name == "DDPM_results/DDPM_generated_image1.png":
            assert after.info["icc_profile"] == srgb
        if name == "DDIM_results/DDIM_generated_image1.png":
            assert after.mode == "RGB" and after.text == {"Software": "Matplotlib version3.9"}
            assert after.info["dpi"] == pytest.approx((100, 100), abs=0.01)
    assert zipped.getinfo("GAN_homework/train.py").compress_type == zipfile.ZIP_DEFLATED


def test_over_ten_megabytes_the_curves_go_first_then_named_extras(tmp_path):
    root = student_checkout(tmp_path / "repo")
    run = root / RUNS / "00001-many_shot_dog-low_shot-nor1-noaug"
    other = root / RUNS / "00002-many_shot_dog-low_shot-r1-noaug"
    write(run / "training_curves.png", os.urandom(6_000_000))
    write(other / "training_curves.png", os.urandom(4_500_000))
    result = run_tool("submit", cwd=root)
    assert result.returncode == 0, result.stderr
    names = packed(root)
    assert f"{other.relative_to(root).as_posix()}/training_curves.png" in names
    assert f"{run.relative_to(root).as_posix()}/training_curves.png" not in names
    left_out = [re.sub(r"\(10\.5\d MB", "(10.5x MB", w) for w in warnings_of(result)]
    assert [w for w in left_out if "10 MB" in w] == [
        "warning: To stay under the 10 MB limit (10.5x MB with everything), these are left out "
        "(the handout does not ask for them): "
        f"{run.relative_to(root).as_posix()}/training_curves.png."
    ]

    (run / "training_curves.png").unlink()
    (other / "training_curves.png").unlink()
    adds = {"big": 6_000_000, "middle": 5_500_000, "small": 4_500_000, "tiny": 200_000}
    for name, size in adds.items():
        write(root / f"Diffusion_homework/figures/{name}.png", os.urandom(size))
    args = [a for name in adds for a in ("--add", f"Diffusion_homework/figures/{name}.png")]
    write(root / "HW5_submission.zip", b"the zip of yesterday")
    result = run_tool("submit", *args, cwd=root)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].endswith(
        "over the handout's 10 MB limit, so nothing was written; leave out these files you "
        "added with --add (largest first) to get under it:"
    ), lines[0]
    assert [line.split()[-1] for line in lines[1:]] == [
        "Diffusion_homework/figures/big.png",
        "Diffusion_homework/figures/middle.png",
    ]
    assert (root / "HW5_submission.zip").read_bytes() == b"the zip of yesterday"
    good = run_tool("submit", *args[4:], cwd=root)  # as told: without big.png and middle.png
    assert good.returncode == 0, good.stderr
    assert "Diffusion_homework/figures/small.png" in packed(root)
