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
    assert commands[1].endswith("""pip install -e '.[test]' && .venv/bin/python -m pytest -m "not slow\"""")
