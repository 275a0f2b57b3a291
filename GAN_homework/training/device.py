"""Where the GAN scripts run and in what precision: the one place that decides.

A GPU when CUDA has one, else the CPU. On a GPU, `--precision mixed` (train.py's default) runs the
networks' fp16 layers (training/networks.py picks each block's dtype) and lets matrix products and
convolutions use TF32; on a CPU everything is float32.
"""

import torch


def pick_device(local_rank: int = 0, cpu_only: bool = False) -> torch.device:
    """GPU `local_rank` (this process's GPU under torchrun) if CUDA is available and not
    `cpu_only`, else the CPU."""
    if torch.cuda.is_available() and not cpu_only:
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def set_precision(precision: str, device: torch.device) -> bool:
    """Whether training runs in mixed precision: `precision` "mixed" on a GPU ("fp32": float32
    throughout). On a GPU it also sets TF32 to match and turns on cuDNN's autotuning."""
    mixed = precision == "mixed" and device.type == "cuda"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = mixed
        torch.backends.cudnn.allow_tf32 = mixed
    return mixed
