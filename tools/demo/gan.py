"""Demo of Part A's train.py on 16 generated "dog" images with the tiny config (CPU, about a minute).

    python -m tools.demo.gan   (from the repository root)

Draws 16 colored blobs of 32x32 into demo-output/gan/data/many_shot_dog, then runs the real command from
GAN_homework/ as students do -- with R1 and DiffAugment, 40 iterations, a snapshot every 20 -- and
continues the run with --resume auto to 50 iterations, as a job after the cluster's time limit would.
Prints where the sample grids, log and checkpoints are.
"""

import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image

from tools.demo.common import require_done, run

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "demo-output" / "gan"


def draw_dogs(folder: Path, count: int = 16, size: int = 32, seed: int = 0) -> Path:
    """`count` soft colored blobs on plain backgrounds, saved as 0.png ... like many_shot_dog/."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(count):
        cx, cy, r = rng.uniform(0.35, 0.65, 2).tolist() + [rng.uniform(0.15, 0.3)]
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r**2))[..., None]
        pixels = blob * rng.uniform(0, 255, 3) + (1 - blob) * rng.uniform(0, 255, 3)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    return folder


def train(*extra: str) -> None:
    run("GAN_homework", ["train.py", "--outdir", str(OUT / "training-runs"), "--data", str(OUT / "data" / "many_shot_dog"),
                         "--cfg", "tiny", "--use_r1_regularization", "True", "--use_diffaug", "True", "--snap", "20",
                         *extra])  # fmt: skip


def main() -> None:
    require_done("GAN", ("GAN_homework/",))
    start = time.perf_counter()
    shutil.rmtree(OUT, ignore_errors=True)
    draw_dogs(OUT / "data" / "many_shot_dog")
    train("--iters", "40")
    train("--iters", "50", "--resume", "auto")
    run = next((OUT / "training-runs").iterdir())
    grids = sorted(run.glob("fakes*iter_trained.png"))
    print(f"\nrun folder:  {run}")
    print(
        f"log:         {run / 'log.txt'} (first line: {(run / 'log.txt').read_text().splitlines()[0]})"
    )
    print(f"reals:       {run / 'reals.png'}")
    print(f"samples:     {', '.join(g.name for g in grids)}")
    print(f"latest grid: {grids[-1]}")
    print(f"curves:      {run / 'training_curves.png'}")
    print(f"checkpoints: {', '.join(sorted(p.name for p in run.glob('checkpoint-*.pt')))}")
    print(f"demo took {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
