"""Sec. 4 and 5 of the handout: generate faces with your DDPM or DDIM scheduler.

    python execute_DDPM_DDIM.py --scheduler_name DDPM   # 1000 steps, images in DDPM_results/
    python execute_DDPM_DDIM.py --scheduler_name DDIM   # 50 steps, images in DDIM_results/

The pretrained model (google/ddpm-celebahq-256) is downloaded into the Hugging Face cache on the
first run (see README.md for the cluster). All images of a batch are denoised together.
"""

import time

import click
import torch

from scheduler.DDIM_scheduler import DDIMScheduler
from scheduler.DDPM_scheduler import DDPMScheduler
from utils.cli import DtypeChoice, check_steps, todo_errors
from utils.device import autocast_dtype, pick_device
from utils.hub import ModelError
from utils.io import ResultsFolder, save_image
from utils.sampling import generate, load_unet_and_scheduler, prepare_unet

SCHEDULERS = {"DDPM": (DDPMScheduler, 1000), "DDIM": (DDIMScheduler, 50)}  # class, default steps


@click.command()
@click.option(
    "--scheduler_name",
    type=click.Choice(list(SCHEDULERS), case_sensitive=False),
    required=True,
    help="DDPM (Sec. 4) or DDIM (Sec. 5).",
)
@click.option(
    "--model_id",
    default="google/ddpm-celebahq-256",
    show_default=True,
    help="Hub id, or a local folder with unet/ and scheduler/ (or their files at its root).",
)
@click.option("--num_images", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--batch_size",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Images denoised together; lower it if the GPU runs out of memory.",
)
@click.option(
    "--num_inference_steps",
    type=click.IntRange(min=1),
    default=None,
    help="Denoising steps [default: 1000 for DDPM, 50 for DDIM].",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Image i starts from the noise of seed + i.",
)
@click.option(
    "--outdir",
    type=click.Path(file_okay=False),
    default=None,
    help="Output folder: a new one, or one with this command's earlier results, which it "
    "replaces [default: <scheduler_name>_results].",
)
@click.option(
    "--dtype",
    type=DtypeChoice(),
    default="auto",
    show_default=True,
    help="UNet precision; auto: fp16 on a GPU, fp32 on the CPU.",
)
def main(
    scheduler_name, model_id, num_images, batch_size, num_inference_steps, seed, outdir, dtype
):
    """Generate unconditional face images with the DDPM or DDIM scheduler."""
    scheduler_class, default_steps = SCHEDULERS[scheduler_name]
    num_inference_steps = num_inference_steps or default_steps
    outdir = outdir or f"{scheduler_name}_results"
    owner = f"execute_DDPM_DDIM.py --scheduler_name {scheduler_name}"
    with ResultsFolder(outdir, owner, "--outdir") as tmp, todo_errors():
        try:
            unet, scheduler = load_unet_and_scheduler(model_id, scheduler_class)
        except ModelError as err:
            raise click.ClickException(str(err)) from None
        check_steps(num_inference_steps, scheduler)
        device = pick_device()
        if device.type == "cpu":
            click.echo("No GPU found: sampling on the CPU (slow for the real 256x256 model).")
        unet = prepare_unet(unet, device)

        start = time.perf_counter()
        images = generate(
            unet,
            scheduler,
            num_images,
            num_inference_steps,
            seed=seed,
            batch_size=batch_size,
            dtype=autocast_dtype(dtype, device),
        )
        seconds = time.perf_counter() - start
        for i, image in enumerate(images):
            save_image(image, tmp / f"{scheduler_name}_generated_image{i}.png")
    click.echo(
        f"{scheduler_name}: {num_images} images, {num_inference_steps} steps in {seconds:.1f} s "
        f"({seconds / num_images:.2f} s per image) on {torch.device(device)}; saved to {outdir}/"
    )


if __name__ == "__main__":
    main()
