"""StyleGAN2 generator and residual discriminator (Karras et al. 2020, "Analyzing and Improving the
Image Quality of StyleGAN"), with the mixed-precision settings of StyleGAN2-ADA (Karras et al. 2020,
"Training Generative Adversarial Networks with Limited Data").

Generator = mapping network (z -> w, Sec. 2 of StyleGAN) + synthesis network ("skip" architecture of
StyleGAN2, Fig. 7: every resolution adds its toRGB output to the up-sampled image so far).
Discriminator = "resnet" architecture (StyleGAN2, Fig. 7): fromRGB at the top resolution only,
residual blocks that halve the resolution, minibatch standard deviation (ProGAN, Sec. 3) and a
4x4 epilogue that outputs one logit per image.

Channels per resolution: min(channel_base // res, channel_max). Mixed precision: the blocks of the
`num_fp16_res` highest resolutions run in float16 (channels-last) when the input is on a GPU, with
activations clamped to +-conv_clamp; everything else, and everything on a CPU, runs in float32.
The networks pick each block's precision themselves: do not wrap them in torch.autocast.
"""

import math

import torch
from torch import nn

from training.ops import (
    EqualConv2d,
    EqualLinear,
    bias_act,
    fir_filter,
    modulated_conv2d,
    upsample2d,
)

# Device types on which the fp16 blocks actually run in float16 (tests add "cpu" to check the path).
FP16_DEVICE_TYPES = ("cuda",)
NOISE_MODES = ("random", "const", "none")


def normalize_2nd_moment(x, eps=1e-8):
    """Scale each row of x [B, D] to unit mean square (StyleGAN's "pixel norm" of z)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def block_resolutions(img_resolution):
    """[4, 8, ..., img_resolution]; img_resolution must be a power of two >= 4."""
    log2 = int(math.log2(img_resolution)) if img_resolution >= 4 else 0
    if img_resolution < 4 or 2**log2 != img_resolution:
        raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}.")
    return [2**i for i in range(2, log2 + 1)]


def fp16_resolutions(img_resolution, num_fp16_res):
    """The resolutions whose blocks run in fp16: the `num_fp16_res` highest ones, never 4x4."""
    return [
        res
        for res in block_resolutions(img_resolution)[1:]
        if res * 2**num_fp16_res > img_resolution
    ]


def _block_format(use_fp16, x, force_fp32):
    """dtype and memory format for a block's activations, given where the input lives: fp16 blocks
    keep them channels-last (NHWC), the layout tensor-core convolutions use."""
    if use_fp16 and not force_fp32 and x.device.type in FP16_DEVICE_TYPES:
        return torch.float16, torch.channels_last
    return torch.float32, torch.contiguous_format


# ----------------------------------------------------------------------------------------------
# Generator


class MappingNetwork(nn.Module):
    """z -> w: normalize z, then an MLP of `num_layers` leaky-ReLU layers with lr multiplier 0.01.

    It tracks the average w (w_avg, an exponential moving average with beta 0.995) for the
    truncation trick in W (StyleGAN): w' = w_avg + psi * (w - w_avg); psi = 0 gives w_avg.
    """

    def __init__(self, z_dim, w_dim, num_ws, num_layers=2, lr_mul=0.01, w_avg_beta=0.995):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.w_avg_beta = z_dim, w_dim, num_ws, w_avg_beta
        dims = [z_dim] + [w_dim] * num_layers
        self.layers = nn.Sequential(
            *[
                EqualLinear(dims[i], dims[i + 1], lr_mul=lr_mul, activation=True)
                for i in range(num_layers)
            ]
        )
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z, truncation_psi=1.0, truncation_cutoff=None, update_emas=False):
        """z [B, z_dim] -> ws [B, num_ws, w_dim] (the same w repeated for every layer)."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [batch, {self.z_dim}], got {list(z.shape)}.")
        w = self.layers(normalize_2nd_moment(z.float()))
        if update_emas:
            self.w_avg.copy_(w.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            truncated = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
            ws = torch.cat([truncated, ws[:, cutoff:]], dim=1)
        return ws


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally 2x up-sampling), per-pixel noise, bias, leaky ReLU.

    StyleGAN2 Fig. 2(c): the style s = A(w) (affine, bias 1) modulates the weights, demodulation
    normalizes them, then noise B scaled by a learned per-layer strength (init 0) is added.
    """

    def __init__(self, in_channels, out_channels, w_dim, resolution, up=False, conv_clamp=None):
        super().__init__()
        self.resolution, self.up, self.conv_clamp = resolution, up, conv_clamp
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        if up:
            self.register_buffer("fir", fir_filter(), persistent=False)

    def forward(self, x, w, noise_mode="random", fused=False):
        styles = self.affine(w)
        noise = None
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device)
            noise = noise * self.noise_strength
        elif noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        fir = self.fir if self.up else None
        x = modulated_conv2d(x, self.weight, styles, noise, up=self.up, fir=fir, fused=fused)
        return bias_act(x, self.bias, activation=True, clamp=self.conv_clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv to image channels, without demodulation (StyleGAN2 Fig. 7, "tRGB")."""

    def __init__(self, in_channels, img_channels, w_dim, conv_clamp=None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(img_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(img_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)  # equalized lr; no demodulation to undo it

    def forward(self, x, w, fused=False):
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused)
        return bias_act(x, self.bias, activation=False, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: [learned 4x4 constant | up-sampling conv], conv, toRGB.

    Uses num_conv + 1 consecutive ws: one per conv and one for toRGB (which shares its w with the
    next block's first conv). The image skip path is up-sampled with the FIR filter and summed.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        w_dim,
        resolution,
        img_channels,
        use_fp16=False,
        conv_clamp=None,
    ):
        super().__init__()
        self.resolution, self.use_fp16 = resolution, use_fp16
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
            self.conv0 = None
        else:
            self.conv0 = SynthesisLayer(
                in_channels, out_channels, w_dim, resolution, up=True, conv_clamp=conv_clamp
            )
        self.conv1 = SynthesisLayer(
            out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp
        )
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2
        self.register_buffer("fir", fir_filter(), persistent=False)

    def forward(self, x, img, ws, noise_mode="random", force_fp32=False):
        """x: features from the previous block (None for 4x4); img: float32 image so far (or None)."""
        dtype, memory_format = _block_format(self.use_fp16, ws, force_fp32)
        # One grouped conv per layer is fastest for inference in fp32; training (and fp16) is faster
        # with a shared weight, as in StyleGAN2-ADA.
        fused = not self.training and (dtype == torch.float32 or ws.shape[0] == 1)
        if self.conv0 is None:
            x = self.const.to(dtype).unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            x = x.contiguous(memory_format=memory_format)
        else:
            x = x.to(dtype=dtype, memory_format=memory_format)
            x = self.conv0(x, ws[:, 0], noise_mode, fused)
        x = self.conv1(x, ws[:, self.num_conv - 1], noise_mode, fused)
        y = self.torgb(x, ws[:, self.num_conv], fused)
        y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        img = y if img is None else upsample2d(img, self.fir) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws [B, num_ws, w_dim] -> image [B, img_channels, R, R] in float32, "skip" architecture."""

    def __init__(
        self,
        w_dim,
        img_resolution,
        img_channels,
        channel_base=32768,
        channel_max=512,
        num_fp16_res=4,
        conv_clamp=None,
    ):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        resolutions = block_resolutions(img_resolution)
        fp16_res = fp16_resolutions(img_resolution, num_fp16_res)
        self.blocks = nn.ModuleDict()
        in_channels = 0
        for res in resolutions:
            out_channels = min(channel_base // res, channel_max)
            self.blocks[f"b{res}"] = SynthesisBlock(
                in_channels,
                out_channels,
                w_dim,
                res,
                img_channels,
                use_fp16=res in fp16_res,
                conv_clamp=conv_clamp,
            )
            in_channels = out_channels
        self.num_ws = sum(block.num_conv for block in self.blocks.values()) + 1

    def forward(self, ws, noise_mode="random", force_fp32=False):
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(
                f"ws must have shape [batch, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}."
            )
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}.")
        x = img = None
        w_idx = 0
        for block in self.blocks.values():
            x, img = block(
                x, img, ws[:, w_idx : w_idx + block.num_conv + 1], noise_mode, force_fp32
            )
            w_idx += block.num_conv
        return img


class Generator(nn.Module):
    """StyleGAN2 generator: G(z) = synthesis(mapping(z))."""

    def __init__(
        self,
        z_dim=512,
        w_dim=512,
        img_resolution=256,
        img_channels=3,
        mapping_layers=2,
        channel_base=32768,
        channel_max=512,
        num_fp16_res=4,
        conv_clamp=256,
    ):
        super().__init__()
        self.z_dim, self.w_dim = z_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(
            w_dim,
            img_resolution,
            img_channels,
            channel_base,
            channel_max,
            num_fp16_res,
            conv_clamp,
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, w_dim, self.num_ws, num_layers=mapping_layers)

    def forward(
        self,
        z,
        truncation_psi=1.0,
        truncation_cutoff=None,
        noise_mode="random",
        update_emas=False,
        force_fp32=False,
    ):
        ws = self.mapping(z, truncation_psi, truncation_cutoff, update_emas)
        return self.synthesis(ws, noise_mode, force_fp32)


# ----------------------------------------------------------------------------------------------
# Discriminator


class DiscriminatorBlock(nn.Module):
    """Residual block that halves the resolution (StyleGAN2 Fig. 7(c), "resnet" D).

    out = (skip(x) + conv1(conv0(x))) * sqrt(1/2): the skip is a FIR down-sampling 1x1 conv without
    bias or activation; conv1 down-samples with the FIR filter. The top block starts with fromRGB.
    """

    def __init__(
        self, channels, out_channels, resolution, img_channels=0, use_fp16=False, conv_clamp=None
    ):
        super().__init__()
        self.resolution, self.use_fp16 = resolution, use_fp16
        self.fromrgb = None
        if img_channels > 0:  # only the top block sees the image
            self.fromrgb = EqualConv2d(img_channels, channels, 1, conv_clamp=conv_clamp)
        self.conv0 = EqualConv2d(channels, channels, 3, conv_clamp=conv_clamp)
        self.conv1 = EqualConv2d(channels, out_channels, 3, down=True, conv_clamp=conv_clamp)
        self.skip = EqualConv2d(channels, out_channels, 1, bias=False, activation=False, down=True)

    def forward(self, x, force_fp32=False):
        dtype, memory_format = _block_format(self.use_fp16, x, force_fp32)
        x = x.to(dtype=dtype, memory_format=memory_format)
        if self.fromrgb is not None:
            x = self.fromrgb(x)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return x + y


class MinibatchStd(nn.Module):
    """Minibatch standard deviation (ProGAN Sec. 3): append the average std over groups of samples.

    The batch is split into groups of G samples (G = the largest divisor of B not above
    group_size; sample i is in group i % (B / G)). Within a group, the standard deviation over the
    G samples of every activation is averaged over all channels and pixels (over each of
    `num_channels` channel slices), and appended to each sample as a constant feature map.
    """

    def __init__(self, group_size=4, num_channels=1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x):
        batch, channels, height, width = x.shape
        group = next(g for g in range(min(self.group_size, batch), 0, -1) if batch % g == 0)
        f = self.num_channels
        y = x.reshape(group, -1, f, channels // f, height, width)  # [G, M, F, C/F, H, W]
        y = (y - y.mean(dim=0)).square().mean(dim=0)  # variance over each group
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # [M, F]
        y = y.reshape(-1, f, 1, 1).repeat(group, 1, height, width)  # [B, F, H, W]
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """4x4 features -> one logit: minibatch std, 3x3 conv, dense, dense to 1 (always float32)."""

    def __init__(
        self, channels, resolution=4, mbstd_group_size=4, mbstd_num_channels=1, conv_clamp=None
    ):
        super().__init__()
        self.mbstd = MinibatchStd(mbstd_group_size, mbstd_num_channels)
        self.conv = EqualConv2d(channels + mbstd_num_channels, channels, 3, conv_clamp=conv_clamp)
        self.fc = EqualLinear(channels * resolution**2, channels, activation=True)
        self.out = EqualLinear(channels, 1)

    def forward(self, x):
        x = self.conv(self.mbstd(x.to(dtype=torch.float32, memory_format=torch.contiguous_format)))
        return self.out(self.fc(x.flatten(1)))


class Discriminator(nn.Module):
    """StyleGAN2 residual discriminator: image [B, C, R, R] -> logits [B, 1] (float32)."""

    def __init__(
        self,
        img_resolution=256,
        img_channels=3,
        channel_base=32768,
        channel_max=512,
        mbstd_group_size=4,
        num_fp16_res=4,
        conv_clamp=256,
    ):
        super().__init__()
        self.img_resolution, self.img_channels = img_resolution, img_channels
        resolutions = block_resolutions(img_resolution)[::-1][:-1]  # R, R/2, ..., 8
        fp16_res = fp16_resolutions(img_resolution, num_fp16_res)

        def channels(res):
            return min(channel_base // res, channel_max)

        self.blocks = nn.ModuleDict()
        for res in resolutions:
            self.blocks[f"b{res}"] = DiscriminatorBlock(
                channels(res),
                channels(res // 2),
                res,
                img_channels=img_channels if res == img_resolution else 0,
                use_fp16=res in fp16_res,
                conv_clamp=conv_clamp,
            )
        self.epilogue = DiscriminatorEpilogue(
            channels(4), 4, mbstd_group_size, conv_clamp=conv_clamp
        )

    def forward(self, img, force_fp32=False):
        expected = (self.img_channels, self.img_resolution, self.img_resolution)
        if img.ndim != 4 or tuple(img.shape[1:]) != expected:
            raise ValueError(
                f"img must have shape [batch, {', '.join(map(str, expected))}], got {list(img.shape)}."
            )
        x = img
        for block in self.blocks.values():
            x = block(x, force_fp32)
        return self.epilogue(x)
