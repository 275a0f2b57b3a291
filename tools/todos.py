"""The registry of the homework's TODO blocks: ids, points, names, checks, and what grading skips.

This is the one place where points live. The handout weights its tasks equally, so every
task that has code is worth 12 points, split evenly over the TODO blocks that make it up.
A TODO id is '<path from repo root>#<N>', N being the number in its BEGIN/END marker lines.

Each block is graded as a function (its entry in TODOS below): the judge sets the names in
`scope` at the block's first line, runs the block in a worker process, and reads the names in
`results` at its last line. `checks` is the module (path from the repo root) that holds the
judge's checks of the block; the judge alone reads it. `REACH_MODULE` holds the code that
reaches every block inside the program: the only grading module a worker loads.
"""

from dataclasses import dataclass

POINTS_PER_TASK = 12

# Folders whose files are never read from a submission or copied into a graded tree.
SKIP_DIRS = frozenset(
    {
        "__pycache__",
        ".pytest_cache",
        ".ruff_cache",
        ".ipynb_checkpoints",
        ".git",
        ".venv",
        "venv",
        "many_shot_dog",
        "training-runs",
        "checkpoint",
        "demo-output",
        "__MACOSX",
    }
)
SKIP_SUFFIXES = frozenset({".pyc", ".pkl", ".pt", ".pth", ".ckpt", ".safetensors", ".bin", ".zip"})

# The folders the homework's modules are imported from (each homework runs from its folder).
IMPORT_ROOTS = ("GAN_homework", "Diffusion_homework")
# Imported once by the process that starts the workers, so that a worker starts in milliseconds;
# tools/preload.py adds what the graded files import (a worker that runs as another user may be
# unable to read the interpreter's own library folder).
PRELOAD = ("numpy", "torch", "safetensors.torch", "diffusers", "diffusers.models", "peft")

# How the program reaches each block (tools/worker.py); no checks, no oracles, no formulas.
REACH_MODULE = "tests/grading/reach.py"

LOSS = "GAN_homework/training/loss.py"
CUTOUT = "GAN_homework/DiffAugment_pytorch.py"
DDPM = "Diffusion_homework/scheduler/DDPM_scheduler.py"
DDIM = "Diffusion_homework/scheduler/DDIM_scheduler.py"
SDS_SCRIPT = "Diffusion_homework/execute_SDS_VSD.py"
SDS_UTILS = "Diffusion_homework/utils/sds_vsd_utils.py"
DDPM_ALPHAS = (
    "alpha_prod_t",
    "alpha_prod_t_prev",
    "beta_prod_t",
    "beta_prod_t_prev",
    "current_alpha_t",
    "current_beta_t",
)


@dataclass(frozen=True)
class Todo:
    id: str
    task: str  # the handout task the block belongs to
    summary: str
    scope: tuple[str, ...]  # names the block may read (attributes such as self.x included)
    results: tuple[str, ...]  # names the block must set
    checks: str  # the module of its checks, from the repo root

    @property
    def path(self) -> str:
        return self.id.split("#")[0]

    @property
    def number(self) -> int:
        return int(self.id.split("#")[1])


TODOS = [
    Todo(f"{LOSS}#1", "A1", "generator loss, Eq. (1)", ("gen_logits",), ("loss_Gmain",),
         "tests/grading/gan_loss.py"),
    Todo(f"{LOSS}#2", "A1", "discriminator loss on fakes, Eq. (2)", ("gen_logits",),
         ("loss_Dgen",), "tests/grading/gan_loss.py"),
    Todo(f"{LOSS}#3", "A1", "discriminator input for the real term", ("real_img", "gen_img"),
         ("correct_input_to_discriminator_in_discriminator_loss",), "tests/grading/gan_loss.py"),
    Todo(f"{LOSS}#4", "A1", "discriminator loss on reals, Eq. (2)", ("real_logits",),
         ("loss_Dreal",), "tests/grading/gan_loss.py"),
    Todo(f"{LOSS}#5", "A3", "R1 regularization, Eq. (3)", ("r1_grads", "self.r1_gamma"),
         ("loss_Dr1",), "tests/grading/gan_loss.py"),
    Todo(f"{CUTOUT}#1", "A4", "random cutout", ("x",), ("x",),
         "tests/grading/gan_diffaugment.py"),
    Todo(f"{DDPM}#1", "B1", "DDPM alphas and betas, Eqs. (3)-(8)",
         ("t", "prev_t", "self.alphas_cumprod", "self.one"), DDPM_ALPHAS,
         "tests/grading/ddpm.py"),
    Todo(f"{DDPM}#2", "B1", "DDPM predicted x0, Eq. (1)", ("sample", "model_output", *DDPM_ALPHAS),
         ("pred_original_sample",), "tests/grading/ddpm.py"),
    Todo(f"{DDPM}#3", "B1", "DDPM previous sample, Eq. (2)",
         ("sample", "model_output", "pred_original_sample", *DDPM_ALPHAS), ("pred_prev_sample",),
         "tests/grading/ddpm.py"),
    Todo(f"{DDIM}#1", "B2", "DDIM predicted x0, Eqs. (9)-(10)",
         ("alpha_prod_t", "alpha_prod_t_prev", "sample", "model_output"),
         ("beta_prod_t", "pred_original_sample"), "tests/grading/ddim.py"),
    Todo(f"{DDIM}#2", "B2", "DDIM previous sample, Eq. (9)",
         ("alpha_prod_t", "alpha_prod_t_prev", "sample", "model_output", "beta_prod_t",
          "pred_original_sample", "sigma_t"), ("prev_sample",), "tests/grading/ddim.py"),
    Todo(f"{DDIM}#3", "B4", "DPS update, Eq. (11)",
         ("sample", "pred_original_sample", "prev_sample", "measurement", "operator", "mask",
          "DPS_scale"), ("prev_sample",), "tests/grading/dps.py"),
    Todo(f"{SDS_SCRIPT}#1", "B6", "weight the gradient by w(t)", ("grad_", "loss_weights", "t"),
         ("grad_",), "tests/grading/sds_vsd.py"),
    Todo(f"{SDS_UTILS}#1", "B6", "SDS gradient, Eq. (16)", ("noise_pred", "noise", "grad_scale"),
         ("grad_",), "tests/grading/sds_vsd.py"),
    Todo(f"{SDS_UTILS}#2", "B6", "weights w(t), Eqs. (14)-(15)",
         ("t", "alphas_cumprod", "sqrt_1m_alphas_cumprod"), ("weight",),
         "tests/grading/sds_vsd.py"),
    Todo(f"{SDS_UTILS}#3", "B7", "VSD gradient, Eq. (17)",
         ("noise_pred", "noise_pred_phi", "grad_scale"), ("grad_",), "tests/grading/sds_vsd.py"),
]  # fmt: skip
BY_ID = {todo.id: todo for todo in TODOS}


def points(todo_id: str) -> float:
    """Points of one TODO block: its task's points shared by the task's blocks."""
    task = BY_ID[todo_id].task
    return POINTS_PER_TASK / sum(1 for todo in TODOS if todo.task == task)
