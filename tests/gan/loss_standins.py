"""Small deterministic stand-ins for G and D with StyleGAN2's interfaces, for the project tests
of the loss's provided parts (style mixing, path length, gains, DiffAugment in run_D)."""

import torch

SHAPE = (3, 5, 7)  # C, H, W of the stand-in images: non-square on purpose


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
