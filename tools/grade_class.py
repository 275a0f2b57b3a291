"""Instructor tool: a whole class graded on a SLURM cluster, one submission per task of a job array.

    SUBMISSIONS=all_zips/ REPORT=report/ sbatch slurm/grade_class.sbatch      # the usual way

slurm/grade_class.sbatch runs its three steps:
    python tools/grade_class.py plan SUBMISSIONS REPORT    # lists them; prints how many
    python tools/grade_class.py grade REPORT INDEX [grade.py options]   # one task of the array
    python tools/grade_class.py index REPORT               # the graders' pages and index

`plan` writes REPORT/submissions.json: the submissions (zips and folders) of SUBMISSIONS in order,
each with its page name (tools/snippets.py's names). Task INDEX of the array runs tools/grade.py on
submission INDEX (the same judge, isolation and limits as one grade.py run) into
REPORT/results/<name>.json. `index` then writes every page and the index into REPORT as
`snippets.py --submissions` does on one machine, from those results without grading again; a
submission whose task did not finish is listed as not graded, with the reason.
REPORT is a new or empty folder, or the REPORT of an earlier run of the same SUBMISSIONS (its
results are replaced task by task). Instructor-only: the pages show the reference solutions.
"""

from __future__ import annotations

if __name__ == "__main__" and not __package__:
    # `python tools/grade_class.py`: run again as the module tools.grade_class (tools/_startup.py).
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tools._startup import run_as_module

    run_as_module(__file__)

import argparse
import json
import subprocess
import sys
from pathlib import Path

from tools import grade, snippets
from tools.files import write_atomic

PLAN = "submissions.json"
RESULTS = "results"


def plan(submissions: Path, report: Path) -> int:
    """Lists the submissions into REPORT/submissions.json; returns how many there are."""
    submissions = submissions.resolve()
    if not submissions.is_dir():
        raise ValueError(f"SUBMISSIONS {submissions} is not a folder; pass the folder of zips.")
    if report.exists() and not report.is_dir():
        raise ValueError(f"REPORT {report} is a file; pass a new or empty folder.")
    if report.is_dir() and any(report.iterdir()):
        earlier = read_plan(report) if (report / PLAN).is_file() else None
        if earlier is None or earlier["submissions"] != str(submissions):
            raise ValueError(
                f"REPORT {report} already holds other files; pass a new or empty folder."
            )
    entries = snippets.submission_entries(submissions)
    if not entries:
        raise ValueError(f"{submissions} holds no submissions (zip files or folders).")
    listing = {
        "submissions": str(submissions),
        "entries": [{"name": name, "path": str(path)} for name, path in entries],
    }
    (report / RESULTS).mkdir(parents=True, exist_ok=True)
    write_atomic(report / PLAN, (json.dumps(listing, indent=1) + "\n").encode())
    return len(entries)


def read_plan(report: Path) -> dict:
    try:
        listing = json.loads((report / PLAN).read_text(encoding="utf-8"))
        listing["entries"], listing["submissions"]  # noqa: B018 (the keys must be there)
        return listing
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"Cannot read {report / PLAN} ({error}); run the plan step first."
        ) from None


def grade_one(report: Path, index: int, grade_args: list[str]) -> int:
    """grade.py on submission `index` of the plan, into REPORT/results/<name>.json."""
    entries = read_plan(report)["entries"]
    if not 0 <= index < len(entries):
        raise ValueError(
            f"task {index} is out of range: the plan lists {len(entries)} submissions."
        )
    entry = entries[index]
    out = report / RESULTS / f"{entry['name']}.json"
    print(f"grading {entry['path']} into {out}", flush=True)
    grader = Path(__file__).resolve().with_name("grade.py")
    command = [sys.executable, str(grader), "--submission", entry["path"], "--out", str(out)]
    return subprocess.run([*command, *grade_args]).returncode


def index(report: Path, fmt: str, tree: Path = grade.REPO_ROOT) -> Path:
    """Every page and the index, from REPORT/results."""
    listing = read_plan(report)
    return snippets.batch(
        tree,
        Path(listing["submissions"]),
        report,
        fmt,
        results_dir=report / RESULTS,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    steps = parser.add_subparsers(dest="step", required=True)
    p = steps.add_parser("plan", help="list the submissions; prints how many")
    p.add_argument("submissions")
    p.add_argument("report")
    g = steps.add_parser("grade", help="grade one submission (one task of the array)")
    g.add_argument("report")
    g.add_argument("index", type=int)
    g.add_argument("grade_args", nargs=argparse.REMAINDER, help="more grade.py options")
    i = steps.add_parser("index", help="the pages and the index, from the results")
    i.add_argument("report")
    i.add_argument("--format", choices=("html", "md"), default="html")
    i.add_argument("--tree", default=str(grade.REPO_ROOT), help="the course tree")
    args = parser.parse_args(argv)
    try:
        if args.step == "plan":
            print(plan(Path(args.submissions), Path(args.report)))
            return 0
        if args.step == "grade":
            return grade_one(Path(args.report), args.index, args.grade_args)
        print(f"wrote {index(Path(args.report), args.format, Path(args.tree).resolve())}")
        return 0
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    sys.exit(main())
