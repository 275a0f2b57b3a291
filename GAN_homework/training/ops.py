"""The layers StyleGAN2 is built from, in plain PyTorch (no custom CUDA kernels).

- Equalized learning rate (ProGAN, Karras et al. 2018, Sec. 4.1): weights are stored with unit
  variance (1 / lr_mul**2 for layers with a learning-rate multiplier) and scaled at run time by
  lr_mul / sqrt(fan_in), so Adam moves every layer at the same relative speed.
- FIR resampling (StyleGAN, Karras et al. 2019, Sec. 2, after Zhang 2019; kept in StyleGAN2):
  up- and down-sampling with the separable low-pass filter [1, 3, 3, 1], done with depthwise
  conv2d / conv_transpose2d.
- Modulated convolution with weight demodulation (StyleGAN2, Sec. 2.2, Eqs. 1-3).

Every function here is made of ordinary autograd ops, so double backward (R1 and path-length
regularization use create_graph=True) works through all of it.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2)  # keeps activations at unit second moment through leaky ReLU (He init)


def fir_filter(taps=(1.0, 3.0, 3.0, 1.0)):
    """The 2-D low-pass filter outer(taps, taps), normalized to sum 1: a [4, 4] tensor."""
    f = torch.tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def _depthwise(fir, channels, dtype, gain=1.0):
    """The FIR filter as a depthwise (one filter per channel) conv weight [C, 1, k, k]."""
    return (fir * gain).to(dtype)[None, None].expand(channels, 1, *fir.shape).contiguous()


def fir_blur(x, fir, padding, stride=1, gain=1.0):
    """Filter every channel of x [B, C, H, W] with the FIR filter (zero padding on each side)."""
    weight = _depthwise(fir, x.shape[1], x.dtype, gain)
    return F.conv2d(x, weight, padding=padding, stride=stride, groups=x.shape[1])


def upsample2d(x, fir):
    """2x up-sampling: insert zeros between pixels, then low-pass filter. [B,C,H,W] -> [B,C,2H,2W].

    A stride-2 transposed convolution with the filter does both at once. The gain of 4 restores
    the mean brightness that the inserted zeros took away, so a constant image stays constant.
    """
    weight = _depthwise(fir, x.shape[1], x.dtype, gain=4.0)
    return F.conv_transpose2d(x, weight, stride=2, padding=1, groups=x.shape[1])


def downsample2d(x, fir):
    """2x down-sampling: low-pass filter, then keep every second pixel. [B,C,H,W] -> [B,C,H/2,W/2]."""
    return fir_blur(x, fir, padding=1, stride=2)


def bias_act(x, bias, activation=True, gain=1.0, clamp=None):
    """gain * act(x + bias), clamped to +-clamp * gain; act = leaky ReLU(0.2) * sqrt(2) or identity.

    The clamp ("conv_clamp", StyleGAN2-ADA) keeps fp16 activations from overflowing; it is scaled
    by the layer's gain so that the gain never changes which values get clamped.
    Leaky ReLU is positively homogeneous (lrelu(g * y) = g * lrelu(y) for g > 0), so the gain is
    applied together with the bias: three passes over x instead of four.
    """
    total_gain = gain * LRELU_GAIN if activation else gain
    if bias is not None:
        bias = bias.to(x.dtype).reshape(1, -1, *([1] * (x.ndim - 2)))
        x = torch.add(bias * total_gain, x, alpha=total_gain)  # total_gain * (x + bias)
    elif total_gain != 1:
        x = x * total_gain
    if activation:
        x = F.leaky_relu(x, LRELU_SLOPE)
    if clamp is not None:
        x = x.clamp(-clamp * gain, clamp * gain)
    return x


class EqualLinear(nn.Module):
    """Fully connected layer with equalized learning rate and an optional leaky ReLU.

    The weight is stored as N(0, 1/lr_mul^2) and used as weight * lr_mul / sqrt(in_features), so its
    effective initialization is N(0, 1/in_features) while its effective learning rate is lr * lr_mul.
    The mapping network uses lr_mul = 0.01 (StyleGAN, App. C). The bias is stored as
    bias_init / lr_mul and used times lr_mul. Style affines ("A" in StyleGAN2, Fig. 2) use bias_init=1
    so that every style starts near 1.
    """

    def __init__(self, in_features, out_features, bias_init=0.0, lr_mul=1.0, activation=False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init) / lr_mul))
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x):
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)
        return bias_act(x, None, self.activation)


class EqualConv2d(nn.Module):
    """Convolution with equalized learning rate, optional FIR 2x down-sampling, leaky ReLU and clamp.

    Down-sampling as in StyleGAN2's discriminator: for a 3x3 kernel the input is low-pass filtered and
    the convolution runs with stride 2; for a 1x1 kernel (the residual skip) the input is filtered
    and subsampled first, which is the same result with fewer multiplications.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        bias=True,
        activation=True,
        down=False,
        conv_clamp=None,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.activation = activation
        self.down = down
        self.conv_clamp = conv_clamp
        if down:
            self.register_buffer("fir", fir_filter(), persistent=False)

    def forward(self, x, gain=1.0):
        weight = (self.weight * self.weight_gain).to(x.dtype)
        k = self.weight.shape[-1]
        if not self.down:
            x = F.conv2d(x, weight, padding=k // 2)
        elif k == 1:
            x = F.conv2d(downsample2d(x, self.fir), weight)
        else:
            # Filter with padding k // 2 + 1 on each side (H -> H + 1), then a stride-2 conv: H / 2.
            x = F.conv2d(fir_blur(x, self.fir, padding=k // 2 + 1), weight, stride=2)
        return bias_act(x, self.bias, self.activation, gain, self.conv_clamp)


def modulated_conv2d(
    x, weight, styles, noise=None, demodulate=True, up=False, fir=None, fused=False
):
    """Modulated convolution, StyleGAN2 Sec. 2.2, plus the layer's noise input.

    x [B, I, H, W]; weight [O, I, k, k]; styles [B, I] (one scale s_i per input channel and sample);
    noise: None or a tensor that broadcasts to the output (added after the convolution).
    Eq. (1), modulation:    w'_oik  = s_i * w_oik
    Eq. (3), demodulation:  w''_oik = w'_oik / sqrt(sum_ik w'_oik^2 + 1e-8)
    so that unit-variance input gives unit-variance output. With up=True the convolution is a
    stride-2 transposed convolution followed by the FIR filter ([B, O, 2H, 2W] out); a transposed
    convolution is zero insertion plus a convolution with the flipped kernel, which, the kernel
    being learned, is the same model as StyleGAN2's.

    fused=True runs one grouped convolution with a separate weight per sample (groups = B).
    fused=False scales the input by s and the output by the demodulation coefficients around a
    convolution whose weight all samples share: the same math, and faster to train.
    """
    batch, in_channels = styles.shape
    out_channels, _, k, _ = weight.shape
    if demodulate and x.dtype == torch.float16:
        # Pre-scale weight and styles so that fp16 intermediates stay in range. Demodulation
        # divides these constant factors out again, so they need no gradient.
        weight_max = weight.detach().abs().amax(dim=[1, 2, 3], keepdim=True)
        weight = weight / (weight_max * math.sqrt(in_channels * k * k))
        styles = styles / styles.detach().abs().amax(dim=1, keepdim=True)
    if demodulate:
        # sum_ik (s_i w_oik)^2 = sum_i s_i^2 sum_k w_oik^2: no [B, O, I, k, k] tensor needed.
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [B, O]
    if noise is not None:
        noise = noise.to(x.dtype)

    if fused:
        w = weight[None] * styles[:, None, :, None, None]  # [B, O, I, k, k]
        if demodulate:
            w = w * dcoefs[:, :, None, None, None]
        w = w.to(x.dtype)
        x = x.reshape(1, batch * in_channels, *x.shape[2:])
        if up:  # conv_transpose2d wants the weight as [in, out / groups, k, k]
            w = w.transpose(1, 2).reshape(batch * in_channels, out_channels, k, k)
            x = F.conv_transpose2d(x, w, stride=2, groups=batch)  # H -> 2H + 1
            x = fir_blur(x, fir, padding=1, gain=4.0)  # 2H + 1 -> 2H
        else:
            w = w.reshape(batch * out_channels, in_channels, k, k)
            x = F.conv2d(x, w, padding=k // 2, groups=batch)
        x = x.reshape(batch, out_channels, *x.shape[2:])
        return x if noise is None else x + noise

    x = x * styles.to(x.dtype)[:, :, None, None]
    w = weight.to(x.dtype)
    if up:
        x = F.conv_transpose2d(x, w.transpose(0, 1), stride=2)  # H -> 2H + 1
        x = fir_blur(x, fir, padding=1, gain=4.0)  # 2H + 1 -> 2H
    else:
        x = F.conv2d(x, w, padding=k // 2)
    if demodulate:
        dcoefs = dcoefs.to(x.dtype)[:, :, None, None]
        return x * dcoefs if noise is None else torch.addcmul(noise, x, dcoefs)  # one pass
    return x if noise is None else x + noise
