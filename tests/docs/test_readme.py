"""Every ```python block of README.md runs, offline, against the demo provider on loopback.

How blocks run:

- Each block is a program of its own, run in a fresh subprocess (``python -c RUNNER``) whose
  working directory is an empty temporary folder (so ``AsyncToolAuth()`` keeps its data in
  ``./.toolauth`` there, as the README says).
- A block preceded by ``<!-- continues: previous -->`` is appended to the program before it
  (skipping programs marked ``<!-- standalone -->``, which run alone in the middle of a chain):
  they run as one program in one subprocess, in one namespace, as they would one after
  another in a notebook or in ``python -m asyncio``. A block may therefore use top-level
  ``await``: RUNNER compiles with ``PyCF_ALLOW_TOP_LEVEL_AWAIT`` and runs the result on an
  event loop.
- The environment holds only what the README's configuration table names: the managed GitHub
  app (``TOOLAUTH_GITHUB_CLIENT_ID`` / ``_SECRET``), ``TOOLAUTH_GITHUB_API_BASE_URL`` and the
  demo provider's URL. The ``github`` toolkit is pointed at the local demo provider the way
  ``toolauth demo`` does it: RUNNER registers ``simulated_github_toolkit()`` in every client's
  catalog; its API is a loopback fake of GitHub's. ``HTTPS_PROXY``/``HTTP_PROXY`` point at a
  closed loopback port (loopback is in ``NO_PROXY``), so nothing can leave the machine.
- The test plays the user: every connect link a program prints (``.../link/ln_...``) is opened
  by the scripted browser (``complete_oauth``: sign in as alice, Allow) in a thread.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from toolauth.connect.serving import serve_app_in_thread
from toolauth.demo.browser import complete_oauth
from toolauth.demo.github import create_fake_github
from toolauth.demo.local import (
    GITHUB_CLIENT_ID,
    GITHUB_CLIENT_SECRET,
    LocalProvider,
    local_provider_in_thread,
    oauth_environ,
    register_clients,
)

README = Path(__file__).resolve().parents[2] / "README.md"
CONTINUES = "<!-- continues: previous -->"
STANDALONE = "<!-- standalone -->"
LINK = re.compile(r"(http://127\.0\.0\.1:\d+)/link/ln_[A-Za-z0-9_-]+")

RUNNER = """
import ast, asyncio, sys, types
from toolauth.catalog import Catalog
from toolauth.demo.github import simulated_github_toolkit

_init = Catalog.__init__
def _with_simulated_github(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self.register(simulated_github_toolkit(), replace=True)
Catalog.__init__ = _with_simulated_github

source = sys.stdin.read()
code = compile(source, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
namespace = {"__name__": "__main__"}
result = eval(code, namespace)
if isinstance(result, types.CoroutineType):
    asyncio.run(result)
"""


@dataclass
class Program:
    line: int  # where its first block starts in README.md
    code: str


def programs(text: str) -> list[Program]:
    found: list[Program] = []
    chain: Program | None = None  # the program a continuing block joins
    for match in re.finditer(r"^```python\n(.*?)^```$", text, re.S | re.M):
        before = text[: match.start()].rstrip().splitlines()
        line = text[: match.start()].count("\n") + 1
        marker = before[-1].strip() if before else ""
        if marker == CONTINUES:
            assert chain is not None, f"README.md:{line}: nothing before to continue"
            chain.code += "\n" + match.group(1)
        else:
            found.append(Program(line, match.group(1)))
            if marker != STANDALONE:
                chain = found[-1]
    return found


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Loopback:
    demo: LocalProvider
    env: dict[str, str]


@pytest.fixture(scope="module")
def loopback() -> Iterator[Loopback]:
    with (
        local_provider_in_thread() as demo,
        serve_app_in_thread(create_fake_github(demo.provider)) as fake_github,
    ):
        proxy = f"http://127.0.0.1:{closed_port()}"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TOOLAUTH_")},
            **oauth_environ(),
            "TOOLAUTH_DEMO_PROVIDER_URL": demo.url,
            "TOOLAUTH_GITHUB_CLIENT_ID": GITHUB_CLIENT_ID,
            "TOOLAUTH_GITHUB_CLIENT_SECRET": GITHUB_CLIENT_SECRET,
            "TOOLAUTH_GITHUB_API_BASE_URL": fake_github,
            "HTTPS_PROXY": proxy,
            "HTTP_PROXY": proxy,
            "NO_PROXY": "127.0.0.1,localhost",
        }
        yield Loopback(demo, env)


def run_program(program: Program, loopback: Loopback, cwd: Path) -> str:
    """Run one program; open every connect link it prints as the user would."""
    process = subprocess.Popen(
        [sys.executable, "-c", RUNNER], cwd=cwd, env=loopback.env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(program.code)
    process.stdin.close()
    output: list[str] = []
    users: list[threading.Thread] = []
    opened: set[str] = set()
    for line in process.stdout:
        output.append(line)
        for found in LINK.finditer(line):
            if found.group(0) in opened:
                continue
            opened.add(found.group(0))
            register_clients(loopback.demo.provider, found.group(1))
            user = threading.Thread(target=play_user, args=(found.group(0),), daemon=True)
            user.start()
            users.append(user)
    process.wait(60)
    process.stdout.close()
    for user in users:
        user.join(30)
    text = "".join(output)
    assert process.returncode == 0, f"README.md:{program.line}: the block failed:\n{text}"
    return text


def play_user(link: str) -> None:
    # The last redirect goes to the app's own page (callback_url), which is not running here.
    with contextlib.suppress(httpx.HTTPError):
        complete_oauth(link)


ALL = programs(README.read_text(encoding="utf-8"))


def test_the_readme_has_python_blocks():
    assert len(ALL) >= 3  # the first example, the continuing chain, the mounted app


@pytest.mark.slow
@pytest.mark.parametrize("program", ALL, ids=[f"line{p.line}" for p in ALL])
def test_readme_block_runs(program: Program, loopback: Loopback, tmp_path: Path):
    run_program(program, loopback, tmp_path)
