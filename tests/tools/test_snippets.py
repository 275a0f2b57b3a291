"""The snippets report (tools/snippets.py): student block beside the reference, with verdicts."""

import json
import zipfile

from tool_helpers import run_tool, submission_from


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
    assert "href='alice.html'" in index and "12.0 / 12.0" in index and "6.0 / 12.0" in index
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
