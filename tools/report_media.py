"""The images and answers of a submission, as the grader's page shows them.

Finds, in a submission folder or zip (at the paths tools/submit.py packs them), per GAN part the
newest run's latest sample grid, its log's first line and training curves; the DDPM and DDIM
faces; the DPS masked/inpainted pairs; the SDS (7.5, 100) and VSD progressive strips; the
answers files; and any other image. `export` copies each image next to the page, as a small
JPEG thumbnail linked to the original where the original is large.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from tools import submit
from tools.files import write_atomic

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_MEMBER_BYTES = 20_000_000
SKIP_DIRS = {"__pycache__", "venv", "many_shot_dog", "checkpoint", "__MACOSX", "wandb"}
SMALL_BYTES = 150_000  # an original this small is shown as it is
THUMB_SIDE = {"grid": 1024, "curves": 800, "face": 192, "pair": 256, "strip": 1600, "other": 512}
STORE_NAME_HINTS = (  # a store folder without log.txt: its run guessed from its name
    (re.compile(r"vsd", re.I), ("vsd", 7.5)),
    (re.compile(r"sds.*100|100.*sds", re.I), ("sds", 100.0)),
    (re.compile(r"sds", re.I), ("sds", 7.5)),
)


class Source:
    """The files of a submission folder or zip, by path relative to its homework copy."""

    def __init__(self, path: Path, prefix: str = ""):
        self.path, self.archive, self.notes = Path(path), None, []
        self.names: dict[str, object] = {}
        if self.path.is_dir():
            self._list_folder(prefix)
        elif self.path.is_file() and zipfile.is_zipfile(self.path):
            self._list_zip(self.path, prefix)

    def _list_folder(self, prefix: str) -> None:
        top = self.path.resolve()
        files = []
        for folder, dirs, names in os.walk(self.path):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS]
            files += [Path(folder, n) for n in names if not Path(folder, n).is_symlink()]
        zips = [p for p in self.path.iterdir() if p.suffix == ".zip" and p.is_file()]
        if (
            not any(p.relative_to(self.path).parts[0] in submit.PARTS for p in files)
            and len(zips) == 1
        ):
            self._list_zip(zips[0], prefix)  # e.g. Gradescope's folder holding the zip
            return
        for file in files:
            rel = file.relative_to(self.path).as_posix()
            if rel.startswith(prefix) and file.resolve().is_relative_to(top):
                self.names[rel[len(prefix) :]] = file

    def _list_zip(self, path: Path, prefix: str) -> None:
        try:
            self.archive = zipfile.ZipFile(path)
            for info in self.archive.infolist():
                name = info.filename.replace("\\", "/").lstrip("./")
                if not info.is_dir() and "__MACOSX/" not in f"/{name}" and name.startswith(prefix):
                    self.names[name[len(prefix) :]] = info
        except (zipfile.BadZipFile, OSError, ValueError) as error:
            self.notes.append(f"The zip cannot be read for images ({type(error).__name__}).")

    def read(self, name: str) -> bytes | None:
        """The bytes of a file, or None (with a note) when it is too large or unreadable."""
        entry = self.names[name]
        try:
            if isinstance(entry, Path):
                if entry.stat().st_size > MAX_MEMBER_BYTES:
                    raise ValueError("larger than 20 MB")
                return entry.read_bytes()
            if entry.file_size > MAX_MEMBER_BYTES:
                raise ValueError("larger than 20 MB")
            return self.archive.read(entry)
        except Exception as error:  # a broken member costs that image only
            self.notes.append(f"{name} could not be read ({error or type(error).__name__}).")
            return None

    def text(self, name: str) -> str:
        data = self.read(name) if name in self.names else None
        return data.decode("utf-8", errors="replace") if data is not None else ""

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()


@dataclass
class Item:
    """One image the page shows: its path in the submission and how it is drawn."""

    name: str
    kind: str
    caption: str = ""
    src: str = ""  # set by export(): the image file, relative to the page
    href: str = ""  # the original, where src is a thumbnail
    size: tuple[int, int] = (0, 0)
    error: str = ""


@dataclass
class Task:
    """A task's images and what is missing or extra, in words."""

    key: str
    title: str
    items: list[Item] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    text: str = ""  # e.g. the flags line of a GAN run's log.txt
    settings: str = ""  # e.g. a GAN run's config, image size and iterations
    flags: list[str] = field(default_factory=list)  # where it is not what the handout asks
    passed_over: list[str] = field(default_factory=list)  # its files not shown, named in words

    @property
    def present(self) -> bool:
        return bool(self.items) and not any(p.startswith("missing") for p in self.problems)


OPTIONS_RE = re.compile(r"^options: (\{.*\})\s*$", re.M)


def describe_run(run: submit.GanRun) -> str:
    """A run's setting in words: config, image size, iterations trained (its latest grid's) of
    those it was started for."""
    cfg, resolution = submit.run_setting(run.log_text, run.name)
    target = None
    for options in OPTIONS_RE.findall(run.log_text)[-1:]:
        try:
            target = int(json.loads(options).get("iters"))
        except (ValueError, TypeError, AttributeError):
            pass
    words = [
        f"config {cfg}" if cfg else "config not recorded",
        f"{resolution}x{resolution}" if resolution else "image size not recorded",
    ]
    if run.iteration < 0:
        words.append("iterations not recorded")
    else:
        words.append(
            f"{run.iteration} of {target} iterations" if target else f"{run.iteration} iterations"
        )
    return f"{run.name}/: {', '.join(words)}"


def gan_tasks(source: Source) -> list[Task]:
    """Per handout part, the run submit.py packs (the newest that trained, else the newest with a
    grid) and its setting in words; flagged where it is not the handout's setting, where another
    run of the part trained further, or where another part's run trained more than twice as far."""
    files: dict[str, list[str]] = {}
    for name in source.names:
        parts = name.split("/")
        if len(parts) == 4 and parts[:2] == ["GAN_homework", "training-runs"]:
            if submit.RUN_RE.match(parts[2]):
                files.setdefault(parts[2], []).append(parts[3])
    by_part: dict[tuple[bool, bool], list[submit.GanRun]] = {f: [] for f in submit.GAN_PARTS}
    for name in sorted(files, key=lambda r: int(submit.RUN_RE.match(r).group(1)), reverse=True):
        log = (
            source.text(f"GAN_homework/training-runs/{name}/log.txt")
            if "log.txt" in files[name]
            else ""
        )
        grids = tuple(f for f in files[name] if submit.GRID_RE.match(f))
        run = submit.GanRun(name, grids, log)
        if run.flags in by_part:
            by_part[run.flags].append(run)
    chosen = {}
    for flags, part in submit.GAN_PARTS.items():
        run, _ = submit.pick_gan_run(part, by_part[flags], "training-runs")
        if run is not None:
            chosen[flags] = run
    tasks = []
    for number, (flags, part) in enumerate(submit.GAN_PARTS.items(), start=1):
        task = Task(f"gan{number}", f"GAN {part}")
        if flags not in chosen:
            task.problems.append(f"missing: no run with a sample grid for GAN {part}")
            tasks.append(task)
            continue
        run = chosen[flags]
        others = [r for r in by_part[flags] if r is not run]
        folder = f"GAN_homework/training-runs/{run.name}"
        task.items.append(Item(f"{folder}/{run.grid}", "grid", f"{run.name}/{run.grid}"))
        task.text = run.log_text.partition("\n")[0] or f"{run.name}/ has no log.txt"
        task.settings = describe_run(run)
        if "training_curves.png" in files[run.name]:
            task.items.append(Item(f"{folder}/training_curves.png", "curves", "training curves"))
        if problems := run.setting_problems():
            task.flags.append(f"not the handout's setting: {'; '.join(problems)}")
        further = max(others, key=lambda r: r.iteration, default=None)
        if further is not None and further.iteration > run.iteration:
            task.flags.append(
                f"another run of this part trained further: {further.name}/ reached iteration "
                f"{further.iteration}, the run shown {max(run.iteration, 0)}"
            )
        for other_flags, other in chosen.items():
            if other_flags != flags and other.iteration > 2 * max(run.iteration, 0):
                task.flags.append(
                    f"trained less than GAN {submit.GAN_PARTS[other_flags]}: iteration "
                    f"{max(run.iteration, 0)} against {other.iteration}"
                )
        earlier = sorted(set(run.grids) - {run.grid})
        if earlier:
            grids = "grid" if len(earlier) == 1 else "grids"
            task.problems.append(f"extra: {len(earlier)} earlier {grids} of {run.name}/ not shown")
        if others:
            names = ", ".join(f"{r.name}/" for r in others)
            task.problems.append(f"extra: other runs of this part not shown: {names}")
        task.passed_over = [f"{folder}/{f}" for f in earlier] + [
            f"GAN_homework/training-runs/{r.name}/{f}" for r in others for f in files[r.name]
        ]
        tasks.append(task)
    return tasks


def numbered(source: Source, folder: str, prefix: str) -> list[tuple[int, str]]:
    pattern = re.compile(rf"^{re.escape(folder)}/{re.escape(prefix)}(\d+)\.png$")
    return sorted((int(m.group(1)), n) for n in source.names if (m := pattern.match(n)))


def sampler_task(source: Source, scheduler: str) -> Task:
    task = Task(scheduler.lower(), f"{scheduler} faces")
    images = numbered(
        source, f"Diffusion_homework/{scheduler}_results", f"{scheduler}_generated_image"
    )
    task.items = [Item(name, "face", f"#{i}") for i, name in images]
    wanted = submit.SAMPLES_WANTED
    if len(images) < wanted:
        task.problems.append(f"missing: {len(images)} of the {wanted} images")
    elif len(images) > wanted:
        task.problems.append(f"extra: {len(images)} images, the handout asks for {wanted}")
    return task


def dps_task(source: Source) -> Task:
    task = Task("dps", "DPS inpainting (masked input, result)")
    folder = "Diffusion_homework/DPS_results"
    masked = dict(numbered(source, folder, "DPS_masked_input_image"))
    made = dict(numbered(source, folder, "DPS_generated_image"))
    for i in sorted(set(masked) | set(made)):
        for images, what in ((masked, "masked input"), (made, "result")):
            if i in images:
                task.items.append(Item(images[i], "pair", f"{what} #{i}"))
            else:
                task.problems.append(f"missing: the {what} of image {i}")
    wanted = submit.DPS_IMAGES_WANTED
    if len(masked) < wanted or len(made) < wanted:
        task.problems.append(
            f"missing: {len(masked)} masked inputs and {len(made)} results of the {wanted} pairs"
        )
    return task


def store_run(source: Source, store: str) -> tuple[str, float] | None:
    log = f"Diffusion_homework/{store}/log.txt"
    if log in source.names:
        return submit.distillation_settings(source.text(log))
    return next((run for pattern, run in STORE_NAME_HINTS if pattern.search(store)), None)


def distillation_tasks(source: Source) -> list[Task]:
    tasks = {run: Task(key, title) for key, (run, title) in zip(
        ("sds75", "sds100", "vsd"), submit.DISTILLATION_RUNS.items())}  # fmt: skip
    strips = sorted(
        n.split("/")[1]
        for n in source.names
        if re.fullmatch(r"Diffusion_homework/[^/]+/generated_progressive\.png", n)
    )
    for store in strips:
        run = store_run(source, store)
        task = tasks.get(run)
        item = Item(f"Diffusion_homework/{store}/generated_progressive.png", "strip", f"{store}/")
        if task is None:
            task = tasks.setdefault(
                ("other", store), Task(f"strip-{store}", f"{store}/ (unnamed run)")
            )
            task.problems.append("extra: its log.txt names none of the handout's runs")
        elif task.items:
            task.problems.append(f"extra: a second strip of this run, {store}/")
        task.items.append(item)
    for task in tasks.values():
        if not task.items:
            task.problems.append("missing: no generated_progressive.png of this run")
    return list(tasks.values())


def course_file(course: Path | None, source: Source, name: str) -> bool:
    """Whether `name` is a file of the course tree itself (e.g. Diffusion_homework/__asset__/),
    unchanged in the submission."""
    if course is None or ".." in name.split("/") or not (course / name).is_file():
        return False
    entry = source.names[name]
    size = entry.stat().st_size if isinstance(entry, Path) else entry.file_size
    if size != (course / name).stat().st_size:
        return False
    data = source.read(name)
    return data is not None and data == (course / name).read_bytes()


def find_tasks(source: Source, course: Path | None = None) -> dict[str, list[Task]]:
    """{homework folder: its tasks with images}, in the handout's order; the other images are
    extras, except the course tree's own files (with `course`, its root)."""
    diffusion = [sampler_task(source, "DDPM"), sampler_task(source, "DDIM"), dps_task(source)]
    tasks = {"GAN_homework": gan_tasks(source), "Diffusion_homework": diffusion}
    tasks["Diffusion_homework"] += distillation_tasks(source)
    shown = {item.name for group in tasks.values() for t in group for item in t.items}
    shown |= {name for group in tasks.values() for t in group for name in t.passed_over}
    others = sorted(
        n
        for n in source.names
        if n.lower().endswith(IMAGE_SUFFIXES)
        and n not in shown
        and not course_file(course, source, n)
    )
    if others:
        extra = Task("other", "Other images in the submission")
        extra.items = [Item(n, "other", n) for n in others]
        tasks.setdefault("", []).append(extra)
    return tasks


def answers(source: Source) -> dict[str, tuple[str, str]]:
    """{homework folder: (file name, text)} of the answers files; a PDF's text is empty."""
    found = {}
    for part in submit.PARTS:
        for name in submit.ANSWER_NAMES:
            if f"{part}/{name}" in source.names:
                found[part] = (f"{part}/{name}", source.text(f"{part}/{name}"))
                break
    return found


def _file_name(index: int, name: str, suffix: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.rsplit(".", 1)[0].replace("/", "__"))[-80:]
    return f"{index:03d}_{stem}{suffix}"


def export(source: Source, items: list[Item], folder: Path, link: str) -> None:
    """Writes each item's image into `folder` (reached as `link` from the page): the original
    when small, else a JPEG thumbnail and the original it links to."""
    for index, item in enumerate(items):
        data = source.read(item.name)
        if data is None:
            item.error = "could not be read"
            continue
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                side = THUMB_SIDE[item.kind]
                original = _file_name(index, item.name, Path(item.name).suffix.lower())
                if len(data) <= SMALL_BYTES and max(image.size) <= side:
                    write_atomic(folder / original, data)
                    item.src, item.size = f"{link}/{original}", image.size
                    continue
                thumb = image.convert("RGB")
                thumb.thumbnail((side, side))
                buffer = io.BytesIO()
                thumb.save(buffer, "JPEG", quality=82)
                name = _file_name(index, item.name, ".jpg")
                write_atomic(folder / name, buffer.getvalue())
                write_atomic(folder / original, data)
                item.src, item.href, item.size = f"{link}/{name}", f"{link}/{original}", thumb.size
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
            item.error = f"is not an image that can be opened ({type(error).__name__})"
