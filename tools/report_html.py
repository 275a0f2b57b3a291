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
.answers h4, .answers h5, .answers h6 { font-size: 1em; margin: 1em 0 .4em; }
.extra { color: #555; } table + table { margin-top: 1em; }
.blank { color: #6e5600; font-style: italic; } .ungraded { color: #6e7781; }
.flag { color: #bc4c00; font-weight: bold; }
body.index { margin: 1em; } table.index { font-size: 12.5px; }
table.index td, table.index th { padding: .2em .35em; white-space: nowrap; }
table.index th { white-space: normal; vertical-align: bottom; }
table.index td.who { white-space: normal; overflow-wrap: anywhere; max-width: 9em; }
table.index small { font-size: 11px; }
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


INLINE_RULES = (  # on escaped text outside code spans
    (re.compile(r"\*\*(?=[^\s*])(.+?)(?<=[^\s*])\*\*", re.S), r"<b>\1</b>"),
    (re.compile(r"(?<![\w_])__(?=[^\s_])(.+?)(?<=[^\s_])__(?![\w_])", re.S), r"<b>\1</b>"),
    (re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])", re.S), r"<i>\1</i>"),
    (re.compile(r"(?<![\w_])_(?=[^\s_])(.+?)(?<=[^\s_])_(?![\w_])", re.S), r"<i>\1</i>"),
    (re.compile(r"\[([^\]\n]+)\]\((https?://[^\s()<>\"']+)\)"), r"<a href='\2'>\1</a>"),
)


def _inline(text: str) -> str:
    """Escaped text with `code`, **bold**, *italics* and http(s) links shown as such, and its line
    breaks kept; nothing else is interpreted."""
    spans = []

    def hold(match: re.Match) -> str:  # a code span: kept out of the other rules
        spans.append(f"<code>{e(match.group(1))}</code>")
        return f"\0{len(spans) - 1}\0"

    text = e(re.sub(r"`([^`]+)`", hold, text.replace("\0", "")))
    for pattern, replacement in INLINE_RULES:
        text = pattern.sub(replacement, text)
    text = re.sub(r"\0(\d+)\0", lambda m: spans[int(m.group(1))], text)
    return text.strip().replace("\n", "<br>\n")


LIST_RE = re.compile(r"^\s*(?:[-*+]|\d+[.)])(?:\s+(.*))?$")
RULE_RE = re.compile(r"([-*_])( ?\1){2,}")


def markdown(text: str) -> str:
    """A small Markdown reader: headings, paragraphs (their line breaks kept), fenced code, lists,
    quotes and tables; inline code, bold, italics and http(s) links. Every piece of the text is
    escaped: no HTML of the text reaches the page."""
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
        elif stripped.startswith(">"):
            quoted = []
            while i < len(lines) and lines[i].strip().startswith(">"):
                quoted.append(lines[i].strip()[1:].removeprefix(" "))
                i += 1
            out.append(f"<blockquote>{markdown(chr(10).join(quoted))}</blockquote>")
        elif RULE_RE.fullmatch(stripped):
            out.append("<hr>")
            i += 1
        elif LIST_RE.match(line):
            tag = "ol" if re.match(r"^\s*\d", line) else "ul"
            items = []
            while (
                i < len(lines)
                and (m := LIST_RE.match(lines[i]))
                and (tag == "ol") == bool(re.match(r"^\s*\d", lines[i]))
            ):
                items.append(f"<li>{_inline(m.group(1) or '')}</li>")
                i += 1
            out.append(f"<{tag}>{''.join(items)}</{tag}>")
        elif not stripped:
            i += 1
        else:
            paragraph = []
            while i < len(lines) and lines[i].strip() and not _opens_block(lines[i]):
                paragraph.append(lines[i].strip())
                i += 1
            out.append(f"<p>{_inline(chr(10).join(paragraph))}</p>")
    return "\n".join(out)


def _opens_block(line: str) -> bool:
    s = line.strip()
    return s.startswith(("```", "~~~", "#", "|", ">")) or bool(
        LIST_RE.match(line) or RULE_RE.fullmatch(s)
    )


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
    if task.settings:
        parts.append(f"<p>run: {e(task.settings)}</p>")
    parts += [f"<p class='flag'>check: {e(flag)}</p>" for flag in task.flags]
    parts += [
        f"<p class='{'extra' if problem.startswith('extra') else 'missing'}'>{e(problem)}</p>"
        for problem in task.problems
    ]
    figures = "".join(figure(item) for item in task.items)
    layout = {"ddpm": "faces", "ddim": "faces", "dps": "pairs"}.get(task.key, "row")
    parts.append(f"<div class='{layout}'>{figures}</div>")
    return "\n".join(parts)
