"""The snippets report (tools/snippets.py): student block beside the reference, with verdicts."""

import json
import re
import zipfile
from html.parser import HTMLParser

from tool_helpers import run_tool, submission_from

from tools import markers, snippets, todos

STARTER_2 = markers.starter_body(2, "hw/calc.py").strip()


class Table(HTMLParser):
    """The first table of a page: rows of cells, each cell (text, attributes)."""

    def __init__(self, text: str):
        super().__init__()
        self.rows, self.cell, self.done = [], None, False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if self.done:
            return
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.cell = ["", dict(attrs)]
        elif tag == "br" and self.cell is not None:
            self.cell[0] += "\n"

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None and not self.done:
            self.rows[-1].append((self.cell[0].strip(), self.cell[1]))
            self.cell = None
        elif tag == "table":
            self.done = True

    def handle_data(self, data):
        if self.cell is not None:
            self.cell[0] += data


def test_html_page_shows_both_blocks_escaped_and_the_verdict(tree, tmp_path):
    sub = submission_from(
        tree, tmp_path / "sub", {"hw/calc.py": [("y = 2 * x", "y = 2 * x + (1 < 0)  # <b>&")]}
    )
    out = tmp_path / "report.html"
    result = run_tool("snippets", "--tree", tree, "--submission", sub, "--out", out)
    assert result.returncode == 0, result.stderr
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "# &lt;b&gt;&amp;" in page and "<b>&" not in page
    assert "min(max(value, low), high)" in page  # the reference
    assert "hw/geom/area.py#1" in page and "6.0 / 6.0" in page
    assert "12.0 / 12.0" in page


def test_markdown_page_from_given_results(tree, tmp_path):
    sub = submission_from(tree, tmp_path / "sub", {"hw/calc.py": [("y = 2 * x", "y = 3 * x")]})
    results = tmp_path / "results.json"
    assert run_tool("grade", "--tree", tree, "--submission", sub, "--out", results).returncode == 0
    out = tmp_path / "report.md"
    result = run_tool(
        "snippets", "--tree", tree, "--submission", sub, "--results", results, "--out", out,
        "--format", "md",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    page = out.read_text()
    assert "## hw/calc.py#1 (double): 0.0 / 3.0" in page
    assert "y = 3 * x" in page and "y = 2 * x" in page
    assert "double(3) should be 6" in page
    assert json.loads(results.read_text())["score"] == 9.0


def test_batch_writes_one_page_per_student_and_an_index(tree, tmp_path):
    folder = tmp_path / "submissions"
    submission_from(tree, folder / "alice")
    submission_from(tree, tmp_path / "bob_files", {"hw/geom/area.py": None})
    with zipfile.ZipFile(folder / "bob.zip", "w") as archive:
        for file in (tmp_path / "bob_files").rglob("*.py"):
            archive.write(file, "bob/" + file.relative_to(tmp_path / "bob_files").as_posix())
    out = tmp_path / "reports"
    result = run_tool("snippets", "--tree", tree, "--submissions", folder, "--out", out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["alice.html", "bob.html", "index.html"]
    index = (out / "index.html").read_text()
    assert "href='alice.html'" in index and "12 / 12" in index and "6 / 12" in index
    assert "this file is not in the submission" in (out / "bob.html").read_text()


def test_bad_input_is_one_sentence(tree, tmp_path):
    result = run_tool(
        "snippets", "--tree", tree, "--submissions", tmp_path / "none", "--out", tmp_path / "o"
    )
    assert result.returncode != 0 and "is not a folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_batch_lists_an_unreadable_entry_and_grades_the_rest(tree, tmp_path):
    folder = tmp_path / "submissions"
    submission_from(tree, folder / "alice")
    (folder / "carol.zip").symlink_to(tmp_path / "nowhere.zip")
    out = tmp_path / "reports"
    result = run_tool("snippets", "--tree", tree, "--submissions", folder, "--out", out)
    assert result.returncode == 0, result.stderr
    index = (out / "index.html").read_text()
    assert "href='alice.html'" in index and "Not graded (1)" in index and "carol.zip" in index


def test_markdown_keeps_student_text_in_code(tree, tmp_path):
    hostile = "raise ValueError('<script>alert(1)</script> ``` # Title')"
    sub = submission_from(tree, tmp_path / "sub", {"hw/calc.py": [("y = 2 * x", hostile)]})
    out = tmp_path / "report.md"
    result = run_tool(
        "snippets", "--tree", tree, "--submission", sub, "--out", out, "--format", "md"
    )
    assert result.returncode == 0, result.stderr
    page = out.read_text()
    verdicts = [line for line in page.splitlines() if "<script>" in line and line.startswith("- ")]
    assert verdicts and all(": ```` ValueError: <script>" in line for line in verdicts)


def test_bad_out_is_one_sentence(tree, tmp_path):
    (tmp_path / "dangling").symlink_to(tmp_path / "missing" / "x.html")
    for out, words in ((tmp_path, "is a folder"), (tmp_path / "dangling", "link to nothing")):
        result = run_tool("snippets", "--tree", tree, "--submission", tree, "--out", out)
        assert result.returncode != 0 and words in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_index_heads_are_short_and_every_cell_says_points_and_a_word(tree, tmp_path):
    folder = tmp_path / "submissions"
    submission_from(tree, folder / "alice")
    submission_from(
        tree, folder / "bob", {"hw/calc.py": [("c = min(max(value, low), high)", STARTER_2)]}
    )
    submission_from(tree, folder / "carol", {"hw/calc.py": [("y = 2 * x", "y = 3 * x")],
                                             "hw/geom/area.py": None})  # fmt: skip
    out = tmp_path / "reports"
    result = run_tool("snippets", "--tree", tree, "--submissions", folder, "--out", out)
    assert result.returncode == 0, result.stderr
    head, *rows = Table((out / "index.html").read_text()).rows
    names = [text for text, _ in head]
    assert names == ["student", "total", "hw", "missing images", "calc #1", "calc #2", "area"]
    assert [attrs.get("title") for _, attrs in head[-3:]] == [
        "hw/calc.py#1: double", "hw/calc.py#2: clamp", "hw/geom/area.py#1: rectangle area"]  # fmt: skip
    cells = {row[0][0]: [text for text, _ in row[-3:]] for row in rows}
    for row in cells.values():
        assert all(re.fullmatch(r"\d+(\.\d+)? / \d+(\.\d+)?\n[a-z ]+", cell) for cell in row), row
    assert cells["alice"] == ["3 / 3\ndone", "3 / 3\ndone", "6 / 6\ndone"]
    assert cells["bob"] == ["3 / 3\ndone", "0 / 3\nnot done", "6 / 6\ndone"]
    assert cells["carol"] == ["0 / 3\nwrong", "3 / 3\ndone", "0 / 6\nno file"]
    totals = {row[0][0]: row[1][0] for row in rows}
    assert totals == {"alice": "12 / 12", "bob": "9 / 12", "carol": "3 / 12"}
    bob = (out / "bob.html").read_text()
    assert "blank (starter text)" in bob and bob.count("<table class='diff'>") == 2
    assert STARTER_2 not in bob  # no diff of the starter's line against the reference


def test_course_todos_have_short_distinct_names():
    ids = [todo.id for todo in todos.TODOS]
    names = [snippets.short_name(todo, ids) for todo in ids]
    assert len(set(names)) == len(names) and all(len(n) <= 10 for n in names), names
    assert snippets.short_name(f"{todos.CUTOUT}#1", ids) == "cutout"
    assert snippets.short_name("hw/x/area.py#1", ["hw/x/area.py#1"]) == "area"
    assert snippets.short_name("hw/calc.py#2", ["hw/calc.py#1", "hw/calc.py#2"]) == "calc #2"


def test_partial_results_show_the_rest_not_graded_and_one_total(tree, tmp_path):
    sub = submission_from(tree, tmp_path / "sub", {"hw/calc.py": [("y = 2 * x", "y = 3 * x")]})
    results = tmp_path / "results.json"
    result = run_tool("grade", "--tree", tree, "--submission", sub, "--only", "hw/calc.py#1",
                      "--out", results)  # fmt: skip
    assert result.returncode == 0, result.stderr
    graded = {t["name"].split()[0] for t in json.loads(results.read_text())["tests"]}
    assert graded == {"hw/calc.py#1"}
    for fmt in ("html", "md"):
        out = tmp_path / f"page.{fmt}"
        result = run_tool("snippets", "--tree", tree, "--submission", sub, "--results", results,
                          "--out", out, "--format", fmt)  # fmt: skip
        assert result.returncode == 0, result.stderr
        page = out.read_text()
        totals = re.findall(r"\d+\.\d+ / \d+\.\d+ over", page)
        assert totals == ["0.0 / 3.0 over"], totals
        assert "over the 1 of 3 TODOs graded" in page and "Score" not in page
        assert page.count("not graded") == (4 if fmt == "html" else 2), page
        assert "0.0 / 6.0" not in page and "0.0 / 12.0" not in page
    page = (tmp_path / "page.html").read_text()
    summary = Table(page.split("<h2>Summary</h2>")[1]).rows
    assert [row[2:] for row in summary[1:]] == [
        [("0.0 / 3.0", {"class": "zero"}), ("wrong", {"class": "zero"})],
        [("– / 3.0", {"class": "ungraded"}), ("not graded", {"class": "ungraded"})],
        [("– / 6.0", {"class": "ungraded"}), ("not graded", {"class": "ungraded"})],
    ]
