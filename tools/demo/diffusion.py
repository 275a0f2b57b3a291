"""Demo of Part B's DDPM, DDIM and DPS commands on a tiny random UNet (CPU, about a minute).

    python -m tools.demo.diffusion   (from the repository root)

Writes a tiny UNet2DModel and the scheduler config of google/ddpm-celebahq-256 to
demo-output/diffusion/tiny-ddpm/{unet,scheduler} with save_pretrained, then runs the real
execute_DDPM_DDIM.py and execute_DPS.py on it (from Diffusion_homework/, as students do).
The images are noise-like: the weights are random. The tests build their models with
build_tiny_ddpm as well.
"""

import json
import os
import time
from pathlib import Path

from tools.demo.common import require_done, run

ROOT = Path(__file__).resolve().parents[2]

# scheduler_config.json of google/ddpm-celebahq-256, as published (with its legacy keys).
CELEBAHQ_SCHEDULER = {
    "_class_name": "DDPMScheduler",
    "_diffusers_version": "0.0.4",
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "beta_start": 0.0001,
    "clip_sample": True,
    "num_train_timesteps": 1000,
    "timestep_values": None,
    "trained_betas": None,
    "variance_type": "fixed_small",
}


def build_tiny_ddpm(folder, sample_size=32, seed=0, root_layout=False):
    """Save a tiny UNet2DModel (random weights, ~1 MB) and the celebahq scheduler config.

    Pipeline layout (unet/, scheduler/) by default; root_layout=True puts the files at the root,
    as the google/ddpm-* repositories do. Returns the folder.
    """
    import torch  # here, not at the top: the demo checks its TODOs before loading these
    from diffusers import UNet2DModel

    folder = Path(folder)
    torch.manual_seed(seed)
    unet = UNet2DModel(
        sample_size=sample_size,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
        norm_eps=1e-6,
        freq_shift=1,
        flip_sin_to_cos=False,
        downsample_padding=0,
    )
    unet.save_pretrained(folder if root_layout else folder / "unet")
    scheduler_file = folder / ("" if root_layout else "scheduler") / "scheduler_config.json"
    scheduler_file.parent.mkdir(parents=True, exist_ok=True)
    scheduler_file.write_text(json.dumps(CELEBAHQ_SCHEDULER, indent=2))
    return folder


def main():
    require_done("Diffusion (DDPM, DDIM, DPS)", ("Diffusion_homework/scheduler/",))
    out = ROOT / "demo-output" / "diffusion"
    model = build_tiny_ddpm(out / "tiny-ddpm")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    common = ["--model_id", str(model), "--num_images", "4", "--batch_size", "2"]
    run("Diffusion_homework", ["execute_DDPM_DDIM.py", "--scheduler_name", "DDPM", "--num_inference_steps", "20",
         "--outdir", str(out / "DDPM_results"), *common], env)  # fmt: skip
    run("Diffusion_homework", ["execute_DDPM_DDIM.py", "--scheduler_name", "DDIM",
         "--outdir", str(out / "DDIM_results"), *common], env)  # fmt: skip
    run("Diffusion_homework", ["execute_DPS.py", "--model_id", str(model), "--num_inference_steps", "20",
         "--outdir", str(out / "DPS_results")], env)  # fmt: skip
    print(f"Diffusion demo done in {time.perf_counter() - start:.0f} s; outputs in {out}/")


if __name__ == "__main__":
    main()
