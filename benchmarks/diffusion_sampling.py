"""DDPM / DDIM / DPS sampling speed: the original's loop versus ours, in one run, with random weights.

    python benchmarks/diffusion_sampling.py                      # GPU, google/ddpm-celebahq-256's UNet
    python benchmarks/diffusion_sampling.py --ddpm-steps 200 --dps-steps 200   # same ratios, faster
    python benchmarks/diffusion_sampling.py --cpu-tiny           # seconds on CPU: checks the script

Baseline = the original course code's way: one image at a time, fp32, PyTorch's default backend
flags (no TF32 matmuls, no cuDNN autotuning). Ours = utils/sampling.py as the execute_*.py scripts
run it: all images in one batch, fp16 autocast (bf16 for DPS), TF32, cuDNN autotuning. Both use
the homework's schedulers and the same per-image seeds. Reported per image, with peak GPU memory
and the ratio; the original's A40 figures are printed for reference (not measured here).
"""

import argparse
import contextlib
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Diffusion_homework"))

from diffusers import UNet2DModel  # noqa: E402
from diffusers.utils.torch_utils import randn_tensor  # noqa: E402

from scheduler.DDIM_scheduler import DDIMScheduler  # noqa: E402
from scheduler.DDPM_scheduler import DDPMScheduler  # noqa: E402
from utils.device import autocast_dtype, pick_device  # noqa: E402
from utils.inpainting import InpaintingOperator  # noqa: E402
from utils.sampling import dps_inpaint, generate, prepare_unet  # noqa: E402

# google/ddpm-celebahq-256's unet/config.json (the architecture; weights are random here).
CELEBAHQ_UNET = dict(
    sample_size=256,
    in_channels=3,
    out_channels=3,
    layers_per_block=2,
    block_out_channels=(128, 128, 256, 256, 512, 512),
    down_block_types=("DownBlock2D",) * 4 + ("AttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 4,
    center_input_sample=False,
    downsample_padding=0,
    flip_sin_to_cos=False,
    freq_shift=1,
    mid_block_scale_factor=1,
    norm_eps=1e-6,
    norm_num_groups=32,
    time_embedding_type="positional",
)
TINY_UNET = dict(
    sample_size=16,
    layers_per_block=1,
    block_out_channels=(16, 32),
    down_block_types=("DownBlock2D", "AttnDownBlock2D"),
    up_block_types=("AttnUpBlock2D", "UpBlock2D"),
    norm_num_groups=8,
)
# Its scheduler: linear betas 1e-4..0.02 over 1000 steps, clipped x_0 (the homework's defaults).
A40_ORIGINAL_S_PER_IMAGE = {"DDPM": "34-36", "DDIM": "1.7-3.2", "DPS": "about 70 (1000 steps)"}


def set_original_flags(original: bool):
    """PyTorch's defaults (the original code) or ours (prepare_unet sets these for the scripts)."""
    torch.backends.cuda.matmul.allow_tf32 = not original
    torch.backends.cudnn.benchmark = not original


@contextlib.contextmanager
def measure(device: torch.device, result: dict):
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    yield
    if device.type == "cuda":
        torch.cuda.synchronize()
        result["peak_gb"] = torch.cuda.max_memory_allocated() / 2**30
    result["seconds"] = time.perf_counter() - start


def original_generate(unet, scheduler, num_images, steps, seed):
    """One image at a time in fp32, as the course's original script did."""
    device, images = unet.device, []
    scheduler.set_timesteps(steps)
    for i in range(num_images):
        generator = torch.Generator(device).manual_seed(seed + i)
        x = randn_tensor((1, 3, *unet_size(unet)), generator=generator, device=device)
        with torch.no_grad():
            for t in scheduler.timesteps:
                x = scheduler.step(unet(x, t).sample, t, x, generator=generator).prev_sample
        images.append(x.clamp(-1, 1).cpu())
    return torch.cat(images)


def original_dps(unet, scheduler, measurements, masks, operator, steps, seed):
    """DPS one image at a time in fp32."""
    results = []
    for i in range(len(measurements)):
        y, mask = measurements[i : i + 1], masks[i : i + 1]
        results.append(dps_inpaint(unet, scheduler, y, mask, operator, steps, seed=seed + i))
    return torch.cat(results)


def unet_size(unet):
    size = unet.config.sample_size
    return (size, size) if isinstance(size, int) else tuple(size)


def row(name, steps, num_images, base, ours):
    def cell(result):
        memory = f", peak {result['peak_gb']:.2f} GB" if "peak_gb" in result else ""
        return f"{result['seconds'] / num_images:8.3f} s/image{memory}"

    ratio = base["seconds"] / ours["seconds"]
    print(
        f"{name:>4} {steps:5d} steps | original: {cell(base)} | ours: {cell(ours)} | {ratio:5.2f}x"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-tiny", action="store_true", help="tiny UNet on the CPU, seconds")
    parser.add_argument("--num-images", type=int, default=10)
    parser.add_argument("--ddpm-steps", type=int, default=1000)
    parser.add_argument("--ddim-steps", type=int, default=50)
    parser.add_argument("--dps-images", type=int, default=3)
    parser.add_argument("--dps-steps", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.cpu_tiny:
        device, config = torch.device("cpu"), TINY_UNET
        args.num_images, args.ddpm_steps, args.ddim_steps = 3, 8, 4
        args.dps_images, args.dps_steps = 2, 4
    else:
        device, config = pick_device(), CELEBAHQ_UNET
        if device.type != "cuda":
            raise SystemExit(
                "No GPU found; run on a GPU node, or pass --cpu-tiny to check the script."
            )
    torch.manual_seed(0)
    unet = prepare_unet(UNet2DModel(**config), device)
    fast = autocast_dtype("auto", device)
    print(f"{torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}, UNet "
          f"{sum(p.numel() for p in unet.parameters()) / 1e6:.1f} M parameters, "
          f"{unet_size(unet)} images, ours in {fast}")  # fmt: skip

    for name, scheduler_class, steps in [
        ("DDPM", DDPMScheduler, args.ddpm_steps),
        ("DDIM", DDIMScheduler, args.ddim_steps),
    ]:
        scheduler, base, ours = scheduler_class(), {}, {}
        set_original_flags(True)
        original_generate(unet, scheduler, 1, 2, seed=0)  # warm-up
        with measure(device, base):
            reference = original_generate(unet, scheduler, args.num_images, steps, seed=0)
        set_original_flags(False)
        generate(unet, scheduler, args.num_images, 2, batch_size=args.num_images, dtype=fast)
        with measure(device, ours):
            images = generate(unet, scheduler, args.num_images, steps, seed=0,
                              batch_size=args.num_images, dtype=fast)  # fmt: skip
        row(name, steps, args.num_images, base, ours)
        if name == "DDIM":  # deterministic: the two loops should give nearly the same images
            print(f"     DDIM images, largest difference ours vs original: "
                  f"{(images - reference).abs().max():.3g} (of a range of 2)")  # fmt: skip

    operator, size = InpaintingOperator(), unet_size(unet)
    generator = torch.Generator().manual_seed(0)
    clean = torch.rand(args.dps_images, 3, *size, generator=generator) * 2 - 1
    masks = (torch.rand(args.dps_images, 1, *size, generator=generator) > 0.5).float()
    masks = masks.expand_as(clean).to(device)
    measurements = operator.forward(clean.to(device), masks)
    scheduler, base, ours = DDIMScheduler(), {}, {}
    set_original_flags(True)
    with measure(device, base):
        original_dps(unet, scheduler, measurements, masks, operator, args.dps_steps, seed=0)
    set_original_flags(False)
    with measure(device, ours):
        dps_inpaint(unet, scheduler, measurements, masks, operator, args.dps_steps, seed=0,
                    dtype=autocast_dtype("auto", device, auto="bf16"))  # fmt: skip
    row("DPS", args.dps_steps, args.dps_images, base, ours)
    print("Original course code on an A40 (s/image, for reference): "
          + ", ".join(f"{k} {v}" for k, v in A40_ORIGINAL_S_PER_IMAGE.items()))  # fmt: skip


if __name__ == "__main__":
    main()
