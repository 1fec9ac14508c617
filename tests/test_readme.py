"""The README's results table is the reports' figures: regenerated, it is what the README holds;
and its first two commands are the runtime install + classify and the test install + tests."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_results_table_matches_the_reports():
    import readme_results

    text = (ROOT / "README.md").read_text()
    assert readme_results.rewrite(text, readme_results.table()) == text, \
        "stale: run python benchmarks/readme_results.py"
    block = text.split(readme_results.START)[1].split(readme_results.END)[0]
    assert "`default`" in block and "fer_int8.tflite" in block


def test_the_first_two_commands_install_and_classify_then_test():
    commands = re.findall(r"^    (python3 -m venv .*)$", (ROOT / "README.md").read_text(), re.M)
    assert commands[0].endswith("pip install . && .venv/bin/fer-edge classify "
                                "examples/astronaut.jpg")
    assert commands[1].endswith("pip install -e '.[test]' && .venv/bin/python -m pytest")
    # CI runs that command, the slow tests included (no -m "not slow")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip\" install -q -e '.[test]' && \"$venv/bin/python\" -m pytest -q" in ci
    assert "not slow" not in ci


def test_each_row_is_its_own_files_figures():
    import json

    import readme_results

    outside = json.loads(readme_results.OUTSIDE.read_text())["results"]
    block = (ROOT / "README.md").read_text().split(readme_results.START)[1]
    for line in block.splitlines():
        m = re.match(r"\| .* \| `(\w+_int8\.tflite)` \|", line)
        if m:
            cells = [c.strip() for c in line.strip("|").split("|")]
            ck = outside[f"models/{m.group(1)}"]["ckplus"]["score"]
            assert cells[6] == f"{ck:.1%}", line
