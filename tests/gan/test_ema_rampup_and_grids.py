"""G_ema's ramp-up (its half-life grows as 0.05 x the images seen until it reaches the config's
10 kimg, so a short run's grid changes), kept by a resumed run; sample grids of small images are
enlarged to a viewable width, the handout's 256x256 grid stays as it is."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from training.config import CONFIGS, RunConfig
from training.training_loop import GRID_MIN_WIDTH, ema_beta, save_image_grid

TINY = CONFIGS["tiny"]  # batch 4, ema_kimg 10, ema_rampup 0.05


def test_the_half_life_ramps_up_then_stays_at_ema_kimg():
    fixed = 0.5 ** (4 / 10_000)
    assert ema_beta(4, 10, 0.05, 0) == 0.0, "the first step copies G"
    assert ema_beta(4, 10, 0.05, 400) == pytest.approx(0.5 ** (4 / 20))  # 100 iterations in
    assert ema_beta(4, 10, 0.05, 200_000) == fixed, "ramped up: the handout's 10 kimg"
    assert ema_beta(4, 10, 0.05, 10**7) == fixed
    assert ema_beta(4, 10, None, 0) == fixed, "without a ramp-up: 10 kimg from the start"
    betas = [ema_beta(4, 10, 0.05, n) for n in range(0, 220_000, 4000)]
    assert betas == sorted(betas)
    assert CONFIGS["low_shot"].ema_kimg == 10 and CONFIGS["low_shot"].ema_rampup == 0.05


def make_trainer(tmp_path, ema_rampup):
    from gan_helpers import write_images

    from training.dataset import ImageDataset
    from training.distributed import Dist
    from training.training_loop import Trainer

    data = write_images(tmp_path / "dogs", count=4)
    run = RunConfig(
        data=str(data),
        train=replace(TINY, ema_rampup=ema_rampup),
        use_r1_regularization=False,
        use_diffaug=False,
    )
    return Trainer(run, Dist(cpu_only=True), ImageDataset(data, 32, 1), log=lambda line: None)


def ema_distance(trainer, start):
    return sum((p - s).abs().sum().item() for p, s in zip(trainer.G_ema.parameters(), start))


def test_g_ema_follows_g_early_and_as_with_10_kimg_once_ramped_up(tmp_path):
    ramped, fixed = make_trainer(tmp_path, 0.05), make_trainer(tmp_path, None)
    for a, b in zip(ramped.G_ema.parameters(), fixed.G_ema.parameters()):
        assert torch.equal(a, b), "same seed, same initial weights"
    start = [p.clone() for p in ramped.G_ema.parameters()]
    steps = torch.Generator().manual_seed(1)
    for _ in range(20):  # the same change of G in both, as training would make, then the update
        deltas = [0.01 * torch.randn(p.shape, generator=steps) for p in ramped.G.parameters()]
        for trainer in (ramped, fixed):
            for p, d in zip(trainer.G.parameters(), deltas):
                p.add_(d)
            trainer._update_ema()
            trainer.iteration += 1
    moved, moved_fixed = ema_distance(ramped, start), ema_distance(fixed, start)
    assert moved > 20 * moved_fixed, (moved, moved_fixed)

    # ramped up (0.05 x 200,000 images = 10 kimg): the same update as the fixed half-life
    for trainer in (ramped, fixed):
        trainer.iteration = 200_000 // TINY.batch
        trainer.G_ema.load_state_dict(fixed.G_ema.state_dict())
        trainer.G.load_state_dict(fixed.G.state_dict())
    assert ramped.current_ema_beta() == fixed.current_ema_beta() == 0.5 ** (4 / 10_000)
    for p in (*ramped.G.parameters(), *fixed.G.parameters()):
        p.add_(0.5)
    for trainer in (ramped, fixed):
        trainer._update_ema()
    for a, b in zip(ramped.G_ema.parameters(), fixed.G_ema.parameters()):
        assert torch.equal(a, b)


def test_a_resumed_run_keeps_the_ramp_up_it_was_trained_with(tmp_path, tiny_data):
    from training.checkpoint import decide_start, save_checkpoint

    run = RunConfig(str(tiny_data), TINY, use_r1_regularization=False, use_diffaug=False)
    folder = tmp_path / "runs" / f"00000-{run.folder_suffix()}"
    folder.mkdir(parents=True)
    options = run.to_dict()
    del options["config"]["ema_rampup"]  # a checkpoint of a run that had no ramp-up
    save_checkpoint(folder, {"iteration": 4, "opt_G": {}, "options": options})
    resumed, start = decide_start(run, "auto", tmp_path / "runs")
    assert start.run_dir == folder
    assert resumed.train.ema_rampup is None, "it goes on with a fixed half-life, as trained"
    assert decide_start(run, None, tmp_path / "runs")[0].train.ema_rampup == 0.05, "a new run"

    options["config"]["ema_rampup"] = 0.05
    save_checkpoint(folder, {"iteration": 8, "opt_G": {}, "options": options})
    resumed, _ = decide_start(replace(run, train=replace(TINY, ema_rampup=None)), "auto",
                              tmp_path / "runs")  # fmt: skip
    assert resumed.train.ema_rampup == 0.05


def grid(images, cols, tmp_path):
    save_image_grid(images, cols, tmp_path / "grid.png")
    return torch.from_numpy(np.array(Image.open(tmp_path / "grid.png")))


def test_a_grid_of_small_images_is_enlarged_pixel_for_pixel(tmp_path):
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    big = grid(images, 4, tmp_path)  # the tiny config's 4x4 grid: 128 px, enlarged 4 times
    assert GRID_MIN_WIDTH == 512 and big.shape == (512, 512, 3)
    first = images[0].permute(1, 2, 0)
    assert torch.equal(big[:128:4, :128:4], first), "each pixel becomes a 4x4 block"
    assert torch.equal(big[3:128:4, 1:128:4], first)
    last = images[15].permute(1, 2, 0)
    assert torch.equal(big[384::4, 384::4], last)

    odd = grid(torch.zeros(6, 3, 20, 20, dtype=torch.uint8), 3, tmp_path)  # 60 px: 9 times
    assert odd.shape == (360, 540, 3)


def test_the_handouts_256_grid_is_written_as_it_is(tmp_path):
    images = torch.randint(0, 256, (4, 3, 256, 256), dtype=torch.uint8)
    out = grid(images, 2, tmp_path)
    assert out.shape == (512, 512, 3)
    assert torch.equal(out[:256, 256:], images[1].permute(1, 2, 0))
