"""Grading tests for GAN_homework/training/loss.py, TODOs #1-#5 (handout Eqs. (1)-(3)).

Every test runs a real phase of `StyleGAN2Loss.accumulate_gradients` on small deterministic
stand-ins for G and D (float64, non-square images) and compares the logged loss, the gradient
that reaches the logits and the gradients that reach the networks' parameters with autograd on
the reference formulas. A TODO is tested alone: the other TODO blocks of loss.py are replaced by
probes first (arbitrary differentiable stand-ins whose effect the test knows, not answers), so
a mistake in one block does not cost points on another.
"""

import re
import sys
import types
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
LOSS_FILE = ROOT / "GAN_homework" / "training" / "loss.py"
TODO = "GAN_homework/training/loss.py#{}"
SHAPE = (3, 5, 7)  # C, H, W of the stand-in images: non-square on purpose

PROBE_BLOCKS = {
    1: "loss_Gmain = torch.cos(gen_logits)",
    2: "loss_Dgen = torch.cos(gen_logits)",
    3: "correct_input_to_discriminator_in_discriminator_loss = PROBE_IMAGES",
    4: "loss_Dreal = torch.sin(real_logits)",
    5: "loss_Dr1 = torch.cos(r1_grads).mean()",
}
_BEGIN = re.compile(r"^(\s*)#.*\bBEGIN TODO #(\d+)\b")
_END = re.compile(r"^\s*#.*\bEND TODO #(\d+)\b")


def loss_module(todo):
    """training/loss.py with every TODO block except #`todo` replaced by its probe."""
    lines = LOSS_FILE.read_text().splitlines()
    out, skipping = [], None
    for line in lines:
        begin, end = _BEGIN.match(line), _END.match(line)
        if skipping is not None:
            if end and int(end.group(1)) == skipping:
                out.append(line)
                skipping = None
            continue
        out.append(line)
        if begin and int(begin.group(2)) != todo and int(begin.group(2)) in PROBE_BLOCKS:
            skipping = int(begin.group(2))
            out.append(begin.group(1) + PROBE_BLOCKS[skipping])
    if skipping is not None:  # damaged markers: grade the file as it is
        out = lines
    module = types.ModuleType(f"graded_loss_todo{todo}")
    module.__file__ = str(LOSS_FILE)
    code = compile("\n".join(out) + "\n", str(LOSS_FILE), "exec")
    try:
        import DiffAugment_pytorch  # noqa: F401
    except Exception:  # a broken rand_cutout costs its own points only: run without DiffAugment
        stub = types.ModuleType("DiffAugment_pytorch")
        stub.DiffAugment = lambda x, policy="", channels_first=True: x
        saved = sys.modules.get("DiffAugment_pytorch")
        sys.modules["DiffAugment_pytorch"] = stub
        try:
            exec(code, module.__dict__)
        finally:
            sys.modules.pop("DiffAugment_pytorch")
            if saved is not None:
                sys.modules["DiffAugment_pytorch"] = saved
        return module
    exec(code, module.__dict__)
    return module


# ---------------------------------------------------------------- stand-in networks


def _fill(module, seed, scale):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=gen, dtype=param.dtype) * scale)
    return module


class StandInMapping(torch.nn.Module):
    def __init__(self, z_dim, w_dim, num_ws):
        super().__init__()
        self.num_ws = num_ws
        self.fc = torch.nn.Linear(z_dim, w_dim)

    def forward(self, z, truncation_psi=1.0, truncation_cutoff=None, update_emas=False):
        return torch.tanh(self.fc(z)).unsqueeze(1).repeat(1, self.num_ws, 1)


class StandInSynthesis(torch.nn.Module):
    def __init__(self, w_dim, num_ws, shape):
        super().__init__()
        self.shape = shape
        self.fc = torch.nn.Linear(num_ws * w_dim, shape[0] * shape[1] * shape[2])

    def forward(self, ws, noise_mode="random", force_fp32=False):
        return torch.tanh(self.fc(ws.flatten(1))).view(-1, *self.shape)


class StandInG(torch.nn.Module):
    """G's interface (mapping, synthesis, z_dim, num_ws) with no randomness of its own."""

    def __init__(self, shape, z_dim=4, w_dim=6, num_ws=3, seed=1):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws = z_dim, w_dim, num_ws
        self.img_channels, self.img_resolution = shape[0], shape[1]
        self.mapping = StandInMapping(z_dim, w_dim, num_ws)
        self.synthesis = StandInSynthesis(w_dim, num_ws, shape)
        _fill(self, seed, 0.6)

    def forward(self, z, **kwargs):
        return self.synthesis(self.mapping(z))


class StandInD(torch.nn.Module):
    """D(img) -> logits [B, 1]; records its inputs and the gradient that reaches its logits."""

    def __init__(self, shape, hidden=8, seed=2):
        super().__init__()
        self.fc1 = torch.nn.Linear(shape[0] * shape[1] * shape[2], hidden)
        self.fc2 = torch.nn.Linear(hidden, 1)
        _fill(self, seed, 0.5)
        with torch.no_grad():
            self.fc2.weight.mul_(3.0)
        self.inputs, self.logit_grads = [], []

    def score(self, img):
        """The discriminator as a plain function (used by the reference computations)."""
        return self.fc2(torch.tanh(self.fc1(img.flatten(1))))

    def forward(self, img, force_fp32=False):
        self.inputs.append(img.detach().clone())
        logits = self.score(img)
        slot = len(self.logit_grads)
        self.logit_grads.append(None)
        if logits.requires_grad:
            logits.register_hook(lambda grad: self.logit_grads.__setitem__(slot, grad.detach()))
        return logits


def make_setup(batch, seed=0, shape=SHAPE):
    G = StandInG(shape).double()
    D = StandInD(shape).double()
    gen = torch.Generator().manual_seed(100 + seed)
    real_img = torch.rand((batch, *shape), generator=gen, dtype=torch.float64) * 2 - 1
    gen_z = torch.randn((batch, G.z_dim), generator=gen, dtype=torch.float64)
    return G, D, real_img, gen_z


def probe_images(real_img):
    """The images that probe #3 hands to D's real term: neither real_img nor G's images."""
    gen = torch.Generator().manual_seed(999)
    return torch.rand(real_img.shape, generator=gen, dtype=real_img.dtype) * 2 - 1


def make_loss(todo, G, D, real_img, **kwargs):
    kwargs.setdefault("style_mixing_prob", 0.0)  # G(z) deterministic: the reference can redo it
    module = loss_module(todo)
    module.PROBE_IMAGES = probe_images(real_img)
    return module.StyleGAN2Loss("cpu", G, D, **kwargs)


# ---------------------------------------------------------------- checks and messages


def _close(a, b):
    return torch.allclose(torch.as_tensor(a), torch.as_tensor(b), rtol=1e-6, atol=1e-9)


def check_value(name, got, expected, formula, wrong_answers):
    """Compare a logged loss with the reference and name the mistake when one is recognized."""
    if _close(got, expected):
        return
    hint = next((why for why, value in wrong_answers.items() if _close(got, value)), "")
    pytest.fail(
        f"{name} is wrong: expected the batch mean of {formula} = {float(expected):.6f}, "
        f"got {float(got):.6f}." + (f" It looks like {hint}." if hint else "")
    )


def check_param_grads(name, module, expected, what):
    """The .grad of every parameter of `module` must equal the reference gradients."""
    params = list(module.parameters())
    got = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
    if all(float(g.abs().max()) == 0 for g in got):
        pytest.fail(
            f"No gradient from {name} reaches {what}'s parameters: keep the loss differentiable "
            "(no .detach(), .item(), .data or torch.no_grad())."
        )
    for param_name, g, e in zip([n for n, _ in module.named_parameters()], got, expected):
        if not torch.allclose(g, e, rtol=1e-6, atol=1e-10):
            pytest.fail(
                f"The gradient that {name} sends to {what}.{param_name} differs from the "
                f"reference (max abs difference {float((g - e).abs().max()):.3g})."
            )


def check_logit_grad(name, got, expected, formula):
    assert got is not None, f"No gradient reaches the logits from {name}: do not detach them."
    ratio = (got / expected).flatten()
    hint = ""
    if _close(got, -expected):
        hint = " The sign is flipped."
    elif torch.allclose(ratio, ratio[0].expand_as(ratio)) and len(ratio) > 1:
        hint = f" It is {float(ratio[0]):.3g} times the expected one (a sum instead of a mean?)."
    if not _close(got, expected):
        pytest.fail(
            f"The gradient of {name} with respect to the logits is wrong: expected {formula} per "
            f"sample.{hint}"
        )


# ---------------------------------------------------------------- TODO #1: generator loss


@pytest.mark.todo(TODO.format(1))
@pytest.mark.parametrize("batch", [1, 3, 5])
def test_generator_loss_matches_eq1(batch):
    G, D, real_img, gen_z = make_setup(batch)
    stats = make_loss(1, G, D, real_img).accumulate_gradients("Gmain", real_img, gen_z, gain=1)

    logits = D.score(G(gen_z)).detach()
    expected = F.softplus(-logits).mean()
    check_value(
        "loss_Gmain",
        stats["Loss/G/loss"],
        expected,
        "softplus(-D(G(z))) = log(1 + exp(-D(G(z))))",
        {
            "the sign is flipped: softplus(+D(G(z))) is D's loss on fakes": F.softplus(
                logits
            ).mean(),
            "log-sigmoid without the minus: -logsigmoid(D(G(z))) is the loss": F.logsigmoid(
                logits
            ).mean(),
            "the saturating loss log(1 - sigmoid(D(G(z))))": -F.softplus(logits).mean(),
            "a sum over the batch, not a per-sample value or a mean": F.softplus(-logits).sum(),
        },
    )
    check_logit_grad(
        "loss_Gmain", D.logit_grads[0], -torch.sigmoid(-logits) / batch, "-sigmoid(-D(G(z))) / B"
    )


@pytest.mark.todo(TODO.format(1))
@pytest.mark.parametrize("batch", [1, 5])
def test_generator_loss_gradient_reaches_generator(batch):
    G, D, real_img, gen_z = make_setup(batch, seed=1)
    make_loss(1, G, D, real_img).accumulate_gradients("Gmain", real_img, gen_z, gain=1)

    reference = F.softplus(-D.score(G(gen_z))).mean()
    expected = torch.autograd.grad(reference, list(G.parameters()))
    check_param_grads("loss_Gmain", G, expected, "G")


# ---------------------------------------------------------------- Dmain: TODOs #2, #3, #4


def reference_dmain(D, gen_img, fake_term, real_input, real_term):
    """D's parameter gradients of mean(fake_term(D(gen_img))) + mean(real_term(D(real_input)))."""
    loss = fake_term(D.score(gen_img)).mean() + real_term(D.score(real_input)).mean()
    return torch.autograd.grad(loss, list(D.parameters()))


def softplus_of_minus(logits):
    return F.softplus(-logits)


@pytest.mark.todo(TODO.format(2))
@pytest.mark.parametrize("batch", [1, 3, 5])
def test_discriminator_fake_term_matches_eq2(batch):
    G, D, real_img, gen_z = make_setup(batch)
    stats = make_loss(2, G, D, real_img).accumulate_gradients("Dmain", real_img, gen_z, gain=1)

    logits = D.score(G(gen_z)).detach()
    check_value(
        "loss_Dgen",
        stats["Loss/D/loss_fake"],
        F.softplus(logits).mean(),
        "softplus(D(G(z))) = log(1 + exp(D(G(z))))",
        {
            "the sign is flipped: softplus(-D(G(z))) is G's loss": F.softplus(-logits).mean(),
            "log-sigmoid without a minus: -logsigmoid(-D(G(z))) is the loss": F.logsigmoid(
                -logits
            ).mean(),
            "-softplus(D(G(z))), which D would minimize the wrong way": -F.softplus(logits).mean(),
            "a sum over the batch, not a per-sample value or a mean": F.softplus(logits).sum(),
        },
    )
    check_logit_grad(
        "loss_Dgen", D.logit_grads[0], torch.sigmoid(logits) / batch, "sigmoid(D(G(z))) / B"
    )


@pytest.mark.todo(TODO.format(2))
def test_discriminator_fake_term_gradient_reaches_discriminator_only():
    G, D, real_img, gen_z = make_setup(5, seed=2)
    make_loss(2, G, D, real_img).accumulate_gradients("Dmain", real_img, gen_z, gain=1)

    gen_img = G(gen_z).detach()
    expected = reference_dmain(D, gen_img, F.softplus, probe_images(real_img), torch.sin)
    check_param_grads("loss_Dgen", D, expected, "D")
    assert all(p.grad is None or float(p.grad.abs().max()) == 0 for p in G.parameters()), (
        "The discriminator loss changed G's gradients: G is fixed while D learns."
    )


@pytest.mark.todo(TODO.format(4))
@pytest.mark.parametrize("batch", [1, 3, 5])
def test_discriminator_real_term_matches_eq2(batch):
    G, D, real_img, gen_z = make_setup(batch)
    stats = make_loss(4, G, D, real_img).accumulate_gradients("Dmain", real_img, gen_z, gain=1)

    logits = D.score(probe_images(real_img)).detach()
    check_value(
        "loss_Dreal",
        stats["Loss/D/loss_real"],
        F.softplus(-logits).mean(),
        "softplus(-D(x)) = log(1 + exp(-D(x)))",
        {
            "the sign is flipped: softplus(+D(x)) is the loss on fakes": F.softplus(logits).mean(),
            "log-sigmoid without the minus: -logsigmoid(D(x)) is the loss": F.logsigmoid(
                logits
            ).mean(),
            "-softplus(-D(x)), which D would minimize the wrong way": -F.softplus(-logits).mean(),
            "a sum over the batch, not a per-sample value or a mean": F.softplus(-logits).sum(),
        },
    )
    check_logit_grad(
        "loss_Dreal", D.logit_grads[1], -torch.sigmoid(-logits) / batch, "-sigmoid(-D(x)) / B"
    )


@pytest.mark.todo(TODO.format(4))
def test_discriminator_real_term_gradient_reaches_discriminator():
    G, D, real_img, gen_z = make_setup(5, seed=3)
    make_loss(4, G, D, real_img).accumulate_gradients("Dmain", real_img, gen_z, gain=1)

    gen_img = G(gen_z).detach()
    expected = reference_dmain(D, gen_img, torch.cos, probe_images(real_img), softplus_of_minus)
    check_param_grads("loss_Dreal", D, expected, "D")


def _fake_augment(img, policy="", channels_first=True):
    """A deterministic stand-in for DiffAugment, so that tests can tell what was augmented."""
    return img.flip(3) * 0.75 + 0.125


def check_discriminator_inputs(D, expected_inputs, gen_img, real_img):
    assert len(D.inputs) == len(expected_inputs), (
        f"D was called {len(D.inputs)} times in this phase, expected {len(expected_inputs)}."
    )
    for seen, (role, expected) in zip(D.inputs, expected_inputs):
        if seen.shape == expected.shape and torch.allclose(seen, expected, rtol=0, atol=1e-12):
            continue
        if role == "real" and gen_img is not None and seen.shape == gen_img.shape:
            if torch.allclose(seen, gen_img) or torch.allclose(seen, _fake_augment(gen_img)):
                pytest.fail(
                    "The real term of Eq. (2) was fed G's images: its input x must be real_img."
                )
        if role == "real" and seen.shape == real_img.shape:
            if torch.allclose(seen, _fake_augment(_fake_augment(real_img))):
                pytest.fail(
                    "The real images were augmented twice: run_D applies DiffAugment already, so "
                    "pass real_img as it is."
                )
        pytest.fail(f"D's input for the {role} term is not what Eq. (2) asks for: use real_img.")


@pytest.mark.todo(TODO.format(3))
@pytest.mark.parametrize("batch", [1, 3])
def test_real_term_reads_the_real_images(batch):
    G, D, real_img, gen_z = make_setup(batch, seed=4)
    real_copy = real_img.clone()
    make_loss(3, G, D, real_img).accumulate_gradients("Dmain", real_img, gen_z, gain=1)

    gen_img = G(gen_z).detach()
    check_discriminator_inputs(D, [("fake", gen_img), ("real", real_img)], gen_img, real_img)
    assert torch.equal(real_img, real_copy), (
        "real_img itself was changed: hand D the real images without editing the caller's tensor."
    )
    expected = reference_dmain(D, gen_img, torch.cos, real_img, torch.sin)
    check_param_grads("the discriminator loss", D, expected, "D")


@pytest.mark.todo(TODO.format(3))
def test_real_term_is_augmented_once_inside_run_D():
    G, D, real_img, gen_z = make_setup(3, seed=5)
    module = loss_module(3)
    module.DiffAugment = _fake_augment
    loss = module.StyleGAN2Loss("cpu", G, D, style_mixing_prob=0.0, diffaug_policy="stand-in")
    loss.accumulate_gradients("Dmain", real_img, gen_z, gain=1)

    gen_img = G(gen_z).detach()
    expected_inputs = [("fake", _fake_augment(gen_img)), ("real", _fake_augment(real_img))]
    check_discriminator_inputs(D, expected_inputs, gen_img, real_img)
    expected = reference_dmain(
        D, _fake_augment(gen_img), torch.cos, _fake_augment(real_img), torch.sin
    )
    check_param_grads("the discriminator loss", D, expected, "D")


def r1_penalty(gamma):
    """Eq. (3) as a function of the input gradients [B, C, H, W]: the batch mean of gamma/2 ||g||^2."""
    return lambda grads: (gamma / 2 * grads.pow(2).flatten(1).sum(1)).mean()


def reference_r1(D, images, penalty, augment=None):
    """(penalty of dD(x)/dx at x = images, the input gradients, D's parameter gradients)."""
    x = images.clone().requires_grad_(True)
    logits = D.score(augment(x) if augment else x)
    (grads,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    loss = penalty(grads)
    params = list(D.parameters())
    param_grads = torch.autograd.grad(loss, params, allow_unused=True)  # D's last bias: unused
    param_grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, param_grads)]
    return loss.detach(), grads.detach(), param_grads


@pytest.mark.todo(TODO.format(3))
@pytest.mark.parametrize("augmented", [False, True], ids=["plain", "augmented"])
def test_r1_reads_the_real_images(augmented):
    G, D, real_img, gen_z = make_setup(3, seed=6)
    module = loss_module(3)
    if augmented:
        module.DiffAugment = _fake_augment
    loss = module.StyleGAN2Loss(
        "cpu", G, D, r1_gamma=3.0, style_mixing_prob=0.0, diffaug_policy="a" if augmented else ""
    )
    loss.accumulate_gradients("Dreg", real_img, gen_z, gain=4)

    seen = _fake_augment(real_img) if augmented else real_img
    check_discriminator_inputs(D, [("real", seen)], None, real_img)
    probe = lambda grads: torch.cos(grads).mean()  # noqa: E731  (probe #5)
    _, _, expected = reference_r1(D, real_img, probe, _fake_augment if augmented else None)
    check_param_grads("R1", D, [4 * g for g in expected], "D")


# ---------------------------------------------------------------- TODO #5: R1


@pytest.mark.todo(TODO.format(5))
@pytest.mark.parametrize(("batch", "gamma"), [(1, 3.0), (3, 3.0), (5, 0.5)])
def test_r1_penalty_matches_eq3(batch, gamma):
    G, D, real_img, gen_z = make_setup(batch, seed=7)
    loss = make_loss(5, G, D, real_img, r1_gamma=gamma)
    stats = loss.accumulate_gradients("Dreg", real_img, gen_z, gain=16)

    expected, grads, _ = reference_r1(D, probe_images(real_img), r1_penalty(gamma))
    sq = grads.pow(2).flatten(1).sum(1)
    pixels = grads[0].numel()
    check_value(
        "loss_Dr1",
        stats["Loss/D/reg"],
        expected,
        "gamma/2 * ||grad_x D(x)||^2 (squared norm summed over C, H, W)",
        {
            "the factor 1/2 is missing": (gamma * sq).mean(),
            "gamma is missing": (sq / 2).mean(),
            "gamma = 10 is hard-coded: use self.r1_gamma": (5.0 * sq).mean(),
            "the norm is not squared": (gamma / 2 * sq.sqrt()).mean(),
            "the squares are averaged over pixels instead of summed": (
                gamma / 2 * sq / pixels
            ).mean(),
            "the squared norm is summed over the batch": (gamma / 2 * sq).sum(),
            "a norm over C only, then averaged over H and W": (
                gamma / 2 * grads.pow(2).sum(1).mean(dim=[1, 2])
            ).mean(),
        },
    )


@pytest.mark.todo(TODO.format(5), weight=2)
@pytest.mark.parametrize(("batch", "gamma"), [(1, 3.0), (3, 3.0), (5, 0.5)])
def test_r1_gradient_reaches_discriminator_with_lazy_gain(batch, gamma):
    G, D, real_img, gen_z = make_setup(batch, seed=8)
    loss = make_loss(5, G, D, real_img, r1_gamma=gamma)
    loss.accumulate_gradients("Dreg", real_img, gen_z, gain=16)

    _, _, expected = reference_r1(D, probe_images(real_img), r1_penalty(gamma))
    check_param_grads("loss_Dr1", D, [16 * g for g in expected], "D")


@pytest.mark.todo(TODO.format(5))
def test_r1_on_a_second_image_size():
    shape = (2, 6, 4)
    G, D, real_img, gen_z = make_setup(3, seed=9, shape=shape)
    loss = make_loss(5, G, D, real_img, r1_gamma=3.0)
    stats = loss.accumulate_gradients("Dreg", real_img, gen_z, gain=1)

    expected, _, expected_grads = reference_r1(D, probe_images(real_img), r1_penalty(3.0))
    assert _close(stats["Loss/D/reg"], expected), (
        f"loss_Dr1 is wrong for {shape[1]}x{shape[2]} images with {shape[0]} channels: expected "
        f"{float(expected):.6f}, got {float(stats['Loss/D/reg']):.6f}. Sum the squares over C, H, W."
    )
    check_param_grads("loss_Dr1", D, expected_grads, "D")
