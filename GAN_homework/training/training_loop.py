"""The training loop: lazy-regularized StyleGAN2 training with G EMA, ticks, snapshots, resume.

One iteration (Trainer.train_one_iteration) runs the four phases of training/loss.py on one batch
of real images, each followed by its optimizer step; which phases, in what order and how often is
the list Trainer.phases. A regularization phase's loss is multiplied by its interval inside the
loss (`gain`), and Adam's lr and betas are corrected for the extra steps (lazy regularization,
StyleGAN2 paper, Appendix B): ratio = interval / (interval + 1), lr * ratio, beta ** ratio.

Nothing in an iteration waits for the GPU: loss values stay on the device and are read once per tick.
"""

import copy
import json
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import torch
from outputs import append_line, atomic_write
from PIL import Image
from tqdm import tqdm

from training.checkpoint import CheckpointError, save_checkpoint
from training.config import RunConfig
from training.dataset import DatasetError, EndlessSampler, ImageDataset
from training.device import set_precision
from training.distributed import Dist
from training.loss import StyleGAN2Loss
from training.networks import Discriminator, Generator
from training.plots import CURVES_NAME, draw_training_curves

EXIT_STOPPED = 3  # after SIGTERM/SIGUSR1/Ctrl-C: checkpoint written, resume with --resume auto
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130, as a shell reports a program stopped by Ctrl-C
GRID_MIN_WIDTH = 512  # narrower grids (the tiny config's) are enlarged, pixels as blocks


def grid_name(iteration: int) -> str:
    return f"fakes{iteration:06d}iter_trained.png"


class Logger:
    """Lines to the console and appended to <run_dir>/log.txt (only the console without a run
    folder, as in a dry run). Processes other than rank 0 log nothing."""

    def __init__(self, run_dir: Path | None, enabled: bool = True):
        self.enabled = enabled
        self.path = run_dir / "log.txt" if run_dir is not None and enabled else None

    def __call__(self, line: str) -> None:
        if not self.enabled:
            return
        tqdm.write(line)
        if self.path:
            append_line(self.path, line)

    def stats(self, record: dict) -> None:
        if self.path:
            append_line(self.path.with_name("stats.jsonl"), json.dumps(record))


def save_image_grid(images: torch.Tensor, cols: int, path: Path) -> None:
    """uint8 [N, 3, H, W] -> one PNG of `cols` columns, written atomically. A grid narrower than
    GRID_MIN_WIDTH is enlarged by the smallest whole factor that reaches it, each pixel becoming a
    square block (nearest neighbour), so that 32x32 images can be looked at."""
    n, c, h, w = images.shape
    rows = (n + cols - 1) // cols
    canvas = torch.zeros(rows * cols, c, h, w, dtype=torch.uint8)
    canvas[:n] = images.cpu()
    canvas = canvas.view(rows, cols, c, h, w).permute(0, 3, 1, 4, 2).reshape(rows * h, cols * w, c)
    image = Image.fromarray(canvas.numpy())
    scale = -(-GRID_MIN_WIDTH // image.width)  # ceiling division; 1 for wide grids
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    atomic_write(path, lambda f: image.save(f, format="PNG"))


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def ema_beta(batch: int, ema_kimg: float, ema_rampup: float | None, images_seen: int) -> float:
    """G_ema's weight on its old value for one step of `batch` images: the half-life is ema_kimg
    thousand images, or, with a ramp-up, ema_rampup x the images seen so far when that is less
    (0 at the start: the first step copies G)."""
    half_life = ema_kimg * 1000
    if ema_rampup is not None:
        half_life = min(half_life, images_seen * ema_rampup)
    return 0.5 ** (batch / max(half_life, 1e-8))


def _rng_state(device: torch.device) -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "python": random.getstate(),
    }


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state["cuda"] is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


class Trainer:
    """Networks, optimizers, loss, data and sampler of one run, and the loop that trains them.

    Args:
        run (`RunConfig`): the run's configuration (training/config.py).
        dist (`Dist`): this process's device and rank (training/distributed.py).
        dataset (`ImageDataset`): the training images, moved to the device here.
        run_dir (`Path`, *optional*): the run folder on rank 0; None elsewhere and in a dry run.
        log: a Logger, or any function taking a line.
        kid (`SnapshotKID`, *optional*): measures G_ema's KID at every snapshot (--metrics kid).
    """

    def __init__(self, run: RunConfig, dist: Dist, dataset: ImageDataset, run_dir=None,
                 log=print, kid=None):  # fmt: skip
        cfg = self.cfg = run.train
        self.run, self.dist, self.run_dir, self.log, self.kid = run, dist, run_dir, log, kid
        device = self.device = dist.device
        self.batch_per_rank = cfg.batch // dist.world
        mixed = set_precision(run.precision, device)

        self.dataset = dataset.to(device)
        self.sampler = EndlessSampler(len(dataset), cfg.batch, run.seed, run.mirror, device)

        _seed_everything(run.seed)  # same initial weights on every rank
        g_kwargs, d_kwargs = cfg.network_kwargs()
        if not mixed:
            g_kwargs["num_fp16_res"] = d_kwargs["num_fp16_res"] = 0
        self.G = Generator(**g_kwargs).to(device).train().requires_grad_(False)
        self.D = Discriminator(**d_kwargs).to(device).train().requires_grad_(False)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.loss = StyleGAN2Loss(
            device,
            self.G,
            self.D,
            r1_gamma=run.r1_gamma,
            style_mixing_prob=cfg.style_mixing,
            pl_weight=cfg.pl_weight,
            diffaug_policy=run.diffaug_policy,
        )
        self.opt_G = self._lazy_adam(self.G, cfg.g_reg_interval)
        self.opt_D = self._lazy_adam(self.D, cfg.d_reg_interval)
        # One iteration's phases in the order they run: (loss phase, the network it trains, its
        # optimizer, interval). A phase runs at the iterations divisible by its interval; the two
        # regularization phases are lazy (StyleGAN2, Appendix B).
        self.phases = [
            ("Gmain", self.G, self.opt_G, 1),  # generator loss, Eq. (1)
            ("Greg", self.G, self.opt_G, cfg.g_reg_interval),  # path-length regularization
            ("Dmain", self.D, self.opt_D, 1),  # discriminator loss, Eq. (2)
            ("Dreg", self.D, self.opt_D, cfg.d_reg_interval),  # R1 regularization, Eq. (3)
        ]
        self.iteration = 0
        self._curves_error = None  # the last reason training_curves.png could not be drawn
        grid_gen = torch.Generator().manual_seed(run.seed)
        self.grid_z = torch.randn([cfg.grid_cols * cfg.grid_rows, cfg.z_dim], generator=grid_gen)
        _seed_everything(run.seed + 1_000_003 * (dist.rank + 1))  # distinct streams per rank

    def _lazy_adam(self, module, interval: int) -> torch.optim.Adam:
        ratio = interval / (interval + 1)
        cfg = self.cfg
        return torch.optim.Adam(
            module.parameters(),
            lr=cfg.lr * ratio,
            betas=(cfg.beta1**ratio, cfg.beta2**ratio),
            eps=cfg.eps,
        )

    def parameter_line(self) -> str:
        g, d = (sum(p.numel() for p in m.parameters()) for m in (self.G, self.D))
        return f"parameters: G={g} D={d}"

    # ---------------------------------------------------------------- checkpoints
    def init_from(self, state: dict, path) -> None:
        """Weights of G, D and G_ema from a checkpoint (--checkpoint_path); the rest starts fresh."""
        self._load(state, ("G", "D", "G_ema"), path)
        self._broadcast()

    def state_dict(self) -> dict:
        rng = self.dist.gather_objects(_rng_state(self.device))
        return {
            "iteration": self.iteration,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "loss": self.loss.state_dict(),
            "sampler": self.sampler.state_dict(),
            "rng": rng,
            "options": self.run.to_dict(),
        }

    def load_state_dict(self, state: dict, path) -> None:
        """Everything, for an exact continuation (--resume)."""
        self._load(state, ("G", "D", "G_ema", "opt_G", "opt_D", "loss", "sampler"), path)
        self.iteration = int(state["iteration"])
        rng = state["rng"]
        if self.dist.rank < len(rng):
            _set_rng_state(rng[self.dist.rank], self.device)
        else:  # more processes than when saved: a fresh stream for the new ranks
            _seed_everything(self.run.seed + 1_000_003 * (self.dist.rank + 1) + self.iteration)
        self._broadcast()

    def _load(self, state: dict, names, path) -> None:
        for name in names:
            try:
                getattr(self, name).load_state_dict(state[name])
            except DatasetError:  # the sampler's own message names the cause
                raise
            except (KeyError, RuntimeError, ValueError) as error:
                first = str(error).strip().splitlines()[0][:160] if str(error).strip() else name
                raise CheckpointError(
                    f"{name} of checkpoint {path} does not fit these networks ({first}); "
                    "use a checkpoint written by this version of the code."
                ) from None

    def _broadcast(self) -> None:
        for module in (self.G, self.D, self.G_ema):
            self.dist.broadcast_module(module)

    # ---------------------------------------------------------------- outputs
    @torch.no_grad()
    def save_fakes(self) -> Path:
        """G_ema's images of the fixed latent grid; never touches the training RNG streams."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            images = [
                to_uint8(self.G_ema(z.to(self.device), noise_mode="const"))
                for z in self.grid_z.split(self.batch_per_rank)
            ]
        path = self.run_dir / grid_name(self.iteration)
        save_image_grid(torch.cat(images), self.cfg.grid_cols, path)
        return path

    def save_reals(self) -> None:
        count = self.cfg.grid_cols * self.cfg.grid_rows
        order = torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(0))
        save_image_grid(
            self.dataset.images[order[:count].to(self.device)],
            self.cfg.grid_cols,
            self.run_dir / "reals.png",
        )

    def draw_curves(self) -> None:
        """Redraw training_curves.png from stats.jsonl; a failure is one logged line, never a crash
        (the same failure again is not repeated)."""
        try:
            draw_training_curves(self.run_dir / "stats.jsonl", self.run_dir / CURVES_NAME)
            self._curves_error = None
        except Exception as error:
            reason = (str(error).strip().splitlines() or [""])[0][:160] or type(error).__name__
            if reason != self._curves_error:
                self.log(f"warning: {CURVES_NAME} not redrawn ({reason}); training goes on.")
            self._curves_error = reason

    def snapshot(self) -> Path:
        """Sample grid, then checkpoint (collective: every rank calls it; rank 0 writes)."""
        state = self.state_dict()
        if not self.dist.is_main:
            return None
        self.save_fakes()
        return save_checkpoint(self.run_dir, state)

    def measure_kid(self) -> None:
        """G_ema's KID into metrics.jsonl and one line of log.txt; the plot, once drawn, is redrawn
        with it."""
        record, seconds = self.kid(self.G_ema, self.iteration, self.run_dir)
        self.log(
            f"KID {record['value']:.6g} at iteration {self.iteration} ({record['num_gen']} "
            f"generated vs {record['num_real']} real images, {seconds:.1f} s)"
        )
        if (self.run_dir / "stats.jsonl").is_file():
            self.draw_curves()

    # ---------------------------------------------------------------- training
    def train_one_iteration(self, sums: dict) -> None:
        b = self.batch_per_rank
        real_img = self.dataset.batch(*self.sampler.next_batch(self.dist.rank, self.dist.world))
        for phase, module, opt, interval in self.phases:
            if self.iteration % interval:
                continue
            gen_z = torch.randn([b, self.G.z_dim], device=self.device)
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            stats = self.loss.accumulate_gradients(phase, real_img, gen_z, gain=interval)
            module.requires_grad_(False)
            if not stats:  # phase switched off (r1_gamma or pl_weight is 0)
                continue
            self.dist.average_gradients(module.parameters())
            opt.step()
            for key, value in stats.items():
                total, count = sums.get(key, (0.0, 0))
                sums[key] = (total + value.detach().float(), count + 1)
        self._update_ema()
        self.iteration += 1

    def current_ema_beta(self) -> float:
        """beta of this iteration's G_ema update (ema_beta() of the images seen before it)."""
        cfg = self.cfg
        return ema_beta(cfg.batch, cfg.ema_kimg, cfg.ema_rampup, self.iteration * cfg.batch)

    @torch.no_grad()
    def _update_ema(self) -> None:
        """G_ema = beta * G_ema + (1 - beta) * G, beta for a half-life of ema_kimg thousand images
        (ramped up early in the run, see ema_beta)."""
        beta = self.current_ema_beta()
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.lerp_(p, 1 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    def tick_record(self, sums: dict, iters: int, seconds: float) -> dict:
        """Per-tick statistics; the only place the loop reads values back from the GPU."""
        keys = sorted(sums)
        losses = {}
        if keys:
            means = torch.stack([sums[k][0] / sums[k][1] for k in keys])
            if self.dist.world > 1:
                torch.distributed.all_reduce(means)
                means /= self.dist.world
            losses = dict(zip(keys, means.cpu().tolist()))
        mem = None
        if self.device.type == "cuda":
            mem = torch.cuda.max_memory_allocated(self.device) / 2**30
            torch.cuda.reset_peak_memory_stats(self.device)
        s_iter = seconds / max(iters, 1)
        return {
            "iteration": self.iteration,
            "kimg": self.iteration * self.cfg.batch / 1000,
            "s_per_iter": s_iter,
            "s_per_kimg": s_iter * 1000 / self.cfg.batch,
            "peak_gpu_mem_gb": mem,
            "time": time.time(),
            "losses": losses,
        }

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def format_tick(r: dict, total: int) -> str:
    mem = "n/a" if r["peak_gpu_mem_gb"] is None else f"{r['peak_gpu_mem_gb']:.2f} GB"
    losses = "  ".join(f"{k.removeprefix('Loss/')} {v:.4f}" for k, v in r["losses"].items())
    return (
        f"iter {r['iteration']}/{total}  kimg {r['kimg']:.3f}  s/iter {r['s_per_iter']:.3f}  "
        f"s/kimg {r['s_per_kimg']:.1f}  peak_gpu_mem {mem}  {losses}"
    )


class StopFlag:
    """Set by SIGTERM / SIGUSR1 (cluster time limit, scancel) and by the first SIGINT (Ctrl-C): the
    loop stops after the iteration, with a checkpoint. A second SIGINT stops at once: it raises
    KeyboardInterrupt wherever the program is, and files being written keep their old complete
    version (they are written under a temporary name and renamed). `announce`: say so on stderr
    at the first Ctrl-C (the process that prints)."""

    SIGNALS = [
        s for s in (getattr(signal, name, None) for name in ("SIGTERM", "SIGUSR1", "SIGINT")) if s
    ]

    def __init__(self, announce: bool = True):
        self.reason = None
        self.interrupts = 0
        self.announce = announce
        self._previous = {}

    def __enter__(self):
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if signum == signal.SIGINT:
            self.interrupts += 1
            if self.interrupts > 1:
                raise KeyboardInterrupt
            if self.announce:  # os.write: never re-enters a print the signal interrupted
                os.write(
                    2,
                    b"\nCtrl-C: stopping after this iteration and writing a checkpoint; press "
                    b"Ctrl-C again to stop at once (the last complete checkpoint is kept).\n",
                )
        self.reason = self.reason or signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def run_training(trainer: Trainer, fresh: bool, continue_with=None) -> int:
    """Train until trainer.run.iters iterations (counted from the run's start) or a stop signal,
    with a tick (a line of log.txt and stats.jsonl) every cfg.tick_iters iterations and a snapshot
    (sample grid and checkpoint) every cfg.snap_iters; `fresh`: a new run (reals.png and the grid
    of iteration 0 are written first); `continue_with()`: the command that continues a stopped run
    (asked for once it has stopped), for the last line. Returns the exit status: 0 when done,
    EXIT_STOPPED after a stop signal (a second Ctrl-C raises KeyboardInterrupt, see StopFlag)."""
    log, dist, cfg = trainer.log, trainer.dist, trainer.cfg
    total = trainer.run.iters
    progress = tqdm(
        total=total,
        initial=trainer.iteration,
        unit="iter",
        disable=not dist.is_main,
        dynamic_ncols=True,
        mininterval=1.0,
    )
    with StopFlag(announce=dist.is_main) as stop, progress:  # closes the bar before an error
        if fresh and dist.is_main:
            trainer.save_reals()
            trainer.save_fakes()
        sums, tick_iters, tick_start = {}, 0, time.perf_counter()
        while trainer.iteration < total:
            trainer.train_one_iteration(sums)
            tick_iters += 1
            progress.update(1)
            stopping = dist.any_rank(stop.reason is not None)
            last = trainer.iteration == total or stopping
            tick = trainer.iteration % cfg.tick_iters == 0 or last
            if tick:
                trainer.sync()
                record = trainer.tick_record(sums, tick_iters, time.perf_counter() - tick_start)
                log(format_tick(record, total))
                if dist.is_main:
                    append_line(trainer.run_dir / "stats.jsonl", json.dumps(record))
                    trainer.draw_curves()
                sums, tick_iters = {}, 0
            if trainer.iteration % cfg.snap_iters == 0 or last:
                path = trainer.snapshot()
                log(f"saved {grid_name(trainer.iteration)} and {path.name if path else ''}")
                if trainer.kid and dist.is_main and not stopping:  # a stop exits at once
                    trainer.measure_kid()
            if tick:  # the next tick's time starts after this snapshot
                tick_start = time.perf_counter()
            if stopping and trainer.iteration < total:  # (a stop in the last one: done)
                progress.close()
                how = "the same command plus --resume auto"
                if continue_with and dist.is_main:
                    how = continue_with()
                log(
                    f"stopped at iteration {trainer.iteration}: received "
                    f"{stop.reason or 'a stop signal'}; to continue: {how}"
                )
                return EXIT_STOPPED
        progress.close()
    if dist.world > 1:
        gap = dist.max_difference([trainer.G, trainer.D, trainer.G_ema])
        log(
            f"networks identical on all {dist.world} processes: {gap == 0} (max difference {gap:g})"
        )
    log(f"done: {trainer.iteration} iterations; latest samples {grid_name(trainer.iteration)}")
    return 0
