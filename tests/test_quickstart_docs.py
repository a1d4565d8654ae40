"""The README's Quickstart block is two command lines, and .ci/run runs the second one verbatim."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def quickstart_lines():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Quickstart\n", 1)[1]
    block = re.search(r"```[a-z]*\n(.*?)```", section, re.DOTALL).group(1)
    return block.rstrip("\n").split("\n")


def test_quickstart_is_two_command_lines():
    lines = quickstart_lines()
    assert len(lines) == 2
    assert all(line.strip() and not line.lstrip().startswith("#") for line in lines)
    assert "simple_video_sample.py" in lines[0] and "--version toy_svd" in lines[0]
    assert "pytest" in lines[1]
    image = re.search(r"--input_path (\S+)", lines[0]).group(1)
    for path in (image, "sgm/checkpoints/toy_svd.safetensors", "scripts/sampling/configs/toy_svd.yaml", "requirements.txt", "setup.py"):
        assert (REPO / path).is_file(), path


def test_ci_runs_quickstart_line_two_verbatim():
    ci_lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert quickstart_lines()[1] in ci_lines
    assert "set -euo pipefail" in ci_lines
