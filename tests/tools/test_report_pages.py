"""The grader's page of tools/snippets.py: images, answers, summary, index; checked as HTML
structure and, where Debian's chromium is installed, in a headless browser."""

import json
import re
import shutil
import subprocess
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
from PIL import Image
from tool_helpers import run_tool, submission_from

HOSTILE = "<script>alert('answers')</script> & <img src=x onerror=alert(1)>"
ANSWERS = f"""# Answers

Name: **Ada** Lovelace
Uniqname: ada

## Task 1 (required)

*Why does the loss saturate?* GPU model: ______

Your answer:
The loss is **non-saturating** and `softplus(-x)` {HOSTILE}

- first point
- second point

| run | FID |
| --- | --- |
| part 1 | 80 |

```
print("{HOSTILE}")
```
"""


def png(path: Path, size=(64, 64), seed=0) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def student(tree: Path, dest: Path, ddim_images=7) -> Path:
    """A submission of the fixture tree's code plus the course's images and answers: GAN parts
    1 and 2 (part 3 missing), 10 DDPM and `ddim_images` DDIM faces, 3 DPS pairs, SDS at 7.5 and
    VSD strips (SDS at 100 missing), a corrupt image and hostile answers."""
    submission_from(tree, dest)
    runs = dest / "GAN_homework" / "training-runs"
    for name, flags in (
        ("00000-dog-low_shot-nor1-noaug", "False False"),
        ("00001-dog-low_shot-r1-noaug", "True False"),
    ):
        r1, aug = flags.split()
        (runs / name).mkdir(parents=True)
        (runs / name / "log.txt").write_text(
            f"use_r1_regularization={r1} use_diffaug={aug}\nrest\n"
        )
        png(runs / name / "fakes000100iter_trained.png", (40, 40))
        png(runs / name / "fakes004500iter_trained.png", (1100, 1100), seed=1)
    png(runs / "00001-dog-low_shot-r1-noaug" / "training_curves.png", (300, 200))
    home = dest / "Diffusion_homework"
    for i in range(10):
        png(home / "DDPM_results" / f"DDPM_generated_image{i}.png", seed=i)
    for i in range(ddim_images):
        png(home / "DDIM_results" / f"DDIM_generated_image{i}.png", seed=20 + i)
    for i in range(3):
        png(home / "DPS_results" / f"DPS_masked_input_image{i}.png", seed=40 + i)
        png(home / "DPS_results" / f"DPS_generated_image{i}.png", seed=50 + i)
    for store, mode in (("sds_run", "sds"), ("vsd_run", "vsd")):
        png(home / store / "generated_progressive.png", (2000, 200), seed=60)
        (home / store / "log.txt").write_text(f"generation_mode: {mode}\nguidance_scale: 7.5\n")
    (home / "broken.png").write_bytes(b"not a png")
    (dest / "GAN_homework" / "answers.md").write_text(ANSWERS)
    (home / "answers.txt").write_text(HOSTILE)
    return dest


def results_for(page_todos: dict[str, tuple[float, float, list[str]]]) -> dict:
    """A grade.py results dict: per TODO id (score, points, failing reasons)."""
    tests, todos = [], {}
    for todo, (score, points, failed) in page_todos.items():
        tests.append({"name": f"{todo} passes", "score": score, "max_score": points / 2,
                      "output": "fine"})  # fmt: skip
        for reason in failed:
            tests.append({"name": f"{todo} fails", "score": 0.0, "max_score": points / 2,
                          "output": reason + "\nmore detail"})  # fmt: skip
        todos[todo] = {"score": score, "max_score": points, "failed": failed,
                       "passed": 1, "tests": 1 + len(failed)}  # fmt: skip
    return {"output": "Score.", "tests": tests, "todos": todos}


RESULTS = results_for(
    {
        "hw/calc.py#1": (3.0, 3.0, []),
        "hw/calc.py#2": (1.5, 3.0, ["clamp(5, 0, 1) should be 1 <not 5>"]),
        "hw/geom/area.py#1": (6.0, 6.0, []),
    }
)


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links, self.ids, self.scripts = [], [], set(), 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        if tag == "script":
            self.scripts += 1


def check_structure(page: Path) -> Links:
    """Every image and link of the page leads to a file beside it or an id on it."""
    parser = Links()
    parser.feed(page.read_text())
    for target in parser.images + parser.links:
        url = urlsplit(target)
        assert not url.scheme and not url.netloc, target
        if url.path:
            assert (page.parent / unquote(url.path)).is_file(), target
        if url.fragment:
            assert not url.path and url.fragment in parser.ids, target
    return parser


def write_page(tree, tmp_path, submission, name="alice.html"):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(RESULTS))
    out = tmp_path / "pages" / name
    result = run_tool("snippets", "--tree", tree, "--submission", submission, "--results",
                      results, "--out", out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out


def test_page_shows_images_answers_and_reasons(tree, tmp_path):
    out = write_page(tree, tmp_path, student(tree, tmp_path / "alice"))
    page = out.read_text()
    parser = check_structure(out)
    assert parser.scripts == 0 and "<script>alert" not in page and "onerror=alert" in page
    assert "&lt;script&gt;alert(&#x27;answers&#x27;)&lt;/script&gt;" in page
    assert "<b>non-saturating</b>" in page and "<li>first point</li>" in page
    assert "<p>Name: <b>Ada</b> Lovelace<br>\nUniqname: ada</p>" in page
    assert "<p><i>Why does the loss saturate?</i> GPU model: ______</p>" in page
    # each GAN part's setting in words; the handout's setting is not flagged
    assert "00001-dog-low_shot-r1-noaug/: config low_shot, 256x256, 4500 iterations" in page
    assert "class='flag'" not in page
    assert "<td>part 1</td><td>80</td>" in page
    # the newest grid of parts 1 and 2, with the flags line; part 3 and SDS at 100 missing
    assert page.count("fakes004500iter_trained") >= 2 and "fakes000100iter_trained" not in page
    assert "use_r1_regularization=True use_diffaug=False" in page
    assert "missing: no run with a sample grid for GAN part 3" in page
    assert "missing: 7 of the 10 images" in page
    assert "missing: no generated_progressive.png of this run" in page
    assert "broken.png is not an image that can be opened" in page
    # one line per lost point, the passing checks folded away
    assert "<li>clamp(5, 0, 1) should be 1 &lt;not 5&gt;</li>" in page
    assert page.count("<details>") == 3 and "1 of 2 checks passed (every verdict)" in page
    assert "<del>" in page or "<ins>" in page or "class='same'" in page
    # large images are thumbnails linked to their originals; small ones are shown as they are
    files = out.parent / "alice_files"
    thumbs = [p for p in files.iterdir() if p.suffix == ".jpg"]
    assert thumbs and all(max(Image.open(p).size) <= 1600 for p in thumbs)
    assert any(p.name.endswith("DDPM_generated_image0.png") for p in files.iterdir())
    assert len(parser.images) == 2 + 1 + 10 + 7 + 6 + 2


def test_zip_submission_gives_the_same_images(tree, tmp_path):
    folder = student(tree, tmp_path / "bob", ddim_images=12)
    archive = tmp_path / "bob.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                zf.write(file, "wrapper/" + file.relative_to(folder).as_posix())
    out = write_page(tree, tmp_path, archive, "bob.html")
    page = out.read_text()
    check_structure(out)
    assert "extra: 12 images, the handout asks for 10" in page
    assert page.count("<img ") == 2 + 1 + 10 + 12 + 6 + 2


def test_batch_index_has_parts_missing_images_and_sorting(tree, tmp_path):
    folder = tmp_path / "submissions"
    student(tree, folder / "alice")
    submission_from(tree, folder / "carol", {"hw/geom/area.py": None})
    (folder / "dave.zip").write_bytes(b"PK\x03\x04 broken")
    (folder / "erin.zip").symlink_to(tmp_path / "nowhere.zip")
    out = tmp_path / "reports"
    result = run_tool("snippets", "--tree", tree, "--submissions", folder, "--out", out)
    assert result.returncode == 0, result.stderr
    index = out / "index.html"
    text = index.read_text()
    check_structure(index)
    check_structure(out / "alice.html")
    assert "<th class='sort' title='hw: its TODOs'>hw</th>" in text
    assert (
        ">missing images</th>" in text and "<th class='sort' title='hw/calc.py#2: clamp'>" in text
    )
    # alice misses GAN part 3, 3 DDIM faces and SDS at 100, named on hover
    assert "<td data-v='3' title='GAN part 3 (R1 + DiffAug); DDIM faces; Task 6" in text
    assert "Not graded" in text and "erin.zip" in text
    assert "addEventListener" in text


def chromium_check(page: Path, tmp_path: Path) -> dict:
    """Opens a copy of the page in headless chromium; returns what a script on it saw: images
    that did not load and script errors."""
    probe = page.with_name("probe_" + page.name)
    watch = (
        "<script>window.seen=[];window.addEventListener('error',function(e){"
        "window.seen.push(String(e.message||(e.target&&e.target.src)))},true);</script>"
    )
    report = (
        "<script>window.addEventListener('load',function(){var bad=[];"
        "document.querySelectorAll('img').forEach(function(i){"
        "if(!(i.complete&&i.naturalWidth>0))bad.push(i.getAttribute('src'))});"
        "var p=document.createElement('pre');p.id='probe';p.textContent=JSON.stringify("
        "{images:document.images.length,broken:bad,errors:window.seen});"
        "document.body.appendChild(p)});</script>"
    )
    text = page.read_text().replace("<head>", "<head>" + watch, 1)
    probe.write_text(text.replace("</body>", report + "</body>"))
    command = [shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}",
               "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()]  # fmt: skip
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
    start = dom.index('<pre id="probe">') + len('<pre id="probe">')
    import html

    return json.loads(html.unescape(dom[start : dom.index("</pre>", start)]))


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_pages_load_in_a_browser(tree, tmp_path):
    folder = tmp_path / "submissions"
    student(tree, folder / "alice")
    out = tmp_path / "reports"
    result = run_tool("snippets", "--tree", tree, "--submissions", folder, "--out", out)
    assert result.returncode == 0, result.stderr
    seen = chromium_check(out / "alice.html", tmp_path)
    assert seen["images"] == 2 + 1 + 10 + 7 + 6 + 2 and seen["broken"] == [], seen
    assert seen["errors"] == [], seen
    seen = chromium_check(out / "index.html", tmp_path)
    assert seen["errors"] == [], seen


def test_markdown_page_names_images_and_keeps_answers_in_code(tree, tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(RESULTS))
    out = tmp_path / "alice.md"
    result = run_tool("snippets", "--tree", tree, "--submission", student(tree, tmp_path / "a"),
                      "--results", results, "--out", out, "--format", "md")  # fmt: skip
    assert result.returncode == 0, result.stderr
    page = out.read_text()
    assert "- DDIM faces: 7 in the submission; ` missing: 7 of the 10 images `" in page
    assert "## ` GAN_homework/answers.md `" in page and "```markdown\n# Answers" in page
    assert not (tmp_path / "alice_files").exists()


def test_gan_runs_show_their_setting_and_flag_what_is_not_the_handouts(tree, tmp_path):
    folder = tmp_path / "submissions"
    dest = student(tree, folder / "alice")
    runs = dest / "GAN_homework" / "training-runs"
    for name, flags, iters, grids in (
        ("00002-dog-tiny-nor1-noaug", "False False", 5000, (0,)),  # a rerun stopped at once
        ("00003-dog-tiny-r1-noaug", "True False", 40, (20, 40)),  # a short tiny run
    ):
        r1, aug = flags.split()
        options = {"cfg": "tiny", "config": {"name": "tiny", "resolution": 32}, "iters": iters}
        (runs / name).mkdir()
        (runs / name / "log.txt").write_text(
            f"use_r1_regularization={r1} use_diffaug={aug}\noptions: {json.dumps(options)}\n"
        )
        for grid in grids:
            png(runs / name / f"fakes{grid:06d}iter_trained.png", (128, 128), seed=grid)
    out = tmp_path / "reports"
    result = run_tool("snippets", "--tree", tree, "--submissions", folder, "--out", out)
    assert result.returncode == 0, result.stderr
    page = (out / "alice.html").read_text()
    part1, part2 = (
        page.split("id='img-gan2'")[0].split("id='img-gan1'")[1],
        page.split("id='img-gan2'")[1].split("id='img-gan3'")[0],
    )
    # part 1: the older run that trained is shown, not the newer one stopped at iteration 0
    assert "00000-dog-low_shot-nor1-noaug/fakes004500iter_trained.png" in part1
    assert "other runs of this part not shown: 00002-dog-tiny-nor1-noaug/" in part1
    assert "class='flag'" not in part1
    # part 2: the newest run that trained, its setting in words, and why it is flagged
    assert "00003-dog-tiny-r1-noaug/fakes000040iter_trained.png" in part2
    assert "00003-dog-tiny-r1-noaug/: config tiny, 32x32, 40 of 40 iterations" in part2
    flags = re.findall(r"<p class='flag'>check: (.*?)</p>", part2)
    assert len(flags) == 3, flags
    assert flags[0].startswith("not the handout&#x27;s setting") and "tiny" in flags[0]
    assert "32x32" in flags[0] and "40" in flags[0]
    assert flags[1] == (
        "another run of this part trained further: 00001-dog-low_shot-r1-noaug/ reached "
        "iteration 4500, the run shown 40"
    )
    assert flags[2] == "trained less than GAN part 1 (no regularization): iteration 40 against 4500"
    index = (out / "index.html").read_text()
    assert "<small class='flag'>3 to check</small>" in index


def test_the_course_s_own_images_are_not_extras(tree, tmp_path):
    png(tree / "hw" / "__asset__" / "course.png", seed=7)
    png(tree / "hw" / "__asset__" / "changed.png", seed=8)
    dest = submission_from(tree, tmp_path / "alice")
    png(dest / "hw" / "__asset__" / "changed.png", seed=9)
    png(dest / "hw" / "mine.png", seed=10)
    page = write_page(tree, tmp_path, dest).read_text()
    extras = page.split("Other images in the submission")[-1]
    assert "hw/mine.png" in extras and "hw/__asset__/changed.png" in extras
    assert "course.png" not in page


def test_markdown_subset_is_rendered_and_everything_else_escaped():
    from tools.report_html import markdown

    text = (
        "Name: A\nUniqname: b\n\n*x<b>y</b>* **`a*b*`** E_{z} and L_G _it_ 2 * 3 * 4\n"
        "[ok](https://e.org/?a=1&b=2) [no](javascript:alert(1)) ______\n\n"
        "> quoted *q*\n\n1.\n2. two\n- dash\n\n---\n"
    )
    assert markdown(text).split("\n") == [
        "<p>Name: A<br>",
        "Uniqname: b</p>",
        "<p><i>x&lt;b&gt;y&lt;/b&gt;</i> <b><code>a*b*</code></b> E_{z} and L_G <i>it</i> "
        "2 * 3 * 4<br>",
        "<a href='https://e.org/?a=1&amp;b=2'>ok</a> [no](javascript:alert(1)) ______</p>",
        "<blockquote><p>quoted <i>q</i></p></blockquote>",
        "<ol><li></li><li>two</li></ol>",
        "<ul><li>dash</li></ul>",
        "<hr>",
    ]
