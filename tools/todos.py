"""The TODO blocks of the homework and the points each one is worth.

This is the one place where points live. The handout weights its tasks equally, so every
task that has code is worth 12 points, split evenly over the TODO blocks that make it up.
A TODO id is '<path from repo root>#<N>', N being the number in its BEGIN/END marker lines.
"""

from dataclasses import dataclass

POINTS_PER_TASK = 12


@dataclass(frozen=True)
class Todo:
    id: str
    task: str  # the handout task the block belongs to
    summary: str

    @property
    def path(self) -> str:
        return self.id.split("#")[0]

    @property
    def number(self) -> int:
        return int(self.id.split("#")[1])


TODOS = [
    Todo("GAN_homework/training/loss.py#1", "A1", "generator loss, Eq. (1)"),
    Todo("GAN_homework/training/loss.py#2", "A1", "discriminator loss on fakes, Eq. (2)"),
    Todo("GAN_homework/training/loss.py#3", "A1", "discriminator input for the real term"),
    Todo("GAN_homework/training/loss.py#4", "A1", "discriminator loss on reals, Eq. (2)"),
    Todo("GAN_homework/training/loss.py#5", "A3", "R1 regularization, Eq. (3)"),
    Todo("GAN_homework/DiffAugment_pytorch.py#1", "A4", "random cutout"),
    Todo(
        "Diffusion_homework/scheduler/DDPM_scheduler.py#1",
        "B1",
        "DDPM alphas and betas, Eqs. (3)-(8)",
    ),
    Todo("Diffusion_homework/scheduler/DDPM_scheduler.py#2", "B1", "DDPM predicted x0, Eq. (1)"),
    Todo("Diffusion_homework/scheduler/DDPM_scheduler.py#3", "B1", "DDPM previous sample, Eq. (2)"),
    Todo(
        "Diffusion_homework/scheduler/DDIM_scheduler.py#1", "B2", "DDIM predicted x0, Eqs. (9)-(10)"
    ),
    Todo("Diffusion_homework/scheduler/DDIM_scheduler.py#2", "B2", "DDIM previous sample, Eq. (9)"),
    Todo("Diffusion_homework/scheduler/DDIM_scheduler.py#3", "B4", "DPS update, Eq. (11)"),
    Todo("Diffusion_homework/execute_SDS_VSD.py#1", "B6", "weight the gradient by w(t)"),
    Todo("Diffusion_homework/utils/sds_vsd_utils.py#1", "B6", "SDS gradient, Eq. (16)"),
    Todo("Diffusion_homework/utils/sds_vsd_utils.py#2", "B6", "weights w(t), Eqs. (14)-(15)"),
    Todo("Diffusion_homework/utils/sds_vsd_utils.py#3", "B7", "VSD gradient, Eq. (17)"),
]
BY_ID = {todo.id: todo for todo in TODOS}


def points(todo_id: str) -> float:
    """Points of one TODO block: its task's points shared by the task's blocks."""
    task = BY_ID[todo_id].task
    return POINTS_PER_TASK / sum(1 for todo in TODOS if todo.task == task)


TOTAL_POINTS = sum(points(todo.id) for todo in TODOS)
