"""Training configurations: the course's `low_shot` setting and a `tiny` one for tests and the demo.

The numbers of `low_shot` are the course's (SPEC.md, Part A): StyleGAN2 at 256x256, batch 8,
Adam lr 0.002 with betas (0, 0.99), R1 gamma 10 every 16 D steps, path-length weight 2 every
4 G steps, style mixing 0.9, G EMA half-life 10 kimg, fp16 in the 4 highest resolutions.
"""

from dataclasses import asdict, dataclass, replace


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


def get_config(name: str, **overrides) -> TrainConfig:
    """The named config with some fields replaced (e.g. batch=16)."""
    return replace(CONFIGS[name], **{k: v for k, v in overrides.items() if v is not None})
