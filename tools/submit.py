"""Packs your HW5 submission: code, the images the handout asks for, and your answers.

    python tools/submit.py                 # from the repository root (or ../tools/submit.py
                                           # from GAN_homework/ or Diffusion_homework/)
    python tools/submit.py --out my_hw5.zip

What goes in:
  - every .py file under GAN_homework/ and Diffusion_homework/ (not caches),
  - GAN: for each run folder in GAN_homework/training-runs/, its latest
    fakes<iter>iter_trained.png and its log.txt (the handout asks for parts 1-3),
  - Diffusion: the PNGs of DDPM_results/, DDIM_results/ and DPS_results/, and
    generated_progressive.png (with generated_image.png) of every SDS/VSD store folder,
  - the free-response answers: GAN_homework/answers.md and Diffusion_homework/answers.md.
Never datasets (many_shot_dog), checkpoints, model weights or caches. The zip must stay
under 10 MB: if it would not, nothing is written and the largest items are listed.
Missing images are named as warnings; the zip is still written.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import zipfile
from pathlib import Path

PARTS = ("GAN_homework", "Diffusion_homework")
LIMIT_BYTES = 10_000_000  # "less than 10 MB"
SKIP_DIRS = {
    "__pycache__",
    ".ipynb_checkpoints",
    ".pytest_cache",
    ".git",
    ".venv",
    "venv",
    "site-packages",
    "many_shot_dog",
    "training-runs",
    "checkpoint",
    "wandb",
}
GAN_PARTS = {
    ("False", "False"): "part 1 (no regularization)",
    ("True", "False"): "part 2 (R1)",
    ("True", "True"): "part 3 (R1 + DiffAug)",
}
FAKES_RE = re.compile(r"^fakes(\d*)iter_trained\.png$")
ANSWER_NAMES = ("answers.md", "answers.txt", "answers.pdf")


def find_root(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if any((folder / part).is_dir() for part in PARTS):
            return folder
    return None


def _walk(top: Path, skip_results: bool):
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in SKIP_DIRS
            and not d.startswith(".")
            and not (skip_results and d.endswith("_results"))
        )
        for name in sorted(files):
            yield Path(folder) / name


def code_files(root: Path) -> list[Path]:
    return [
        p
        for part in PARTS
        if (root / part).is_dir()
        for p in _walk(root / part, True)
        if p.suffix == ".py"
    ]


def gan_images(root: Path, warnings: list[str]) -> list[Path]:
    runs_dir = root / "GAN_homework" / "training-runs"
    runs = sorted(p for p in runs_dir.iterdir() if p.is_dir()) if runs_dir.is_dir() else []
    picked, parts_seen = [], set()
    for run in runs:
        fakes = [p for p in run.iterdir() if FAKES_RE.match(p.name)]
        if not fakes:
            warnings.append(
                f"{run.relative_to(root)} has no fakes*iter_trained.png yet; it is left out."
            )
            continue

        def iteration(p: Path) -> tuple[int, float]:
            digits = FAKES_RE.match(p.name).group(1)
            return (int(digits) if digits else -1, p.stat().st_mtime)

        picked.append(max(fakes, key=iteration))
        log = run / "log.txt"
        if log.is_file():
            picked.append(log)
            first = log.read_text(errors="replace").splitlines()[:1]
            r1 = re.search(r"use_r1_regularization\W+(True|False)", first[0]) if first else None
            aug = re.search(r"use_diffaug\W+(True|False)", first[0]) if first else None
            if r1 and aug:
                parts_seen.add((r1.group(1), aug.group(1)))
        else:
            warnings.append(f"{run.relative_to(root)} has no log.txt.")
    if not picked:
        warnings.append(
            "No GAN sample grid found in GAN_homework/training-runs/: the handout asks for the latest "
            "fakesXXXXiter_trained.png and log.txt of your part 1, 2 and 3 runs."
        )
    elif parts_seen:
        for flags, part in GAN_PARTS.items():
            if flags not in parts_seen:
                warnings.append(
                    f"No GAN run of {part} (use_r1_regularization={flags[0]} use_diffaug={flags[1]}) "
                    "in GAN_homework/training-runs/."
                )
    return picked


def diffusion_images(root: Path, warnings: list[str]) -> list[Path]:
    home = root / "Diffusion_homework"
    picked = []
    for name, expected in (("DDPM_results", 10), ("DDIM_results", 10), ("DPS_results", 6)):
        pngs = sorted((home / name).glob("*.png")) if (home / name).is_dir() else []
        picked += pngs
        if len(pngs) < expected:
            warnings.append(
                f"Diffusion_homework/{name}/ has {len(pngs)} PNG images; the handout asks for {expected}."
            )
    stores = {"SDS": [], "VSD": []}
    for path in _walk(home, False) if home.is_dir() else []:
        if path.name != "generated_progressive.png":
            continue
        picked.append(path)
        if (path.parent / "generated_image.png").is_file():
            picked.append(path.parent / "generated_image.png")
        kind = path.parent.name[:3].upper()
        if kind in stores:
            stores[kind].append(path.parent)
    for kind, wanted, why in (
        ("SDS", 2, "guidance scales 7.5 and 100"),
        ("VSD", 1, "guidance scale 7.5"),
    ):
        if len(stores[kind]) < wanted:
            warnings.append(
                f"Found {len(stores[kind])} {kind} result folder(s) with generated_progressive.png in "
                f"Diffusion_homework/ (folders named {kind}_results...); the handout asks for {wanted} ({why})."
            )
    return picked


def answer_files(root: Path, warnings: list[str]) -> list[Path]:
    picked = []
    for part in PARTS:
        found = [root / part / n for n in ANSWER_NAMES if (root / part / n).is_file()]
        if not found and (root / part).is_dir():
            warnings.append(f"No {part}/answers.md with your free-response answers.")
        picked += found
    return picked


def collect(root: Path) -> tuple[list[Path], list[str]]:
    warnings: list[str] = []
    missing = [part for part in PARTS if not (root / part).is_dir()]
    for part in missing:
        warnings.append(f"No {part}/ folder in {root}.")
    items = code_files(root)
    if (root / "GAN_homework").is_dir():
        items += gan_images(root, warnings)
    if (root / "Diffusion_homework").is_dir():
        items += diffusion_images(root, warnings)
    items += answer_files(root, warnings)
    unique = list(dict.fromkeys(items))
    return unique, warnings


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def write_zip(root: Path, items: list[Path], out: Path) -> list[zipfile.ZipInfo]:
    """Writes the zip atomically; refuses (SystemExit) if it would reach the size limit."""
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.name}.part")
    try:
        with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in items:
                archive.write(path, path.relative_to(root).as_posix())
            infos = archive.infolist()
        size = part.stat().st_size
        if size >= LIMIT_BYTES:
            largest = sorted(infos, key=lambda i: i.compress_size, reverse=True)[:10]
            listing = "\n".join(f"  {_size(i.compress_size):>10}  {i.filename}" for i in largest)
            raise SystemExit(
                f"The submission would be {_size(size)}, over the 10 MB limit; nothing was written. "
                f"Remove some of these largest items (e.g. extra runs or result folders) and run again:\n"
                f"{listing}"
            )
        os.replace(part, out)
    finally:
        if part.exists():
            part.unlink()
    return infos


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", help="the zip to write (default: HW5_submission.zip in the repository root)"
    )
    parser.add_argument(
        "--root", help="the repository root (default: found from the current folder)"
    )
    args = parser.parse_args(argv)
    root = Path(args.root).resolve() if args.root else find_root(Path.cwd().resolve())
    if root is None or not any((root / p).is_dir() for p in PARTS):
        raise SystemExit(
            "No GAN_homework/ or Diffusion_homework/ folder here or above; run this from the "
            "repository root or a homework folder (or pass --root)."
        )
    out = Path(args.out).resolve() if args.out else root / "HW5_submission.zip"
    if out.suffix != ".zip":
        raise SystemExit(f"--out {args.out} should end in .zip.")
    items, warnings = collect(root)
    infos = write_zip(root, items, out)
    for info in infos:
        print(f"  {_size(info.file_size):>10}  {info.filename}")
    for warning in warnings:
        print(f"warning: {warning}")
    print(f"wrote {out}: {len(infos)} files, {_size(out.stat().st_size)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
