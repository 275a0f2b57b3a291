"""Instructor tool: each TODO of a submission beside the reference solution, with the verdict.

    python tools/snippets.py --submission hw5.zip --out report.html [--results results.json]
    python tools/snippets.py --submissions all_zips/ --out reports/      # one page per student

For every TODO of tools/todos.py whose file exists in the tree, the page shows the student's
block (found by its marker lines), the reference block of this repository and the
autograder's verdict for it (from --results, else grade.py is run). Batch mode writes one page
per submission (zip or folder) and an index with the scores. Pages are self-contained HTML
(or Markdown with --format md). Instructor-only: it shows the reference solutions.
"""

from __future__ import annotations

if __name__ == "__main__" and not __package__:
    # `python tools/snippets.py`: run as the module tools.snippets, so every module has one name.
    import os
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    os.execve(
        sys.executable,
        [sys.executable, "-m", "tools.snippets", *sys.argv[1:]],
        {**os.environ, "PYTHONPATH": path, "PYTHONSAFEPATH": "1"},
    )

import argparse
import html
import json
import os
import re
import sys
import textwrap
from pathlib import Path

from tools import grade, markers, sandbox
from tools.files import check_output_file, write_atomic
from tools.judge import HarnessError

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; border-top: 1px solid #ccc; padding-top: 1em; }
.cols { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
pre { background: #f6f8fa; border: 1px solid #ddd; padding: .6em; overflow-x: auto;
      font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px; white-space: pre; }
.full { color: #1a7f37; } .part { color: #9a6700; } .zero { color: #cf222e; }
.note { background: #fff8c5; padding: .4em .6em; border: 1px solid #d4a72c; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: left; }
"""


def student_blocks(sub: grade.Submission, rel: str):
    """({number: body}, note) for one file of a submission."""
    if rel not in sub.files:
        return {}, "this file is not in the submission"
    try:
        return {n: b.body for n, b in markers.blocks_by_number(sub.files[rel], rel).items()}, None
    except markers.MarkerError as error:
        return {}, f"damaged markers ({error}); the file was graded whole"


def verdicts(results: dict) -> dict[str, list[dict]]:
    by_todo: dict[str, list[dict]] = {}
    for test in results.get("tests", []):
        todo, _, _ = test["name"].partition(" ")
        by_todo.setdefault(todo, []).append(test)
    return by_todo


def collect(root: Path, submission: Path, results: dict) -> dict:
    """Everything a page shows, as plain data."""
    table = grade.load_table(root)
    present = grade.present_todos(root, table)
    files = sorted({t.split("#")[0] for t in present})
    sub = grade.read_submission(submission, files)
    tests = verdicts(results)
    todos = []
    for todo in present:
        rel, number = todo.split("#")[0], int(todo.split("#")[1])
        reference = markers.blocks_by_number((root / rel).read_text(encoding="utf-8"), rel)
        mine, note = student_blocks(sub, rel)
        if not note and number not in mine:
            note = f"TODO #{number} has no marker lines in this file"
        entries = tests.get(todo, [])
        todos.append(
            {
                "id": todo,
                "summary": getattr(table.BY_ID.get(todo), "summary", "")
                if hasattr(table, "BY_ID")
                else "",
                "student": textwrap.dedent(mine.get(number, "")).rstrip("\n"),
                "reference": textwrap.dedent(reference[number].body).rstrip("\n")
                if number in reference
                else "",
                "note": note,
                "score": sum(t["score"] for t in entries),
                "max_score": sum(t["max_score"] for t in entries) or float(table.points(todo)),
                "tests": entries,
            }
        )
    return {
        "submission": str(submission),
        "score": sum(t["score"] for t in todos),
        "max_score": sum(t["max_score"] for t in todos),
        "output": results.get("output", ""),
        "todos": todos,
    }


def _klass(score: float, max_score: float) -> str:
    return "full" if score >= max_score - 1e-9 else "zero" if score <= 1e-9 else "part"


def render_html(page: dict, title: str) -> str:
    e = html.escape
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{e(title)}: {grade._fmt(page['score'])} / {grade._fmt(page['max_score'])}</h1>",
        f"<p>Submission: <code>{e(page['submission'])}</code></p>",
    ]
    if page["output"]:
        parts.append(f"<pre class='note'>{e(page['output'])}</pre>")
    for todo in page["todos"]:
        klass = _klass(todo["score"], todo["max_score"])
        score = f"{grade._fmt(todo['score'])} / {grade._fmt(todo['max_score'])}"
        parts.append(
            f"<h2 id='{e(todo['id'])}'>{e(todo['id'])} <small>{e(todo['summary'])}</small> "
            f"<span class='{klass}'>{score}</span></h2>"
        )
        if todo["note"]:
            parts.append(f"<p class='note'>{e(todo['note'])}</p>")
        parts.append(
            "<div class='cols'>"
            f"<div><b>Student</b><pre>{e(todo['student']) or '(empty)'}</pre></div>"
            f"<div><b>Reference</b><pre>{e(todo['reference'])}</pre></div></div>"
        )
        rows = "".join(
            f"<tr><td class='{_klass(t['score'], t['max_score'])}'>"
            f"{grade._fmt(t['score'])}/{grade._fmt(t['max_score'])}</td>"
            f"<td>{e(t['name'].partition(' ')[2])}</td><td><pre>{e(t['output'])}</pre></td></tr>"
            for t in todo["tests"]
        )
        parts.append(f"<table><tr><th>score</th><th>test</th><th>verdict</th></tr>{rows}</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _fence(text: str, language: str = "python") -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}{language}\n{text}\n{fence}"


def _inline(text: str) -> str:
    """Any text as one Markdown code span: nothing in it is read as Markdown or HTML."""
    text = " ".join(str(text).split())
    ticks = "`"
    while ticks in text:
        ticks += "`"
    return f"{ticks} {text} {ticks}" if text else "` `"


def render_md(page: dict, title: str) -> str:
    lines = [f"# {title}: {grade._fmt(page['score'])} / {grade._fmt(page['max_score'])}", ""]
    lines += [f"Submission: {_inline(page['submission'])}", ""]
    if page["output"]:
        lines += [_fence(page["output"], ""), ""]
    for todo in page["todos"]:
        lines += [
            f"## {todo['id']} ({todo['summary']}): {grade._fmt(todo['score'])} / {grade._fmt(todo['max_score'])}",
            "",
        ]
        if todo["note"]:
            lines += [f"> {_inline(todo['note'])}", ""]
        lines += ["Student:", "", _fence(todo["student"] or "(empty)"), ""]
        lines += ["Reference:", "", _fence(todo["reference"]), ""]
        for t in todo["tests"]:
            lines.append(
                f"- {grade._fmt(t['score'])}/{grade._fmt(t['max_score'])} "
                f"{_inline(t['name'].partition(' ')[2])}: {_inline(t['output'])}"
            )
        lines.append("")
    return "\n".join(lines)


def write_text(path: Path, text: str) -> None:
    write_atomic(path, text.encode("utf-8"))


def report(root: Path, submission: Path, results: dict | None, fmt: str, title: str, limits=None):
    if results is None:
        results = grade.grade(submission, root, limits=limits)
    page = collect(root, submission, results)
    text = render_html(page, title) if fmt == "html" else render_md(page, title)
    return page, text


def batch(root: Path, folder: Path, out: Path, fmt: str, limits=None) -> Path:
    """One page per submission and an index; an entry that cannot be graded is listed on the
    index with the reason, and the others are graded."""
    entries = sorted(
        p
        for p in folder.iterdir()
        if not p.name.startswith(".") and (p.is_dir() or p.suffix == ".zip")
    )
    if not entries:
        raise SystemExit(f"{folder} holds no submissions (zip files or folders).")
    rows, failed = [], []
    for entry in entries:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", entry.stem if entry.is_file() else entry.name)
        print(f"grading {entry.name} ...", flush=True)
        try:
            page, text = report(root, entry, None, fmt, name, limits)
            write_text(out / f"{name}.{fmt}", text)
        except HarnessError:
            raise
        except (Exception, SystemExit) as error:  # one unreadable entry must not stop the batch
            reason = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            print(f"  could not grade {entry.name}: {reason}", flush=True)
            failed.append((entry.name, reason))
            continue
        rows.append((name, page))
    index = out / f"index.{fmt}"
    todo_ids = [t["id"] for t in rows[0][1]["todos"]] if rows else []
    if fmt == "html":
        e = html.escape
        head = "".join(f"<th>{e(t)}</th>" for t in todo_ids)
        body = "".join(
            f"<tr><td><a href='{e(name)}.html'>{e(name)}</a></td>"
            f"<td class='{_klass(p['score'], p['max_score'])}'>{grade._fmt(p['score'])} / "
            f"{grade._fmt(p['max_score'])}</td>"
            + "".join(
                f"<td class='{_klass(t['score'], t['max_score'])}'>{grade._fmt(t['score'])}</td>"
                for t in p["todos"]
            )
            + "</tr>"
            for name, p in rows
        )
        unread = "".join(f"<li><code>{e(n)}</code>: {e(r)}</li>" for n, r in failed)
        write_text(
            index,
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Scores</title>"
            f"<style>{CSS}</style></head><body><h1>Scores ({len(rows)} submissions)</h1>"
            f"<table><tr><th>student</th><th>total</th>{head}</tr>{body}</table>"
            + (f"<h2>Not graded ({len(failed)})</h2><ul>{unread}</ul>" if failed else "")
            + "</body></html>",
        )
    else:
        lines = ["# Scores", "", "| student | total |", "| --- | --- |"]
        lines += [
            f"| [{name}]({name}.md) | {grade._fmt(p['score'])} / {grade._fmt(p['max_score'])} |"
            for name, p in rows
        ]
        if failed:
            lines += ["", f"## Not graded ({len(failed)})", ""]
            lines += [f"- {_inline(n)}: {_inline(r)}" for n, r in failed]
        write_text(index, "\n".join(lines) + "\n")
    return index


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--submission", help="one submission: a folder or a .zip")
    source.add_argument("--submissions", help="a folder of submissions (zips or folders)")
    parser.add_argument(
        "--out", required=True, help="the page (one submission) or a folder (batch)"
    )
    parser.add_argument("--format", choices=("html", "md"), default="html")
    parser.add_argument("--results", help="results.json of grade.py for this submission")
    parser.add_argument(
        "--tree", default=str(grade.REPO_ROOT), help="the course tree (default: this repository)"
    )
    parser.add_argument("--timeout-per-todo", type=float, default=sandbox.Limits.seconds)
    args = parser.parse_args(argv)
    root = Path(args.tree).resolve()
    limits = sandbox.Limits(args.timeout_per_todo)
    out = Path(args.out)
    try:
        if args.submissions:
            if out.exists() and not out.is_dir():
                raise ValueError(f"--out {out} is a file; pass a folder for the pages.")
            check_output_file(out / "index.html", "--out")
        else:
            check_output_file(out, "--out")
    except ValueError as error:
        raise SystemExit(str(error)) from None
    if args.submissions:
        folder = Path(args.submissions)
        if not folder.is_dir():
            raise SystemExit(
                f"{folder} is not a folder; pass the folder that holds the submissions."
            )
        if args.results:
            raise SystemExit(
                "--results goes with --submission (batch mode grades every submission)."
            )
        index = batch(root, folder, out, args.format, limits)
        print(f"wrote {index}")
        return 0
    results = None
    if args.results:
        try:
            results = json.loads(Path(args.results).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise SystemExit(
                f"Cannot read {args.results} ({error}); pass a results.json from grade.py."
            ) from None
    submission = Path(args.submission)
    title = submission.stem if submission.is_file() else submission.resolve().name
    if not submission.exists():
        raise SystemExit(f"The submission {submission} does not exist; pass a folder or a .zip.")
    _, text = report(root, submission, results, args.format, title, limits)
    write_text(out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except HarnessError as error:
        sys.exit(f"error: the grading set-up is broken, nothing was scored: {error}.")
