"""The StyleGAN2 losses (handout Sections 4-6): Eqs. (1)-(2), R1 (Eq. (3)), path length, DiffAugment.

One training iteration runs four phases, each followed by its optimizer step (their order and how
often each runs: Trainer.phases in training/training_loop.py):
  Gmain  generator loss, Eq. (1)                                      (TODO #1)
  Greg   path-length regularization of G (provided), lazy: every g_reg_interval-th iteration
  Dmain  discriminator loss, Eq. (2), on generated and real images    (TODOs #2, #3, #4)
  Dreg   R1 regularization of D, Eq. (3), lazy: every d_reg_interval-th iteration (TODO #5)
"""

import torch
import torch.nn.functional as F

from DiffAugment_pytorch import DiffAugment


class StyleGAN2Loss:
    """Computes each phase's loss and calls backward(); the training loop steps the optimizers."""

    pl_batch_shrink = 2  # path length is measured on batch // 2 images (StyleGAN2's value)
    pl_decay = 0.01  # how fast pl_mean follows the path lengths

    def __init__(self, device, G, D, r1_gamma=10.0, style_mixing_prob=0.9, pl_weight=2.0,
                 diffaug_policy=""):  # fmt: skip
        self.device = device
        self.G = G
        self.D = D
        self.r1_gamma = r1_gamma  # gamma of Eq. (3); 0 turns R1 off
        self.style_mixing_prob = style_mixing_prob
        self.pl_weight = pl_weight  # 0 turns path-length regularization off
        self.diffaug_policy = diffaug_policy  # e.g. "color,translation,cutout"; "" = none
        self.pl_mean = torch.zeros([], device=device)  # running mean of the path lengths

    def run_G(self, z, update_emas=False):
        """G(z) with style mixing: returns images [B, C, H, W] and the ws they were made from."""
        ws = self.G.mapping(z, update_emas=update_emas)  # [B, num_ws, w_dim]
        num_ws = ws.shape[1]
        if self.style_mixing_prob > 0 and num_ws > 1:
            # With probability style_mixing_prob, an image takes the styles of a second latent
            # from a random layer `cutoff` on (StyleGAN, Section 3.1: mixing regularization).
            batch_size = z.shape[0]
            cutoff = torch.randint(1, num_ws, (batch_size, 1, 1), device=z.device)
            mixed = torch.rand(batch_size, 1, 1, device=z.device) < self.style_mixing_prob
            cutoff = torch.where(mixed, cutoff, torch.full_like(cutoff, num_ws))
            second_ws = self.G.mapping(torch.randn_like(z), update_emas=False)
            layer = torch.arange(num_ws, device=z.device).view(1, num_ws, 1)
            ws = torch.where(layer < cutoff, ws, second_ws)
        img = self.G.synthesis(ws)
        return img, ws

    def run_D(self, img):
        """D(T(img)): logits [B, 1], T = DiffAugment with this run's policy (handout Section 6).

        The handout's extra-credit question asks why augmenting here is enough for the three
        cases of its Fig. 5.
        """
        if self.diffaug_policy:
            img = DiffAugment(img, policy=self.diffaug_policy)
        return self.D(img)

    def accumulate_gradients(self, phase, real_img, gen_z, gain):
        """Backpropagate one phase's loss into the parameters; returns detached scalars to log.

        phase: "Gmain", "Greg", "Dmain" or "Dreg"; real_img: [B, C, H, W] in [-1, 1];
        gen_z: [B, z_dim]; gain: the lazy-regularization interval for "Greg"/"Dreg", 1 otherwise
        (a regularizer computed only every k-th iteration is weighted by k, so that on average it
        weighs as much as if computed every iteration).
        backward() reaches every parameter that requires grad, so the training loop lets only
        the phase's network (G for G phases, D for D phases) require grad.
        """
        if phase not in ("Gmain", "Greg", "Dmain", "Dreg"):
            raise ValueError(f"Unknown phase {phase!r}: use Gmain, Greg, Dmain or Dreg.")
        batch_size = gen_z.shape[0]

        if phase == "Gmain":
            gen_img, _ = self.run_G(gen_z)
            gen_logits = self.run_D(gen_img)
            # TODO #1: generator loss, Eq. (1) of the handout (the expectation is taken below).
            #   D(G(z)) is gen_logits, shape [B, 1]. Set loss_Gmain to log(1 + exp(-D(G(z)))) per
            #   sample (shape [B, 1]) or to its mean (a scalar). Hint: log(1 + exp(u)) = softplus(u).
            # ------------------------------- BEGIN TODO #1 -------------------------------
            loss_Gmain = F.softplus(-gen_logits)
            # -------------------------------- END TODO #1 --------------------------------
            loss_Gmain = _batch_mean("loss_Gmain", loss_Gmain, batch_size)
            (loss_Gmain * gain).backward()
            return {
                "Loss/G/loss": loss_Gmain.detach(),
                "Loss/scores/fake": gen_logits.mean().detach(),
            }

        if phase == "Greg":
            if self.pl_weight == 0:
                return {}
            return self._path_length_regularization(gen_z, gain)

        if phase == "Dreg" and self.r1_gamma == 0:
            return {}

        if phase == "Dmain":
            # G is fixed while D learns: no graph through G. (update_emas: G tracks mean w here.)
            with torch.no_grad():
                gen_img, _ = self.run_G(gen_z, update_emas=True)
            gen_logits = self.run_D(gen_img)
            # TODO #2: discriminator loss on generated images, second term of Eq. (2).
            #   D(G(z)) is gen_logits, shape [B, 1]. Set loss_Dgen to log(1 + exp(D(G(z)))) per
            #   sample (shape [B, 1]) or to its mean (a scalar).
            # ------------------------------- BEGIN TODO #2 -------------------------------
            loss_Dgen = F.softplus(gen_logits)
            # -------------------------------- END TODO #2 --------------------------------
            loss_Dgen = _batch_mean("loss_Dgen", loss_Dgen, batch_size)

        # The real-image term (Dmain) and R1 (Dreg) both look at D(x).
        # TODO #3: which images x feed the first term of Eq. (2), E_x[log(1 + exp(-D(x)))]?
        #   In scope: real_img [B, C, H, W] (training images) and, in Dmain, gen_img (G's images).
        #   Set correct_input_to_discriminator_in_discriminator_loss to the right one, [B, C, H, W],
        #   as it is: run_D applies DiffAugment itself.
        # ------------------------------- BEGIN TODO #3 -------------------------------
        correct_input_to_discriminator_in_discriminator_loss = real_img
        # -------------------------------- END TODO #3 --------------------------------
        # A fresh leaf, so that Dreg can differentiate D(x) with respect to x.
        real_img_tmp = correct_input_to_discriminator_in_discriminator_loss.detach()
        real_img_tmp.requires_grad_(phase == "Dreg")
        real_logits = self.run_D(real_img_tmp)

        if phase == "Dmain":
            # TODO #4: discriminator loss on real images, first term of Eq. (2).
            #   D(x) is real_logits, shape [B, 1]. Set loss_Dreal to log(1 + exp(-D(x))) per
            #   sample (shape [B, 1]) or to its mean (a scalar).
            # ------------------------------- BEGIN TODO #4 -------------------------------
            loss_Dreal = F.softplus(-real_logits)
            # -------------------------------- END TODO #4 --------------------------------
            loss_Dreal = _batch_mean("loss_Dreal", loss_Dreal, batch_size)
            ((loss_Dgen + loss_Dreal) * gain).backward()  # each term is a mean over its batch
            return {
                "Loss/D/loss": (loss_Dgen + loss_Dreal).detach(),
                "Loss/D/loss_fake": loss_Dgen.detach(),
                "Loss/D/loss_real": loss_Dreal.detach(),
                "Loss/scores/fake": gen_logits.mean().detach(),
                "Loss/scores/real": real_logits.mean().detach(),
            }

        # Dreg: the gradient of D(x) with respect to x as handed to run_D, i.e. before DiffAugment
        # (create_graph: the penalty on it is itself differentiated with respect to D's parameters).
        r1_grads = torch.autograd.grad(
            outputs=real_logits.sum(), inputs=real_img_tmp, create_graph=True
        )[0]
        # TODO #5: R1 regularization, Eq. (3): R1 = gamma / 2 * E_x[ ||grad_x D(x)||^2 ].
        #   grad_x D(x) is r1_grads, shape [B, C, H, W] (one gradient image per sample); gamma is
        #   self.r1_gamma. ||.||^2 is the squared norm of one sample's whole gradient (over C, H
        #   and W). Set loss_Dr1 to gamma / 2 * ||grad_x D(x)||^2 per sample (shape [B]) or to its
        #   mean over the batch (a scalar). Keep it differentiable: D's parameters learn from it.
        # ------------------------------- BEGIN TODO #5 -------------------------------
        loss_Dr1 = r1_grads.square().sum(dim=[1, 2, 3]) * (self.r1_gamma / 2)
        # -------------------------------- END TODO #5 --------------------------------
        loss_Dr1 = _batch_mean("loss_Dr1", loss_Dr1, batch_size)
        # real_logits * 0: every D parameter gets a gradient (zero where R1 does not reach it),
        # so that gradients can be averaged over processes parameter by parameter.
        ((real_logits.mean() * 0 + loss_Dr1) * gain).backward()
        return {"Loss/D/reg": loss_Dr1.detach()}

    def _path_length_regularization(self, gen_z, gain):
        """Path-length regularization of G (StyleGAN2, Section 3.2), on a shrunk batch.

        The length of J_w^T y (J_w: Jacobian of G's image with respect to w, y: a random image
        scaled by 1/sqrt(H*W)) should stay close to its running mean pl_mean.
        """
        batch_size = max(1, gen_z.shape[0] // self.pl_batch_shrink)
        gen_img, gen_ws = self.run_G(gen_z[:batch_size])
        height, width = gen_img.shape[2], gen_img.shape[3]
        pl_noise = torch.randn_like(gen_img) / (height * width) ** 0.5
        pl_grads = torch.autograd.grad(
            outputs=(gen_img * pl_noise).sum(), inputs=gen_ws, create_graph=True
        )[0]  # [b, num_ws, w_dim]
        pl_lengths = pl_grads.square().sum(dim=2).mean(dim=1).sqrt()  # [b]
        pl_mean = self.pl_mean.lerp(
            pl_lengths.detach().mean().to(self.pl_mean.dtype), self.pl_decay
        )
        self.pl_mean.copy_(pl_mean)
        pl_penalty = (pl_lengths - pl_mean).square()  # [b]
        loss_Gpl = pl_penalty * self.pl_weight
        # gen_img[:, 0, 0, 0] * 0: every G parameter gets a gradient (zero where the penalty does
        # not reach it), so that gradients can be averaged over processes parameter by parameter.
        ((gen_img[:, 0, 0, 0] * 0 + loss_Gpl).mean() * gain).backward()
        return {
            "Loss/pl_penalty": pl_penalty.mean().detach(),
            "Loss/G/reg": loss_Gpl.mean().detach(),
        }

    def state_dict(self):
        """The running path-length mean, so a resumed run continues exactly."""
        return {"pl_mean": self.pl_mean.detach().cpu().clone()}

    def load_state_dict(self, state):
        self.pl_mean.copy_(torch.as_tensor(state["pl_mean"]))


def _batch_mean(name, loss, batch_size):
    """Mean of a per-sample loss ([B] or [B, 1]); a loss that is already a mean passes through."""
    if not torch.is_tensor(loss):
        raise TypeError(
            f"{name} must be a tensor that autograd can differentiate, not {type(loss)}."
        )
    if loss.numel() not in (1, batch_size):
        raise ValueError(
            f"{name} has shape {tuple(loss.shape)}: it should hold one value per sample "
            f"([{batch_size}] or [{batch_size}, 1]) or be their mean (a scalar)."
        )
    return loss.mean()
