"""The README's results table is the reports' figures: regenerated, it is what the README holds;
and its first two commands are the runtime install + classify and the test install + tests."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_every_measured_block_matches_the_reports():
    import readme_results

    text = (ROOT / "README.md").read_text()
    for name in readme_results.BLOCKS:          # each block is present exactly once
        assert text.count(readme_results.start(name)) == 1, name
        assert text.count(readme_results.end(name)) == 1, name
    assert readme_results.rewrite_all(text) == text, \
        "stale: run python benchmarks/readme_results.py"
    block = text.split(readme_results.START)[1].split(readme_results.END)[0]
    assert "`default`" in block and "fer_int8.tflite" in block
    assert "`facial-emotion-recognition`" in block and "`fer`" in block


def test_a_stale_figure_is_caught():
    import readme_results

    text = (ROOT / "README.md").read_text()
    detectors = text.split(readme_results.start("detectors"))[1].split("| `haar` |")[1]
    stale = text.replace("| `haar` |" + detectors.split("\n")[0], "| `haar` | 1 / 44 | 1 / 72 | 9.9 |")
    assert stale != text and readme_results.rewrite_all(stale) == text


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
    latency = json.loads(readme_results.PEER_LATENCY.read_text())
    block = (ROOT / "README.md").read_text().split(readme_results.START)[1]
    block = block.split(readme_results.END)[0]
    rows = 0
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        m = re.match(r"\| .* \| `(\w+_int8\.tflite)` \|", line)
        if m:
            ck = outside[f"models/{m.group(1)}"]["ckplus"]["score"]
            assert cells[6] == f"{ck:.1%}", line
            ratio = latency["ratio_to_fer"][f"models/{m.group(1)}"]
            assert cells[8] == f"{ratio:.2f}x", line
            rows += 1
        for key, (_, path) in readme_results.PEERS.items():
            if line.startswith(f"| `{key}` "):
                peer = json.loads(path.read_text())
                assert cells[4] == f"{peer['fer2013']['top1']:.1%}", line
                assert cells[5] == f"{peer['ferplus']['top1']:.1%}", line
                assert cells[7] == f"{peer['outside']['muxspace']['score']:.1%}", line
                ms = latency["p50_ms"]
                assert cells[8] == f"{ms[key] / ms['fer']:.2f}x", line
                rows += 1
    assert rows == 5


def _readme_commands() -> list[list[str]]:
    """Every `fer-edge ...` command of the README's code blocks, continuation lines joined,
    comments and shell redirections dropped."""
    import shlex

    lines, commands, pending = (ROOT / "README.md").read_text().splitlines(), [], ""
    for line in lines:
        if not line.startswith("    "):
            pending = ""
            continue
        text = pending + line.strip()
        if text.endswith("\\"):
            pending = text[:-1] + " "
            continue
        pending = ""
        for part in text.split("&&"):
            if part.strip().startswith(("fer-edge ", ".venv/bin/fer-edge ")):
                words = shlex.split(part, comments=True)
                cut = next((i for i, w in enumerate(words) if w in (">", "|", "2>")), None)
                commands.append(words[1:cut])
    return commands


def test_every_readme_command_is_a_valid_command_line():
    from fer_edge.cli import check_command_line, _command_of

    commands = _readme_commands()
    assert len(commands) >= 30
    seen = set()
    for argv in commands:
        found = _command_of(argv)
        assert found is not None, argv          # a command that exists
        seen.add(found[1])
        check_command_line(argv)                # every option known, switches without values
    assert {"train", "export", "evaluate", "classify", "serve", "batch", "models list",
            "data info"} <= seen, seen
