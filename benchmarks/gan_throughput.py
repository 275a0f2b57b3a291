"""GAN training throughput: s/kimg and peak GPU memory of train.py's loop at the course config.

    python benchmarks/gan_throughput.py              # GPU, low_shot 256x256, the handout's 3 settings
    python benchmarks/gan_throughput.py --cpu-tiny   # seconds on CPU: the tiny config, checks the script

For each setting (no regularization / R1 / R1 + DiffAugment) it times the same training loop twice
in this one run: as train.py runs it (--precision mixed: fp16 in the 4 highest resolutions, TF32) and a
plain fp32 baseline (--precision fp32: no fp16 layers, no TF32), on random images, and prints both
with their ratio. Timed iterations are whole multiples of 16 so that each includes its share of the
lazy R1 (every 16) and path-length (every 4) steps. The original course code's figures on an A40 are
printed for reference (not measured here).

It then times one snapshot of `train.py --metrics kid` (G_ema's KID of 1000 generated images, as
training/snapshot_kid.py computes it at every snapshot), in seconds per snapshot. With
`--kid-detector FILE` (the TorchScript Inception of calc_metrics.py, e.g. from the cache that
`slurm/setup_env.sh models` fills) the figure is the real cost; without it a trivial stand-in
detector is used, so the figure is the generation of the 1000 images alone (a lower bound).
"""

import gc
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "GAN_homework"))

import torch  # noqa: E402

from training.config import CONFIGS, RunConfig  # noqa: E402
from training.dataset import ImageDataset  # noqa: E402
from training.device import pick_device  # noqa: E402
from training.distributed import Dist  # noqa: E402
from training.snapshot_kid import NUM_GEN, SnapshotKID  # noqa: E402
from training.training_loop import Trainer  # noqa: E402

SETTINGS = [
    ("no regularization", False, False),
    ("R1", True, False),
    ("R1 + DiffAugment", True, True),
]
A40_ORIGINAL_S_PER_KIMG = {"no regularization": 108, "R1": 174, "R1 + DiffAugment": 174}


def random_images(folder: Path, count: int, resolution: int) -> Path:
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8)).save(
            folder / f"{i}.png"
        )
    return folder


def mem(gb: float | None) -> str:
    return "n/a" if gb is None else f"{gb:.2f}"


def measure(cfg_name, data, r1, aug, precision, dist, warmup, iters) -> tuple[float, float | None]:
    """(s/kimg, peak GPU GB) of `iters` training iterations after `warmup` ones."""
    cfg = CONFIGS[cfg_name]
    run = RunConfig(data=str(data), train=cfg, use_r1_regularization=r1, use_diffaug=aug,
                    workers=2, precision=precision)  # fmt: skip
    dataset = ImageDataset(run.data, cfg.resolution, run.workers)
    trainer = Trainer(run, dist, dataset, log=lambda line: None)
    sums = {}
    for _ in range(warmup):
        trainer.train_one_iteration(sums)
    trainer.sync()
    if dist.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dist.device)
    start = time.perf_counter()
    for _ in range(iters):
        trainer.train_one_iteration(sums)
    trainer.sync()
    seconds = time.perf_counter() - start
    memory = (
        torch.cuda.max_memory_allocated(dist.device) / 2**30 if dist.device.type == "cuda" else None
    )
    del trainer
    gc.collect()
    if dist.device.type == "cuda":
        torch.cuda.empty_cache()
    return seconds / iters * 1000 / cfg.batch, memory


@click.command()
@click.option(
    "--cpu-tiny", is_flag=True, help="Tiny config on CPU, a few iterations (checks the script)."
)
@click.option(
    "--iters", type=click.IntRange(min=1), default=32, show_default=True, help="Timed iterations."
)
@click.option("--warmup", type=click.IntRange(min=0), default=16, show_default=True)
@click.option(
    "--kid-detector",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="TorchScript feature network for the KID row [default: a stand-in: generation only].",
)
def main(cpu_tiny, iters, warmup, kid_detector):
    if cpu_tiny:
        cfg_name, iters, warmup = "tiny", min(iters, 2), min(warmup, 1)
    elif pick_device().type != "cuda":
        raise click.ClickException(
            "no GPU found; run on a GPU node, or use --cpu-tiny to check the script on CPU."
        )
    else:
        cfg_name, iters = "low_shot", -(-iters // 16) * 16  # whole lazy-regularization cycles
    dist = Dist(cpu_only=cpu_tiny)
    cfg = CONFIGS[cfg_name]
    device = torch.cuda.get_device_name(dist.device) if dist.device.type == "cuda" else "CPU"
    click.echo(f"config {cfg_name} ({cfg.resolution}x{cfg.resolution}, batch {cfg.batch}) on {device}; "
               f"{warmup} warm-up + {iters} timed iterations per row")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = random_images(Path(tmp), 16, cfg.resolution)
        for name, r1, aug in SETTINGS:
            fast = measure(cfg_name, data, r1, aug, "mixed", dist, warmup, iters)
            base = measure(cfg_name, data, r1, aug, "fp32", dist, warmup, iters)
            rows.append((name, fast, base))
            click.echo(f"  measured {name}", err=True)
        kid_seconds, kid_what = measure_kid(cfg_name, data, dist, kid_detector, Path(tmp))
    header = f"{'setting':<18} {'s/kimg':>8} {'fp32 s/kimg':>12} {'speedup':>8} {'GB':>6} {'fp32 GB':>8} {'A40 orig':>9}"
    click.echo(header)
    click.echo("-" * len(header))
    for name, (fast_s, fast_gb), (base_s, base_gb) in rows:
        click.echo(f"{name:<18} {fast_s:>8.2f} {base_s:>12.2f} {base_s / fast_s:>7.2f}x {mem(fast_gb):>6} "
                   f"{mem(base_gb):>8} {A40_ORIGINAL_S_PER_KIMG[name]:>9}")  # fmt: skip
    click.echo(
        "s/kimg: seconds per 1000 training images; speedup = fp32 baseline / train.py's default "
        "(mixed). A40 orig: the original course code on an A40 (108 s/kimg without "
        "regularization, 174 with R1 or DiffAug, 6.6 GB), for reference only."
    )
    click.echo(f"KID snapshot (--metrics kid, {NUM_GEN} images, {kid_what}): {kid_seconds:.1f} s")


class StandInDetector(torch.nn.Module):
    """Follows the detector contract at almost no cost: the mean color of each image's quadrants."""

    def forward(self, images: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(images.float() / 255, 2).flatten(1)


def measure_kid(cfg_name, data, dist, detector, tmp: Path) -> tuple[float, str]:
    """Seconds of one KID snapshot of train.py (SnapshotKID.__call__), after one untimed call."""
    if detector is None:
        detector = tmp / "stand_in_detector.pt"
        torch.jit.save(torch.jit.script(StandInDetector()), str(detector))
        what = "generation only: stand-in detector"
    else:
        what = f"detector {Path(detector).name}"
    run = RunConfig(data=str(data), train=CONFIGS[cfg_name], use_r1_regularization=True,
                    use_diffaug=True, workers=2)  # fmt: skip
    dataset = ImageDataset(run.data, run.train.resolution, run.workers)
    kid = SnapshotKID(Path(detector), Path(data), dist.device, run.seed)
    trainer = Trainer(run, dist, dataset, log=lambda line: None, kid=kid)
    kid(trainer.G_ema, 0, tmp)  # warm-up: kernels, cuDNN autotuning
    trainer.sync()
    _, seconds = kid(trainer.G_ema, 0, tmp)
    return seconds, what


if __name__ == "__main__":
    main()
