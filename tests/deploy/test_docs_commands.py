"""The README and docs/ call the lauks command one way (``.venv/bin/lauks``, which needs no activated venv), and
every command they show parses with the real command line, so a renamed option shows up here."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from stack.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
HOST_LAUKS = ".venv/bin/lauks"
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
_INLINE = re.compile(r"`([^`\n]+)`")
# `lauks` where a shell would run it: first on a line or after ; && || | $( (after any VAR=value words)
_AT_COMMAND = re.compile(r"(?:^|[;&|(]\s*)(?:[A-Z_]+=\S+\s+)*(?P<program>\S*lauks)\s+(?P<rest>[^;&|)#]*)")


def _commands(text: str) -> list[tuple[str, str]]:
    """(program, arguments) of every lauks command shown: each line of a code block, and inline code that
    gives options or arguments (`lauks kit add` alone is the command's name, not a command to type)."""
    found = []
    fenced = _FENCE.findall(text)
    lines = [line for block in fenced for line in block.replace("\\\n", " ").splitlines()]
    prose = _FENCE.sub("", text)
    lines += [span for span in _INLINE.findall(prose) if " / " not in span  # "kit add / flash": names
              and (re.search(r"\s(--|<)", span) or len(span.split()) >= 4 or re.match(r"[A-Z_]+=", span))]
    for line in lines:
        line = re.sub(r"docker compose (exec|run --rm) (\S+) lauks", "", line)  # the image's lauks, on its PATH
        for match in _AT_COMMAND.finditer(line.strip()):
            if match["program"].endswith("/lauks") or match["program"] == "lauks":
                found.append((match["program"], match["rest"].strip()))
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_the_docs_call_the_lauks_command_one_way(doc: Path) -> None:
    text = doc.read_text()
    wrong = [f"{program} {rest}" for program, rest in _commands(text) if program != HOST_LAUKS]
    assert wrong == [], f"{doc.name}: write {HOST_LAUKS} (README, 'The two commands')"
    assert "-m lauks" not in text  # the command left the foundation: python -m stack, for child processes


def test_the_check_finds_commands_in_code_blocks_and_inline_but_not_names() -> None:
    text = ("Run `lauks up` or `lauks kit add / flash`; `lauks kit revoke s k` and\n"
            "```sh\nLAUKS_STATE_DIR=x lauks broker users && .venv/bin/lauks kit list s  # list\n"
            "docker compose exec api lauks token create --name a\n```\n")
    assert _commands(text) == [("lauks", "broker users"), (".venv/bin/lauks", "kit list s"),
                               ("lauks", "kit revoke s k")]


def test_every_lauks_command_in_the_docs_parses(capsys: pytest.CaptureFixture[str]) -> None:
    parser, _ = build_parser()
    shown = 0
    for doc in DOCS:
        text = doc.read_text()
        docker = re.findall(r"docker compose (?:exec|run --rm) \S+ lauks ([^\n#`]*)", text.replace("\\\n", " "))
        for rest in [r for _, r in _commands(text)] + [r for r in docker if not r.startswith("...")]:
            # placeholders (<site>; <id> and <number> for a number) stand for a word, optional parts
            # ([--speedup 60]) are left out
            rest = re.sub(r"<(id|number|n)>", "1", re.sub(r"\[[^]]*\]", "", rest))
            words = shlex.split(re.sub(r"<[^>]*>", "x", rest).replace("...", "x"))
            if not words:
                continue
            shown += 1
            try:
                parser.parse_args(words)
            except SystemExit:
                pytest.fail(f"{doc.name}: `lauks {rest}` does not parse: {capsys.readouterr().err}")
    assert shown > 20
