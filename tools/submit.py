"""Packs your HW5 submission: your code, the images the handout asks for, and your answers.

    python tools/submit.py                 # from the repository root (or ../tools/submit.py
                                           # from GAN_homework/ or Diffusion_homework/)
    python tools/submit.py --out my_hw5.zip
    python tools/submit.py --add Diffusion_homework/DPS_results_100steps/DPS_grid.png

What goes in (handout, "Submission and Grading"):
  - every .py file under GAN_homework/ and Diffusion_homework/ (not caches),
  - GAN, for each of the three parts (part 1: no R1, no DiffAug; part 2: R1; part 3: R1 and
    DiffAug, as the first line of a run's log.txt says): the newest run folder of
    GAN_homework/training-runs/ that trained (a sample grid beyond iteration 0; else the newest
    with a grid), and from it only the latest fakes<iter>iter_trained.png, log.txt and (where
    there is one) training_curves.png,
  - Diffusion: 10 images of DDPM_results/ and of DDIM_results/, the masked inputs and inpainted
    images of DPS_results/, and generated_progressive.png of the SDS run at guidance scale 7.5,
    the SDS run at 100 and the VSD run (each store folder's log.txt names its mode and scale),
  - the free-response answers: answers.md (or .txt, .pdf) of each homework folder,
  - the files given with --add (for example a figure for Task 5).
Never datasets, checkpoints, model weights or caches. PNGs go in re-encoded at maximum
compression where that is smaller and decodes to the same pixels, and are stored (not deflated
again). The zip must stay under 10 MB: over it, the training curves (which the handout does not ask
for) are left out as far as needed; if it is still over, nothing is written, and the message names
the files given with --add to leave out (largest first), or else lists the largest items.

Warnings name what the handout asks for but is missing; a GAN part whose newest run trained less
than an older one, and a packed run that is not the handout's setting (not the low_shot config,
not 256x256, or fewer than 500 iterations: MIN_ITERATIONS); TODO blocks that are still blank; and
required answers still left as in the template. The zip is written all the same.
"""

from __future__ import annotations

if __name__ == "__main__" and not __package__:
    # `python tools/submit.py`: run again as the module tools.submit (tools/_startup.py).
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tools._startup import run_as_module

    run_as_module(__file__)

import argparse
import io
import json
import os
import re
import sys
import tempfile
import zipfile
from dataclasses import dataclass
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
CURVES = "training_curves.png"  # train.py's plot of a run; the handout does not ask for it

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

HANDOUT_CFG = "low_shot"  # train.py's default: StyleGAN2 at 256x256, the handout's setting
HANDOUT_RESOLUTION = 256
MIN_ITERATIONS = 500  # fewer is flagged: the handout's runs train thousands (about 3K to 4.5K)
CFG_RESOLUTIONS = {"low_shot": 256, "tiny": 32}  # of train.py's --cfg, for a log without options
RUN_CFG_RE = re.compile(r"-([A-Za-z0-9_]+)-(?:r1|nor1)-(?:diffaug|noaug)$")  # <cfg> of the name
LOG_LINES_READ = 50  # the flags and options lines open log.txt


def run_flags(run: Path) -> tuple[bool, bool] | None:
    """(use_r1_regularization, use_diffaug) from the first line of log.txt, else the folder name."""
    return flags_of_run(log_head(run), run.name)


def log_head(run: Path) -> str:
    """The first lines of a run folder's log.txt ("" without one)."""
    try:
        with open(run / "log.txt", errors="replace") as log:
            return "".join(line for _, line in zip(range(LOG_LINES_READ), log))
    except (FileNotFoundError, NotADirectoryError):
        return ""


def flags_of_run(first_log_line: str, run_name: str) -> tuple[bool, bool] | None:
    """(use_r1_regularization, use_diffaug) named by a run's first log line, else by its name."""
    match = LOG_FLAGS_RE.search(first_log_line.partition("\n")[0])
    if match:
        return match.group(1) == "True", match.group(2) == "True"
    match = RUN_TAG_RE.search(run_name)
    return (match.group(1) == "r1", match.group(2) == "diffaug") if match else None


def grid_iteration(name: str) -> int:
    """The iteration of a sample grid's file name; -1 for a grid whose name gives none."""
    digits = GRID_RE.match(name).group(1)
    return int(digits) if digits else -1


def run_setting(log_text: str, run_name: str) -> tuple[str | None, int | None]:
    """(cfg, resolution) of a run: from the `options:` line train.py writes into log.txt, else
    the <cfg> of the folder name; None where neither tells."""
    for line in log_text.splitlines():
        if line.startswith("options: "):
            try:
                options = json.loads(line[len("options: ") :])
                cfg, resolution = options.get("cfg"), options.get("config", {}).get("resolution")
            except (ValueError, AttributeError):
                break
            if isinstance(cfg, str) or isinstance(resolution, int):
                return (
                    cfg if isinstance(cfg, str) else None,
                    resolution if isinstance(resolution, int) else CFG_RESOLUTIONS.get(cfg),
                )
            break
    match = RUN_CFG_RE.search(run_name)
    cfg = match.group(1) if match else None
    return cfg, CFG_RESOLUTIONS.get(cfg)


@dataclass(frozen=True)
class GanRun:
    """A run folder as submit.py sees it: its name, sample grids and the head of its log.txt."""

    name: str
    grids: tuple[str, ...]  # its fakes<iter>iter_trained.png
    log_text: str = ""

    @property
    def flags(self) -> tuple[bool, bool] | None:
        return flags_of_run(self.log_text, self.name)

    @property
    def grid(self) -> str | None:
        """The latest sample grid."""
        return max(self.grids, key=grid_iteration, default=None)

    @property
    def iteration(self) -> int:
        """How far the run trained, as its latest grid shows; -1 without a numbered grid."""
        return grid_iteration(self.grid) if self.grid else -1

    @property
    def trained(self) -> bool:
        return self.iteration > 0

    def setting_problems(self) -> list[str]:
        """How the run differs from the handout's setting, in words; [] where it does not."""
        cfg, resolution = run_setting(self.log_text, self.name)
        problems = []
        if cfg is not None and cfg != HANDOUT_CFG:
            problems.append(f"it is of the `{cfg}` config, not {HANDOUT_CFG}")
        if resolution is not None and resolution != HANDOUT_RESOLUTION:
            problems.append(f"its images are {resolution}x{resolution}, not 256x256")
        if 0 <= self.iteration < MIN_ITERATIONS:
            problems.append(
                f"it trained only {self.iteration} iterations (fewer than {MIN_ITERATIONS}; the "
                "handout's runs train thousands)"
            )
        return problems


def pick_gan_run(part: str, runs: list[GanRun], where: str) -> tuple[GanRun | None, list[str]]:
    """The run to pack for a GAN part, of its runs newest first: the newest that trained (a grid
    beyond iteration 0), else the newest with a grid; and the warnings on that choice. `where`:
    the folder of the runs, as the warnings name it."""
    with_grid = [run for run in runs if run.grid]
    trained = [run for run in with_grid if run.trained]
    chosen = (trained or with_grid or [None])[0]
    if chosen is None:
        return None, []
    warnings = []
    newer = [f"{where}/{run.name}/" for run in runs[: runs.index(chosen)]]
    if newer:
        verb = "has" if len(newer) == 1 else "have"
        warnings.append(
            f"GAN {part}: {', '.join(newer)} {verb} not trained yet (no sample grid beyond "
            f"iteration 0), so the older {where}/{chosen.name}/ (iteration {chosen.iteration}) "
            "is packed."
        )
    further = max(runs[runs.index(chosen) + 1 :], key=lambda run: run.iteration, default=None)
    if further is not None and further.iteration > chosen.iteration:
        warnings.append(
            f"GAN {part}: {where}/{chosen.name}/ is packed (iteration {chosen.iteration}), but "
            f"the older {where}/{further.name}/ trained further (iteration {further.iteration}); "
            f"to submit that one, move the newer runs of this part out of {where}/."
        )
    problems = chosen.setting_problems()
    if problems:
        warnings.append(
            f"GAN {part}: {where}/{chosen.name}/ is not the handout's setting: "
            f"{'; '.join(problems)}."
        )
    return chosen, warnings


def gan_run(run: Path) -> GanRun:
    grids = tuple(sorted(p.name for p in run.iterdir() if GRID_RE.match(p.name) and p.is_file()))
    return GanRun(run.name, grids, log_head(run))


def gan_files(root: Path, warnings: list[str]) -> list[Path]:
    runs_dir = root / "GAN_homework" / "training-runs"
    numbered = []
    if runs_dir.is_dir():
        numbered = [(int(m.group(1)), p) for p in runs_dir.iterdir() if (m := RUN_RE.match(p.name))]
    runs_of_part: dict[tuple[bool, bool], list[GanRun]] = {flags: [] for flags in GAN_PARTS}
    for _, path in sorted(numbered, reverse=True):  # newest first
        if not path.is_dir():
            continue
        run = gan_run(path)
        if run.flags in GAN_PARTS:
            runs_of_part[run.flags].append(run)
        elif run.flags is None:
            warnings.append(
                f"{show(path, root)}/ is left out: its log.txt does not name the two flags."
            )
        else:
            warnings.append(
                f"{show(path, root)}/ is left out: use_diffaug=True without R1 is none of the "
                "handout's three parts."
            )

    picked = []
    for flags, part in GAN_PARTS.items():
        chosen, notes = pick_gan_run(part, runs_of_part[flags], show(runs_dir, root))
        warnings += notes
        if chosen is None:
            warnings.append(
                f"No sample grid of GAN {part} in GAN_homework/training-runs/ (train.py "
                f"--use_r1_regularization {flags[0]} --use_diffaug {flags[1]}): the handout asks "
                "for its latest fakes<iter>iter_trained.png and log.txt."
            )
            continue
        run = runs_dir / chosen.name
        picked.append(run / chosen.grid)
        if (run / "log.txt").is_file():
            picked.append(run / "log.txt")
        else:
            warnings.append(f"{show(run, root)}/ has no log.txt; the handout asks for it.")
        if (run / CURVES).is_file():
            picked.append(run / CURVES)
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
    if all(line.startswith(markers.STARTER_RAISE) for line in code):
        return f"{todo.id} ({todo.summary}) is still blank."
    if any(line.startswith(markers.STARTER_RAISE) for line in code):
        return (
            f"{todo.id} still holds the starter's `{markers.STARTER_RAISE}` line: delete it, or your "
            "code never runs."
        )
    return None


# ---------------------------------------------------------------- packing


def collect(root: Path) -> tuple[list[Path], list[str]]:
    """What the handout asks for (the files to pack), and the warnings."""
    warnings = [f"No {part}/ folder in {root}." for part in PARTS if not (root / part).is_dir()]
    blank_todos(root, warnings)
    items = code_files(root)
    if (root / "GAN_homework").is_dir():
        items += gan_files(root, warnings)
    if (root / "Diffusion_homework").is_dir():
        items += diffusion_files(root, warnings)
    items += answer_files(root, warnings)
    return list(dict.fromkeys(items)), warnings


def size_text(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


# Already compressed: deflating them again gains nothing, so they are stored as they are.
STORED_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".zip", ".gz", ".bz2", ".xz", ".mp4"}
REENCODED_MODES = {"1", "L", "LA", "P", "RGB", "RGBA"}
KEPT_INFO = {"icc_profile", "transparency", "dpi", "exif"}  # what a re-encoded PNG keeps
REENCODE_MAX_BYTES = 50_000_000  # larger PNGs go in as they are (and over the limit anyway)
ENTRY_OVERHEAD = 30 + 46  # a zip entry's local header and central directory record, without names


def smallest_png(data: bytes) -> bytes:
    """`data`, a PNG, re-encoded at Pillow's maximum compression where that is smaller and decodes
    to exactly the same pixels (and keeps its colour profile, transparency, resolution and text);
    else `data` itself (also for what is not a plain PNG, or without Pillow)."""
    try:
        from PIL import Image, PngImagePlugin
    except ImportError:
        return data
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG" or getattr(image, "n_frames", 1) != 1:
                return data
            image.load()
            text = dict(getattr(image, "text", {}))
            if image.mode not in REENCODED_MODES or set(image.info) - KEPT_INFO - set(text):
                return data  # e.g. 16-bit, or gamma/chromaticity chunks Pillow does not write
            options = {k: image.info[k] for k in KEPT_INFO if image.info.get(k) is not None}
            if image.mode == "RGBA" and image.getextrema()[3] == (255, 255):
                image = image.convert("RGB")  # opaque: the alpha channel says nothing
            info = PngImagePlugin.PngInfo()
            for key, value in text.items():
                info.add_text(key, value)
            buffer = io.BytesIO()
            image.save(buffer, "PNG", optimize=True, compress_level=9, pnginfo=info, **options)
            smaller = buffer.getvalue()
            if len(smaller) >= len(data) or not same_pixels(data, smaller):
                return data
            return smaller
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return data


def same_pixels(a: bytes, b: bytes) -> bool:
    """Whether two images decode to the same size and the same RGBA value at every pixel."""
    from PIL import Image

    with Image.open(io.BytesIO(a)) as first, Image.open(io.BytesIO(b)) as second:
        return first.size == second.size and (
            first.convert("RGBA").tobytes() == second.convert("RGBA").tobytes()
        )


@dataclass
class Entry:
    """One file of the zip: its name there, where it comes from, and its bytes where re-encoded."""

    path: Path
    name: str
    data: bytes | None = None  # None: the file's own bytes, read when written
    optional: bool = False  # the course's addition, not the handout's: left out first if too big
    added: bool = False  # given with --add

    @property
    def stored(self) -> bool:
        return self.path.suffix.lower() in STORED_SUFFIXES


def prepare(root: Path, items: list[Path], added: list[Path]) -> tuple[list[Entry], int, int]:
    """The zip's entries, PNGs re-encoded; with the PNGs' total size before and after."""
    entries, before, after = [], 0, 0
    for path in items:
        entry = Entry(path, show(path, root), optional=path.name == CURVES, added=path in added)
        if path.suffix.lower() == ".png" and path.stat().st_size <= REENCODE_MAX_BYTES:
            data = path.read_bytes()
            entry.data = smallest_png(data)
            before, after = before + len(data), after + len(entry.data)
        entries.append(entry)
    return entries, before, after


def write_zip(entries: list[Entry], out) -> list[zipfile.ZipInfo]:
    with zipfile.ZipFile(
        out, "w", zipfile.ZIP_DEFLATED, compresslevel=9, strict_timestamps=False
    ) as zf:
        for entry in entries:
            kind = zipfile.ZIP_STORED if entry.stored else zipfile.ZIP_DEFLATED
            if entry.data is None:
                zf.write(entry.path, entry.name, compress_type=kind)
            else:
                info = zipfile.ZipInfo.from_file(entry.path, entry.name, strict_timestamps=False)
                zf.writestr(info, entry.data, compress_type=kind)
        return zf.infolist()


def entry_cost(info: zipfile.ZipInfo) -> int:
    """What leaving one entry out saves of the zip's size."""
    return info.compress_size + ENTRY_OVERHEAD + 2 * len(info.filename.encode())


def to_leave_out(
    infos: list[zipfile.ZipInfo], size: int, names: set[str]
) -> list[zipfile.ZipInfo] | None:
    """The fewest entries among `names`, largest first, whose leaving out takes the zip under the
    limit; None if all of them are not enough."""
    chosen = []
    for info in sorted(infos, key=entry_cost, reverse=True):
        if size < LIMIT_BYTES:
            break
        if info.filename in names:
            chosen.append(info)
            size -= entry_cost(info)
    return chosen if size < LIMIT_BYTES else None


def listing(infos: list[zipfile.ZipInfo]) -> str:
    return "".join(f"\n  {size_text(i.compress_size):>10}  {i.filename}" for i in infos)


def pack(entries: list[Entry], warnings: list[str]) -> tuple[bytes, list[zipfile.ZipInfo]]:
    """The zip's bytes. Over the size limit, the course's optional files (training curves) are left
    out as far as needed, with a warning; if still over, Refusal names the files given with --add
    to leave out (largest first), or else lists the largest items."""
    with tempfile.SpooledTemporaryFile(max_size=LIMIT_BYTES) as buffer:
        infos = write_zip(entries, buffer)
        size = buffer.tell()
        if size >= LIMIT_BYTES:
            optional = {e.name for e in entries if e.optional}
            dropped = to_leave_out(infos, size, optional) or [
                i for i in infos if i.filename in optional
            ]
            if dropped:
                names = {i.filename for i in dropped}
                kept = [e for e in entries if e.name not in names]
                buffer.seek(0)
                buffer.truncate()
                infos = write_zip(kept, buffer)
                reduced = buffer.tell()
                if reduced < LIMIT_BYTES:
                    warnings.append(
                        f"To stay under the 10 MB limit ({size_text(size)} with everything), "
                        f"these are left out (the handout does not ask for them): "
                        f"{', '.join(sorted(names))}."
                    )
                    buffer.seek(0)
                    return buffer.read(), infos
                entries, size = kept, reduced
            refuse(infos, size, {e.name for e in entries if e.added}, bool(dropped))
        buffer.seek(0)
        return buffer.read(), infos


def refuse(infos: list[zipfile.ZipInfo], size: int, added: set[str], no_curves: bool) -> None:
    without = " without the training curves" if no_curves else ""
    over = (
        f"The submission would be {size_text(size)}{without}, over the handout's 10 MB limit, so "
        "nothing was written"
    )
    leave_out = to_leave_out(infos, size, added) if added else None
    if leave_out:
        raise Refusal(
            f"{over}; leave out these files you added with --add (largest first) to get under "
            f"it:{listing(leave_out)}"
        )
    required = size - sum(entry_cost(i) for i in infos if i.filename in added)
    why = (
        f"; even without the files you added with --add it is {size_text(required)}"
        if added
        else ""
    )
    largest = sorted(infos, key=lambda i: i.compress_size, reverse=True)[:10]
    raise Refusal(
        f"{over}{why} (its PNGs are already re-encoded at maximum compression, without loss); "
        f"these are its largest items:{listing(largest)}"
    )


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

    asked, warnings = collect(root)
    added = [path for path in dict.fromkeys(extra) if path not in set(asked)]
    entries, png_before, png_after = prepare(root, asked + added, added)
    data, infos = pack(entries, warnings)
    write_atomic(out, data)
    for info in infos:
        print(f"  {size_text(info.file_size):>10}  {info.filename}")
    for warning in warnings:
        print(f"warning: {warning}")
    if png_after < png_before:
        print(
            f"PNG images re-encoded without loss: {size_text(png_before)} -> {size_text(png_after)}"
        )
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
