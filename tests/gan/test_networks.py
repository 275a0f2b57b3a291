"""StyleGAN2 generator and discriminator (GAN_homework/training/networks.py), on CPU.

Most tests use a tiny configuration; the low_shot tests build the course's full-size networks
once (parameter counts of the original StyleGAN2-ADA, fp16 block selection, one batch-1 forward).
"""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from training import networks
from training.networks import Discriminator, Generator, MinibatchStd
from training.ops import (
    EqualConv2d,
    EqualLinear,
    bias_act,
    downsample2d,
    fir_filter,
    modulated_conv2d,
    upsample2d,
)

TINY = dict(img_resolution=32, channel_base=256, channel_max=64, conv_clamp=256)
TINY_G = dict(z_dim=32, w_dim=32, **TINY)
LOW_SHOT_G_PARAMS = 28_458_402  # StyleGAN2-ADA at the low_shot config
LOW_SHOT_D_PARAMS = 28_864_129


def count_params(module):
    return sum(p.numel() for p in module.parameters())


def tiny_nets(seed=0, **kwargs):
    torch.manual_seed(seed)
    return Generator(**{**TINY_G, **kwargs}), Discriminator(**{**TINY, **kwargs})


@pytest.fixture(scope="module")
def low_shot():
    torch.manual_seed(0)
    return Generator(), Discriminator()


# ----------------------------------------------------------------------------------------------
# The course's low_shot configuration


def test_low_shot_parameter_counts_match_stylegan2_ada(low_shot):
    G, D = low_shot
    g_params, d_params = count_params(G), count_params(D)
    print(
        f"low_shot parameters: G {g_params:,} (original {LOW_SHOT_G_PARAMS:,}), D {d_params:,} (original {LOW_SHOT_D_PARAMS:,})"
    )
    assert abs(g_params - LOW_SHOT_G_PARAMS) <= 0.01 * LOW_SHOT_G_PARAMS
    assert abs(d_params - LOW_SHOT_D_PARAMS) <= 0.01 * LOW_SHOT_D_PARAMS
    assert (g_params, d_params) == (LOW_SHOT_G_PARAMS, LOW_SHOT_D_PARAMS)
    assert G.num_ws == 14 and G.mapping.w_avg.shape == (512,)
    assert len(G.mapping.layers) == 2


def test_low_shot_fp16_blocks_are_the_four_highest_resolutions(low_shot):
    G, D = low_shot
    g_fp16 = {block.resolution for block in G.synthesis.blocks.values() if block.use_fp16}
    d_fp16 = {block.resolution for block in D.blocks.values() if block.use_fp16}
    assert g_fp16 == {32, 64, 128, 256}
    assert d_fp16 == {32, 64, 128, 256}
    assert networks.fp16_resolutions(256, 0) == []
    assert networks.fp16_resolutions(32, 10) == [8, 16, 32]  # never the 4x4 block


@pytest.mark.slow  # about 4 s on one core
def test_low_shot_batch_of_one_forward(low_shot):
    G, D = low_shot
    with torch.no_grad():
        img = G(torch.randn(1, 512))
        logits = D(img)
    assert img.shape == (1, 3, 256, 256) and img.dtype == torch.float32
    assert logits.shape == (1, 1) and logits.dtype == torch.float32
    assert torch.isfinite(img).all() and torch.isfinite(logits).all()


# ----------------------------------------------------------------------------------------------
# Shapes, batch sizes, gradients


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_shapes_and_dtypes(batch):
    G, D = tiny_nets()
    z = torch.randn(batch, 32)
    ws = G.mapping(z)
    assert ws.shape == (batch, G.num_ws, 32) and G.num_ws == 8
    img = G.synthesis(ws)
    assert img.shape == (batch, 3, 32, 32) and img.dtype == torch.float32
    logits = D(img)
    assert logits.shape == (batch, 1) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("train_mode", [True, False], ids=["train", "eval"])
def test_gradient_reaches_every_parameter(train_mode):
    G, D = tiny_nets()
    G.train(train_mode)
    D.train(train_mode)
    D(G(torch.randn(3, 32))).sum().backward()
    for name, net in (("G", G), ("D", D)):
        for pname, p in net.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, (
                f"no gradient reaches {name}.{pname}"
            )


def test_double_backward_for_r1_and_path_length():
    G, D = tiny_nets()
    # R1: gradient penalty on real images, differentiated again w.r.t. D's parameters.
    real = torch.randn(3, 3, 32, 32, requires_grad=True)
    (r1_grads,) = torch.autograd.grad(D(real).sum(), real, create_graph=True)
    r1_grads.square().sum().backward()
    no_grad = [name for name, p in D.named_parameters() if p.grad is None]
    assert no_grad == ["epilogue.out.bias"]  # the only parameter dD/dx does not depend on
    # Path length: Jacobian-vector product w.r.t. ws, differentiated w.r.t. G's parameters.
    ws = G.mapping(torch.randn(2, 32))
    img = G.synthesis(ws)
    (pl_grads,) = torch.autograd.grad((img * torch.randn_like(img)).sum(), ws, create_graph=True)
    pl_grads.square().sum().backward()
    assert G.synthesis.blocks["b32"].conv0.weight.grad.abs().sum() > 0
    assert G.mapping.layers[0].weight.grad.abs().sum() > 0


def test_fused_and_shared_weight_modulated_conv_agree():
    G, _ = tiny_nets()
    ws = G.mapping(torch.randn(3, 32))
    with torch.no_grad():
        fused = G.eval().synthesis(ws, noise_mode="const")
        shared = G.train().synthesis(ws, noise_mode="const")
    torch.testing.assert_close(fused, shared, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------------------------
# Mapping network: truncation and w_avg


def test_truncation_psi_zero_gives_w_avg_and_cutoff_keeps_the_rest():
    G, _ = tiny_nets()
    G.mapping.w_avg.copy_(torch.randn(32))
    z = torch.randn(4, 32)
    ws = G.mapping(z, truncation_psi=0)
    torch.testing.assert_close(ws, G.mapping.w_avg.expand(4, G.num_ws, 32))
    untruncated = G.mapping(z)
    ws = G.mapping(z, truncation_psi=0.5, truncation_cutoff=3)
    torch.testing.assert_close(ws[:, :3], 0.5 * (G.mapping.w_avg + untruncated[:, :3]))
    torch.testing.assert_close(ws[:, 3:], untruncated[:, 3:])


def test_update_emas_moves_w_avg_toward_the_batch_mean():
    G, _ = tiny_nets()
    z = torch.randn(8, 32)
    G.mapping(z)
    assert G.mapping.w_avg.abs().sum() == 0, "w_avg changed without update_emas"
    ws = G.mapping(z, update_emas=True)
    torch.testing.assert_close(G.mapping.w_avg, (1 - 0.995) * ws[:, 0].mean(dim=0))


def test_mapping_normalizes_z_and_uses_lr_multiplier():
    G, _ = tiny_nets()
    z = torch.randn(2, 32)
    torch.testing.assert_close(G.mapping(z), G.mapping(5 * z))  # z is normalized to unit 2nd moment
    layer = G.mapping.layers[0]
    assert layer.lr_mul == 0.01 and 50 < layer.weight.std() < 200  # stored N(0, 1 / 0.01^2)


# ----------------------------------------------------------------------------------------------
# Noise and determinism


def test_noise_modes():
    G, _ = tiny_nets()
    for module in G.modules():
        if hasattr(module, "noise_strength"):
            module.noise_strength.data.fill_(0.5)
    z = torch.randn(2, 32)
    with torch.no_grad():
        const = [G(z, noise_mode="const") for _ in range(2)]
        none = [G(z, noise_mode="none") for _ in range(2)]
        random = [G(z, noise_mode="random") for _ in range(2)]
    assert torch.equal(const[0], const[1]) and torch.equal(none[0], none[1])
    assert not torch.allclose(const[0], none[0]) and not torch.allclose(random[0], random[1])
    with pytest.raises(ValueError, match="noise_mode"):
        G(z, noise_mode="fixed")


def test_networks_are_deterministic_given_the_seed():
    outputs = []
    for _ in range(2):
        G, D = tiny_nets(seed=3)
        torch.manual_seed(7)
        img = G(torch.randn(3, 32))  # random noise drawn from torch's RNG
        outputs.append((img, D(img)))
    assert torch.equal(outputs[0][0], outputs[1][0]) and torch.equal(outputs[0][1], outputs[1][1])


def test_deepcopy_and_state_dict_round_trip():
    G, D = tiny_nets()
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    assert not any(key.endswith("fir") for key in G.state_dict())  # filters are constants
    assert "mapping.w_avg" in G.state_dict()
    G2, D2 = tiny_nets(seed=1)
    G2.load_state_dict(G_ema.state_dict())
    D2.load_state_dict(D.state_dict())
    z = torch.randn(2, 32)
    with torch.no_grad():
        torch.testing.assert_close(G2.eval()(z, noise_mode="const"), G_ema(z, noise_mode="const"))


# ----------------------------------------------------------------------------------------------
# Layers: equalized learning rate, demodulation, FIR filters, minibatch std


def test_equalized_learning_rate_scales_weights_at_run_time():
    torch.manual_seed(0)
    fc = EqualLinear(256, 128, lr_mul=0.01)
    x = torch.randn(4, 256)
    assert 90 < fc.weight.std() < 110  # stored N(0, 1 / lr_mul^2) ...
    expected = F.linear(x, fc.weight * 0.01 / math.sqrt(256), fc.bias * 0.01)
    torch.testing.assert_close(fc(x), expected)  # ... used times lr_mul / sqrt(fan_in)

    conv = EqualConv2d(64, 32, 3)
    assert 0.97 < conv.weight.std() < 1.03  # stored N(0, 1)
    conv.bias.data.normal_()
    x = torch.randn(2, 64, 8, 8)
    expected = F.conv2d(x, conv.weight / math.sqrt(64 * 9), conv.bias, padding=1)
    torch.testing.assert_close(conv(x), F.leaky_relu(expected, 0.2) * math.sqrt(2))


def test_demodulation_gives_unit_variance_output():
    torch.manual_seed(0)
    x = torch.randn(2, 32, 48, 48)
    weight = torch.randn(16, 32, 3, 3)
    styles = torch.rand(2, 32) * 3 + 0.1
    out = modulated_conv2d(x, weight, styles)
    variance = out[:, :, 1:-1, 1:-1].var(dim=[2, 3])  # per sample and output channel
    assert 0.85 < variance.min() and variance.max() < 1.15, variance
    raw = modulated_conv2d(x, weight, styles, demodulate=False)
    assert raw.var() > 4  # without demodulation the styles' scale passes through


@pytest.mark.parametrize("up", [False, True], ids=["same", "up"])
def test_grouped_and_shared_weight_modulated_conv_agree(up):
    torch.manual_seed(0)
    x = torch.randn(3, 8, 6, 6)
    weight = torch.randn(5, 8, 3, 3)
    styles = torch.randn(3, 8)
    size = 12 if up else 6
    noise = torch.randn(3, 1, size, size)
    out = modulated_conv2d(x, weight, styles, noise, up=up, fir=fir_filter())
    fused = modulated_conv2d(x, weight, styles, noise, up=up, fir=fir_filter(), fused=True)
    assert out.shape == (3, 5, size, size)
    torch.testing.assert_close(out, fused, rtol=1e-4, atol=1e-5)
    # The reference for one sample: Eqs. (1) and (3) written out on the weight.
    w = weight * styles[1][None, :, None, None]
    w = w / w.square().sum(dim=[1, 2, 3], keepdim=True).add(1e-8).sqrt()
    if up:  # insert zeros, convolve (flipped kernel: a transposed conv), low-pass filter * 4
        zeros_inserted = torch.zeros(1, 8, 11, 11)
        zeros_inserted[:, :, ::2, ::2] = x[1:2]
        ref = F.conv2d(zeros_inserted, w.flip(-1, -2), padding=2)
        ref = F.conv2d(ref, 4 * fir_filter().expand(5, 1, 4, 4), padding=1, groups=5)
    else:
        ref = F.conv2d(x[1:2], w, padding=1)
    torch.testing.assert_close(out[1:2], ref + noise[1:2], rtol=1e-4, atol=1e-5)


def test_every_w_reaches_the_image():
    G, _ = tiny_nets()
    ws = G.mapping(torch.randn(2, 32))
    with torch.no_grad():
        base = G.synthesis(ws, noise_mode="none")
        for i in range(G.num_ws):  # 2 per resolution, minus 2: 4x4 has one conv, toRGB shares w
            moved = ws.clone()
            moved[:, i] += 1
            assert not torch.allclose(G.synthesis(moved, noise_mode="none"), base), f"w {i} unused"


def test_torgb_is_a_modulated_1x1_conv_without_demodulation():
    G, _ = tiny_nets()
    torgb = G.synthesis.blocks["b8"].torgb
    torgb.bias.data.normal_()
    x, w = torch.randn(2, 32, 8, 8), torch.randn(2, 32)
    styles = torgb.affine(w)  # [2, 32]
    ref = F.conv2d(x * styles[:, :, None, None] / math.sqrt(32), torgb.weight)
    torch.testing.assert_close(torgb(x, w), ref + torgb.bias[None, :, None, None])


def test_discriminator_block_is_residual_with_sqrt_half_gain():
    _, D = tiny_nets(conv_clamp=None)
    block = D.blocks["b16"]
    x = torch.randn(2, 16, 16, 16)
    ref = (block.skip(x) + block.conv1(block.conv0(x))) * math.sqrt(0.5)
    torch.testing.assert_close(block(x), ref)
    assert block.skip.bias is None and block.fromrgb is None
    assert D.blocks["b32"].fromrgb is not None


def test_bias_act_gain_and_clamp():
    x = torch.linspace(-4, 4, 9).reshape(1, 1, 3, 3).repeat(2, 2, 1, 1)
    bias = torch.tensor([0.5, -1.0])
    gain = math.sqrt(0.5)
    out = bias_act(x, bias, activation=True, gain=gain, clamp=2.0)
    ref = F.leaky_relu(x + bias[None, :, None, None], 0.2) * math.sqrt(2) * gain
    torch.testing.assert_close(out, ref.clamp(-2 * gain, 2 * gain))
    torch.testing.assert_close(bias_act(x, None, activation=False, gain=3.0), 3 * x)


def test_fir_resampling_keeps_a_constant_image_constant():
    fir = fir_filter()
    assert fir.shape == (4, 4) and torch.isclose(fir.sum(), torch.tensor(1.0))
    ones = torch.ones(2, 3, 8, 8)
    up = upsample2d(ones, fir)
    down = downsample2d(ones, fir)
    assert up.shape == (2, 3, 16, 16) and down.shape == (2, 3, 4, 4)
    torch.testing.assert_close(up[:, :, 2:-2, 2:-2], torch.ones(2, 3, 12, 12))
    torch.testing.assert_close(down[:, :, 1:-1, 1:-1], torch.ones(2, 3, 2, 2))


def test_upsample_interpolates_between_pixels():
    image = torch.zeros(1, 1, 8, 8)
    image[..., 4, 4] = 1
    up = upsample2d(image, fir_filter())
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    expected = torch.zeros(16, 16)
    expected[7:11, 7:11] = torch.outer(taps, taps) / 16  # the filter around pixel 8.5, gain 4
    torch.testing.assert_close(up[0, 0], expected)


def test_minibatch_std_matches_groupwise_std():
    torch.manual_seed(0)
    x = torch.randn(8, 6, 4, 4)
    out = MinibatchStd(group_size=4)(x)
    assert out.shape == (8, 7, 4, 4)
    torch.testing.assert_close(out[:, :6], x)
    for i in range(8):  # group size 4 over a batch of 8: samples i, i+2, i+4, i+6 form a group
        group = x[i % 2 :: 2]
        expected = group.var(dim=0, unbiased=False).add(1e-8).sqrt().mean()
        torch.testing.assert_close(out[i, 6], expected.expand(4, 4))
    odd = MinibatchStd(group_size=4)(torch.randn(3, 6, 4, 4))  # 3 has no divisor in 2..4 but 3
    assert odd.shape == (3, 7, 4, 4) and torch.allclose(odd[:, 6], odd[0, 6])


def test_bad_configuration_and_input_shapes_raise_clear_errors():
    with pytest.raises(ValueError, match="power of two"):
        Generator(img_resolution=48)
    G, D = tiny_nets()
    with pytest.raises(ValueError, match="z must have shape"):
        G(torch.randn(2, 16))
    with pytest.raises(ValueError, match="img must have shape"):
        D(torch.randn(2, 3, 64, 64))


# ----------------------------------------------------------------------------------------------
# Mixed precision (fp16 blocks), exercised on CPU


def test_fp16_path_runs_selected_blocks_in_half_precision(monkeypatch):
    monkeypatch.setattr(networks, "FP16_DEVICE_TYPES", ("cuda", "cpu"))
    G, D = tiny_nets(num_fp16_res=2)  # fp16 at 16x16 and 32x32
    seen = {}

    def record(name):
        def hook(module, args, output):
            x = output[0] if isinstance(output, tuple) else output
            seen[name] = (x.dtype, x.is_contiguous(memory_format=torch.channels_last))

        return hook

    for net_name, blocks in (("G", G.synthesis.blocks), ("D", D.blocks)):
        for name, block in blocks.items():
            block.register_forward_hook(record(f"{net_name}.{name}"))
    z = torch.randn(4, 32)
    img = G(z, noise_mode="const")
    logits = D(img)
    assert img.dtype == torch.float32 and logits.dtype == torch.float32
    half = {name for name, (dtype, _) in seen.items() if dtype == torch.float16}
    assert half == {"G.b16", "G.b32", "D.b32", "D.b16"}
    assert all(seen[name][1] for name in half), "fp16 blocks should run channels-last"
    logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in G.parameters())

    with torch.no_grad():
        ref_img = G(z, noise_mode="const", force_fp32=True)
        torch.testing.assert_close(img.detach(), ref_img, rtol=0.05, atol=0.05)
        torch.testing.assert_close(
            logits.detach(), D(ref_img, force_fp32=True), rtol=0.05, atol=0.05
        )
    seen.clear()
    with torch.no_grad():
        D(G(z, force_fp32=True), force_fp32=True)
    assert all(dtype == torch.float32 for dtype, _ in seen.values())


@pytest.mark.slow  # about 10 s: traces (does not compile) both networks
def test_networks_trace_without_graph_breaks_for_torch_compile():
    G, D = tiny_nets()
    z = torch.randn(4, 32)
    for name, fn, args, kwargs in (
        ("G (train)", G.train(), (z,), {}),
        ("D", D, (torch.randn(4, 3, 32, 32),), {}),
        ("G (eval, truncated)", copy.deepcopy(G).eval(), (z,), dict(truncation_psi=0.7)),
    ):
        explanation = torch._dynamo.explain(fn)(*args, **kwargs)
        assert explanation.graph_break_count == 0, f"{name}: {explanation.break_reasons}"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_low_shot_fp16_blocks_on_gpu_match_fp32_and_support_double_backward():
    torch.manual_seed(0)
    G, D = Generator().cuda(), Discriminator().cuda()
    ws = G.mapping(torch.randn(4, 512, device="cuda"))
    img = G.synthesis(ws, noise_mode="const")
    with torch.no_grad():
        ref = G.synthesis(ws, noise_mode="const", force_fp32=True)
        assert img.dtype == torch.float32
        assert (img - ref).norm() / ref.norm() < 0.01
        torch.testing.assert_close(D(ref), D(ref, force_fp32=True), rtol=0.02, atol=0.02)
    real = ref.clone().requires_grad_(True)
    (r1_grads,) = torch.autograd.grad(D(real).sum(), real, create_graph=True)
    r1_grads.square().sum().backward()
    (pl_grads,) = torch.autograd.grad((img * torch.randn_like(img)).sum(), ws, create_graph=True)
    pl_grads.square().sum().backward()
    for net in (G, D):
        assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
