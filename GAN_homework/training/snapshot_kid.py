"""KID during training (train.py --metrics kid): G_ema's KID at every snapshot, into metrics.jsonl.

The measure is calc_metrics.py's (both take it from training/metrics.py): the same detector, the
same real-feature cache beside the dataset and the same generation, with 1000 generated images
instead of 5000 so that a snapshot stays short.
The latents and noise come from one fixed seed, so the numbers of two snapshots differ only by the
generator.
"""

import json
import time
from pathlib import Path

import torch
from outputs import append_line

from training import metrics
from training.plots import METRICS_NAME

NUM_GEN = 1000
BATCH = 64  # images per generator and detector call


class SnapshotKID:
    """The detector and the real images' features of one run, loaded once at its start.

    Args:
        detector_path (`Path`): TorchScript feature network (the contract of training/metrics.py).
        data_path (`Path`): the training images; their features are read from the cache beside
            them, or computed and cached there.
        device (`torch.device`): where G_ema and the detector run.
        seed (`int`): latents, noise and KID's random subsets; the same at every snapshot.
    """

    def __init__(self, detector_path: Path, data_path: Path, device: torch.device, seed: int):
        self.device, self.seed = device, seed
        self.detector = metrics.load_detector(detector_path, device)
        detector_hash = metrics.file_sha256(detector_path)
        self.real = metrics.real_features(
            Path(data_path), self.detector, detector_hash, BATCH, device
        )

    def __call__(self, G: torch.nn.Module, iteration: int, run_dir: Path) -> tuple[dict, float]:
        """Append G's KID record to run_dir/metrics.jsonl; returns (record, seconds taken).
        Neither the training RNG streams nor G's train/eval mode are changed."""
        start = time.perf_counter()
        was_training = G.training
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            G.eval()
            with torch.random.fork_rng(devices=devices):
                fake = metrics.generated_features(
                    G, self.detector, NUM_GEN, self.seed, BATCH, self.device
                )
        finally:
            G.train(was_training)
        record = {
            "metric": "kid",
            "value": metrics.kid(self.real, fake, seed=self.seed),
            "num_gen": len(fake),
            "num_real": len(self.real),
            "iteration": iteration,
        }
        append_line(Path(run_dir) / METRICS_NAME, json.dumps(record))
        return record, time.perf_counter() - start
