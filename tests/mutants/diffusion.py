"""Plausible wrong and alternative right answers for the DDPM, DDIM and DPS TODO blocks (Part B).

Each body replaces the code between a TODO's BEGIN/END markers (written at indentation 0; the
mutant harness re-indents it). The TODO's checks (tests/grading/ddpm.py, ddim.py, dps.py) must
fail on every "wrong" body and pass on every "right" one. Each body is graded alone, with the
file's other blocks blank. Names in scope: the TODO's entry in tools/todos.py; both scheduler
files import torch.
"""

DDPM = "Diffusion_homework/scheduler/DDPM_scheduler.py"
DDIM = "Diffusion_homework/scheduler/DDIM_scheduler.py"

DDPM_1 = """\
alpha_prod_t = self.alphas_cumprod[t]
alpha_prod_t_prev = {prev}
beta_prod_t = {beta}
beta_prod_t_prev = 1 - alpha_prod_t_prev
current_alpha_t = {alpha_t}
current_beta_t = {beta_t}
"""


def ddpm_1(
    prev="self.alphas_cumprod[prev_t] if prev_t >= 0 else self.one",
    beta="1 - alpha_prod_t",
    alpha_t="alpha_prod_t / alpha_prod_t_prev",
    beta_t="1 - current_alpha_t",
):
    return DDPM_1.format(prev=prev, beta=beta, alpha_t=alpha_t, beta_t=beta_t)


MUTANTS = {
    f"{DDPM}#1": {
        "nothing": [
            (
                "alpha-bars of 1 (no noise at all)",
                "alpha_prod_t = alpha_prod_t_prev = current_alpha_t = self.one\nbeta_prod_t = beta_prod_t_prev = current_beta_t = 1 - self.one\n",
            ),
            (
                "the timestep itself",
                "alpha_prod_t = alpha_prod_t_prev = beta_prod_t = t\nbeta_prod_t_prev = current_alpha_t = current_beta_t = t\n",
            ),
        ],
        "wrong": [
            (
                "no prev_t < 0 case (wraps to alphas_cumprod[-1])",
                ddpm_1(prev="self.alphas_cumprod[prev_t]"),
            ),
            (
                "prev_t < 0 gives alpha-bar 0",
                ddpm_1(prev="self.alphas_cumprod[prev_t] if prev_t >= 0 else torch.tensor(0.0)"),
            ),
            (
                "off by one: self.one already at prev_t = 0",
                ddpm_1(prev="self.alphas_cumprod[prev_t] if prev_t > 0 else self.one"),
            ),
            (
                "t - 1 instead of prev_t (wrong for strided steps)",
                ddpm_1(prev="self.alphas_cumprod[t - 1] if t > 0 else self.one"),
            ),
            ("beta-bar_t = 1 - sqrt(alpha-bar_t)", ddpm_1(beta="1 - alpha_prod_t**0.5")),
            (
                "beta_t from the training betas (wrong for strided steps)",
                ddpm_1(beta_t="self.betas[t]"),
            ),
            ("alpha_t inverted", ddpm_1(alpha_t="alpha_prod_t_prev / alpha_prod_t")),
            (
                "prev_t < 0 clamped to 0 (alpha-bar_0 instead of 1)",
                ddpm_1(prev="self.alphas_cumprod[max(prev_t, 0)]"),
            ),
            ("beta_t = beta-bar_t", ddpm_1(beta_t="1 - alpha_prod_t")),
            (
                "beta-bar_(t-1) from alpha-bar_t",
                ddpm_1().replace(
                    "beta_prod_t_prev = 1 - alpha_prod_t_prev",
                    "beta_prod_t_prev = 1 - alpha_prod_t",
                ),
            ),
            (
                "current_alpha_t not set",
                ddpm_1()
                .replace("current_alpha_t = alpha_prod_t / alpha_prod_t_prev\n", "")
                .replace("1 - current_alpha_t", "1 - alpha_prod_t / alpha_prod_t_prev"),
            ),
        ],
        "right": [
            (
                "Python floats",
                "alpha_prod_t = self.alphas_cumprod[t].item()\n"
                "alpha_prod_t_prev = self.alphas_cumprod[prev_t].item() if prev_t >= 0 else 1.0\n"
                "beta_prod_t = 1.0 - alpha_prod_t\n"
                "beta_prod_t_prev = 1.0 - alpha_prod_t_prev\n"
                "current_alpha_t = alpha_prod_t / alpha_prod_t_prev\n"
                "current_beta_t = 1.0 - current_alpha_t\n",
            ),
            (
                "products of the alphas (an empty product is 1)",
                "alpha_prod_t = torch.prod(self.alphas[: t + 1])\n"
                "alpha_prod_t_prev = torch.prod(self.alphas[: prev_t + 1])\n"
                "beta_prod_t = 1 - alpha_prod_t\n"
                "beta_prod_t_prev = 1 - alpha_prod_t_prev\n"
                "current_beta_t = 1 - alpha_prod_t / alpha_prod_t_prev\n"
                "current_alpha_t = 1 - current_beta_t\n",
            ),
            (
                "conditional written the other way",
                ddpm_1(prev="self.one if prev_t < 0 else self.alphas_cumprod[prev_t]"),
            ),
            (
                "self.final_alpha_cumprod (the same tensor as self.one)",
                ddpm_1(
                    prev="self.alphas_cumprod[prev_t] if prev_t >= 0 else self.final_alpha_cumprod"
                ),
            ),
            (
                "timestep and self.previous_timestep instead of t and prev_t",
                "step_t, step_prev = int(timestep), self.previous_timestep(int(timestep))\n"
                "alpha_prod_t = self.alphas_cumprod[step_t]\n"
                "alpha_prod_t_prev = self.alphas_cumprod[step_prev] if step_prev >= 0 else self.one\n"
                "beta_prod_t, beta_prod_t_prev = 1 - alpha_prod_t, 1 - alpha_prod_t_prev\n"
                "current_alpha_t = alpha_prod_t / alpha_prod_t_prev\n"
                "current_beta_t = 1 - current_alpha_t\n",
            ),
            (
                "float64",
                ddpm_1(
                    prev="self.alphas_cumprod[prev_t].double() if prev_t >= 0 else self.one.double()"
                ).replace("= self.alphas_cumprod[t]", "= self.alphas_cumprod[t].double()"),
            ),
        ],
    },
    f"{DDPM}#2": {
        "nothing": [
            ("x_t itself", "pred_original_sample = sample\n"),
            ("the predicted noise itself", "pred_original_sample = model_output\n"),
        ],
        "wrong": [
            (
                "sqrt missing on beta-bar",
                "pred_original_sample = (sample - beta_prod_t * model_output) / alpha_prod_t**0.5\n",
            ),
            (
                "plus instead of minus",
                "pred_original_sample = (sample + beta_prod_t**0.5 * model_output) / alpha_prod_t**0.5\n",
            ),
            (
                "multiplied by sqrt(alpha-bar)",
                "pred_original_sample = (sample - beta_prod_t**0.5 * model_output) * alpha_prod_t**0.5\n",
            ),
            (
                "alpha_t instead of alpha-bar_t",
                "pred_original_sample = (sample - current_beta_t**0.5 * model_output) / current_alpha_t**0.5\n",
            ),
            (
                "clipped inside the block",
                "pred_original_sample = ((sample - beta_prod_t**0.5 * model_output) / alpha_prod_t**0.5).clamp(-1, 1)\n",
            ),
            (
                "edits sample in place",
                "sample -= beta_prod_t**0.5 * model_output\npred_original_sample = sample / alpha_prod_t**0.5\n",
            ),
            (
                "edits model_output in place",
                "model_output *= beta_prod_t**0.5\npred_original_sample = (sample - model_output) / alpha_prod_t**0.5\n",
            ),
            (
                "takes the square root of alpha_prod_t in place (a view of self.alphas_cumprod)",
                "alpha_prod_t.sqrt_()\n"
                "pred_original_sample = (sample - beta_prod_t**0.5 * model_output) / alpha_prod_t\n",
            ),
            (
                "alpha-bar_(t-1) instead of alpha-bar_t",
                "pred_original_sample = (sample - beta_prod_t_prev**0.5 * model_output) / alpha_prod_t_prev**0.5\n",
            ),
        ],
        "right": [
            (
                "torch.sqrt",
                "pred_original_sample = (sample - torch.sqrt(beta_prod_t) * model_output) / torch.sqrt(alpha_prod_t)\n",
            ),
            (
                "split fraction",
                "pred_original_sample = sample / alpha_prod_t**0.5 - (beta_prod_t / alpha_prod_t) ** 0.5 * model_output\n",
            ),
            (
                "rsqrt, 1 - alpha-bar",
                "pred_original_sample = torch.rsqrt(alpha_prod_t) * (sample - (1 - alpha_prod_t).sqrt() * model_output)\n",
            ),
            (
                "sample rebound (the caller's tensor is left alone)",
                "sample = sample - beta_prod_t**0.5 * model_output\n"
                "pred_original_sample = sample / alpha_prod_t**0.5\n",
            ),
            (
                "Python float coefficients",
                "pred_original_sample = (sample - float(beta_prod_t) ** 0.5 * model_output) / float(alpha_prod_t) ** 0.5\n",
            ),
            (
                "alpha-bar_t read again from self.alphas_cumprod[t]",
                "a = self.alphas_cumprod[t]\n"
                "pred_original_sample = (sample - (1 - a).sqrt() * model_output) / a.sqrt()\n",
            ),
        ],
    },
    f"{DDPM}#3": {
        "nothing": [
            ("x_t itself", "pred_prev_sample = sample\n"),
            ("x_0 at every step", "pred_prev_sample = pred_original_sample\n"),
        ],
        "wrong": [
            (
                "coefficients swapped",
                "pred_prev_sample = (alpha_prod_t_prev**0.5 * current_beta_t / beta_prod_t * sample\n"
                "    + current_alpha_t**0.5 * beta_prod_t_prev / beta_prod_t * pred_original_sample)\n",
            ),
            (
                "sqrt missing on alpha_t",
                "pred_prev_sample = (alpha_prod_t_prev**0.5 * current_beta_t / beta_prod_t * pred_original_sample\n"
                "    + current_alpha_t * beta_prod_t_prev / beta_prod_t * sample)\n",
            ),
            (
                "sqrt missing on alpha-bar_(t-1)",
                "pred_prev_sample = (alpha_prod_t_prev * current_beta_t / beta_prod_t * pred_original_sample\n"
                "    + current_alpha_t**0.5 * beta_prod_t_prev / beta_prod_t * sample)\n",
            ),
            (
                "unclipped x_0 recomputed from eps",
                "x0 = (sample - beta_prod_t**0.5 * model_output) / alpha_prod_t**0.5\n"
                "pred_prev_sample = (alpha_prod_t_prev**0.5 * current_beta_t / beta_prod_t * x0\n"
                "    + current_alpha_t**0.5 * beta_prod_t_prev / beta_prod_t * sample)\n",
            ),
            (
                "adds its own noise",
                "pred_prev_sample = (alpha_prod_t_prev**0.5 * current_beta_t / beta_prod_t * pred_original_sample\n"
                "    + current_alpha_t**0.5 * beta_prod_t_prev / beta_prod_t * sample)\n"
                "pred_prev_sample = pred_prev_sample + 0.01 * torch.randn_like(sample)\n",
            ),
            (
                "DDIM update instead of Eq. (2)",
                "pred_prev_sample = alpha_prod_t_prev**0.5 * pred_original_sample + beta_prod_t_prev**0.5 * model_output\n",
            ),
            (
                "beta_t from the training betas (wrong for strided steps)",
                "pred_prev_sample = (alpha_prod_t_prev**0.5 * self.betas[t] / beta_prod_t * pred_original_sample\n"
                "    + (1 - self.betas[t]) ** 0.5 * beta_prod_t_prev / beta_prod_t * sample)\n",
            ),
            (
                "edits sample in place",
                "sample *= current_alpha_t**0.5 * beta_prod_t_prev / beta_prod_t\n"
                "pred_prev_sample = alpha_prod_t_prev**0.5 * current_beta_t / beta_prod_t * pred_original_sample + sample\n",
            ),
            (
                "clips x_0 itself (wrong when clip_sample is off)",
                "x0 = pred_original_sample.clamp(-1, 1)\n"
                "pred_prev_sample = (alpha_prod_t_prev**0.5 * current_beta_t / beta_prod_t * x0\n"
                "    + current_alpha_t**0.5 * beta_prod_t_prev / beta_prod_t * sample)\n",
            ),
        ],
        "right": [
            (
                "one fraction",
                "pred_prev_sample = (alpha_prod_t_prev**0.5 * current_beta_t * pred_original_sample\n"
                "    + current_alpha_t**0.5 * beta_prod_t_prev * sample) / beta_prod_t\n",
            ),
            (
                "named coefficients, torch.sqrt",
                "x0_coeff = torch.sqrt(alpha_prod_t_prev) * current_beta_t / beta_prod_t\n"
                "xt_coeff = torch.sqrt(current_alpha_t) * beta_prod_t_prev / beta_prod_t\n"
                "pred_prev_sample = x0_coeff * pred_original_sample + xt_coeff * sample\n",
            ),
            (
                "beta_t and alpha_t from the alpha-bars, Python floats",
                "a_t, a_prev = float(alpha_prod_t), float(alpha_prod_t_prev)\n"
                "pred_prev_sample = (a_prev**0.5 * (1 - a_t / a_prev) * pred_original_sample\n"
                "    + (a_t / a_prev) ** 0.5 * (1 - a_prev) * sample) / (1 - a_t)\n",
            ),
        ],
    },
    f"{DDIM}#1": {
        "nothing": [
            (
                "x_t itself, beta-bar = alpha-bar",
                "beta_prod_t = alpha_prod_t\npred_original_sample = sample\n",
            ),
            ("x_t itself", "beta_prod_t = 1 - alpha_prod_t\npred_original_sample = sample\n"),
        ],
        "wrong": [
            (
                "sqrt missing on beta-bar",
                "beta_prod_t = 1 - alpha_prod_t\npred_original_sample = (sample - beta_prod_t * model_output) / alpha_prod_t**0.5\n",
            ),
            (
                "beta-bar = 1 - sqrt(alpha-bar)",
                "beta_prod_t = 1 - alpha_prod_t**0.5\npred_original_sample = (sample - beta_prod_t**0.5 * model_output) / alpha_prod_t**0.5\n",
            ),
            (
                "plus instead of minus",
                "beta_prod_t = 1 - alpha_prod_t\npred_original_sample = (sample + beta_prod_t**0.5 * model_output) / alpha_prod_t**0.5\n",
            ),
            (
                "alpha-bar_(t-1) instead of alpha-bar_t",
                "beta_prod_t = 1 - alpha_prod_t_prev\npred_original_sample = (sample - beta_prod_t**0.5 * model_output) / alpha_prod_t_prev**0.5\n",
            ),
            (
                "clipped inside the block",
                "beta_prod_t = 1 - alpha_prod_t\npred_original_sample = ((sample - beta_prod_t**0.5 * model_output) / alpha_prod_t**0.5).clamp(-1, 1)\n",
            ),
            (
                "edits sample in place",
                "beta_prod_t = 1 - alpha_prod_t\nsample -= beta_prod_t**0.5 * model_output\n"
                "pred_original_sample = sample / alpha_prod_t**0.5\n",
            ),
            (
                "alpha_t (self.alphas[t]) instead of alpha-bar_t",
                "beta_prod_t = 1 - alpha_prod_t\n"
                "pred_original_sample = (sample - (1 - self.alphas[t]) ** 0.5 * model_output) / self.alphas[t] ** 0.5\n",
            ),
            (
                "beta_prod_t not set",
                "pred_original_sample = (sample - (1 - alpha_prod_t) ** 0.5 * model_output) / alpha_prod_t**0.5\n",
            ),
        ],
        "right": [
            (
                "torch.sqrt",
                "beta_prod_t = 1 - alpha_prod_t\npred_original_sample = (sample - torch.sqrt(beta_prod_t) * model_output) / torch.sqrt(alpha_prod_t)\n",
            ),
            (
                "split fraction",
                "beta_prod_t = 1.0 - alpha_prod_t\npred_original_sample = sample / alpha_prod_t.sqrt() - (beta_prod_t / alpha_prod_t).sqrt() * model_output\n",
            ),
            (
                "Python floats",
                "beta_prod_t = 1 - float(alpha_prod_t)\n"
                "pred_original_sample = (sample - beta_prod_t**0.5 * model_output) / float(alpha_prod_t) ** 0.5\n",
            ),
        ],
    },
    f"{DDIM}#2": {
        "nothing": [
            ("x_t itself", "prev_sample = sample\n"),
            ("x_0 itself", "prev_sample = pred_original_sample\n"),
        ],
        "wrong": [
            (
                "sigma_t left out of the direction term",
                "prev_sample = alpha_prod_t_prev**0.5 * pred_original_sample + (1 - alpha_prod_t_prev) ** 0.5 * model_output\n",
            ),
            (
                "sigma_t not squared",
                "prev_sample = alpha_prod_t_prev**0.5 * pred_original_sample + (1 - alpha_prod_t_prev - sigma_t) ** 0.5 * model_output\n",
            ),
            (
                "sqrt missing on alpha-bar_(t-1)",
                "prev_sample = alpha_prod_t_prev * pred_original_sample + (1 - alpha_prod_t_prev - sigma_t**2) ** 0.5 * model_output\n",
            ),
            (
                "alpha-bar_t instead of alpha-bar_(t-1)",
                "prev_sample = alpha_prod_t**0.5 * pred_original_sample + (1 - alpha_prod_t - sigma_t**2) ** 0.5 * model_output\n",
            ),
            (
                "adds the noise term too",
                "prev_sample = alpha_prod_t_prev**0.5 * pred_original_sample + (1 - alpha_prod_t_prev - sigma_t**2) ** 0.5 * model_output + sigma_t * torch.randn_like(sample)\n",
            ),
            (
                "unclipped x_0 recomputed from eps",
                "x0 = (sample - beta_prod_t**0.5 * model_output) / alpha_prod_t**0.5\n"
                "prev_sample = alpha_prod_t_prev**0.5 * x0 + (1 - alpha_prod_t_prev - sigma_t**2) ** 0.5 * model_output\n",
            ),
            (
                "alpha-bar_(t-1) from self.alphas_cumprod[t - 1] (wrong for strided steps)",
                "a_prev = self.alphas_cumprod[t - 1] if t > 0 else self.final_alpha_cumprod\n"
                "prev_sample = a_prev**0.5 * pred_original_sample + (1 - a_prev - sigma_t**2) ** 0.5 * model_output\n",
            ),
            (
                "edits pred_original_sample in place (the x_0 that step() returns)",
                "pred_original_sample *= alpha_prod_t_prev**0.5\n"
                "prev_sample = pred_original_sample + (1 - alpha_prod_t_prev - sigma_t**2) ** 0.5 * model_output\n",
            ),
        ],
        "right": [
            (
                "torch.sqrt",
                "prev_sample = torch.sqrt(alpha_prod_t_prev) * pred_original_sample + torch.sqrt(1 - alpha_prod_t_prev - sigma_t**2) * model_output\n",
            ),
            (
                "named direction term",
                "pred_sample_direction = (1 - alpha_prod_t_prev - sigma_t * sigma_t).sqrt() * model_output\n"
                "prev_sample = alpha_prod_t_prev.sqrt() * pred_original_sample + pred_sample_direction\n",
            ),
            (
                "alpha-bar_(t-1) read again at prev_t",
                "a_prev = self._alpha_prod(prev_t)\n"
                "prev_sample = a_prev**0.5 * pred_original_sample + (1 - a_prev - sigma_t**2) ** 0.5 * model_output\n",
            ),
        ],
    },
    f"{DDIM}#3": {
        "nothing": [
            ("no correction", "prev_sample = prev_sample\n"),
        ],
        "wrong": [
            (
                "squared norm",
                "residual = measurement - operator.forward(pred_original_sample, mask)\n"
                "norm_grad = torch.autograd.grad((residual**2).sum(), sample)[0]\n"
                "prev_sample = prev_sample - DPS_scale * norm_grad\n",
            ),
            (
                "gradient w.r.t. x_0 instead of x_t",
                "norm = torch.linalg.vector_norm(measurement - operator.forward(pred_original_sample, mask), dim=(1, 2, 3)).sum()\n"
                "norm_grad = torch.autograd.grad(norm, pred_original_sample)[0]\n"
                "prev_sample = prev_sample - DPS_scale * norm_grad\n",
            ),
            (
                "plus sign",
                "norm = torch.linalg.vector_norm(measurement - operator.forward(pred_original_sample, mask), dim=(1, 2, 3)).sum()\n"
                "prev_sample = prev_sample + DPS_scale * torch.autograd.grad(norm, sample)[0]\n",
            ),
            (
                "DPS_scale left out",
                "norm = torch.linalg.vector_norm(measurement - operator.forward(pred_original_sample, mask), dim=(1, 2, 3)).sum()\n"
                "prev_sample = prev_sample - torch.autograd.grad(norm, sample)[0]\n",
            ),
            (
                "one norm over the whole batch",
                "norm = torch.linalg.norm(measurement - operator.forward(pred_original_sample, mask))\n"
                "prev_sample = prev_sample - DPS_scale * torch.autograd.grad(norm, sample)[0]\n",
            ),
            (
                "mean of the per-image norms",
                "norm = torch.linalg.vector_norm(measurement - operator.forward(pred_original_sample, mask), dim=(1, 2, 3)).mean()\n"
                "prev_sample = prev_sample - DPS_scale * torch.autograd.grad(norm, sample)[0]\n",
            ),
            (
                "operator left out (misfit on every pixel)",
                "norm = torch.linalg.vector_norm(measurement - pred_original_sample, dim=(1, 2, 3)).sum()\n"
                "prev_sample = prev_sample - DPS_scale * torch.autograd.grad(norm, sample)[0]\n",
            ),
            (
                "the scale 0.5 written in instead of DPS_scale",
                "norm = torch.linalg.vector_norm(measurement - operator.forward(pred_original_sample, mask), dim=(1, 2, 3)).sum()\n"
                "prev_sample = prev_sample - 0.5 * torch.autograd.grad(norm, sample)[0]\n",
            ),
            (
                "x_0 detached (no gradient reaches x_t)",
                "norm = torch.linalg.vector_norm(measurement - operator.forward(pred_original_sample.detach(), mask), dim=(1, 2, 3)).sum()\n"
                "grad = torch.autograd.grad(norm, sample, allow_unused=True)[0]\n"
                "prev_sample = prev_sample - DPS_scale * (grad if grad is not None else 0)\n",
            ),
            (
                "the correction alone, prev_sample dropped",
                "norm = torch.linalg.vector_norm(measurement - operator.forward(pred_original_sample, mask), dim=(1, 2, 3)).sum()\n"
                "prev_sample = -DPS_scale * torch.autograd.grad(norm, sample)[0]\n",
            ),
            (
                "edits measurement in place",
                "measurement -= operator.forward(pred_original_sample, mask)\n"
                "norm = torch.linalg.vector_norm(measurement, dim=(1, 2, 3)).sum()\n"
                "prev_sample = prev_sample - DPS_scale * torch.autograd.grad(norm, sample)[0]\n",
            ),
        ],
        "right": [
            (
                "loop over the images",
                "A_x0 = operator.forward(pred_original_sample, mask)\n"
                "norm = sum(torch.linalg.norm(measurement[i] - A_x0[i]) for i in range(sample.shape[0]))\n"
                "prev_sample = prev_sample - DPS_scale * torch.autograd.grad(outputs=norm, inputs=sample)[0]\n",
            ),
            (
                "per-image norms with grad_outputs, in place on prev_sample",
                "norms = ((measurement - operator.forward(pred_original_sample, mask)) ** 2).sum(dim=(1, 2, 3)).sqrt()\n"
                "(grad,) = torch.autograd.grad(norms, sample, grad_outputs=torch.ones_like(norms))\n"
                "prev_sample -= DPS_scale * grad\n",
            ),
            (
                "backward() and sample.grad",
                "norm = (measurement - operator.forward(pred_original_sample, mask)).flatten(1).norm(dim=1).sum()\n"
                "norm.backward()\n"
                "prev_sample = prev_sample - DPS_scale * sample.grad\n",
            ),
            (
                "measurement rebound to the residual (the caller's tensor is left alone)",
                "measurement = measurement - operator.forward(pred_original_sample, mask)\n"
                "norm = torch.linalg.vector_norm(measurement, dim=(1, 2, 3)).sum()\n"
                "prev_sample = prev_sample - DPS_scale * torch.autograd.grad(norm, sample)[0]\n",
            ),
            (
                "torch.norm with p=2 over each flattened image",
                "residual = measurement - operator.forward(pred_original_sample, mask)\n"
                "norm = torch.norm(residual.reshape(residual.shape[0], -1), p=2, dim=1).sum()\n"
                "prev_sample = prev_sample - DPS_scale * torch.autograd.grad(norm, sample)[0]\n",
            ),
        ],
    },
}
