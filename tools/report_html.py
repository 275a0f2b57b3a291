"""HTML pieces of the grader's page: a side-by-side diff, a small Markdown reader, image tasks.

Every piece of student text (code, answers, file names, messages) goes through html.escape.
"""

from __future__ import annotations

import difflib
import html
import re

from tools.report_media import Item, Task

e = html.escape

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 110em; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; border-top: 2px solid #999; padding-top: .6em; }
h3 { font-size: 1em; margin-top: 1.6em; border-top: 1px solid #ccc; padding-top: .6em; }
pre, .diff td.code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px; }
pre { background: #f6f8fa; border: 1px solid #ddd; padding: .6em; overflow-x: auto; white-space: pre-wrap; }
.full { color: #1a7f37; } .part { color: #9a6700; } .zero { color: #cf222e; }
.note { background: #fff8c5; padding: .4em .6em; border: 1px solid #d4a72c; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
.diff { width: 100%; table-layout: fixed; } .diff td.code { white-space: pre-wrap; }
.diff td.num { width: 2.5em; color: #888; text-align: right; }
.diff tr.del td.ref, .diff tr.mod td.ref { background: #ffebe9; }
.diff tr.add td.stu, .diff tr.mod td.stu { background: #e6ffec; }
.diff del { background: #ffb3b3; text-decoration: none; } .diff ins { background: #aaf2b8; text-decoration: none; }
ul.lost li { color: #cf222e; }
.faces { display: grid; grid-template-columns: repeat(5, max-content); gap: 4px; }
.pairs { display: grid; grid-template-columns: repeat(2, max-content); gap: 4px; }
figure { display: inline-block; margin: 0 .5em .5em 0; } figcaption { font-size: 11px; color: #555; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
.missing { color: #cf222e; font-weight: bold; } .present { color: #1a7f37; }
th.sort { cursor: pointer; text-decoration: underline dotted; }
"""


# ---------------------------------------------------------------- code beside the reference


def _marked(a: str, b: str) -> tuple[str, str]:
    """Two versions of a line, escaped, with the characters that differ marked."""
    left, right = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            left.append(e(a[i1:i2]))
            right.append(e(b[j1:j2]))
        else:
            left.append(f"<del>{e(a[i1:i2])}</del>" if i2 > i1 else "")
            right.append(f"<ins>{e(b[j1:j2])}</ins>" if j2 > j1 else "")
    return "".join(left), "".join(right)


def diff_table(reference: str, student: str) -> str:
    """Reference (left) and student (right) side by side, the differences highlighted."""
    ref, stu = reference.splitlines(), student.splitlines()
    rows = []

    def row(klass, i, left, j, right):
        rows.append(
            f"<tr class='{klass}'><td class='num'>{i}</td><td class='code ref'>{left}</td>"
            f"<td class='num'>{j}</td><td class='code stu'>{right}</td></tr>"
        )

    matcher = difflib.SequenceMatcher(None, ref, stu, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            for k in range(i2 - i1):
                row("same", i1 + k + 1, e(ref[i1 + k]), j1 + k + 1, e(stu[j1 + k]))
            continue
        for k in range(max(i2 - i1, j2 - j1)):
            a = ref[i1 + k] if i1 + k < i2 else None
            b = stu[j1 + k] if j1 + k < j2 else None
            if a is not None and b is not None:
                left, right = _marked(a, b)
                row("mod", i1 + k + 1, left, j1 + k + 1, right)
            elif a is not None:
                row("del", i1 + k + 1, e(a), "", "")
            else:
                row("add", "", "", j1 + k + 1, e(b))
    if not stu:
        rows.append("<tr><td></td><td></td><td></td><td class='code'>(empty)</td></tr>")
    return (
        "<table class='diff'><colgroup><col style='width:2.5em'><col><col style='width:2.5em'>"
        "<col></colgroup><tr><th></th><th>Reference</th><th></th><th>Student</th></tr>"
        + "".join(rows)
        + "</table>"
    )


# ---------------------------------------------------------------- answers (Markdown)


def _inline(text: str) -> str:
    """Escaped text with `code` and **bold** shown as such; nothing else is interpreted."""
    out = []
    for k, piece in enumerate(re.split(r"(`[^`]+`)", text)):
        if k % 2:
            out.append(f"<code>{e(piece[1:-1])}</code>")
        else:
            out.append(re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", e(piece)))
    return "".join(out)


def markdown(text: str) -> str:
    """A small Markdown reader: headings, paragraphs, fenced code, lists and tables."""
    out: list[str] = []
    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            fence, body = stripped[:3], []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(fence):
                body.append(lines[i])
                i += 1
            out.append(f"<pre>{e(chr(10).join(body))}</pre>")
            i += 1
        elif m := re.match(r"^(#{1,6})\s+(.*)$", stripped):
            level = min(len(m.group(1)) + 3, 6)  # below the page's own headings
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
            i += 1
        elif stripped.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-+:?", c) for c in cells if c):
                    rows.append("".join(f"<td>{_inline(c)}</td>" for c in cells))
                i += 1
            out.append("<table>" + "".join(f"<tr>{r}</tr>" for r in rows) + "</table>")
        elif re.match(r"^\s*([-*+]|\d+[.)])\s+", line):
            tag = "ol" if re.match(r"^\s*\d", line) else "ul"
            items = []
            while i < len(lines) and (m := re.match(r"^\s*(?:[-*+]|\d+[.)])\s+(.*)$", lines[i])):
                items.append(f"<li>{_inline(m.group(1))}</li>")
                i += 1
            out.append(f"<{tag}>{''.join(items)}</{tag}>")
        elif not stripped:
            i += 1
        else:
            paragraph = []
            while i < len(lines) and lines[i].strip() and not _opens_block(lines[i]):
                paragraph.append(lines[i].strip())
                i += 1
            out.append(f"<p>{_inline(' '.join(paragraph))}</p>")
    return "\n".join(out)


def _opens_block(line: str) -> bool:
    s = line.strip()
    return s.startswith(("```", "~~~", "#", "|")) or bool(re.match(r"^([-*+]|\d+[.)])\s+", s))


# ---------------------------------------------------------------- images


def figure(item: Item) -> str:
    if item.error or not item.src:
        return f"<p class='missing'>{e(item.name)} {e(item.error or 'was not copied')}</p>"
    width, height = item.size
    image = f"<img src='{e(item.src)}' width='{width}' height='{height}' alt='{e(item.caption)}'>"
    if item.href:
        image = f"<a href='{e(item.href)}'>{image}</a>"
    return f"<figure>{image}<figcaption>{e(item.caption)}</figcaption></figure>"


def task_section(task: Task) -> str:
    parts = [f"<h3 id='img-{e(task.key)}'>{e(task.title)}</h3>"]
    if task.text:
        parts.append(f"<p>log.txt: <code>{e(task.text)}</code></p>")
    parts += [f"<p class='missing'>{e(problem)}</p>" for problem in task.problems]
    figures = "".join(figure(item) for item in task.items)
    layout = {"ddpm": "faces", "ddim": "faces", "dps": "pairs"}.get(task.key, "row")
    parts.append(f"<div class='{layout}'>{figures}</div>")
    return "\n".join(parts)
