"""Every command of every tutorial chapter runs, and its outcome is the one the text claims.

A chapter marks a command with `<!-- tutorial -->` before a ```sh block and states the outcome right after it:
`<!-- expect exit=0 contains="..." contains="..." -->`.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "docs" / "tutorial").glob("[0-9][0-9]-*.md"))
BLOCK = re.compile(r"<!-- tutorial -->\s*```sh\n(?P<command>.*?)```\s*<!-- expect (?P<expect>.*?)-->", re.S)


def commands(chapter: Path) -> list[tuple[str, int, list[str]]]:
    found = []
    for match in BLOCK.finditer(chapter.read_text()):
        expect = match["expect"]
        code = int(re.search(r"exit=(\d+)", expect).group(1))  # type: ignore[union-attr]
        found.append((match["command"].strip(), code, re.findall(r'contains="([^"]*)"', expect)))
    return found


def test_every_chapter_has_commands_with_claims() -> None:
    assert len(CHAPTERS) == 6
    for chapter in CHAPTERS:
        assert commands(chapter), f"{chapter.name} has no runnable command"
        assert "## Predict" in chapter.read_text(), f"{chapter.name} does not ask for a prediction"


CASES = [(chapter.name, command, code, claims) for chapter in CHAPTERS for command, code, claims in commands(chapter)]


@pytest.mark.parametrize(("chapter", "command", "code", "claims"), CASES,
                         ids=[f"{c[0]}:{i}" for i, c in enumerate(CASES)])
def test_tutorial_command(chapter: str, command: str, code: int, claims: list[str], tmp_path: Path) -> None:
    command = command.replace("shardsim run ", f"shardsim run --runs-dir {tmp_path} ", 1)
    command = command.replace("shardsim demo", f"shardsim demo --out {tmp_path}", 1)
    command = command.replace("shardsim replay ", f"shardsim replay --runs-dir {tmp_path} ", 1)
    command = command.replace("shardsim explore ", f"shardsim explore --runs-dir {tmp_path} --found-dir "
                                                   f"{tmp_path / 'found'} ", 1)
    result = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=240,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert result.returncode == code, f"{chapter}: `{command}` exited {result.returncode}\n{output[-4000:]}"
    for claim in claims:
        assert claim in output, f"{chapter}: `{command}` did not print {claim!r}\n{output[-4000:]}"
