"""Speed and peak GPU memory of SDS and VSD at the real configuration, half precision vs float32.

    python benchmarks/sds_vsd.py               # GPU: SD 2.1 base shapes, 512x512, random weights
    python benchmarks/sds_vsd.py --cpu-tiny    # seconds on a CPU: the tiny test model, same code

Runs `execute_SDS_VSD.optimize` (the loop the command runs, with its VAE decodes at the logging
steps) on Stable Diffusion 2.1 base built from its configs with random weights (no download), once
with UNet/VAE/text encoder in float16 (what the command does on a GPU) and once in float32 (the
original course code's precision), and prints iterations per second and peak GPU memory side by side.
Goals: VSD under 8 GB at 512x512, at least 2x the float32 iterations per second. The original code
(float32, a second UNet copy for the LoRA model) peaked at about 16 GB.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "Diffusion_homework")]

import execute_SDS_VSD  # noqa: E402
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel  # noqa: E402

from tools.demo.tiny_sd import build_tiny_sd  # noqa: E402
from utils.device import pick_device, weights_dtype  # noqa: E402
from utils.sd_models import StableDiffusion, encode_prompts, load_stable_diffusion  # noqa: E402

# Stable Diffusion 2.1 base (unet/, vae/, text_encoder/ config.json of the model repository).
UNET_CONFIG = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    cross_attention_dim=1024,
    attention_head_dim=(5, 10, 20, 20),
    use_linear_projection=True,
)
VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    latent_channels=4,
    sample_size=512,
    scaling_factor=0.18215,
)
TEXT_CONFIG = dict(  # OpenCLIP ViT-H/14 text tower without its last layer, as SD 2 uses it
    vocab_size=49408,
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=23,
    num_attention_heads=16,
    max_position_embeddings=77,
    hidden_act="gelu",
    projection_dim=512,
)
SCHEDULER_CONFIG = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)


@torch.no_grad()
def real_text_embeddings(device, dtype):
    """Embeddings of two random token sequences; the text encoder is freed afterwards (as in the command)."""
    with device:
        text_encoder = CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG)).to(dtype)
    tokens = torch.randint(0, TEXT_CONFIG["vocab_size"], (2, 77), device=device)
    return text_encoder(tokens)[0]


def real_sd(device, dtype):
    with device:
        unet = UNet2DConditionModel(**UNET_CONFIG).to(dtype)
        vae = AutoencoderKL(**VAE_CONFIG).to(dtype)
    unet.requires_grad_(False).eval()
    vae.requires_grad_(False).eval()
    return StableDiffusion(unet=unet, vae=vae, scheduler=DDPMScheduler(**SCHEDULER_CONFIG))


def measure(mode, dtype, device, steps, size, tiny_folder=None):
    """(iterations per second, peak GPU memory in GiB or None) of one optimize() run."""
    if device.type == "cuda":
        # float32 runs with PyTorch's defaults (no TF32 matmuls), as the original code did.
        torch.backends.cuda.matmul.allow_tf32 = dtype != torch.float32
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    if tiny_folder:
        text = encode_prompts(tiny_folder, ["", "an astronaut"], device, dtype)
        sd = load_stable_diffusion(tiny_folder, device, dtype)
    else:
        text = real_text_embeddings(device, dtype)
        sd = real_sd(device, dtype)
    # Decodes at the first and last step: about the share of the real run (11 in 500 steps).
    settings = execute_SDS_VSD.Settings(
        generation_mode=mode, num_steps=steps, height=size, width=size, log_every=steps
    )
    warmup = execute_SDS_VSD.Settings(**{**vars(settings), "num_steps": 2, "log_every": 2})
    execute_SDS_VSD.optimize(sd, text, warmup, log=lambda _: None, progress=False)
    if mode == "vsd":
        sd.unet.delete_adapters("default")  # optimize() attaches a fresh LoRA
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    execute_SDS_VSD.optimize(sd, text, settings, log=lambda _: None, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    del sd, text
    return steps / seconds, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-tiny", action="store_true", help="tiny model on the CPU, seconds")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per run")
    args = parser.parse_args()

    if args.cpu_tiny:
        device, size, steps = torch.device("cpu"), 32, args.steps or 4
        half = torch.float16  # slow on a CPU, but the same code path as on a GPU
        tiny_folder = build_tiny_sd(Path(tempfile.mkdtemp(prefix="sds-bench-")) / "tiny-sd")
    else:
        device = pick_device()
        if device.type != "cuda":
            sys.exit("No GPU found: run with --cpu-tiny on a machine without one.")
        size, steps = 512, args.steps or 50
        half, tiny_folder = weights_dtype("auto", device), None  # what the command runs in
        print(torch.cuda.get_device_name(), f"{size}x{size}, {steps} timed steps, random weights")

    print(f"{'mode':5} {'precision':10} {'it/s':>8} {'peak GiB':>9}")
    for mode in ("sds", "vsd"):
        results = {}
        for dtype in (torch.float32, half):
            speed, peak = measure(mode, dtype, device, steps, size, tiny_folder)
            results[dtype] = (speed, peak)
            peak_text = f"{peak:9.2f}" if peak is not None else f"{'n/a':>9}"
            print(f"{mode:5} {str(dtype).replace('torch.', ''):10} {speed:8.2f} {peak_text}")
        (base_speed, base_peak), (speed, peak) = results[torch.float32], results[half]
        line = f"{mode}: speed-up {speed / base_speed:.2f}x over float32"
        if peak is not None:
            line += f", peak memory {peak:.2f} GiB ({peak / base_peak:.2f}x of float32)"
        print(line)


if __name__ == "__main__":
    main()
