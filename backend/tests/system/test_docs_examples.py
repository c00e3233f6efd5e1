"""The curl examples of README.md and docs/*.md, run against a real server.

An example is a fenced block with `$ ` command lines, at least one of them a curl to
`localhost:8000`; the lines up to the next command are what that command prints. Each
page's examples run in order, in one bash, against a fresh app on a fresh SQLite file,
started the way the pages say: `ADMIN_TOKEN=change-me` and no API key (answers are
resume excerpts). A page whose examples need other settings says so in a comment,
`<!-- examples run with: NAME=value ... -->`. What a command prints must match what the
page shows, where `...` stands for anything and ids, times, cursors and latencies may
differ.
"""

import asyncio
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.core.config import Settings
from tests.support.app import running_app

REPO = Path(__file__).resolve().parents[3]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
DEFAULT_SETTINGS = {"admin_token": "change-me"}
SETTINGS_COMMENT = re.compile(r"<!--\s*examples run with:(.*?)-->", re.DOTALL)
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
END = "__example_done__"

# What may differ between the page and today's server: (pattern, what it stands for).
VOLATILE = [
    (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?", "<time>"),
    (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", "<time>"),
    (r"\d{4}-\d{2}-\d{2}", "<date>"),
    (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>"),
    (r'"next_cursor":"[^"]+"', '"next_cursor":"<cursor>"'),
    (r'"(latency_ms|first_token_ms)":\d+', r'"\1":<ms>'),
]

pytestmark = pytest.mark.skipif(
    not (shutil.which("bash") and shutil.which("curl")), reason="needs bash and curl"
)


@dataclass
class Example:
    command: str
    shown: str
    line: int


def examples(page: Path) -> Iterator[Example]:
    text = page.read_text()
    for block in FENCE.finditer(text):
        body = block.group(1)
        if not re.search(r"^\$ .*curl .*localhost:8000", body, re.MULTILINE):
            continue
        first_line = text.count("\n", 0, block.start(1)) + 1
        yield from _commands(body, first_line)


def _commands(body: str, first_line: int) -> Iterator[Example]:
    """`$ ` lines (with their `\\` continuations), each with the lines it prints."""
    lines = body.rstrip("\n").split("\n")
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            i += 1
            continue
        start = i
        command = [lines[i][2:]]
        while command[-1].endswith("\\") and i + 1 < len(lines):
            i += 1
            command.append(lines[i])
        i += 1
        shown = []
        while i < len(lines) and not lines[i].startswith("$ "):
            shown.append(lines[i])
            i += 1
        yield Example("\n".join(command), "\n".join(shown), first_line + start)


def page_settings(page: Path) -> dict[str, str]:
    found = SETTINGS_COMMENT.search(page.read_text())
    if not found:
        return DEFAULT_SETTINGS
    pairs = (item.split("=", 1) for item in found.group(1).split())
    return {name.lower(): value for name, value in pairs}


def canonical(output: str) -> str:
    output = output.replace("\r\n", "\n").rstrip()
    for pattern, placeholder in VOLATILE:
        output = re.sub(pattern, placeholder, output)
    return output


def matches(shown: str, actual: str) -> bool:
    parts = canonical(shown).split("...")
    return re.fullmatch(".*?".join(map(re.escape, parts)), canonical(actual), re.DOTALL) is not None


class Shell:
    """One bash, so that variables set by one example (`SESSION=...`) serve the next."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def run(self, command: str) -> str:
        assert self.process.stdin
        assert self.process.stdout
        self.process.stdin.write(f"{command}\nprintf '\\n{END}\\n'\n".encode())
        await self.process.stdin.drain()
        output = await asyncio.wait_for(self.process.stdout.readuntil(f"{END}\n".encode()), 30)
        return output.decode()[: -len(END) - 1]


PAGES_WITH_EXAMPLES = [page for page in PAGES if any(examples(page))]


def test_the_pages_have_examples_to_check() -> None:
    names = {page.relative_to(REPO).as_posix() for page in PAGES_WITH_EXAMPLES}
    assert {"README.md", "docs/rest-api.md", "docs/operations.md"} <= names


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES, ids=lambda p: p.relative_to(REPO).as_posix())
async def test_curl_examples_print_what_the_page_shows(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = {name.upper() for name in Settings.model_fields} | {"RATE_LIMIT_KEY_PREFIX"}
    for name in [name for name in os.environ if name.upper() in ours]:
        monkeypatch.delenv(name)  # the pages' server has no settings but theirs
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'docs.db'}",
        **page_settings(page),  # type: ignore[arg-type]
    )
    work = tmp_path / "cwd"
    work.mkdir()
    async with running_app(settings) as port:
        process = await asyncio.create_subprocess_exec(
            "bash", "--noprofile", "--norc", cwd=work,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            shell = Shell(process)
            for example in examples(page):
                command = example.command.replace("localhost:8000", f"127.0.0.1:{port}")
                actual = await shell.run(command)
                assert matches(example.shown, actual), (
                    f"{page.name} line {example.line}: {example.command}\n"
                    f"--- the page shows:\n{example.shown}\n--- the server printed:\n{actual}"
                )
        finally:
            process.kill()
            await process.wait()
