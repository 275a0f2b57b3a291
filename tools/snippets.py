"""Instructor tool: one page per student with the code, the score, the images and the answers.

    python tools/snippets.py --submission hw5.zip --out report.html [--results results.json]
    python tools/snippets.py --submissions all_zips/ --out reports/      # one page per student
    python tools/snippets.py --submissions all_zips/ --results report/results --out report/
                                        # pages from results graded on the cluster (grade_class.sbatch)

For every TODO of tools/todos.py whose file exists in the tree, the page shows the student's
block (found by its marker lines) beside the reference block of this repository, the
differences highlighted, and the autograder's verdict (from --results, else grade.py is run);
then the images the handout asks for and the answers files (tools/report_media.py). The images
go to `<page>_files/` beside the page. Batch mode writes one page per submission (zip or folder)
and a sortable index that fits a 1400 px window: short TODO heads (the whole id on hover), and in
every cell `points / maximum` with a word (done, partial, wrong, not done, no file, not graded).
A results.json of `grade.py --only` leaves the other TODOs `not graded`, out of the total. Pages
are HTML (or Markdown of the code and verdicts with --format md).
Instructor-only: it shows the reference solutions.
"""

from __future__ import annotations

if __name__ == "__main__" and not __package__:
    # `python tools/snippets.py`: run again as the module tools.snippets (tools/_startup.py).
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tools._startup import run_as_module

    run_as_module(__file__)

import argparse
import html
import json
import os
import re
import sys
import textwrap
import urllib.parse
from pathlib import Path

from tools import grade, markers, report_html, report_media, sandbox
from tools.files import check_output_file, write_atomic
from tools.judge import NOT_DONE, HarnessError
from tools.report_html import CSS


def student_blocks(sub: grade.Submission, rel: str):
    """({number: block}, note) for one file of a submission."""
    if rel not in sub.files:
        return {}, NO_FILE
    try:
        return markers.blocks_by_number(sub.files[rel], rel), None
    except markers.MarkerError as error:
        return {}, f"damaged markers ({error}); the file was graded whole"


def verdicts(results: dict) -> dict[str, list[dict]]:
    by_todo: dict[str, list[dict]] = {}
    for test in results.get("tests", []):
        todo, _, _ = test["name"].partition(" ")
        by_todo.setdefault(todo, []).append(test)
    return by_todo


NO_FILE = "this file is not in the submission"
# What a TODO's cell says beside its points: `done` (full points), `partial`, `wrong` (none),
# `not done` (the block is still the starter's), `no file`, `not graded` (absent from the results).
DONE, PARTIAL, WRONG, BLANK, MISSING, UNGRADED = (
    "done", "partial", "wrong", "not done", "no file", "not graded")  # fmt: skip
SHORT_NAMES = {  # the index's column heads: a course TODO's id -> a few characters
    "GAN_homework/training/loss.py": ("loss #1", "loss #2", "loss #3", "loss #4", "R1"),
    "GAN_homework/DiffAugment_pytorch.py": ("cutout",),
    "Diffusion_homework/scheduler/DDPM_scheduler.py": ("DDPM #1", "DDPM #2", "DDPM #3"),
    "Diffusion_homework/scheduler/DDIM_scheduler.py": ("DDIM #1", "DDIM #2", "DPS"),
    "Diffusion_homework/execute_SDS_VSD.py": ("apply w(t)",),
    "Diffusion_homework/utils/sds_vsd_utils.py": ("SDS", "SDS w(t)", "VSD"),
}


def short_name(todo_id: str, todo_ids: list[str]) -> str:
    """A TODO's name in a few characters: the course's own, else the file's stem with the block's
    number where the file has several."""
    path, _, number = todo_id.partition("#")
    names = SHORT_NAMES.get(path, ())
    if number.isdigit() and 0 < int(number) <= len(names):
        return names[int(number) - 1]
    stem = Path(path).stem
    several = sum(1 for t in todo_ids if t.partition("#")[0] == path) > 1
    return f"{stem} #{number}" if several else stem


def distinct(reasons: list[str]) -> list[str]:
    """Each reason once: of those that differ only in their numbers (one check on several
    inputs), the first."""
    seen = {}
    for reason in reasons:
        seen.setdefault(re.sub(r"\d+(\.\d+)?(e-?\d+)?", "#", reason), reason)
    return list(seen.values())


def state(todo: dict) -> str:
    if not todo["graded"]:
        return UNGRADED
    if todo["score"] >= todo["max_score"] - 1e-9:
        return DONE
    if todo["blank"] or (todo["failed"] and all(r.startswith(NOT_DONE) for r in todo["failed"])):
        return BLANK
    if todo["note"] == NO_FILE:
        return MISSING
    return WRONG if todo["score"] <= 1e-9 else PARTIAL


def collect(root: Path, submission: Path, results: dict) -> dict:
    """Everything a page shows, as plain data. A TODO that `results` does not name (those of
    grade.py --only) is `not graded`, and counts in neither total."""
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
        summary = results.get("todos", {}).get(todo, {})
        failed = summary.get("failed") or [
            (t["output"] or "failed").strip().splitlines()[0]
            for t in entries
            if t["score"] < t["max_score"] - 1e-9
        ]
        block = mine.get(number)
        entry = {
            "id": todo,
            "short": short_name(todo, present),
            "summary": getattr(table.BY_ID.get(todo), "summary", "")
            if hasattr(table, "BY_ID")
            else "",
            "student": textwrap.dedent(block.body if block else "").rstrip("\n"),
            "reference": textwrap.dedent(reference[number].body).rstrip("\n")
            if number in reference
            else "",
            "blank": block is not None and markers.is_starter(block, rel),
            "note": note,
            "graded": todo in results.get("todos", {}) or bool(entries),
            "score": sum(t["score"] for t in entries),
            "max_score": sum(t["max_score"] for t in entries) or float(table.points(todo)),
            "tests": entries,
            "failed": distinct(failed),
        }
        entry["state"] = state(entry)
        todos.append(entry)
    graded = [t for t in todos if t["graded"]]
    output = results.get("output", "")
    if output.startswith("Score "):  # the total, which the page's title gives
        output = output.partition("\n")[2]
    return {
        "prefix": sub.prefix,
        "submission": str(submission),
        "score": sum(t["score"] for t in graded),
        "max_score": sum(t["max_score"] for t in graded),
        "graded": len(graded),
        "output": output.strip(),
        "todos": todos,
    }


def _klass(score: float, max_score: float) -> str:
    return "full" if score >= max_score - 1e-9 else "zero" if score <= 1e-9 else "part"


def _anchor(text: str) -> str:
    return "todo-" + re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def _part(todo_id: str) -> str:
    return todo_id.split("/")[0]


def _points(score: float, max_score: float) -> str:
    return f"{grade._fmt(score)} / {grade._fmt(max_score)}"


STATE_CLASS = {DONE: "full", PARTIAL: "part", WRONG: "zero", BLANK: "blank", MISSING: "zero",
               UNGRADED: "ungraded"}  # fmt: skip


def _todo_points(todo: dict, compact: bool = False) -> str:
    """`x / max` of a TODO; `- / max` where it was not graded. Compact: `3 / 3`, not `3.0 / 3.0`."""
    fmt = _compact if compact else grade._fmt
    score = fmt(todo["score"]) if todo["graded"] else "&ndash;"
    return f"{score} / {fmt(todo['max_score'])}"


def _compact(x: float) -> str:
    return grade._fmt(x).removesuffix(".0")


def _total(page: dict) -> str:
    """The page's one total, over the TODOs graded."""
    text = _points(page["score"], page["max_score"])
    if page["graded"] < len(page["todos"]):
        text += f" over the {page['graded']} of {len(page['todos'])} TODOs graded"
    return text


def _todo_html(todo: dict) -> list[str]:
    e = html.escape
    parts = [
        f"<h3 id='{_anchor(todo['id'])}'>{e(todo['id'])} <small>{e(todo['summary'])}</small> "
        f"<span class='{STATE_CLASS[todo['state']]}'>{_todo_points(todo)} "
        f"{e(todo['state'])}</span></h3>"
    ]
    if todo["note"]:
        parts.append(f"<p class='note'>{e(todo['note'])}</p>")
    if todo["failed"] and todo["state"] != BLANK:
        lost = "".join(f"<li>{e(reason[:300])}</li>" for reason in todo["failed"])
        parts.append(f"<ul class='lost'>{lost}</ul>")
    if todo["blank"]:
        parts.append("<p class='blank'>blank (starter text)</p>")
    elif todo["note"] != NO_FILE:
        parts.append(report_html.diff_table(todo["reference"], todo["student"]))
    passed = [t for t in todo["tests"] if t["score"] >= t["max_score"] - 1e-9]
    failing = [t for t in todo["tests"] if t not in passed]
    rows = "".join(
        f"<tr><td class='{_klass(t['score'], t['max_score'])}'>"
        f"{grade._fmt(t['score'])}/{grade._fmt(t['max_score'])}</td>"
        f"<td>{e(t['name'].partition(' ')[2])}</td><td><pre>{e(t['output'])}</pre></td></tr>"
        for t in failing + passed
    )
    if rows:
        head = "<tr><th>score</th><th>check</th><th>verdict</th></tr>"
        label = f"{len(passed)} of {len(todo['tests'])} checks passed (every verdict)"
        parts.append(f"<details><summary>{label}</summary><table>{head}{rows}</table></details>")
    return parts


def _summary_html(page: dict) -> list[str]:
    e = html.escape
    rows = "".join(
        f"<tr><td><a href='#{_anchor(t['id'])}'>{e(t['id'])}</a></td><td>{e(t['summary'])}</td>"
        f"<td class='{STATE_CLASS[t['state']]}'>{_todo_points(t)}</td>"
        f"<td class='{STATE_CLASS[t['state']]}'>{e(t['state'])}</td></tr>"
        for t in page["todos"]
    )
    parts = ["<h2>Summary</h2>", "<table><tr><th>TODO</th><th></th><th>points</th><th></th></tr>"]
    parts += [rows, "</table>"]
    tasks = [task for group in page["tasks"].values() for task in group]
    if tasks:
        rows = "".join(
            f"<tr><td><a href='#img-{e(task.key)}'>{e(task.title)}</a></td>"
            + (
                f"<td class='present'>{len(task.items)} shown</td>"
                if task.present
                else f"<td class='missing'>{e('; '.join(task.problems))}</td>"
            )
            + (f"<td class='flag'>{e('; '.join(task.flags))}</td>" if task.flags else "<td></td>")
            + "</tr>"
            for task in tasks
        )
        parts.append(f"<table><tr><th>images</th><th></th><th>checks</th></tr>{rows}</table>")
    return parts


def _answers_html(name: str, text: str, link: str) -> str:
    e = html.escape
    if name.endswith(".pdf"):
        return f"<p><a href='{e(link)}'>{e(name)}</a> (PDF)</p>"
    body = report_html.markdown(text) if name.endswith(".md") else f"<pre>{e(text)}</pre>"
    return f"<div class='answers'>{body}</div>"


def render_html(page: dict, title: str) -> str:
    e = html.escape
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{e(title)}: {_total(page)}</h1>",
        f"<p>Submission: <code>{e(page['submission'])}</code></p>",
    ]
    if page["output"]:
        parts.append(f"<pre class='note'>{e(page['output'])}</pre>")
    parts += _summary_html(page)
    order = [_part(t["id"]) for t in page["todos"]] + [*page["tasks"], *page["answers"]]
    for part in dict.fromkeys(order):
        parts.append(f"<h2>{e(part) or 'Other files'}</h2>")
        for todo in page["todos"]:
            if _part(todo["id"]) == part:
                parts += _todo_html(todo)
        parts += [report_html.task_section(task) for task in page["tasks"].get(part, [])]
        if part in page["answers"]:
            name, text, link = page["answers"][part]
            parts.append(f"<h3 id='answers-{e(part)}'>{e(name)}</h3>")
            parts.append(_answers_html(name, text, link))
        elif part in report_media.submit.PARTS:
            parts.append(f"<h3>{e(part)}/answers.md</h3><p class='missing'>missing</p>")
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
    lines = [f"# {title}: {html.unescape(_total(page))}", ""]
    lines += [f"Submission: {_inline(page['submission'])}", ""]
    if page["output"]:
        lines += [_fence(page["output"], ""), ""]
    for todo in page["todos"]:
        points = html.unescape(_todo_points(todo))
        lines += [f"## {todo['id']} ({todo['summary']}): {points} {todo['state']}", ""]
        if todo["note"]:
            lines += [f"> {_inline(todo['note'])}", ""]
        if todo["blank"]:
            lines += ["Student: blank (starter text)", ""]
        elif todo["note"] != NO_FILE:
            lines += ["Student:", "", _fence(todo["student"] or "(empty)"), ""]
            lines += ["Reference:", "", _fence(todo["reference"]), ""]
        for t in todo["tests"]:
            lines.append(
                f"- {grade._fmt(t['score'])}/{grade._fmt(t['max_score'])} "
                f"{_inline(t['name'].partition(' ')[2])}: {_inline(t['output'])}"
            )
        lines.append("")
    tasks = [task for group in page["tasks"].values() for task in group]
    if tasks:
        lines += ["## Images", ""]
        for task in tasks:
            found = f"{len(task.items)} in the submission"
            lines.append(f"- {task.title}: {'; '.join([found, *map(_inline, task.problems)])}")
        lines.append("")
    for name, text, _ in page["answers"].values():
        lines += [f"## {_inline(name)}", "", _fence(text, "markdown"), ""]
    return "\n".join(lines)


def write_text(path: Path, text: str) -> None:
    write_atomic(path, text.encode("utf-8"))


def add_media(page: dict, submission: Path, assets: Path | None, root: Path | None = None) -> None:
    """The submission's images and answers into `page`; with `assets` (a folder beside the
    page), the images are copied or thumbnailed there and linked relative to the page. The
    course tree's own images (under `root`) are not the student's extras."""
    source = report_media.Source(submission, page["prefix"])
    try:
        page["tasks"] = report_media.find_tasks(source, root)
        answers = report_media.answers(source)
        page["answers"] = {}
        link = urllib.parse.quote(assets.name) if assets else ""
        for part, (name, text) in answers.items():
            target = ""
            if assets and name.endswith(".pdf") and (data := source.read(name)) is not None:
                write_atomic(assets / f"{part}_answers.pdf", data)
                target = f"{link}/{part}_answers.pdf"
            page["answers"][part] = (name, text, target)
        if assets:
            items = [i for group in page["tasks"].values() for t in group for i in t.items]
            report_media.export(source, items, assets, link)
        if source.notes:
            page["output"] = "\n".join([page["output"], *source.notes]).strip()
    finally:
        source.close()


def report(
    root: Path,
    submission: Path,
    results: dict | None,
    fmt: str,
    title: str,
    limits=None,
    out: Path | None = None,
):
    """The page of one submission; for an HTML page written to `out`, its images go to the
    folder `<out stem>_files` beside it."""
    if results is None:
        results = grade.grade(submission, root, limits=limits)
    page = collect(root, submission, results)
    assets = out.with_name(f"{out.stem}_files") if out is not None and fmt == "html" else None
    add_media(page, submission, assets, root)
    text = render_html(page, title) if fmt == "html" else render_md(page, title)
    return page, text


SORT_SCRIPT = """
document.querySelectorAll("th.sort").forEach(function (th, column) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0];
    var down = th.dataset.dir !== "up";
    th.dataset.dir = down ? "up" : "down";
    var key = function (row) { return row.cells[column].dataset.v || row.cells[column].textContent; };
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
      var c = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
      return down ? -c : c;
    }).forEach(function (row) { body.appendChild(row); });
  });
});
"""


def render_index(rows: list[tuple[str, dict]], failed: list[tuple[str, str]]) -> str:
    """The class's scores: total, per homework part, missing images and per TODO (a short head,
    the whole id on hover; `x / max` and a word in every cell); every column sorts on a click."""
    e = html.escape
    todos = rows[0][1]["todos"] if rows else []
    parts = list(dict.fromkeys(_part(t["id"]) for t in todos))

    def total_cell(ts: list[dict]) -> str:
        graded = [t for t in ts if t["graded"]]
        score = sum(t["score"] for t in graded)
        max_score = sum(t["max_score"] for t in graded)
        if not graded:
            return "<td class='ungraded' data-v='-1'>not graded</td>"
        note = (
            f"<br><small>{len(graded)} of {len(ts)} graded</small>" if len(graded) < len(ts) else ""
        )
        return (
            f"<td class='{_klass(score, max_score)}' data-v='{score:.4f}'>"
            f"{_compact(score)} / {_compact(max_score)}{note}</td>"
        )

    def todo_cell(todo: dict) -> str:
        value = f"{todo['score']:.4f}" if todo["graded"] else "-1"
        return (
            f"<td class='{STATE_CLASS[todo['state']]}' data-v='{value}'>{_todo_points(todo, True)}"
            f"<br><small>{e(todo['state'])}</small></td>"
        )

    def head(text: str, hover: str = "") -> str:
        hover = f" title='{e(hover)}'" if hover else ""
        return f"<th class='sort'{hover}>{e(text)}</th>"

    heads = [head("student"), head("total")]
    heads += [head(part.removesuffix("_homework") or part, f"{part}: its TODOs") for part in parts]
    heads.append(head("missing images", "how many of the handout's image tasks miss images"))
    heads += [head(t["short"], f"{t['id']}: {t['summary']}".rstrip(": ")) for t in todos]
    body = []
    for name, page in rows:
        missing = [
            task.title
            for group in page.get("tasks", {}).values()
            for task in group
            if not task.present
        ]
        flagged = [
            f"{task.title}: {flag}"
            for group in page.get("tasks", {}).values()
            for task in group
            for flag in task.flags
        ]
        words = str(len(missing))
        if flagged:
            words += f"<br><small class='flag'>{len(flagged)} to check</small>"
        body.append(
            f"<tr><td class='who'><a href='{e(urllib.parse.quote(name))}.html'>{e(name)}</a></td>"
            + total_cell(page["todos"])
            + "".join(total_cell([t for t in page["todos"] if _part(t["id"]) == p]) for p in parts)
            + f"<td data-v='{len(missing)}' title='{e('; '.join(missing + flagged))}'>{words}</td>"
            + "".join(todo_cell(t) for t in page["todos"])
            + "</tr>"
        )
    unread = "".join(f"<li><code>{e(n)}</code>: {e(r)}</li>" for n, r in failed)
    legend = (
        "<p>Points / maximum. Each TODO cell says in a word: <span class='full'>done</span>, "
        "<span class='part'>partial</span>, <span class='zero'>wrong</span> (no points), "
        "<span class='blank'>not done</span> (the block is still the starter's), "
        "<span class='zero'>no file</span>, <span class='ungraded'>not graded</span>. "
        "Hover a column's head for the TODO's full id; click it to sort.</p>"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Scores</title>"
        f"<style>{CSS}</style></head><body class='index'><h1>Scores ({len(rows)} submissions)</h1>"
        f"{legend}<table class='index'><thead><tr>"
        + "".join(heads)
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
        + (f"<h2>Not graded ({len(failed)})</h2><ul>{unread}</ul>" if failed else "")
        + f"<script>{SORT_SCRIPT}</script></body></html>"
    )


def submission_entries(folder: Path) -> list[tuple[str, Path]]:
    """The submissions of a folder (zips and folders, not hidden ones), in order, each with the
    name of its page: the file or folder name made safe, unique (`-2`, `-3`, ... for clashes)."""
    entries = sorted(
        p
        for p in folder.iterdir()
        if not p.name.startswith(".") and (p.is_dir() or p.suffix == ".zip")
    )
    named, taken = [], set()
    for entry in entries:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", entry.stem if entry.is_file() else entry.name)
        name, n = base, 1
        while name.lower() in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name.lower())
        named.append((name, entry))
    return named


def batch(
    root: Path, folder: Path, out: Path, fmt: str, limits=None, results_dir: Path | None = None
) -> Path:
    """One page per submission and an index; an entry that cannot be graded is listed on the
    index with the reason, and the others are graded. With `results_dir` (slurm/grade_class.sbatch
    graded them), each submission's verdicts come from `<results_dir>/<name>.json` instead."""
    entries = submission_entries(folder)
    if not entries:
        raise SystemExit(f"{folder} holds no submissions (zip files or folders).")
    rows, failed = [], []
    for name, entry in entries:
        print(f"{'reporting' if results_dir else 'grading'} {entry.name} ...", flush=True)
        try:
            results = None
            if results_dir is not None:
                results = read_results(results_dir / f"{name}.json")
            page, text = report(root, entry, results, fmt, name, limits, out / f"{name}.{fmt}")
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
    if fmt == "html":
        write_text(index, render_index(rows, failed))
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


def read_results(path: Path) -> dict:
    """A results.json of grade.py; one sentence (ValueError) when it is missing or unreadable."""
    try:
        results = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"no results at {path}: its grading did not finish") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"Cannot read {path} ({error}); pass a results.json from grade.py."
        ) from None
    if not isinstance(results, dict):
        raise ValueError(f"{path} is not a results.json of grade.py.")
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--submission", help="one submission: a folder or a .zip")
    source.add_argument("--submissions", help="a folder of submissions (zips or folders)")
    parser.add_argument(
        "--out", required=True, help="the page (one submission) or a folder (batch)"
    )
    parser.add_argument("--format", choices=("html", "md"), default="html")
    parser.add_argument(
        "--results",
        help="results.json of grade.py for this submission; with --submissions, a folder of "
        "<name>.json (slurm/grade_class.sbatch writes them), so nothing is graded again",
    )
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
        results_dir = Path(args.results) if args.results else None
        if results_dir is not None and not results_dir.is_dir():
            raise SystemExit(
                f"--results {results_dir} is not a folder; with --submissions pass the folder of "
                "<name>.json results."
            )
        index = batch(root, folder, out, args.format, limits, results_dir)
        print(f"wrote {index}")
        return 0
    results = None
    if args.results:
        try:
            results = read_results(Path(args.results))
        except ValueError as error:
            raise SystemExit(str(error)) from None
    submission = Path(args.submission)
    title = submission.stem if submission.is_file() else submission.resolve().name
    if not submission.exists():
        raise SystemExit(f"The submission {submission} does not exist; pass a folder or a .zip.")
    _, text = report(root, submission, results, args.format, title, limits, out)
    write_text(out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except HarnessError as error:
        sys.exit(f"error: the grading set-up is broken, nothing was scored: {error}.")
