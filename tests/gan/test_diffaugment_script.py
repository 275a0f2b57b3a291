"""`python DiffAugment_pytorch.py` (the cutout preview) end to end, and the DiffAugment operations.

The preview reads many_shot_dog/0.png and writes cutout_img.png: the image beside 4 random
cutouts. The operations of the policy "color,translation,cutout" are checked for what they
promise: per-image random parameters in their ranges, differentiable, never editing the input.
"""

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from gan_helpers import CUTOUT
from PIL import Image

import DiffAugment_pytorch as aug
from tools.markers import starterize

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "GAN_homework" / "DiffAugment_pytorch.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def write_dog(path, width=48, height=32):
    """A smooth image with no black pixel, so that a zeroed box is easy to find."""
    path.parent.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:height, 0:width]
    pixels = np.stack([40 + 4 * xx, 60 + 5 * yy, 200 - 2 * xx - yy], axis=-1)
    Image.fromarray(pixels.clip(20, 235).astype(np.uint8)).save(path)
    return pixels.clip(20, 235).astype(np.uint8)


def run_script(cwd, *args, script=SCRIPT):
    return subprocess.run(
        [sys.executable, str(script), *args], cwd=cwd, env=ENV, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def check_preview(out_path, original):
    height, width, _ = original.shape
    preview = np.asarray(Image.open(out_path).convert("RGB"))
    assert preview.shape == (height, 5 * width, 3), "expected the image beside 4 cutouts"
    panels = [preview[:, i * width : (i + 1) * width] for i in range(5)]
    assert np.array_equal(panels[0], original), "the first panel is the original image"
    for panel in panels[1:]:
        black = (panel == 0).all(axis=2)
        rows, cols = np.flatnonzero(black.any(axis=1)), np.flatnonzero(black.any(axis=0))
        assert len(rows) and len(cols), "a cutout panel has no zeroed box"
        h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        assert black.sum() == h * w, "the zeroed pixels do not form a rectangle"
        assert height // 4 <= h <= -(-height // 2) and width // 4 <= w <= -(-width // 2)
        assert np.array_equal(panel[~black], original[~black]), "pixels outside the box changed"


@pytest.mark.slow  # a subprocess that imports torch
@pytest.mark.needs(CUTOUT)
def test_preview_with_default_paths(tmp_path):
    original = write_dog(tmp_path / "many_shot_dog" / "0.png")
    result = run_script(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "cutout_img.png" in result.stdout
    check_preview(tmp_path / "cutout_img.png", original)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cutout_img.png", "many_shot_dog"]


@pytest.mark.slow  # a subprocess that imports torch
@pytest.mark.needs(CUTOUT)
def test_preview_with_image_and_out_options(tmp_path):
    original = write_dog(tmp_path / "in" / "dog.png", width=30, height=44)
    out = tmp_path / "previews" / "cut.png"
    result = run_script(tmp_path, "--image", "in/dog.png", "--out", str(out))
    assert result.returncode == 0, result.stderr
    check_preview(out, original)


@pytest.mark.slow  # a subprocess that imports torch
def test_preview_without_the_dataset_says_how_to_get_it(tmp_path):
    result = run_script(tmp_path)
    assert result.returncode == 1
    assert "dataset_download.py" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # a subprocess that imports torch
def test_preview_of_a_corrupt_image_fails_cleanly(tmp_path):
    (tmp_path / "many_shot_dog").mkdir()
    (tmp_path / "many_shot_dog" / "0.png").write_bytes(b"not a png")
    result = run_script(tmp_path)
    assert result.returncode == 1
    assert "0.png" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "cutout_img.png").exists()


@pytest.mark.slow  # a subprocess that imports torch
def test_preview_on_the_starter_points_at_the_todo(tmp_path):
    starter = tmp_path / "DiffAugment_pytorch.py"
    starter.write_text(starterize(SCRIPT.read_text(), "GAN_homework/DiffAugment_pytorch.py"))
    shutil.copy(SCRIPT.parent / "outputs.py", tmp_path)  # beside it, as in the starter
    (tmp_path / "training").mkdir()
    shutil.copy(SCRIPT.parent / "training" / "todo.py", tmp_path / "training")
    write_dog(tmp_path / "many_shot_dog" / "0.png")
    result = run_script(tmp_path, script=starter)
    assert result.returncode == 1
    assert "TODO #1" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "cutout_img.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DiffAugment_pytorch.py", "many_shot_dog",
                                                          "outputs.py", "training"]  # fmt: skip


def preview(*args):
    """Run the preview in process; its error message, or None when it succeeded."""
    try:
        aug.main([str(arg) for arg in args])
    except SystemExit as error:
        assert isinstance(error.code, str), "a message, not a bare exit status"
        return error.code
    return None


def tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}  # fmt: skip


def test_out_a_folder_is_one_sentence_and_leaves_nothing(tmp_path):
    dog = tmp_path / "dog.png"
    write_dog(dog)
    (tmp_path / "previews").mkdir()
    (tmp_path / "previews" / "notes.txt").write_text("mine")
    before = tree(tmp_path)
    message = preview("--image", dog, "--out", tmp_path / "previews")
    assert (
        message
        == f"--out {tmp_path / 'previews'} is a folder: give a file name such as cutout_img.png."
    )
    assert tree(tmp_path) == before, "no .previews.tmp.png or other file left"


@pytest.mark.needs(CUTOUT)
def test_out_that_cannot_be_written_is_one_sentence(tmp_path, monkeypatch):
    import outputs

    def read_only(dir=None, prefix=None, suffix=None):
        raise PermissionError(errno.EACCES, "Permission denied", dir)

    dog = tmp_path / "dog.png"
    write_dog(dog)
    monkeypatch.setattr(outputs.tempfile, "mkstemp", read_only)
    message = preview("--image", dog, "--out", tmp_path / "cut.png")
    assert (
        message == f"Cannot write {tmp_path / 'cut.png'} (Permission denied): choose another --out."
    )
    assert [p.name for p in tmp_path.iterdir()] == ["dog.png"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_in_a_read_only_folder_is_one_sentence(tmp_path):
    dog = tmp_path / "dog.png"
    write_dog(dog)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        message = preview("--image", dog, "--out", locked / "cut.png")
        assert message.startswith(f"Cannot write {locked / 'cut.png'} (Permission denied)")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


@pytest.mark.needs(CUTOUT)
def test_out_replaces_its_own_preview_but_no_other_file(tmp_path):
    dog = tmp_path / "dog.png"
    original = write_dog(dog)
    out = tmp_path / "cut.png"
    assert preview("--image", dog, "--out", out) is None
    assert preview("--image", dog, "--out", out) is None, "a rerun replaces its own preview"
    check_preview(out, original)
    photo = tmp_path / "photo.png"
    Image.new("RGB", (4, 4), (1, 2, 3)).save(photo)
    before = photo.read_bytes()
    message = preview("--image", dog, "--out", photo)
    assert message == (f"{photo} exists and was not written by this preview; nothing was changed: "
                       "choose another --out.")  # fmt: skip
    assert photo.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.png", "dog.png", "photo.png"]


def test_out_must_be_a_png(tmp_path):
    dog = tmp_path / "dog.png"
    write_dog(dog)
    message = preview("--image", dog, "--out", tmp_path / "cut.jpg")
    assert message.endswith("must end in .png: the preview is a PNG image.")
    assert [p.name for p in tmp_path.iterdir()] == ["dog.png"]


# ---------------------------------------------------------------- the operations


def images(batch=5, channels=3, height=16, width=24, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((batch, channels, height, width), generator=gen, dtype=torch.float64) * 2 - 1


@pytest.mark.parametrize("name", ["rand_brightness", "rand_saturation", "rand_contrast",
                                  "rand_translation",
                                  pytest.param("rand_cutout", marks=pytest.mark.needs(CUTOUT))])  # fmt: skip
def test_operation_is_differentiable_and_leaves_input_alone(name):
    torch.manual_seed(0)
    x = images().requires_grad_(True)
    before = x.detach().clone()
    out = getattr(aug, name)(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(x.detach(), before)
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_brightness_adds_one_offset_per_image_in_range():
    torch.manual_seed(1)
    x = images(batch=400)
    offset = aug.rand_brightness(x) - x
    per_image = offset.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image))
    assert per_image[:, 0].min() >= -0.5 and per_image[:, 0].max() <= 0.5
    assert per_image[:, 0].min() < -0.45 and per_image[:, 0].max() > 0.45


def _per_image_factor(out, x, center):
    """The factor f of out - center = f * (x - center), fitted per image by least squares."""
    num = ((out - center) * (x - center)).flatten(1).sum(1)
    return num / (x - center).square().flatten(1).sum(1)


def test_saturation_and_contrast_scale_around_the_mean_in_range():
    torch.manual_seed(2)
    x = images(batch=400)
    gray = x.mean(dim=1, keepdim=True)
    out = aug.rand_saturation(x)
    sat = _per_image_factor(out, x, gray)
    assert torch.allclose(out - gray, sat.view(-1, 1, 1, 1) * (x - gray))
    assert sat.min() >= 0 and sat.max() <= 2 and sat.min() < 0.1 and sat.max() > 1.9
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    out = aug.rand_contrast(x)
    con = _per_image_factor(out, x, mean)
    assert torch.allclose(out - mean, con.view(-1, 1, 1, 1) * (x - mean))
    assert con.min() >= 0.5 and con.max() <= 1.5 and con.min() < 0.6 and con.max() > 1.4


def test_translation_shifts_each_image_by_up_to_an_eighth_with_zero_fill():
    torch.manual_seed(3)
    height, width = 16, 24
    x = images(batch=400, channels=2, height=height, width=width) + 3  # no zero pixels
    out = aug.rand_translation(x)
    shifts = set()
    for b in range(x.shape[0]):
        found = None
        for dy in range(-2, 3):
            for dx in range(-3, 4):
                expected = torch.zeros_like(x[b])
                src = x[b, :, max(0, -dy) : height - max(0, dy), max(0, -dx) : width - max(0, dx)]
                expected[:, max(0, dy) : height - max(0, -dy), max(0, dx) : width - max(0, -dx)] = (
                    src
                )
                if torch.equal(out[b], expected):
                    found = (dy, dx)
        assert found is not None, "not an integer shift of at most 1/8 of the size with zeros"
        shifts.add(found)
    assert len(shifts) == 5 * 7, "every shift in [-H/8, H/8] x [-W/8, W/8] should occur"


@pytest.mark.needs(CUTOUT)
def test_diffaugment_policies():
    torch.manual_seed(4)
    x = images()
    assert aug.DiffAugment(x, policy="") is x
    out = aug.DiffAugment(x, policy="color,translation,cutout")
    assert out.shape == x.shape and not torch.equal(out, x)
    torch.manual_seed(5)
    a = aug.DiffAugment(x, policy="translation")
    torch.manual_seed(5)
    b = aug.rand_translation(x)
    assert torch.equal(a, b), "a one-name policy is that augmentation alone"
    with pytest.raises(ValueError, match="rotation"):
        aug.DiffAugment(x, policy="color,rotation")
