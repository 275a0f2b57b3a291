"""What a GAN run is: the named settings (TrainConfig) and one run's configuration (RunConfig).

TrainConfig holds the numbers of a setting: the course's `low_shot` (the handout's Part A: StyleGAN2
at 256x256, batch 8, Adam lr 0.002 with betas (0, 0.99), R1 gamma 10 every 16 iterations,
path-length weight 2 every 4, style mixing 0.9, G EMA half-life 10 kimg (in a run from scratch ramped
up as 0.05 x the images seen until it gets there; from --checkpoint_path weights from the start), fp16 in the 4 highest resolutions) and a `tiny` one for tests and
the demo. RunConfig is one run of train.py: the command
line fills it once, and the trainer, the loss and the checkpoints read it.
"""

from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class TrainConfig:
    name: str
    # data and architecture (a checkpoint only fits a config with the same values of these)
    resolution: int = 256
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 2
    channel_base: int = 32768
    channel_max: int = 512
    mbstd_group: int = 4
    # speed only (no effect on the parameters)
    num_fp16_res: int = 4
    conv_clamp: int = 256
    # optimization
    batch: int = 8
    lr: float = 0.002
    beta1: float = 0.0
    beta2: float = 0.99
    eps: float = 1e-8
    r1_gamma: float = 10.0
    d_reg_interval: int = 16
    pl_weight: float = 2.0
    g_reg_interval: int = 4
    style_mixing: float = 0.9
    ema_kimg: float = 10.0
    # G_ema's half-life grows with the images seen, min(ema_kimg, ema_rampup * images seen), so a
    # short run's grid shows progress (StyleGAN2-ADA's ramp-up); None: ema_kimg from the start,
    # as for a run from --checkpoint_path weights, whose G_ema is already an average worth keeping
    ema_rampup: float | None = 0.05
    diffaug_policy: str = "color,translation,cutout"  # DiffAugment's policy for few-shot data
    # cadence (iterations) and sample grid
    tick_iters: int = 50
    snap_iters: int = 250
    grid_cols: int = 4  # 16 images of 256x256: about 2 MB of PNG, small enough to submit
    grid_rows: int = 4

    def network_kwargs(self) -> tuple[dict, dict]:
        """Keyword arguments of Generator and Discriminator (training/networks.py)."""
        g = dict(
            z_dim=self.z_dim,
            w_dim=self.w_dim,
            img_resolution=self.resolution,
            img_channels=3,
            mapping_layers=self.mapping_layers,
            channel_base=self.channel_base,
            channel_max=self.channel_max,
            num_fp16_res=self.num_fp16_res,
            conv_clamp=self.conv_clamp,
        )
        d = dict(
            img_resolution=self.resolution,
            img_channels=3,
            channel_base=self.channel_base,
            channel_max=self.channel_max,
            mbstd_group_size=self.mbstd_group,
            num_fp16_res=self.num_fp16_res,
            conv_clamp=self.conv_clamp,
        )
        return g, d

    def architecture(self) -> dict:
        """The fields that decide the networks' parameters: two configs that agree on these
        can load each other's checkpoints."""
        keys = ("resolution", "z_dim", "w_dim", "mapping_layers", "channel_base", "channel_max")
        return {k: getattr(self, k) for k in keys}

    def to_dict(self) -> dict:
        return asdict(self)


CONFIGS = {
    "low_shot": TrainConfig(name="low_shot"),
    "tiny": TrainConfig(
        name="tiny",
        resolution=32,
        z_dim=32,
        w_dim=32,
        channel_base=512,
        channel_max=32,
        num_fp16_res=0,
        batch=4,
        tick_iters=5,
        snap_iters=20,
    ),
}


@dataclass(frozen=True)
class RunConfig:
    """One run of train.py: filled from the command line, saved in every checkpoint.

    Args:
        data (`str`): folder or zip of the training images (--data).
        train (`TrainConfig`): the setting named by --cfg, with --batch and --snap applied.
        use_r1_regularization (`bool`): R1 on (gamma = train.r1_gamma) or off.
        use_diffaug (`bool`): DiffAugment with train.diffaug_policy in run_D, or none.
        checkpoint_path (`str`, *optional*): the weights a new run starts from.
        iters (`int`, defaults to 5000): iterations of the whole run, counted from its start.
        seed (`int`, defaults to 0): initial weights, data order, latents.
        mirror (`bool`, defaults to False): random left-right flips of the training images.
        workers (`int`, defaults to 3): threads decoding the images at start.
        precision (`str`, defaults to "mixed"): "mixed" (fp16 layers and TF32 on GPU) or "fp32".
        metrics (`str`, defaults to "none"): "kid" measures G_ema's KID at every snapshot.
    """

    data: str
    train: TrainConfig
    use_r1_regularization: bool
    use_diffaug: bool
    checkpoint_path: str | None = None
    iters: int = 5000
    seed: int = 0
    mirror: bool = False
    workers: int = 3
    precision: str = "mixed"
    metrics: str = "none"

    @property
    def r1_gamma(self) -> float:
        """gamma of Eq. (3); 0 turns R1 off."""
        return self.train.r1_gamma if self.use_r1_regularization else 0.0

    @property
    def diffaug_policy(self) -> str:
        """The augmentations run_D applies; "" for none."""
        return self.train.diffaug_policy if self.use_diffaug else ""

    def flags(self) -> str:
        """The first line of log.txt: the handout's two flags."""
        return f"use_r1_regularization={self.use_r1_regularization} use_diffaug={self.use_diffaug}"

    def folder_suffix(self) -> str:
        """<dataset>-<cfg>-<flags>: the end of the run folder's name."""
        path = Path(self.data)
        dataset = path.stem if path.suffix.lower() == ".zip" else path.name
        r1 = "r1" if self.use_r1_regularization else "nor1"
        aug = "diffaug" if self.use_diffaug else "noaug"
        return f"{dataset}-{self.train.name}-{r1}-{aug}"

    def to_dict(self) -> dict:
        """Plain values, as saved in checkpoints (`options`) and printed in log.txt."""
        values = asdict(self)
        return {"cfg": self.train.name, "config": values.pop("train"), **values}
