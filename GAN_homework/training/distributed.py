"""Several processes (torchrun): data-parallel training with gradients averaged by hand.

Each rank trains on its slice of the global batch; after each phase's backward the gradients are
averaged over ranks with one all_reduce, so every rank takes the same optimizer step and the
networks stay identical (they start identical: rank 0's weights are broadcast). Averaging by hand,
rather than wrapping in DistributedDataParallel, also works for the regularizers' double backward.
Single-process runs skip all of this.
"""

import os

import torch
import torch.distributed as dist

from training.device import pick_device


class Dist:
    """Rank, world size and device of this process; no-op methods when world size is 1."""

    def __init__(self, cpu_only: bool = False):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = pick_device(int(os.environ.get("LOCAL_RANK", "0")), cpu_only)
        use_cuda = self.device.type == "cuda"
        if use_cuda:
            torch.cuda.set_device(self.device)
        self.stop_group = None
        if self.world > 1:
            dist.init_process_group(backend="nccl" if use_cuda else "gloo")
            # a CPU group for the per-iteration "stop?" vote: no GPU sync in the loop
            self.stop_group = dist.new_group(backend="gloo") if use_cuda else dist.group.WORLD

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def broadcast_module(self, module: torch.nn.Module) -> None:
        if self.world > 1:
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor.data, src=0)

    def average_gradients(self, params) -> None:
        """Average .grad over ranks (one flat all_reduce); replace NaN/Inf like the original."""
        params = [p for p in params if p.grad is not None]
        if not params:
            return
        if self.world > 1:
            flat = torch.cat([p.grad.flatten() for p in params])
            dist.all_reduce(flat)
            flat /= self.world
            for p, g in zip(params, flat.split([p.numel() for p in params])):
                p.grad.copy_(g.view_as(p.grad))
        for p in params:
            torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)

    def any_rank(self, flag: bool) -> bool:
        """True if `flag` is True on any rank (all ranks call this at the same iteration)."""
        if self.world == 1:
            return flag
        vote = torch.tensor([int(flag)])
        dist.all_reduce(vote, op=dist.ReduceOp.MAX, group=self.stop_group)
        return bool(vote.item())

    def gather_objects(self, obj) -> list:
        """obj of every rank, in rank order (for per-rank RNG states in checkpoints)."""
        if self.world == 1:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def max_difference(self, modules) -> float:
        """Largest difference of any parameter between this rank and rank 0 (0 when in step)."""
        if self.world == 1:
            return 0.0
        flat = torch.cat([p.detach().flatten().float() for m in modules for p in m.parameters()])
        reference = flat.clone()
        dist.broadcast(reference, src=0)
        gap = (flat - reference).abs().max()
        dist.all_reduce(gap, op=dist.ReduceOp.MAX)
        return gap.item()

    def close(self) -> None:
        if self.world > 1:
            dist.destroy_process_group()
