"""Image dataset held in memory, and an endless shuffled sampler that can be saved and resumed.

resolve_data finds the folder that --data names; native_resolution reads the size of its images.

The few-shot sets of this homework are small (389 images at 256x256 is 76 MB as uint8), so every
image is decoded once at start and kept as one uint8 tensor, on the GPU when training there:
a batch is then an index into that tensor, with no loader processes and no host-device copies.
"""

import io
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class DatasetError(ValueError):
    """Bad data given to --data; the message is one sentence for the user."""


def resolve_data(data: str) -> Path:
    """--data as given, or with '-' and '_' swapped in its name when only that spelling exists
    (the handout writes both many-shot-dog and many_shot_dog)."""
    path = Path(data)
    if not path.exists():
        for a, b in (("-", "_"), ("_", "-")):
            other = path.with_name(path.name.replace(a, b))
            if other != path and other.exists():
                click.echo(f"note: --data {data} does not exist; using {other} instead.")
                return other
    return path


def native_resolution(path: Path, option: str) -> int:
    """The side of the first image of a folder or zip (ImageDataset makes every image that size)."""
    if not path.exists():
        raise DatasetError(
            f"{option} {path} does not exist; give a folder of images"
            + (" or run `python dataset_download.py` first." if option == "--data" else ".")
        )
    entries = _list_images(path)
    if not entries:
        raise DatasetError(f"{option} {path} holds no .png or .jpg images.")
    name, read = entries[0]
    try:
        with Image.open(io.BytesIO(read())) as image:
            return image.size[0]
    except Exception:  # PIL raises many kinds for damaged files
        raise DatasetError(f"cannot read image {name}; delete or replace that file.") from None


def _list_images(path: Path) -> list[tuple[str, callable]]:
    """(name, read-bytes function) for every png/jpg image in a folder (recursively) or a zip."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        return [(str(p), p.read_bytes) for p in files]
    if path.is_file() and zipfile.is_zipfile(path):
        archive = zipfile.ZipFile(path)
        names = sorted(n for n in archive.namelist() if Path(n).suffix.lower() in IMAGE_SUFFIXES)
        return [(f"{path}:{n}", lambda n=n: archive.read(n)) for n in names]
    if path.exists():
        raise DatasetError(f"--data {path} is neither a folder nor a zip file of images.")
    raise DatasetError(
        f"--data {path} does not exist; run `python dataset_download.py` first or give the "
        "folder of your images."
    )


def _decode(name: str, read, resolution: int) -> tuple[np.ndarray, tuple[int, int]]:
    """One image as uint8 [3, R, R] RGB; returns its original size too."""
    try:
        image = Image.open(io.BytesIO(read()))
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DatasetError(
            f"image {name} has more than {Image.MAX_IMAGE_PIXELS:,} pixels, too many to decode "
            f"safely (a possible decompression bomb); delete it or shrink it to "
            f"{resolution}x{resolution}."
        ) from None
    except UnidentifiedImageError:
        raise DatasetError(
            f"cannot read image {name} (not an image file PIL knows); delete or replace that file."
        ) from None
    except Exception as error:  # decoders of damaged files raise all kinds of errors
        reason = getattr(error, "strerror", None) or str(error).split(". ")[0].rstrip(".")
        reason = reason or type(error).__name__  # the library's first sentence, if any
        raise DatasetError(
            f"cannot read image {name} ({reason}); delete or replace that file."
        ) from None
    size = image.size
    if size[0] != size[1]:
        raise DatasetError(
            f"image {name} is {size[0]}x{size[1]}, not square; crop the dataset to square "
            "images first (stretching would distort the faces)."
        )
    # grayscale, palette and RGBA (alpha dropped) all become RGB
    image = image.convert("RGB")
    if size[0] != resolution:
        image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.asarray(image).transpose(2, 0, 1).copy(), size


class ImageDataset:
    """All images of a folder or zip as uint8 [N, 3, R, R]; `batch()` gives floats in [-1, 1].

    Images of another size than the config's resolution are resized (`warning` then says so in
    one line, else it is None); non-square images are refused, since any resize would distort them.
    """

    def __init__(self, path, resolution: int, workers: int = 2):
        path = Path(path)
        entries = _list_images(path)
        if not entries:
            raise DatasetError(f"--data {path} holds no .png or .jpg images.")
        # PIL only warns below twice its pixel limit; here any image over the limit is refused
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                decoded = list(pool.map(lambda e: _decode(*e, resolution), entries))
        self.warning = None
        other_sizes = sorted({size for _, size in decoded if size[0] != resolution})
        if other_sizes:
            count = sum(size[0] != resolution for _, size in decoded)
            sizes = ", ".join(f"{w}x{h}" for w, h in other_sizes)
            self.warning = f"warning: {count} images of {path} are {sizes}; resized to {resolution}x{resolution}."
        self.path = path
        self.name = path.stem if path.is_file() else path.name
        self.resolution = resolution
        self.images = torch.from_numpy(np.stack([img for img, _ in decoded]))  # uint8 [N,3,R,R]

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device) -> "ImageDataset":
        self.images = self.images.to(device)
        return self

    def batch(self, indices: torch.Tensor, mirrored: torch.Tensor | None = None) -> torch.Tensor:
        """The images of `indices` [B], those where `mirrored` [B] (bool) is set flipped
        left-right. Returns float32 [B, 3, R, R] in [-1, 1]."""
        images = self.images[indices]
        if mirrored is not None:
            images = torch.where(mirrored.view(-1, 1, 1, 1), images.flip(3), images)
        return images.to(torch.float32) / 127.5 - 1


class EndlessSampler:
    """Global batches drawn from reshuffled epochs, forever; mirroring is decided here.

    An epoch is a permutation of the entries: the N images, and with mirror also their N mirror
    images (entry N + i is image i flipped), so that every image is seen both ways once per epoch.
    The permutation of epoch e is a function of (seed, e) alone, so the sampler's whole state is
    (epoch, position): saving and loading those continues the exact same sequence. Permutations are
    drawn on the data's device so that taking a batch never waits for the GPU.
    """

    def __init__(self, num_images: int, batch: int, seed: int, mirror: bool, device):
        self.num_images = num_images
        self.size = num_images * (2 if mirror else 1)
        self.batch_size = batch
        self.seed = seed
        self.device = torch.device(device)
        self.epoch, self.pos = 0, 0
        self._perm_epoch, self._perm = None, None

    def _permutation(self, epoch: int) -> torch.Tensor:
        if self._perm_epoch != epoch:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.size, generator=generator, device=self.device)
            self._perm_epoch = epoch
        return self._perm

    def next_batch(self, part: int = 0, parts: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Part `part` of `parts` equal parts of the next global batch (one per process):
        (image indices [batch / parts], mirrored [batch / parts] bool), for ImageDataset.batch."""
        size = self.batch_size // parts
        entries = self._next_entries()[part * size : (part + 1) * size]
        return entries % self.num_images, entries >= self.num_images

    def _next_entries(self) -> torch.Tensor:
        parts, needed = [], self.batch_size
        while needed > 0:
            take = min(needed, self.size - self.pos)
            parts.append(self._permutation(self.epoch)[self.pos : self.pos + take])
            self.pos += take
            needed -= take
            if self.pos == self.size:
                self.epoch, self.pos = self.epoch + 1, 0
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos, "size": self.size, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        if state["size"] != self.size:
            raise DatasetError(
                f"the checkpoint was trained on {state['size']} sampler entries but this data "
                f"gives {self.size}; resume with the same --data and --mirror."
            )
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
