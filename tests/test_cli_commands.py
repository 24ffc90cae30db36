"""The ``toolauth`` commands run in this process (``toolauth.cli.main(argv)``) on a real
SQLite store in a temporary home: what each prints, stores and answers on a mistake.
``tests/test_cli.py`` runs the installed command in subprocesses (the entry point, signals,
exit codes seen by a shell); these cover the commands' own work, quickly."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from toolauth._crypto import generate_key
from toolauth.cli import main


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean ``TOOLAUTH_*`` environment whose home is a fresh folder."""
    for name in list(os.environ):
        if name.startswith("TOOLAUTH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TOOLAUTH_HOME", str(tmp_path / "home"))
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def acme(**changes: object) -> str:
    return json.dumps({
        "slug": "acme", "name": "Acme", "description": "An API.",
        "api_base_url": "https://acme.test", "auth_schemes": {"NO_AUTH": {}}, **changes,
    })  # fmt: skip


def test_a_definition_file_is_stored_shown_listed_and_removed(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = home / "acme.json"
    file.write_text(acme(), encoding="utf-8")
    assert run(capsys, "toolkits", "add", str(file))[:2] == (
        0, "Stored toolkit acme version 1; every process of the deployment uses it now.\n"
    )  # fmt: skip
    file.write_text(acme(name="Acme 2"), encoding="utf-8")
    code, _, err = run(capsys, "toolkits", "add", str(file))
    assert code == 1 and "replace=True" in err and "Traceback" not in err
    code, out, _ = run(capsys, "toolkits", "add", str(file), "--replace")
    assert code == 0 and "version 2" in out
    code, out, _ = run(capsys, "toolkits", "show", "acme")
    assert code == 0 and json.loads(out)["name"] == "Acme 2"
    code, out, _ = run(capsys, "toolkits")
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert lines["acme"].split()[-2:] == ["file", "NO_AUTH"] and " builtin " in lines["github"]
    code, _, err = run(capsys, "toolkits", "remove", "github")
    assert code == 1 and "github" in err
    assert run(capsys, "toolkits", "remove", "acme")[:2] == (
        0, "Removed toolkit acme from every process.\n"
    )  # fmt: skip
    code, _, err = run(capsys, "toolkits", "show", "acme")
    assert code == 1 and "Unknown toolkit 'acme'" in err


def test_a_file_that_cannot_be_read_or_is_not_a_toolkit_is_one_line(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "toolkits", "add", str(home / "missing.json"))
    assert (code, out) == (1, "") and err.startswith("toolauth: Cannot read")
    bad = home / "bad.json"
    bad.write_text('{"slug": "acme"}', encoding="utf-8")
    code, _, err = run(capsys, "toolkits", "add", str(bad))
    assert code == 1 and str(bad) in err and err.count("\n") == 1


def test_schema_generate_migrate_and_rotate(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(capsys, "toolkits", "schema")
    assert code == 0 and "auth_schemes" in json.loads(out)["properties"]
    code, key, _ = run(capsys, "keys", "generate")
    monkeypatch.setenv("TOOLAUTH_ENCRYPTION_KEY", key.strip())
    code, out, _ = run(capsys, "migrate")
    assert code == 0 and "is at schema version" in out
    file = home / "acme.json"
    file.write_text(acme(), encoding="utf-8")
    run(capsys, "toolkits", "add", str(file))
    monkeypatch.setenv("TOOLAUTH_ENCRYPTION_KEY", f"{generate_key()},{key.strip()}")
    code, out, _ = run(capsys, "keys", "rotate")
    assert code == 0 and "Re-encrypted 1 row(s)" in out  # the stored toolkit's MAC
    code, out, _ = run(capsys, "toolkits", "show", "acme")
    assert code == 0 and json.loads(out)["slug"] == "acme"


def test_webhooks_and_the_audit_log(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(
        capsys, "webhooks", "create", "https://hooks.example.com/t", "--events",
        "connection.active",
    )  # fmt: skip
    assert code == 0 and "whsec_" in out
    made = out.split()[1]
    code, out, _ = run(capsys, "webhooks")
    assert made in out and "https://hooks.example.com/t connection.active" in out
    assert "whsec_" not in out  # the secret is shown once
    code, _, err = run(capsys, "webhooks", "create", "http://127.0.0.1:1/x")
    assert code == 1 and err.startswith("toolauth: url must use https")
    assert run(capsys, "webhooks", "delete", made)[:2] == (0, f"Deleted {made}.\n")
    assert run(capsys, "webhooks")[1] == "No webhook endpoints.\n"
    assert run(capsys, "audit", "--user", "nobody")[1] == "No audit entries.\n"
    code, out, _ = run(capsys, "audit", "prune", "--days", "1")
    assert code == 0 and out.startswith("Pruned 0 audit")
