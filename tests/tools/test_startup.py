"""The tools' one start-up (tools/_startup.py): `python tools/<x>.py` works from any folder."""

import re

import pytest
from tool_helpers import TOOLS, run_tool

SCRIPTS = ("grade", "release", "snippets", "submit")


@pytest.mark.parametrize("tool", SCRIPTS)
@pytest.mark.parametrize("safe_path", ["", "1"], ids=["plain", "PYTHONSAFEPATH"])
def test_a_tool_starts_by_its_path_from_any_folder(tool, safe_path, tmp_path):
    (tmp_path / "tools").mkdir()  # a folder of the same name where the tool is started
    (tmp_path / "tools" / "__init__.py").write_text("raise SystemExit('the wrong tools')\n")
    result = run_tool(tool, "--help", cwd=tmp_path, env={"PYTHONSAFEPATH": safe_path})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {tool}.py ")


def test_every_tool_run_as_a_script_starts_through_the_one_helper():
    for path in sorted(TOOLS.glob("*.py")):
        text = path.read_text()
        if path.name != "_startup.py":
            assert "os.execve" not in text, path.name
        if re.search(r'^if __name__ == "__main__" and not __package__:', text, re.MULTILINE):
            assert "run_as_module(__file__)" in text, path.name
    for tool in SCRIPTS:
        assert "run_as_module(__file__)" in (TOOLS / f"{tool}.py").read_text(), tool
