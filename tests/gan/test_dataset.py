"""training/dataset.py: image loading, conversions, refusals, and the resumable endless sampler."""

import zipfile

import numpy as np
import pytest
import torch
from gan_helpers import write_images
from PIL import Image

from training.dataset import DatasetError, EndlessSampler, ImageDataset


@pytest.mark.parametrize("mode,suffix", [("L", ".png"), ("RGBA", ".png"), ("RGB", ".jpg")])
def test_grayscale_rgba_and_jpeg_become_rgb_in_minus_one_to_one(tmp_path, mode, suffix):
    write_images(tmp_path, 2, mode=mode, suffix=suffix)
    data = ImageDataset(tmp_path, resolution=32)
    assert data.images.shape == (2, 3, 32, 32) and data.images.dtype == torch.uint8
    batch = data.batch(torch.arange(2))
    assert batch.dtype == torch.float32 and batch.min() >= -1 and batch.max() <= 1
    expected = np.asarray(Image.open(tmp_path / f"0{suffix}").convert("RGB")).transpose(2, 0, 1)
    assert torch.equal(data.images[0], torch.from_numpy(expected.copy()))


def test_other_size_is_resized_with_one_warning(tmp_path):
    write_images(tmp_path, 3, size=64)
    data = ImageDataset(tmp_path, resolution=32)
    assert data.images.shape == (3, 3, 32, 32)
    assert data.warning == f"warning: 3 images of {tmp_path} are 64x64; resized to 32x32."
    write_images(tmp_path / "same", 2)
    assert ImageDataset(tmp_path / "same", resolution=32).warning is None


def test_zip_of_images(tmp_path):
    folder = write_images(tmp_path / "imgs", 3)
    archive = tmp_path / "dogs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(folder.iterdir()):
            z.write(p, p.name)
        z.writestr("notes.txt", "ignored")
    data = ImageDataset(archive, resolution=32)
    assert len(data) == 3 and data.name == "dogs"
    assert torch.equal(data.images, ImageDataset(folder, resolution=32).images)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: p, "does not exist"),
        (lambda p: p.mkdir() or p, "holds no .png or .jpg images"),
        (lambda p: write_images(p, 1, size=(40, 32)), "0.png is 40x32, not square"),
        (
            lambda p: (write_images(p, 2), (p / "1.png").write_bytes(b"x" * 10))[0],
            "cannot read image",
        ),
    ],
)
def test_bad_data_is_named_in_one_sentence(tmp_path, make, message):
    path = make(tmp_path / "data")
    with pytest.raises(DatasetError, match=message) as error:
        ImageDataset(path, resolution=32)
    assert str(error.value).count("\n") == 0


def test_sampler_visits_every_index_once_per_epoch():
    sampler = EndlessSampler(10, batch=4, seed=0, mirror=False, device="cpu")
    drawn = torch.cat([sampler.next_batch()[0] for _ in range(5)])  # 20 = two epochs
    assert sorted(drawn[:10].tolist()) == list(range(10))
    assert sorted(drawn[10:].tolist()) == list(range(10))
    assert not torch.equal(drawn[:10], drawn[10:]), "each epoch is reshuffled"


def test_sampler_state_continues_the_same_sequence():
    a = EndlessSampler(7, batch=3, seed=5, mirror=True, device="cpu")
    for _ in range(4):
        a.next_batch()
    b = EndlessSampler(7, batch=3, seed=5, mirror=True, device="cpu")
    b.load_state_dict(a.state_dict())
    for _ in range(6):
        (a_indices, a_mirrored), (b_indices, b_mirrored) = a.next_batch(), b.next_batch()
        assert torch.equal(a_indices, b_indices) and torch.equal(a_mirrored, b_mirrored)
    with pytest.raises(DatasetError, match="same --data and --mirror"):
        EndlessSampler(7, batch=3, seed=5, mirror=False, device="cpu").load_state_dict(
            a.state_dict()
        )


def test_sampler_sees_every_image_both_ways_once_per_epoch_and_splits_by_process():
    sampler = EndlessSampler(5, batch=10, seed=3, mirror=True, device="cpu")
    indices, mirrored = sampler.next_batch()
    assert sorted(zip(indices.tolist(), mirrored.tolist())) == [
        (i, m) for i in range(5) for m in (False, True)
    ]
    whole = EndlessSampler(5, batch=4, seed=3, mirror=True, device="cpu")
    halves = [EndlessSampler(5, batch=4, seed=3, mirror=True, device="cpu") for _ in range(2)]
    for _ in range(5):
        indices, mirrored = whole.next_batch()
        parts = [h.next_batch(part, 2) for part, h in enumerate(halves)]
        assert torch.equal(indices, torch.cat([p[0] for p in parts]))
        assert torch.equal(mirrored, torch.cat([p[1] for p in parts]))


def test_mirrored_images_are_flipped_left_right(tmp_path):
    write_images(tmp_path, 2)
    data = ImageDataset(tmp_path, resolution=32)
    batch = data.batch(torch.tensor([0, 0, 1, 1]), torch.tensor([False, True, False, True]))
    assert torch.equal(batch[1], batch[0].flip(2))
    assert torch.equal(batch[3], batch[2].flip(2))
    expected = np.asarray(Image.open(tmp_path / "0.png")).transpose(2, 0, 1) / 127.5 - 1
    assert torch.allclose(batch[0], torch.from_numpy(expected).float(), atol=1e-6)
