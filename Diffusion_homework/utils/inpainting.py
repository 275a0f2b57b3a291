"""The measurement operator of the inpainting problem in Sec. 6 of the handout (DPS, Eq. (11))."""

import torch


class InpaintingOperator:
    """A(x) = mask * x: keeps the observed pixels (mask 1) and zeroes the missing ones (mask 0)."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return x * mask
