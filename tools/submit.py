"""Packs your HW5 submission: your code, the images the handout asks for, and your answers.

    python tools/submit.py                 # from the repository root (or ../tools/submit.py
                                           # from GAN_homework/ or Diffusion_homework/)
    python tools/submit.py --out my_hw5.zip
    python tools/submit.py --add Diffusion_homework/DPS_results_100steps/DPS_grid.png

What goes in (handout, "Submission and Grading"):
  - every .py file under GAN_homework/ and Diffusion_homework/ (not caches),
  - GAN, for each of the three parts (part 1: no R1, no DiffAug; part 2: R1; part 3: R1 and
    DiffAug, as the first line of a run's log.txt says): the newest run folder of
    GAN_homework/training-runs/ that has a sample grid, and from it only the latest
    fakes<iter>iter_trained.png, log.txt and (where there is one) training_curves.png,
  - Diffusion: 10 images of DDPM_results/ and of DDIM_results/, the masked inputs and inpainted
    images of DPS_results/, and generated_progressive.png of the SDS run at guidance scale 7.5,
    the SDS run at 100 and the VSD run (each store folder's log.txt names its mode and scale),
  - the free-response answers: answers.md (or .txt, .pdf) of each homework folder,
  - the files given with --add (for example a figure for Task 5).
Never datasets, checkpoints, model weights or caches. The zip must stay under 10 MB: if it would
not, nothing is written and the largest items are listed.

Warnings name what the handout asks for but is missing, TODO blocks that are still blank, and
required answers still left as in the template; the zip is written all the same.
"""

from __future__ import annotations

if __name__ == "__main__" and not __package__:
    # `python tools/submit.py`: run as the module tools.submit, so that `tools` imports.
    import os
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    os.execve(
        sys.executable,
        [sys.executable, "-m", "tools.submit", *sys.argv[1:]],
        {**os.environ, "PYTHONPATH": path, "PYTHONSAFEPATH": "1"},
    )

import argparse
import os
import re
import sys
import tempfile
import zipfile
from pathlib import Path

from tools import markers, todos
from tools.files import check_output_file, write_atomic

PARTS = ("GAN_homework", "Diffusion_homework")
LIMIT_BYTES = 10_000_000  # "The file size should be less than 10 MB."
SKIP_DIRS = todos.SKIP_DIRS | {"site-packages", "wandb"}
ANSWER_NAMES = ("answers.md", "answers.txt", "answers.pdf")

GAN_PARTS = {  # (use_r1_regularization, use_diffaug) -> the handout's part
    (False, False): "part 1 (no regularization)",
    (True, False): "part 2 (R1)",
    (True, True): "part 3 (R1 + DiffAug)",
}
RUN_RE = re.compile(r"^(\d+)-")
RUN_TAG_RE = re.compile(r"-(r1|nor1)-(diffaug|noaug)$")  # train.py's flags_tag
LOG_FLAGS_RE = re.compile(r"use_r1_regularization\W+(True|False)\W+use_diffaug\W+(True|False)")
GRID_RE = re.compile(r"^fakes(\d*)iter_trained\.png$")

SAMPLES_WANTED = 10
DPS_IMAGES_WANTED = 3  # the three images of __asset__/
DISTILLATION_RUNS = {  # (generation mode, guidance scale) -> the handout's task
    ("sds", 7.5): "Task 6, SDS at guidance scale 7.5",
    ("sds", 100.0): "Task 6, SDS at guidance scale 100",
    ("vsd", 7.5): "Task 7, VSD at guidance scale 7.5",
}


class Refusal(Exception):
    """Nothing is written; the message (one sentence, maybe a listing) says why."""


def find_root(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if any((folder / part).is_dir() for part in PARTS):
            return folder
    return None


def show(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


# ---------------------------------------------------------------- code


def code_files(root: Path) -> list[Path]:
    found = []
    for part in PARTS:
        for folder, dirs, files in os.walk(root / part):
            dirs[:] = sorted(
                d
                for d in dirs
                if d not in SKIP_DIRS and not d.startswith(".") and not d.endswith("_results")
            )
            found += [Path(folder) / name for name in sorted(files) if name.endswith(".py")]
    return found


# ---------------------------------------------------------------- GAN


def run_flags(run: Path) -> tuple[bool, bool] | None:
    """(use_r1_regularization, use_diffaug) from the first line of log.txt, else the folder name."""
    try:
        with open(run / "log.txt", errors="replace") as log:
            first_line = log.readline()
    except FileNotFoundError:
        first_line = ""
    return flags_of_run(first_line, run.name)


def flags_of_run(first_log_line: str, run_name: str) -> tuple[bool, bool] | None:
    """(use_r1_regularization, use_diffaug) named by a run's first log line, else by its name."""
    match = LOG_FLAGS_RE.search(first_log_line)
    if match:
        return match.group(1) == "True", match.group(2) == "True"
    match = RUN_TAG_RE.search(run_name)
    return (match.group(1) == "r1", match.group(2) == "diffaug") if match else None


def latest_grid(run: Path) -> Path | None:
    def iteration(grid: Path) -> tuple[int, float]:
        digits = GRID_RE.match(grid.name).group(1)
        return int(digits or -1), grid.stat().st_mtime

    grids = [p for p in run.iterdir() if GRID_RE.match(p.name) and p.is_file()]
    return max(grids, key=iteration, default=None)


def gan_files(root: Path, warnings: list[str]) -> list[Path]:
    runs_dir = root / "GAN_homework" / "training-runs"
    numbered = []
    if runs_dir.is_dir():
        numbered = [(int(m.group(1)), p) for p in runs_dir.iterdir() if (m := RUN_RE.match(p.name))]
    runs_of_part: dict[tuple[bool, bool], list[Path]] = {flags: [] for flags in GAN_PARTS}
    for _, run in sorted(numbered, reverse=True):  # newest first
        if not run.is_dir():
            continue
        flags = run_flags(run)
        if flags in GAN_PARTS:
            runs_of_part[flags].append(run)
        elif flags is None:
            warnings.append(
                f"{show(run, root)}/ is left out: its log.txt does not name the two flags."
            )
        else:
            warnings.append(
                f"{show(run, root)}/ is left out: use_diffaug=True without R1 is none of the "
                "handout's three parts."
            )

    picked = []
    for flags, part in GAN_PARTS.items():
        runs = runs_of_part[flags]
        with_grid = [(run, grid) for run in runs if (grid := latest_grid(run))]
        if not with_grid:
            warnings.append(
                f"No sample grid of GAN {part} in GAN_homework/training-runs/ (train.py "
                f"--use_r1_regularization {flags[0]} --use_diffaug {flags[1]}): the handout asks "
                "for its latest fakes<iter>iter_trained.png and log.txt."
            )
            continue
        run, grid = with_grid[0]
        newer = [show(r, root) + "/" for r in runs[: runs.index(run)]]
        if newer:
            warnings.append(
                f"GAN {part}: {', '.join(newer)} has no sample grid yet, so the older "
                f"{show(run, root)}/ is packed."
            )
        picked.append(grid)
        if (run / "log.txt").is_file():
            picked.append(run / "log.txt")
        else:
            warnings.append(f"{show(run, root)}/ has no log.txt; the handout asks for it.")
        if (run / "training_curves.png").is_file():
            picked.append(run / "training_curves.png")
    return picked


# ---------------------------------------------------------------- Diffusion


def numbered_images(folder: Path, prefix: str) -> list[Path]:
    """`<prefix><i>.png` files of `folder`, by i."""
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)\.png$")
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := pattern.match(p.name))]
    return [p for _, p in sorted(found) if p.is_file()]


def sampler_images(home: Path, root: Path, scheduler: str, warnings: list[str]) -> list[Path]:
    folder = home / f"{scheduler}_results"
    images = numbered_images(folder, f"{scheduler}_generated_image")
    if len(images) < SAMPLES_WANTED:
        warnings.append(
            f"{show(folder, root)}/ has {len(images)} of the {SAMPLES_WANTED} "
            f"{scheduler}_generated_image<i>.png the handout asks for."
        )
    elif len(images) > SAMPLES_WANTED:
        warnings.append(
            f"{show(folder, root)}/ holds {len(images)} images; packed the first "
            f"{SAMPLES_WANTED}, {images[0].name} to {images[SAMPLES_WANTED - 1].name} "
            "(delete the ones you do not want to submit to pick others)."
        )
    return images[:SAMPLES_WANTED]


def dps_images(home: Path, root: Path, warnings: list[str]) -> list[Path]:
    folder = home / "DPS_results"
    inputs = numbered_images(folder, "DPS_masked_input_image")
    results = numbered_images(folder, "DPS_generated_image")
    if min(len(inputs), len(results)) < DPS_IMAGES_WANTED:
        warnings.append(
            f"{show(folder, root)}/ has {len(inputs)} DPS_masked_input_image<i>.png and "
            f"{len(results)} DPS_generated_image<i>.png; the handout asks for all "
            f"{DPS_IMAGES_WANTED} of each."
        )
    return inputs + results


def distillation_run(store: Path) -> tuple[str, float] | None:
    """(generation mode, guidance scale) of an SDS/VSD store folder, from its log.txt."""
    try:
        return distillation_settings((store / "log.txt").read_text(errors="replace"))
    except FileNotFoundError:
        return None


def distillation_settings(log_text: str) -> tuple[str, float] | None:
    """(generation mode, guidance scale) named by the text of a store folder's log.txt."""
    settings = {}
    for line in log_text.splitlines():
        key, _, value = line.partition(": ")
        settings.setdefault(key, value.strip())
    try:
        return settings["generation_mode"].lower(), float(settings["guidance_scale"])
    except (KeyError, ValueError):
        return None


def distillation_images(home: Path, root: Path, warnings: list[str]) -> list[Path]:
    """generated_progressive.png of the newest store folder of each run the handout asks for."""
    stores = [
        p.parent
        for p in home.glob("*/generated_progressive.png")
        if not p.parent.name.startswith(".") and p.is_file()
    ]
    stores.sort(key=lambda s: (s / "generated_progressive.png").stat().st_mtime, reverse=True)
    chosen: dict[tuple[str, float], Path] = {}
    for store in stores:
        run = distillation_run(store)
        if run in chosen:
            why = f"{show(chosen[run], root)}/ is a newer run of {DISTILLATION_RUNS[run]}"
        elif run in DISTILLATION_RUNS:
            chosen[run] = store
            continue
        elif run is None:
            why = "its log.txt names no generation mode and guidance scale"
        else:
            why = f"{run[0].upper()} at guidance scale {run[1]:g} is none of the handout's runs"
        warnings.append(f"{show(store, root)}/ is left out: {why}.")
    for run, task in DISTILLATION_RUNS.items():
        if run not in chosen:
            warnings.append(
                f"No generated_progressive.png of {task} in Diffusion_homework/ (the commands "
                "are in Diffusion_homework/README.md)."
            )
    return [chosen[run] / "generated_progressive.png" for run in DISTILLATION_RUNS if run in chosen]


def diffusion_files(root: Path, warnings: list[str]) -> list[Path]:
    home = root / "Diffusion_homework"
    return [
        *sampler_images(home, root, "DDPM", warnings),
        *sampler_images(home, root, "DDIM", warnings),
        *dps_images(home, root, warnings),
        *distillation_images(home, root, warnings),
    ]


# ---------------------------------------------------------------- answers


def answer_files(root: Path, warnings: list[str]) -> list[Path]:
    picked = []
    for part in PARTS:
        found = [root / part / name for name in ANSWER_NAMES if (root / part / name).is_file()]
        if not found:
            warnings.append(f"No {part}/answers.md with your free-response answers.")
        if len(found) == 1 and found[0].suffix != ".pdf":
            warnings += unanswered(found[0], root)
        picked += found
    return picked


def unanswered(path: Path, root: Path) -> list[str]:
    """A warning if required tasks of an answers file are still as in the template."""
    tasks = required_tasks(path.read_text(errors="replace"))
    blank = [task for task, answered in tasks if not answered]
    if not blank:
        return []
    if len(blank) == len(tasks):
        return [
            f"{show(path, root)} is still the blank template: no answer to {' or '.join(blank)}."
        ]
    return [f"{show(path, root)}: no answer to {' or '.join(blank)} yet."]


def required_tasks(text: str) -> list[tuple[str, bool]]:
    """(task, answered?) for each required task of an answers file.

    The templates give each required task a `## ... (required)` heading, and each answer a
    prompt ("Your answer:"): the lines that open a paragraph, up to one that ends with a colon.
    A task is answered once anything follows one of its prompts, in the prompt's paragraph or
    in a later one: text, or a table with a row filled in. A task without prompts (the student
    rewrote it) counts as answered.
    """
    tasks = []
    for section in re.split(r"^(?=## )", markers.normalize(text), flags=re.MULTILINE):
        heading, _, body = section.partition("\n")
        if not heading.startswith("## ") or "(required)" not in heading:
            continue
        prompted = answered = False
        for paragraph in re.split(r"\n\s*\n", body):
            lines = [line.strip() for line in paragraph.strip().splitlines() if line.strip()]
            colon = next((i for i, line in enumerate(lines) if line.endswith(":")), None)
            if colon is not None:
                prompted, answer = True, lines[colon + 1 :]
            else:
                answer = lines if prompted else []
            if answer and (not is_table(answer) or has_filled_row(answer)):
                answered = True
        tasks.append((heading[3:].replace("(required)", "").strip(), answered or not prompted))
    return tasks


def is_table(lines: list[str]) -> bool:
    return all(line.startswith("|") for line in lines)


def has_filled_row(lines: list[str]) -> bool:
    """Whether a Markdown table has a row below its header with every cell filled in."""
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    return any(all(row) for row in rows)


# ---------------------------------------------------------------- TODO blocks

STARTER_BODY = "raise NotImplementedError"


def blank_todos(root: Path, warnings: list[str]) -> None:
    """Warns of each TODO block of tools/todos.py that still holds the starter's body."""
    for path in dict.fromkeys(todo.path for todo in todos.TODOS):
        if not (root / Path(path).parts[0]).is_dir():
            continue  # a missing homework folder is named once, in collect()
        try:
            blocks = markers.blocks_by_number((root / path).read_text(errors="replace"), path)
        except FileNotFoundError:
            warnings.append(f"{path} is missing: the grader finds none of its TODO blocks.")
            continue
        except markers.MarkerError as error:
            warnings.append(f"{error}: the grader cannot tell your TODO blocks apart there.")
            continue
        for todo in todos.TODOS:
            if todo.path == path:
                warning = todo_warning(todo, blocks.get(todo.number))
                warnings += [warning] if warning else []


def todo_warning(todo: todos.Todo, block: markers.Block | None) -> str | None:
    if block is None:
        return (
            f"{todo.id}: its BEGIN/END TODO #{todo.number} lines are gone, so the grader cannot "
            "find this block."
        )
    code = [line.strip() for line in block.body.splitlines()]
    code = [line for line in code if line and not line.startswith("#")]
    if all(line.startswith(STARTER_BODY) for line in code):
        return f"{todo.id} ({todo.summary}) is still blank."
    if any(line.startswith(STARTER_BODY) for line in code):
        return (
            f"{todo.id} still holds the starter's `{STARTER_BODY}` line: delete it, or your "
            "code never runs."
        )
    return None


# ---------------------------------------------------------------- packing


def collect(root: Path, extra: list[Path]) -> tuple[list[Path], list[str]]:
    warnings = [f"No {part}/ folder in {root}." for part in PARTS if not (root / part).is_dir()]
    blank_todos(root, warnings)
    items = code_files(root)
    if (root / "GAN_homework").is_dir():
        items += gan_files(root, warnings)
    if (root / "Diffusion_homework").is_dir():
        items += diffusion_files(root, warnings)
    items += answer_files(root, warnings)
    return list(dict.fromkeys(items + extra)), warnings


def size_text(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def pack(root: Path, items: list[Path]) -> tuple[bytes, list[zipfile.ZipInfo]]:
    """The zip's bytes; Refusal (listing the largest items) if it would reach the size limit."""
    with tempfile.SpooledTemporaryFile(max_size=LIMIT_BYTES) as buffer:
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, strict_timestamps=False) as zf:
            for path in items:
                zf.write(path, show(path, root))
            infos = zf.infolist()
        size = buffer.tell()
        if size >= LIMIT_BYTES:
            largest = sorted(infos, key=lambda i: i.compress_size, reverse=True)[:10]
            listing = "".join(
                f"\n  {size_text(i.compress_size):>10}  {i.filename}" for i in largest
            )
            raise Refusal(
                f"The submission would be {size_text(size)}, over the handout's 10 MB limit, so "
                f"nothing was written; these are its largest items:{listing}"
            )
        buffer.seek(0)
        return buffer.read(), infos


def extra_file(name: str, root: Path) -> Path:
    """A file given with --add: inside the checkout, and no dataset, checkpoint or weights."""
    path = Path(os.path.abspath(name))
    if not path.is_file():
        raise Refusal(f"--add {name} is not a file.")
    if not path.is_relative_to(root):
        raise Refusal(f"--add {name} is outside {root}; add files of your checkout only.")
    inside = path.relative_to(root).parts
    if path.suffix.lower() in todos.SKIP_SUFFIXES or SKIP_DIRS.intersection(inside[:-1]):
        raise Refusal(f"--add {name}: the handout asks for no datasets, checkpoints or weights.")
    return path


def submit(args: argparse.Namespace) -> None:
    if args.root:
        root = Path(args.root).resolve()
        if not any((root / part).is_dir() for part in PARTS):
            raise Refusal(f"--root {args.root} holds no GAN_homework/ or Diffusion_homework/.")
    else:
        root = find_root(Path.cwd().resolve())
        if root is None:
            raise Refusal(
                "No GAN_homework/ or Diffusion_homework/ folder here or above; run this from the "
                "repository root or a homework folder (or pass --root)."
            )
    out = Path(os.path.abspath(args.out)) if args.out else root / "HW5_submission.zip"
    try:
        check_output_file(out, "--out")
    except ValueError as error:
        raise Refusal(str(error)) from None
    if out.suffix != ".zip":
        raise Refusal(f"--out {args.out} should end in .zip.")
    extra = [extra_file(name, root) for name in args.add]

    items, warnings = collect(root, extra)
    data, infos = pack(root, items)
    write_atomic(out, data)
    for info in infos:
        print(f"  {size_text(info.file_size):>10}  {info.filename}")
    for warning in warnings:
        print(f"warning: {warning}")
    print(f"wrote {out}: {len(infos)} files, {size_text(len(data))}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", help="the zip to write (default: HW5_submission.zip in the repository root)"
    )
    parser.add_argument(
        "--add",
        action="append",
        default=[],
        metavar="FILE",
        help="one more file of your checkout to pack (repeatable), e.g. a figure for Task 5",
    )
    parser.add_argument("--root", help="the repository root (default: found from here)")
    args = parser.parse_args(argv)
    try:
        submit(args)
    except Refusal as refusal:
        raise SystemExit(str(refusal)) from None
    except OSError as error:
        where = error.filename or "a file"
        raise SystemExit(f"Could not read or write {where}: {error.strerror or error}.") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
