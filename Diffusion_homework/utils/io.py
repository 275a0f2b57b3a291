"""Write images and result folders so that a killed job never leaves a half-written file behind."""

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_pil(img) -> Image.Image:
    """PIL image from a PIL image, a uint8 array [H,W(,C)], or a tensor [C,H,W] or [H,W,C] (H > 4)
    in [-1, 1]."""
    if isinstance(img, Image.Image):
        return img
    if isinstance(img, torch.Tensor):
        img = img.detach().float().cpu()
        if img.ndim == 4 and img.shape[0] == 1:
            img = img[0]
        if img.ndim == 3 and img.shape[0] in (1, 3, 4):  # [C,H,W] (torch's layout) -> [H,W,C]
            img = img.permute(1, 2, 0)
        img = ((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise TypeError(f"save_image needs uint8 arrays or float tensors, got {img.dtype}")
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    return Image.fromarray(img)


def save_image(img, path) -> None:
    """Save `img` (see to_pil) to `path`, atomically: a temporary file renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.tmp-", suffix=path.suffix)
    os.close(fd)
    try:
        to_pil(img).save(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_output_dir(final_dir) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it becomes `final_dir` (replacing an old one).

    A failed run removes the temporary folder; a killed run leaves only `.<name>.tmp-*`, which
    never looks like a finished result folder.
    """
    final_dir = Path(final_dir)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final_dir.parent, prefix=f".{final_dir.name}.tmp-"))
    os.chmod(tmp, 0o755)  # mkdtemp makes an owner-only folder
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final_dir.exists():
        old = final_dir.parent / f".{final_dir.name}.old-{os.getpid()}"
        os.replace(final_dir, old)
    os.replace(tmp, final_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
