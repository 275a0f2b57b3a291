"""Sec. 6 of the handout: inpaint the faces in __asset__/ with DDIM + DPS (Eq. (11)).

    python execute_DPS.py                              # 1000 steps, results in DPS_results/
    python execute_DPS.py --num_inference_steps 100    # fewer steps (Task 5)

Each image loses a random 30-70% of its pixels and gets Gaussian noise (sigma 0.05): y = A(x) + n.
DPS then samples a face whose masked version matches y. Writes DPS_masked_input_image<i>.png,
DPS_generated_image<i>.png and DPS_grid.png (rows: original | masked input | result).
"""

import time
from pathlib import Path

import click
import torch
from PIL import Image, UnidentifiedImageError

from scheduler.DDIM_scheduler import DDIMScheduler
from utils.cli import DtypeChoice, check_steps, todo_errors
from utils.device import autocast_dtype, pick_device
from utils.hub import ModelError
from utils.inpainting import InpaintingOperator
from utils.io import ResultsFolder, save_image
from utils.sampling import dps_inpaint, load_unet_and_scheduler, prepare_unet

ASSETS = Path(__file__).resolve().parent / "__asset__"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# The inpainting problem of the handout: keep these fixed.
MASKED_FRACTION = (0.3, 0.7)  # fraction of pixels removed, drawn per image
NOISE_SIGMA = 0.05  # std of the measurement noise n, images in [-1, 1]
DPS_SCALE = 0.5  # the step size alpha_t of Eq. (11)


def random_pixel_mask(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """[B, C, H, W] masks of 0/1; each image loses a random fraction of its pixels (all channels)."""
    batch, channels, height, width = shape
    masks = torch.ones(batch, 1, height * width)
    low, high = MASKED_FRACTION
    for mask in masks:
        fraction = low + (high - low) * torch.rand((), generator=generator).item()
        missing = torch.randperm(height * width, generator=generator)[
            : round(fraction * height * width)
        ]
        mask[0, missing] = 0
    return masks.view(batch, 1, height, width).expand(shape).contiguous()


def handout_images() -> list[Path]:
    """The face images in __asset__/ that the handout inpaints."""
    paths = sorted(p for p in ASSETS.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        problem = "holds no PNG or JPEG image" if ASSETS.is_dir() else "is missing"
        raise click.ClickException(
            f"The folder {ASSETS} with the handout's face images {problem}: restore it from the "
            "starter, or pass your own images with --images."
        )
    return paths


def read_images(paths: list[Path]) -> list[Image.Image]:
    images = []
    for path in paths:
        try:
            images.append(Image.open(path).convert("RGB"))
        except (OSError, UnidentifiedImageError):
            raise click.BadParameter(
                f"cannot read image {path}; pass PNG or JPEG files.", param_hint="--images"
            ) from None
    return images


def to_tensor(images: list[Image.Image], size: tuple[int, int]) -> torch.Tensor:
    """Images as [B, 3, H, W] in [-1, 1]: center-cropped to a square, resized to the model's size."""
    tensors = []
    for image in images:
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side))
        image = image.resize((size[1], size[0]), Image.Resampling.LANCZOS)
        pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
        tensors.append(pixels.view(size[0], size[1], 3).permute(2, 0, 1).float() / 127.5 - 1)
    return torch.stack(tensors)


@click.command()
@click.option(
    "--images",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="Images to inpaint (repeat the flag) [default: the 3 images in __asset__/].",
)
@click.option(
    "--model_id",
    default="google/ddpm-celebahq-256",
    show_default=True,
    help="Hub id, or a local folder with unet/ and scheduler/ (or their files at its root).",
)
@click.option(
    "--num_inference_steps",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="DDIM steps, each with a DPS correction.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seeds the masks, the measurement noise and the sampling.",
)
@click.option(
    "--outdir",
    type=click.Path(file_okay=False),
    default="DPS_results",
    show_default=True,
    help="Output folder: a new one, or one with this command's earlier results, which it replaces.",
)
@click.option(
    "--dtype",
    type=DtypeChoice(),
    default="auto",
    show_default=True,
    help="UNet precision; auto: bf16 on a GPU, fp32 on the CPU.",
)
def main(images, model_id, num_inference_steps, seed, outdir, dtype):
    """Inpaint images with diffusion posterior sampling (DDIM + DPS)."""
    with ResultsFolder(outdir, "execute_DPS.py", "--outdir") as tmp, todo_errors():
        paths = list(images) or handout_images()
        pictures = read_images(paths)
        try:
            unet, scheduler = load_unet_and_scheduler(model_id, DDIMScheduler)
        except ModelError as err:
            raise click.ClickException(str(err)) from None
        check_steps(num_inference_steps, scheduler)
        size = unet.config.sample_size
        originals = to_tensor(pictures, (size, size) if isinstance(size, int) else tuple(size))

        generator = torch.Generator().manual_seed(seed)
        masks = random_pixel_mask(originals.shape, generator)
        operator = InpaintingOperator()
        noise = torch.randn(originals.shape, generator=generator)
        measurements = operator.forward(originals, masks) + NOISE_SIGMA * noise  # y = A(x) + n

        device = pick_device()
        if device.type == "cpu":
            click.echo("No GPU found: sampling on the CPU (slow for the real 256x256 model).")
        unet = prepare_unet(unet, device)
        start = time.perf_counter()
        results = dps_inpaint(
            unet,
            scheduler,
            measurements.to(device),
            masks.to(device),
            operator,
            num_inference_steps,
            seed=seed,
            dps_scale=DPS_SCALE,
            # bf16 keeps the range of fp32, so the small DPS gradients through the UNet do not
            # underflow
            dtype=autocast_dtype(dtype, device, auto="bf16"),
        )
        seconds = time.perf_counter() - start

        for i, (measurement, result) in enumerate(zip(measurements, results)):
            save_image(measurement, tmp / f"DPS_masked_input_image{i}.png")
            save_image(result, tmp / f"DPS_generated_image{i}.png")
        rows = [torch.cat(row, dim=2) for row in zip(originals, measurements, results)]
        save_image(torch.cat(rows, dim=1), tmp / "DPS_grid.png")
    click.echo(
        f"DPS: {len(paths)} images, {num_inference_steps} steps in {seconds:.1f} s "
        f"({seconds / len(paths):.2f} s per image) on {device}; saved to {outdir}/"
    )


if __name__ == "__main__":
    main()
