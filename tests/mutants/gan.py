"""Plausible wrong and alternative right answers for the GAN TODO blocks (Part A).

Each body replaces the code between a TODO's BEGIN/END markers (written at indentation 0; the
mutant harness re-indents it). The TODO's grading tests must fail on every "wrong" body, pass
on every "right" one, and give no point to a "nothing" body (it returns its input: no work).
Names in scope: each TODO's `scope` in tools/todos.py (loss.py imports torch and
torch.nn.functional as F; DiffAugment_pytorch.py imports numpy as np and torch).
"""

LOSS = "GAN_homework/training/loss.py"
CUTOUT = "GAN_homework/DiffAugment_pytorch.py#1"

MUTANTS = {
    f"{LOSS}#1": {
        "nothing": [
            ("the logits themselves", "loss_Gmain = gen_logits\n"),
        ],
        "wrong": [
            ("wrong sign", "loss_Gmain = F.softplus(gen_logits)\n"),
            ("log-sigmoid without the minus", "loss_Gmain = F.logsigmoid(gen_logits)\n"),
            ("saturating loss log(1 - sigmoid)", "loss_Gmain = -F.softplus(gen_logits)\n"),
            ("sum over the batch", "loss_Gmain = F.softplus(-gen_logits).sum()\n"),
            ("detached", "loss_Gmain = F.softplus(-gen_logits.detach())\n"),
        ],
        "right": [
            ("minus log-sigmoid", "loss_Gmain = -F.logsigmoid(gen_logits)\n"),
            ("log(1 + exp), mean", "loss_Gmain = torch.log(1 + torch.exp(-gen_logits)).mean()\n"),
            (
                "BCE with target 1, shape [B]",
                "loss_Gmain = F.binary_cross_entropy_with_logits(\n"
                "    gen_logits.squeeze(1), torch.ones_like(gen_logits.squeeze(1)), reduction='none'\n"
                ")\n",
            ),
        ],
    },
    f"{LOSS}#2": {
        "nothing": [
            ("the logits themselves", "loss_Dgen = gen_logits\n"),
        ],
        "wrong": [
            ("wrong sign (the generator's loss)", "loss_Dgen = F.softplus(-gen_logits)\n"),
            ("log-sigmoid without a minus", "loss_Dgen = F.logsigmoid(-gen_logits)\n"),
            ("negated", "loss_Dgen = -F.softplus(gen_logits)\n"),
            ("sum over the batch", "loss_Dgen = F.softplus(gen_logits).sum()\n"),
            ("detached", "loss_Dgen = F.softplus(gen_logits).detach()\n"),
        ],
        "right": [
            ("minus log-sigmoid", "loss_Dgen = -F.logsigmoid(-gen_logits)\n"),
            (
                "BCE with target 0, mean",
                "loss_Dgen = F.binary_cross_entropy_with_logits(gen_logits, torch.zeros_like(gen_logits))\n",
            ),
            ("log1p(exp), shape [B]", "loss_Dgen = torch.log1p(torch.exp(gen_logits)).view(-1)\n"),
        ],
    },
    f"{LOSS}#3": {
        "nothing": [
            (
                "the other input, gen_img",
                "correct_input_to_discriminator_in_discriminator_loss = gen_img\n",
            ),
        ],
        "wrong": [
            (
                "generated images",
                "correct_input_to_discriminator_in_discriminator_loss = gen_img\n",
            ),
            (
                "detached generated images",
                "correct_input_to_discriminator_in_discriminator_loss = gen_img.detach()\n",
            ),
            (
                "reals augmented a second time",
                "correct_input_to_discriminator_in_discriminator_loss = DiffAugment(\n"
                "    real_img, policy=self.diffaug_policy\n"
                ")\n",
            ),
            (
                "reals and fakes together",
                "correct_input_to_discriminator_in_discriminator_loss = torch.cat([real_img, gen_img])\n",
            ),
            (
                "reals rescaled to [0, 1]",
                "correct_input_to_discriminator_in_discriminator_loss = (real_img + 1) / 2\n",
            ),
        ],
        "right": [
            (
                "detached reals",
                "correct_input_to_discriminator_in_discriminator_loss = real_img.detach()\n",
            ),
            ("a copy", "correct_input_to_discriminator_in_discriminator_loss = real_img.clone()\n"),
        ],
    },
    f"{LOSS}#4": {
        "nothing": [
            ("the logits themselves", "loss_Dreal = real_logits\n"),
        ],
        "wrong": [
            ("wrong sign", "loss_Dreal = F.softplus(real_logits)\n"),
            ("log-sigmoid without the minus", "loss_Dreal = F.logsigmoid(real_logits)\n"),
            ("negated", "loss_Dreal = -F.softplus(-real_logits)\n"),
            ("sum over the batch", "loss_Dreal = F.softplus(-real_logits).sum()\n"),
            ("detached", "loss_Dreal = F.softplus(-real_logits).detach()\n"),
        ],
        "right": [
            ("minus log-sigmoid, mean", "loss_Dreal = -F.logsigmoid(real_logits).mean()\n"),
            (
                "BCE with target 1",
                "loss_Dreal = F.binary_cross_entropy_with_logits(\n"
                "    real_logits, torch.ones_like(real_logits), reduction='none'\n"
                ")\n",
            ),
            (
                "log(1 + exp), shape [B]",
                "loss_Dreal = torch.log(1 + torch.exp(-real_logits))[:, 0]\n",
            ),
        ],
    },
    f"{LOSS}#5": {
        "nothing": [
            ("the gradients themselves", "loss_Dr1 = r1_grads\n"),
            ("gamma alone", "loss_Dr1 = self.r1_gamma\n"),
        ],
        "wrong": [
            ("no 1/2", "loss_Dr1 = r1_grads.square().sum(dim=[1, 2, 3]) * self.r1_gamma\n"),
            ("no gamma", "loss_Dr1 = r1_grads.square().sum(dim=[1, 2, 3]) / 2\n"),
            ("gamma 10 hard-coded", "loss_Dr1 = r1_grads.square().sum(dim=[1, 2, 3]) * 5.0\n"),
            (
                "norm, not squared",
                "loss_Dr1 = r1_grads.flatten(1).norm(dim=1) * (self.r1_gamma / 2)\n",
            ),
            (
                "mean over pixels instead of sum",
                "loss_Dr1 = r1_grads.square().mean(dim=[1, 2, 3]) * (self.r1_gamma / 2)\n",
            ),
            (
                "sum over the batch too",
                "loss_Dr1 = r1_grads.square().sum() * (self.r1_gamma / 2)\n",
            ),
            (
                "detached gradients",
                "loss_Dr1 = r1_grads.detach().square().sum(dim=[1, 2, 3]) * (self.r1_gamma / 2)\n",
            ),
            ("L1 norm", "loss_Dr1 = r1_grads.abs().sum(dim=[1, 2, 3]) * (self.r1_gamma / 2)\n"),
        ],
        "right": [
            (
                "squared vector norm",
                "loss_Dr1 = self.r1_gamma / 2 * r1_grads.flatten(1).norm(dim=1) ** 2\n",
            ),
            (
                "mean of sums, keepdim",
                "r1_penalty = (r1_grads**2).sum(dim=[1, 2, 3], keepdim=True)\n"
                "loss_Dr1 = 0.5 * self.r1_gamma * r1_penalty\n",
            ),
            (
                "linalg.vector_norm, mean",
                "loss_Dr1 = (\n"
                "    torch.linalg.vector_norm(r1_grads, dim=(1, 2, 3)).square().mean()\n"
                "    * self.r1_gamma\n"
                "    / 2\n"
                ")\n",
            ),
        ],
    },
    CUTOUT: {
        "nothing": [
            ("x unchanged", "x = x\n"),
            ("a copy of x", "x = x.clone()\n"),
            ("times a mask of ones", "x = x * torch.ones_like(x)\n"),
        ],
        "wrong": [
            (
                "fixed box size (ratio of the size)",
                "h, w = int(height * ratio), int(width * ratio)\n"
                "top = torch.randint(0, height - h + 1, (batch_size, 1, 1))\n"
                "left = torch.randint(0, width - w + 1, (batch_size, 1, 1))\n"
                "rows = torch.arange(height).view(1, -1, 1)\n"
                "cols = torch.arange(width).view(1, 1, -1)\n"
                "box = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)\n"
                "x = x * (~box).unsqueeze(1).to(x.dtype)\n",
            ),
            (
                "one box for the whole batch",
                "h = int(torch.randint(height // 4, height // 2 + 1, ()))\n"
                "w = int(torch.randint(width // 4, width // 2 + 1, ()))\n"
                "top = int(torch.randint(0, height - h + 1, ()))\n"
                "left = int(torch.randint(0, width - w + 1, ()))\n"
                "mask = torch.ones_like(x)\n"
                "mask[:, :, top : top + h, left : left + w] = 0\n"
                "x = x * mask\n",
            ),
            (
                "zeroes the caller's tensor in place",
                "for b in range(batch_size):\n"
                "    h = int(torch.randint(height // 4, height // 2 + 1, ()))\n"
                "    w = int(torch.randint(width // 4, width // 2 + 1, ()))\n"
                "    top = int(torch.randint(0, height - h + 1, ()))\n"
                "    left = int(torch.randint(0, width - w + 1, ()))\n"
                "    x.data[b, :, top : top + h, left : left + w] = 0\n",
            ),
            (
                "detached from x",
                "mask = torch.ones_like(x)\n"
                "for b in range(batch_size):\n"
                "    h = int(torch.randint(height // 4, height // 2 + 1, ()))\n"
                "    w = int(torch.randint(width // 4, width // 2 + 1, ()))\n"
                "    top = int(torch.randint(0, height - h + 1, ()))\n"
                "    left = int(torch.randint(0, width - w + 1, ()))\n"
                "    mask[b, :, top : top + h, left : left + w] = 0\n"
                "x = x.detach() * mask\n",
            ),
            (
                "sides from 0% to 50%",
                "mask = torch.ones_like(x)\n"
                "for b in range(batch_size):\n"
                "    h = int(torch.randint(1, height // 2 + 1, ()))\n"
                "    w = int(torch.randint(1, width // 2 + 1, ()))\n"
                "    top = int(torch.randint(0, height - h + 1, ()))\n"
                "    left = int(torch.randint(0, width - w + 1, ()))\n"
                "    mask[b, :, top : top + h, left : left + w] = 0\n"
                "x = x * mask\n",
            ),
            (
                "same fraction for height and width",
                "mask = torch.ones_like(x)\n"
                "for b in range(batch_size):\n"
                "    frac = 0.25 + 0.25 * float(torch.rand(()))\n"
                "    h, w = int(height * frac), int(width * frac)\n"
                "    top = int(torch.randint(0, height - h + 1, ()))\n"
                "    left = int(torch.randint(0, width - w + 1, ()))\n"
                "    mask[b, :, top : top + h, left : left + w] = 0\n"
                "x = x * mask\n",
            ),
            (
                "corner never at the last position (off by one)",
                "mask = torch.ones_like(x)\n"
                "for b in range(batch_size):\n"
                "    h = int(torch.randint(height // 4, height // 2 + 1, ()))\n"
                "    w = int(torch.randint(width // 4, width // 2 + 1, ()))\n"
                "    top = int(torch.randint(0, height - h, ()))\n"
                "    left = int(torch.randint(0, width - w, ()))\n"
                "    mask[b, :, top : top + h, left : left + w] = 0\n"
                "x = x * mask\n",
            ),
            (
                "corner anywhere, box clipped by the border",
                "mask = torch.ones_like(x)\n"
                "for b in range(batch_size):\n"
                "    h = int(torch.randint(height // 4, height // 2 + 1, ()))\n"
                "    w = int(torch.randint(width // 4, width // 2 + 1, ()))\n"
                "    top = int(torch.randint(0, height, ()))\n"
                "    left = int(torch.randint(0, width, ()))\n"
                "    mask[b, :, top : top + h, left : left + w] = 0\n"
                "x = x * mask\n",
            ),
            (
                "only the first channel",
                "mask = torch.ones_like(x)\n"
                "for b in range(batch_size):\n"
                "    h = int(torch.randint(height // 4, height // 2 + 1, ()))\n"
                "    w = int(torch.randint(width // 4, width // 2 + 1, ()))\n"
                "    top = int(torch.randint(0, height - h + 1, ()))\n"
                "    left = int(torch.randint(0, width - w + 1, ()))\n"
                "    mask[b, 0, top : top + h, left : left + w] = 0\n"
                "x = x * mask\n",
            ),
        ],
        "right": [
            (
                "loop over the batch, zeroing a copy",
                "x = x.clone()\n"
                "for b in range(batch_size):\n"
                "    h = int(torch.randint(int(height * ratio / 2), int(height * ratio) + 1, ()))\n"
                "    w = int(torch.randint(int(width * ratio / 2), int(width * ratio) + 1, ()))\n"
                "    top = int(torch.randint(0, height - h + 1, ()))\n"
                "    left = int(torch.randint(0, width - w + 1, ()))\n"
                "    x[b, :, top : top + h, left : left + w] = 0\n",
            ),
            (
                "vectorized with torch.rand",
                "h = (height * ratio * (0.5 + 0.5 * torch.rand(batch_size, 1, 1))).long()\n"
                "w = (width * ratio * (0.5 + 0.5 * torch.rand(batch_size, 1, 1))).long()\n"
                "top = (torch.rand(batch_size, 1, 1) * (height - h + 1)).long()\n"
                "left = (torch.rand(batch_size, 1, 1) * (width - w + 1)).long()\n"
                "ys = torch.arange(height).view(1, -1, 1)\n"
                "xs = torch.arange(width).view(1, 1, -1)\n"
                "inside = (ys >= top) & (ys < top + h) & (xs >= left) & (xs < left + w)\n"
                "x = x * torch.where(inside, 0.0, 1.0).to(x.dtype)[:, None]\n",
            ),
            (
                "loop building a mask, numpy random numbers",
                "masks = []\n"
                "for _ in range(batch_size):\n"
                "    h = np.random.randint(round(height * 0.25), round(height * 0.5) + 1)\n"
                "    w = np.random.randint(round(width * 0.25), round(width * 0.5) + 1)\n"
                "    top = np.random.randint(0, height - h + 1)\n"
                "    left = np.random.randint(0, width - w + 1)\n"
                "    m = torch.ones(1, height, width, dtype=x.dtype, device=x.device)\n"
                "    m[:, top : top + h, left : left + w] = 0\n"
                "    masks.append(m)\n"
                "x = x * torch.stack(masks)\n",
            ),
        ],
    },
}
