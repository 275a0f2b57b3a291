"""The provided parts of GAN_homework/training/loss.py: style mixing, path-length regularization,
lazy gains, switched-off phases, the running path-length mean in state_dict, DiffAugment in run_D."""

import math
from pathlib import Path

import pytest
import torch
from gan_helpers import CUTOUT, R1, TRAINING
from loss_standins import make_setup

from training.loss import StyleGAN2Loss


def test_style_mixing_takes_later_layers_from_a_second_latent():
    torch.manual_seed(0)
    G, D, real_img, gen_z = make_setup(400, shape=(1, 2, 2))
    G.num_ws = G.mapping.num_ws = 5
    G.synthesis = torch.nn.Identity()
    own = G.mapping(gen_z)
    for prob, low, high in [(0.0, 0, 0), (1.0, 400, 400), (0.9, 330, 390)]:
        loss = StyleGAN2Loss("cpu", G, D, style_mixing_prob=prob)
        _, ws = loss.run_G(gen_z)
        same = (ws == own).all(dim=2)  # [B, num_ws]
        assert same[:, 0].all(), "layer 0 always comes from the sample's own latent"
        cutoff = same.sum(dim=1)  # own layers come first, then the second latent's
        assert torch.equal(same, torch.arange(5).view(1, 5) < cutoff.view(-1, 1))
        mixed = int((cutoff < 5).sum())
        assert low <= mixed <= high, (prob, mixed)
        if prob == 1.0:
            assert set(cutoff.tolist()) == {1, 2, 3, 4}


def test_path_length_regularization_matches_a_reference():
    G, D, real_img, gen_z = make_setup(6, seed=3)
    loss = StyleGAN2Loss("cpu", G, D, style_mixing_prob=0.0, pl_weight=2.0)
    torch.manual_seed(11)
    stats = loss.accumulate_gradients("Greg", real_img, gen_z, gain=4)

    torch.manual_seed(11)
    z = gen_z[:3]  # pl_batch_shrink 2
    ws = G.mapping(z)
    img = G.synthesis(ws)
    noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
    (jac,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
    lengths = jac.square().sum(2).mean(1).sqrt()
    pl_mean = 0.01 * lengths.detach().mean()
    penalty = (lengths - pl_mean).square()
    expected = torch.autograd.grad(penalty.mean() * 2.0 * 4, list(G.parameters()))
    assert math.isclose(
        float(stats["Loss/pl_penalty"]), float(penalty.detach().mean()), rel_tol=1e-5
    )
    assert math.isclose(float(loss.pl_mean), float(pl_mean), rel_tol=1e-6)
    for p, e in zip(G.parameters(), expected):
        assert torch.allclose(p.grad, e)
    # the running mean carries over, through state_dict too
    other = StyleGAN2Loss("cpu", G, D)
    other.load_state_dict(loss.state_dict())
    assert torch.equal(other.pl_mean, loss.pl_mean)


def test_switched_off_phases_do_nothing():
    G, D, real_img, gen_z = make_setup(2)
    loss = StyleGAN2Loss("cpu", G, D, r1_gamma=0.0, pl_weight=0.0)
    assert loss.accumulate_gradients("Greg", real_img, gen_z, gain=4) == {}
    assert loss.accumulate_gradients("Dreg", real_img, gen_z, gain=16) == {}
    assert all(p.grad is None for p in list(G.parameters()) + list(D.parameters()))
    with pytest.raises(ValueError, match="phase"):
        loss.accumulate_gradients("Gboth", real_img, gen_z, gain=1)


@pytest.mark.needs(*TRAINING[1:])
def test_main_phases_scale_with_gain():
    G, D, real_img, gen_z = make_setup(3)
    grads = []
    for gain in (1, 3):
        for p in D.parameters():
            p.grad = None
        StyleGAN2Loss("cpu", G, D, style_mixing_prob=0.0).accumulate_gradients(
            "Dmain", real_img, gen_z, gain=gain
        )
        grads.append([p.grad.clone() for p in D.parameters()])
    assert all(torch.allclose(3 * a, b) for a, b in zip(*grads))


@pytest.mark.needs(*TRAINING, R1, CUTOUT)
def test_diffaugment_runs_inside_run_D_for_every_phase():
    torch.manual_seed(0)
    G, D, real_img, gen_z = make_setup(4, shape=(3, 16, 16))
    loss = StyleGAN2Loss("cpu", G, D, diffaug_policy="color,translation,cutout")
    for phase in ("Gmain", "Dmain", "Dreg"):
        D.inputs.clear()
        loss.accumulate_gradients(phase, real_img, gen_z, gain=1)
        assert D.inputs and all((x == 0).any() for x in D.inputs)  # cutout boxes everywhere
        assert not any(torch.equal(x, real_img) for x in D.inputs)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())


def test_the_handouts_lines_56_to_59_of_loss_py_are_run_ds_diffaugment():
    """The handout's extra-credit question points at lines 56-59 of training/loss.py."""
    lines = (Path(__file__).parents[2] / "GAN_homework/training/loss.py").read_text().splitlines()
    shown = "\n".join(lines[55:59])
    assert "img = DiffAugment(img, policy=self.diffaug_policy)" in shown, shown
    assert "return self.D(img)" in shown, shown
    assert any("def run_D(self, img):" in line for line in lines[48:56])
