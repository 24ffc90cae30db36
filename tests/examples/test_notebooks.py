"""The notebooks run end to end in a real kernel (nbclient); a scripted browser in a
background thread of the kernel plays the user (``TOOLAUTH_NOTEBOOK_AUTO=1``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"


def _execute(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    for var in [v for v in os.environ if v.startswith("TOOLAUTH_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("TOOLAUTH_NOTEBOOK_AUTO", "1")
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        notebook, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    return notebook


def _text(notebook: nbformat.NotebookNode) -> str:
    """Everything the notebook showed: streams, results and rich displays."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            for value in output.get("data", {}).values():
                parts.append(value if isinstance(value, str) else json.dumps(value))
    return "\n".join(parts)


@pytest.mark.parametrize("name", ["quickstart.ipynb", "in_chat_auth.ipynb"])
def test_notebooks_are_committed_without_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)


@pytest.mark.slow
def test_quickstart_connects_waits_and_calls_a_tool(tmp_path, monkeypatch):
    shown = _text(_execute("quickstart.ipynb", tmp_path, monkeypatch))
    assert ">Connect Demo</a>" in shown and "/link/ln_" in shown
    assert " ACTIVE" in shown
    assert "DEMO_LIST_ITEMS" in shown
    assert "Follow the white rabbit" in shown and "Have tea with the Hatter" in shown
    assert "access_token" not in shown


@pytest.mark.slow
def test_in_chat_auth_cell_continues_once_connected(tmp_path, monkeypatch):
    notebook = _execute("in_chat_auth.ipynb", tmp_path, monkeypatch)
    shown = _text(notebook)
    # The button was replaced in place by the "connected" line once the meta tool returned.
    assert "✓ Demo connected" in shown and ">Connect Demo</a>" not in shown
    first_chat = next(c for c in notebook.cells if c.source == 'await chat("list my items")')
    said = _text(nbformat.from_dict({"cells": [first_chat]}))
    assert "→ DEMO_LIST_ITEMS" in said and "→ COMPOSIO_MANAGE_CONNECTIONS" in said
    assert "You have 2 item(s) on Demo" in said
    assert "Created the item “Paint the roses red”" in shown
    assert "You have 3 item(s) on Demo" in shown
