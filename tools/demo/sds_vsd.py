"""Demo of Part B's execute_SDS_VSD.py on a tiny Stable Diffusion with random weights (CPU, seconds).

    python tools/demo/sds_vsd.py

Writes a tiny SD (unet/, vae/, text_encoder/, tokenizer/, scheduler/) into demo-output/sds_vsd/tiny-sd,
then runs the real command from Diffusion_homework/ as students do -- SDS at guidance 7.5 and 100,
and VSD -- for a few steps at 64x64 with --model_path pointing at it. The images are noise (the
weights are random); the point is that every output the handout names is written.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tiny_sd import build_tiny_sd

ROOT = Path(__file__).resolve().parents[2]
HOMEWORK = ROOT / "Diffusion_homework"
OUT = ROOT / "demo-output" / "sds_vsd"
RUNS = [
    ("sds", "SDS_results", []),
    ("sds", "SDS_results_cfg100", ["--guidance_scale=100"]),
    ("vsd", "VSD_results", []),
]


def run(mode, store, extra, model):
    command = [sys.executable, "execute_SDS_VSD.py", f"--generation_mode={mode}",
               f"--store_dir={OUT / store}", *extra, f"--model_path={model}",
               "--height=64", "--width=64", "--num_steps=20", "--log_every=5"]  # fmt: skip
    print("$ cd Diffusion_homework && " + " ".join(command[1:]), flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env.setdefault("HF_HUB_OFFLINE", "1")
    subprocess.run(command, cwd=HOMEWORK, env=env, check=True)


def main():
    start = time.perf_counter()
    shutil.rmtree(OUT, ignore_errors=True)
    model = build_tiny_sd(OUT / "tiny-sd")
    print(f"tiny Stable Diffusion written to {model}", flush=True)
    for mode, store, extra in RUNS:
        run(mode, store, extra, model)
    print(f"\nSDS/VSD demo done in {time.perf_counter() - start:.0f} s. Outputs:")
    for _, store, _ in RUNS:
        names = ", ".join(sorted(p.name for p in (OUT / store).iterdir()))
        print(f"  {OUT / store}: {names}")


if __name__ == "__main__":
    main()
