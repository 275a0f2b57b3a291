"""Demo of Part B's execute_SDS_VSD.py on a tiny Stable Diffusion with random weights (CPU, seconds).

    python -m tools.demo.sds_vsd   (from the repository root)

Writes a tiny SD (unet/, vae/, text_encoder/, tokenizer/, scheduler/) into demo-output/sds_vsd/tiny-sd,
then runs the real command from Diffusion_homework/ as students do -- SDS at guidance 7.5 and 100,
and VSD -- for a few steps at 64x64 with --model_path pointing at it. The images are noise (the
weights are random); the point is that every output the handout names is written.
"""

import os
import shutil
import time
from pathlib import Path

from tools.demo.common import require_done, run

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "demo-output" / "sds_vsd"
RUNS = [
    ("sds", "SDS_results", []),
    ("sds", "SDS_results_cfg100", ["--guidance_scale=100"]),
    ("vsd", "VSD_results", []),
]


def distill(mode, store, extra, model):
    run("Diffusion_homework", ["execute_SDS_VSD.py", f"--generation_mode={mode}",
                               f"--store_dir={OUT / store}", *extra, f"--model_path={model}",
                               "--height=64", "--width=64", "--num_steps=20", "--log_every=5"],
        {"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")})  # fmt: skip


def main():
    require_done(
        "SDS/VSD",
        ("Diffusion_homework/execute_SDS_VSD.py", "Diffusion_homework/utils/sds_vsd_utils.py"),
    )
    from tools.demo.tiny_sd import build_tiny_sd  # torch and diffusers: after the TODO check

    start = time.perf_counter()
    shutil.rmtree(OUT, ignore_errors=True)
    model = build_tiny_sd(OUT / "tiny-sd")
    print(f"tiny Stable Diffusion written to {model}", flush=True)
    for mode, store, extra in RUNS:
        distill(mode, store, extra, model)
    print(f"\nSDS/VSD demo done in {time.perf_counter() - start:.0f} s. Outputs:")
    for _, store, _ in RUNS:
        names = ", ".join(sorted(p.name for p in (OUT / store).iterdir()))
        print(f"  {OUT / store}: {names}")


if __name__ == "__main__":
    main()
