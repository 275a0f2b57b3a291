"""Differentiable Augmentation (DiffAugment) for data-efficient GAN training (handout Section 6).

Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training" (NeurIPS 2020).
The same random transformation T is applied to every image the discriminator sees, real or
generated (Fig. 5 of the handout). Every transformation here is built from differentiable tensor
operations, so gradients flow through T back to the generator, and none edits its input in place.

Run `python DiffAugment_pytorch.py` (from GAN_homework/) to preview `rand_cutout` on
`many_shot_dog/0.png`; the preview is written to `cutout_img.png`.
"""

import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo


def DiffAugment(x, policy="color,translation,cutout"):
    """Apply the augmentations named in `policy` (comma separated) to a batch of images.

    x: [B, C, H, W]. Returns a new tensor of the same shape; an empty policy returns x unchanged.
    """
    if not policy:
        return x
    for name in policy.split(","):
        name = name.strip()
        if name not in AUGMENT_FNS:
            raise ValueError(
                f"Unknown DiffAugment policy {name!r}: use a comma-separated subset of "
                f"{', '.join(AUGMENT_FNS)}."
            )
        for augment in AUGMENT_FNS[name]:
            x = augment(x)
    return x.contiguous()


def _per_sample_uniform(x, low, high):
    """One uniform random number in [low, high) per image, shaped [B, 1, 1, 1] to broadcast."""
    return torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) * (high - low) + low


def rand_brightness(x):
    """Add a per-image offset in [-0.5, 0.5]."""
    return x + _per_sample_uniform(x, -0.5, 0.5)


def rand_saturation(x):
    """Scale each pixel's distance from its channel mean by a per-image factor in [0, 2]."""
    gray = x.mean(dim=1, keepdim=True)
    return (x - gray) * _per_sample_uniform(x, 0.0, 2.0) + gray


def rand_contrast(x):
    """Scale the distance from the image mean by a per-image factor in [0.5, 1.5]."""
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * _per_sample_uniform(x, 0.5, 1.5) + mean


def rand_translation(x, ratio=0.125):
    """Shift each image by its own integer offset of up to `ratio` of its size; zeros fill in."""
    batch_size, channels, height, width = x.shape
    max_dy, max_dx = int(height * ratio + 0.5), int(width * ratio + 0.5)
    dy = torch.randint(-max_dy, max_dy + 1, (batch_size, 1, 1), device=x.device)
    dx = torch.randint(-max_dx, max_dx + 1, (batch_size, 1, 1), device=x.device)
    # Output pixel (i, j) reads input pixel (i - dy, j - dx) of the zero-padded image.
    padded = F.pad(x, [max_dx, max_dx, max_dy, max_dy])
    rows = torch.arange(height, device=x.device).view(1, height, 1) - dy + max_dy
    cols = torch.arange(width, device=x.device).view(1, 1, width) - dx + max_dx
    index = (rows * padded.shape[3] + cols).view(batch_size, 1, height * width)
    shifted = padded.flatten(2).gather(2, index.expand(batch_size, channels, height * width))
    return shifted.view(batch_size, channels, height, width)


def rand_cutout(x, ratio=0.5):
    """Random cutout: zero one random rectangle per image (handout Section 6, Task 4).

    x: [B, C, H, W]. Each image gets its own box with sides between ratio/2 and ratio of the
    image's height and width (25%-50% for ratio=0.5) at a random place fully inside the image.
    Returns a new tensor of x's shape, dtype and device; x itself is not edited.
    """
    batch_size, _, height, width = x.shape
    # TODO #1: random cutout (handout Section 6, Task 4). x: [B, C, H, W] (shape, dtype, device
    #   of the result: the same as x); batch_size, height, width are x.shape[0], [2], [3].
    #   For every image b draw its own box:
    #     box height h_b: a random integer in [ratio/2 * height, ratio * height] (25%-50% of H),
    #     box width  w_b: a random integer in [ratio/2 * width,  ratio * width], drawn separately,
    #     top-left corner (top_b, left_b): top_b in [0, height - h_b], left_b in [0, width - w_b],
    #     so the whole box lies inside the image.
    #   Zero the box in every channel with a product, x = x * mask, where mask [B, 1, H, W] is 0
    #   inside the box and 1 outside (made on x.device, dtype x.dtype). A product lets gradients
    #   flow back to x (Fig. 5) and leaves the caller's tensor as it was: never assign into x.
    #   Leave the result in x, shape [B, C, H, W]; it is returned after the block.
    # ------------------------------- BEGIN TODO #1 -------------------------------
    min_h, max_h = max(1, int(np.ceil(height * ratio / 2))), max(1, int(height * ratio))
    min_w, max_w = max(1, int(np.ceil(width * ratio / 2))), max(1, int(width * ratio))
    box_h = torch.randint(min_h, max_h + 1, (batch_size, 1, 1), device=x.device)
    box_w = torch.randint(min_w, max_w + 1, (batch_size, 1, 1), device=x.device)
    # floor(u * (n + 1)) with u in [0, 1) is uniform over 0..n: every position inside the image.
    top = (torch.rand(batch_size, 1, 1, device=x.device) * (height - box_h + 1)).long()
    left = (torch.rand(batch_size, 1, 1, device=x.device) * (width - box_w + 1)).long()
    rows = torch.arange(height, device=x.device).view(1, height, 1)
    cols = torch.arange(width, device=x.device).view(1, 1, width)
    in_box = (rows >= top) & (rows < top + box_h) & (cols >= left) & (cols < left + box_w)
    mask = (~in_box).to(x.dtype).unsqueeze(1)
    x = x * mask
    # -------------------------------- END TODO #1 --------------------------------
    return x


AUGMENT_FNS = {
    "color": [rand_brightness, rand_saturation, rand_contrast],
    "translation": [rand_translation],
    "cutout": [rand_cutout],
}


PREVIEW_TAG = "DiffAugment_pytorch.py cutout preview"  # in the PNG: a file the preview may replace


def _is_preview(path):
    try:
        with Image.open(path) as image:
            return image.info.get("Software") == PREVIEW_TAG
    except (UnidentifiedImageError, OSError):
        return False


def check_preview_path(out_path):
    """Refuse an --out that is a folder, not a .png, or a file that this preview did not write."""
    if os.path.isdir(out_path):
        raise SystemExit(f"--out {out_path} is a folder: give a file name such as cutout_img.png.")
    if not out_path.lower().endswith(".png"):
        raise SystemExit(f"--out {out_path} must end in .png: the preview is a PNG image.")
    if os.path.exists(out_path) and not _is_preview(out_path):
        raise SystemExit(
            f"{out_path} exists and was not written by this preview; nothing was changed: "
            "choose another --out."
        )


def preview_cutout(image_path, out_path, copies=4):
    """Write the image beside `copies` random cutouts of it, as one PNG."""
    from outputs import atomic_write  # here: the augmentations themselves need nothing else

    from training.todo import unfilled_todo

    check_preview_path(out_path)
    if not os.path.isfile(image_path):
        raise SystemExit(
            f"Image {image_path} not found: run python dataset_download.py first "
            "(or pass another image with --image)."
        )
    try:
        with Image.open(image_path) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as error:
        raise SystemExit(
            f"Cannot read {image_path} as an image ({error}): pass a PNG or JPEG."
        ) from None

    # Pixels in [0, 1] here, so the zeroed box shows black. (In training, images lie in
    # [-1, 1] and the box is mid-gray.)
    image = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0)
    try:
        cutouts = rand_cutout(image.repeat(copies, 1, 1, 1))
    except NotImplementedError as error:
        if not unfilled_todo(error):
            raise
        raise SystemExit("rand_cutout is not implemented yet: fill in TODO #1 first.") from None
    row = torch.cat([image, cutouts], dim=0).permute(0, 2, 3, 1)  # [1 + copies, H, W, 3]
    row = torch.cat(list(row), dim=1)  # side by side: [H, (1 + copies) * W, 3]
    row = (row.clamp(0, 1) * 255).round().to(torch.uint8).numpy()

    tag = PngInfo()
    tag.add_text("Software", PREVIEW_TAG)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        image = Image.fromarray(row)
        atomic_write(out_path, lambda file: image.save(file, format="PNG", pnginfo=tag))
    except OSError as error:
        raise SystemExit(
            f"Cannot write {out_path} ({error.strerror or error}): choose another --out."
        ) from None


def main(argv=None):
    parser = argparse.ArgumentParser(description="Preview rand_cutout on one training image.")
    parser.add_argument("--image", default=os.path.join("many_shot_dog", "0.png"))
    parser.add_argument("--out", default="cutout_img.png")
    args = parser.parse_args(argv)
    preview_cutout(args.image, args.out)
    print(f"Wrote {args.out}: the original (left) and 4 random cutouts of {args.image}.")


if __name__ == "__main__":
    sys.exit(main())
