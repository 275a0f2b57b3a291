"""Plausible wrong and alternative right answers for the SDS/VSD TODO blocks (instructor only)."""

MUTANTS = {
    "Diffusion_homework/execute_SDS_VSD.py#1": {
        "nothing": [
            ("grad_ unchanged", "grad_ = grad_\n"),
        ],
        "wrong": [
            ("no weighting", "grad_ = grad_\n"),
            ("off by one timestep", "grad_ = loss_weights[t - 1].reshape(-1, 1, 1, 1) * grad_\n"),
            ("the next timestep", "grad_ = loss_weights[t + 1] * grad_\n"),
            ("the first timestep's weight", "grad_ = loss_weights[0] * grad_\n"),
            ("divided by w(t)", "grad_ = grad_ / loss_weights[t].reshape(-1, 1, 1, 1)\n"),
            ("sqrt of w(t)", "grad_ = loss_weights[t].sqrt().reshape(-1, 1, 1, 1) * grad_\n"),
            ("w(t) squared", "grad_ = loss_weights[t] ** 2 * grad_\n"),
            ("alpha-bar from the weights", "grad_ = (1 - loss_weights[t]) * grad_\n"),
            (
                "reshapes loss_weights in place",
                "loss_weights.unsqueeze_(-1)\ngrad_ = loss_weights[t].view(-1, 1, 1, 1) * grad_\n",
            ),
        ],
        "right": [
            ("weights of shape [B] for one latent", "grad_ = loss_weights[t] * grad_\n"),
            ("the first sample's weight", "grad_ = loss_weights[t[0]] * grad_\n"),
            ("a python number", "grad_ = loss_weights[t].item() * grad_\n"),
            ("indexing with None axes", "grad_ = grad_ * loss_weights[t][:, None, None, None]\n"),
            ("in place, gather", "grad_ *= loss_weights.gather(0, t).view(-1, 1, 1, 1)\n"),
            ("einsum", 'grad_ = torch.einsum("b,bchw->bchw", loss_weights[t], grad_)\n'),
        ],
    },
    "Diffusion_homework/utils/sds_vsd_utils.py#1": {
        "nothing": [
            ("the prediction itself", "grad_ = noise_pred\n"),
            ("the noise itself", "grad_ = noise\n"),
        ],
        "wrong": [
            ("sign flipped", "grad_ = grad_scale * (noise - noise_pred)\n"),
            ("grad_scale missing", "grad_ = noise_pred - noise\n"),
            ("grad_scale only on the prediction", "grad_ = grad_scale * noise_pred - noise\n"),
            ("mean instead of elementwise", "grad_ = grad_scale * (noise_pred - noise).mean()\n"),
            ("edits noise_pred in place", "noise_pred -= noise\ngrad_ = grad_scale * noise_pred\n"),
        ],
        "right": [
            ("scale on the right", "grad_ = (noise_pred - noise) * grad_scale\n"),
            ("distributed", "grad_ = grad_scale * noise_pred - grad_scale * noise\n"),
            ("torch ops", "grad_ = torch.sub(noise_pred, noise).mul(grad_scale)\n"),
        ],
    },
    "Diffusion_homework/utils/sds_vsd_utils.py#2": {
        "nothing": [
            ("the timesteps themselves", "weight = t\n"),
            ("weights of 1", "weight = torch.ones_like(t, dtype=alphas_cumprod.dtype)\n"),
        ],
        "wrong": [
            ("sigma_t instead of sigma_t^2", "weight = sqrt_1m_alphas_cumprod[t]\n"),
            ("alpha-bar_t", "weight = alphas_cumprod[t]\n"),
            ("Eq. (15) with alpha_t = alpha-bar_t", "weight = 1 - alphas_cumprod[t] ** 2\n"),
            ("previous timestep", "weight = 1 - alphas_cumprod[t - 1]\n"),
            ("inverse SNR", "weight = (1 - alphas_cumprod[t]) / alphas_cumprod[t]\n"),
            ("not indexed by t", "weight = 1 - alphas_cumprod\n"),
            (
                "Stable Diffusion's schedule written out",
                "betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2\n"
                "weight = 1 - torch.cumprod(1 - betas, dim=0)[t]\n",
            ),
            (
                "edits alphas_cumprod in place",
                "alphas_cumprod.mul_(-1).add_(1)\nweight = alphas_cumprod[t]\n",
            ),
        ],
        "right": [
            ("one minus alpha-bar", "weight = 1 - alphas_cumprod[t]\n"),
            ("table then index", "weight = (1.0 - alphas_cumprod)[t]\n"),
            ("broadcastable shape", "weight = (sqrt_1m_alphas_cumprod**2)[t].view(-1, 1, 1, 1)\n"),
        ],
    },
    "Diffusion_homework/utils/sds_vsd_utils.py#3": {
        "nothing": [
            ("the prediction itself", "grad_ = noise_pred\n"),
            ("the LoRA prediction itself", "grad_ = noise_pred_phi\n"),
        ],
        "wrong": [
            ("sign flipped", "grad_ = grad_scale * (noise_pred_phi - noise_pred)\n"),
            ("grad_scale missing", "grad_ = noise_pred - noise_pred_phi\n"),
            (
                "grad_scale only on the prediction",
                "grad_ = grad_scale * noise_pred - noise_pred_phi\n",
            ),
            ("LoRA prediction only", "grad_ = grad_scale * noise_pred_phi\n"),
            (
                "edits noise_pred in place",
                "noise_pred.sub_(noise_pred_phi)\ngrad_ = grad_scale * noise_pred\n",
            ),
        ],
        "right": [
            ("scale on the right", "grad_ = (noise_pred - noise_pred_phi) * grad_scale\n"),
            ("distributed", "grad_ = grad_scale * noise_pred - grad_scale * noise_pred_phi\n"),
            (
                "torch.lerp-free sub",
                "grad_ = torch.sub(noise_pred, noise_pred_phi, alpha=1.0) * grad_scale\n",
            ),
        ],
    },
}
