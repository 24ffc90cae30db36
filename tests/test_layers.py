"""The package's runtime imports form no cycle, and point down the layers of ARCHITECTURE.

The graph is read from the source: every ``import`` and ``from … import`` of a toolauth module,
at module level or inside a function, except under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import toolauth

PACKAGE = Path(toolauth.__file__).parent

# Each layer may import its own modules and those of the layers listed after it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("cli", ("toolauth.cli", "toolauth.__main__", "toolauth.demo")),
    ("langchain", ("toolauth.langchain",)),
    ("client", ("toolauth._client", "toolauth._sync", "toolauth")),
    ("connect", ("toolauth.connect",)),
    ("tools", ("toolauth.tools",)),
    ("mcp", ("toolauth.mcp",)),  # remote MCP servers as toolkits: beside tools
    ("resources", ("toolauth.resources",)),
    ("auth", ("toolauth.auth",)),
    ("oauth", ("toolauth.oauth",)),
    ("store", ("toolauth.store",)),
    ("catalog", ("toolauth.catalog",)),
    ("events", ("toolauth.events", "toolauth.webhooks")),
    ("models", ("toolauth._",)),  # _models, _exceptions, _settings, _crypto, _loop, …
]


# The one import that points up, each with its reason.
UPWARD = {
    # `session.tools()` is the public door to the LangChain integration; it loads it on first
    # use (langchain-core is heavy) and that layer never imports sessions at run time.
    ("toolauth.resources.sessions", "toolauth.langchain"),
}


def module_name(path: Path) -> str:
    parts = ["toolauth", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(path: Path) -> set[str]:
    """The toolauth modules ``path`` imports when it runs (not for type checking)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("toolauth"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.startswith("toolauth"):
                found.add(target)
                # `from . import x` may import the submodule x
                for alias in node.names:
                    if (
                        (PACKAGE.parent / Path(*f"{target}.{alias.name}".split(".")))
                        .with_suffix(".py")
                        .exists()
                    ):
                        found.add(f"{target}.{alias.name}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in runtime_imports(p) if m in modules} for name, p in modules.items()}


def layer_of(module: str) -> int:
    best, index = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = (
                module == prefix
                or module.startswith(prefix + ".")
                or (prefix.endswith("_") and module.startswith(prefix))
            )
            if matches and len(prefix) > best:
                best, index = len(prefix), i
    assert index >= 0, f"{module} is in no layer"
    return index


def test_runtime_imports_have_no_cycle() -> None:
    graph = import_graph()
    done: set[str] = set()
    path: list[str] = []

    def walk(node: str) -> None:
        if node in path:
            cycle = [*path[path.index(node) :], node]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if node in done:
            return
        path.append(node)
        for target in sorted(graph[node]):
            walk(target)
        path.pop()
        done.add(node)

    for module in sorted(graph):
        walk(module)


def test_imports_point_down_the_layers() -> None:
    upward = sorted(
        f"{source} ({LAYERS[layer_of(source)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for source, targets in import_graph().items()
        for target in targets
        if layer_of(target) < layer_of(source)
        and target != "toolauth"
        and (source, target) not in UPWARD
    )
    assert upward == []


def test_the_graph_sees_imports_inside_functions() -> None:
    """The walker itself: a lazy import in a function body counts; a TYPE_CHECKING one not."""
    client = runtime_imports(PACKAGE / "_client.py")
    assert "toolauth.connect.flow" in client  # imported inside `connect_flow`
    sessions = runtime_imports(PACKAGE / "resources" / "sessions.py")
    assert "toolauth.tools" not in sessions  # only under TYPE_CHECKING
