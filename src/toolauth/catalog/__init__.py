"""The toolkit catalog: the shipped definitions in ``toolkits/*.json`` plus the ones a user
registers at run time, validated with the same schema."""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pydantic

from .._exceptions import CatalogError, ConfigurationError
from .schema import (
    ApiKeySchemeSpec,
    CredentialField,
    CredentialPlacement,
    McpServerSpec,
    McpToolSpec,
    NoAuthSchemeSpec,
    OAuth2SchemeSpec,
    TestRequest,
    ToolkitDefinition,
)

__all__ = [
    "ApiKeySchemeSpec",
    "Catalog",
    "CredentialField",
    "CredentialPlacement",
    "McpServerSpec",
    "McpToolSpec",
    "NoAuthSchemeSpec",
    "OAuth2SchemeSpec",
    "TestRequest",
    "ToolkitDefinition",
    "load_definition",
]


def _describe(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p not in ("oauth2", "key")) or "(top level)"
        parts.append(f"field {loc}: {err['msg']}")
    return "; ".join(parts)


def load_definition(data: Mapping[str, Any] | str | bytes, *, source: str) -> ToolkitDefinition:
    """Validate one definition (a mapping or JSON text); errors name ``source`` and the field."""
    try:
        if isinstance(data, (str, bytes)):
            data = json.loads(data)
        return ToolkitDefinition.model_validate(data)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{source}: not valid JSON: {exc}", source=source) from None
    except pydantic.ValidationError as exc:
        raise CatalogError(f"{source}: {_describe(exc)}", source=source) from None


def _shipped_files() -> Iterable[tuple[str, bytes]]:
    folder = resources.files(__package__).joinpath("toolkits")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            yield f"toolauth/catalog/toolkits/{entry.name}", entry.read_bytes()


class Catalog:
    """The toolkits a deployment knows, by slug.

    ```python
    catalog = Catalog()              # the shipped definitions
    catalog.get("github").name       # 'GitHub'
    catalog.register({...})          # one of your own, same schema
    ```
    """

    def __init__(self, *, extra_dirs: Iterable[str | Path] = ()) -> None:
        self._toolkits: dict[str, ToolkitDefinition] = {}
        for source, raw in _shipped_files():
            self._add(load_definition(raw, source=source), source=source)
        for folder in extra_dirs:
            for path in sorted(Path(folder).glob("*.json")):
                self._add(load_definition(path.read_bytes(), source=str(path)), source=str(path))

    def _add(self, definition: ToolkitDefinition, *, source: str, replace: bool = False) -> None:
        if not replace and definition.slug in self._toolkits:
            raise CatalogError(
                f"{source}: toolkit {definition.slug!r} is already in the catalog; "
                "pass replace=True to override it",
                source=source,
            )
        self._toolkits[definition.slug] = definition

    def register(
        self, definition: ToolkitDefinition | Mapping[str, Any], *, replace: bool = False
    ) -> ToolkitDefinition:
        """Add a toolkit (a definition or a mapping in the data-file schema) and return it."""
        if not isinstance(definition, ToolkitDefinition):
            definition = load_definition(definition, source="register()")
        self._add(definition, source="register()", replace=replace)
        return definition

    def get(self, slug: str) -> ToolkitDefinition:
        """The toolkit ``slug``; an unknown slug raises an error that lists the known ones."""
        try:
            return self._toolkits[slug.lower()]
        except KeyError:
            known = ", ".join(sorted(self._toolkits))
            raise ConfigurationError(
                f"Unknown toolkit {slug!r}. Known toolkits: {known}. "
                "Add one with ta.toolkits.register(...)."
            ) from None

    def list(self, *, category: str | None = None) -> list[ToolkitDefinition]:
        """Every toolkit, sorted by slug; only one ``category`` when given."""
        found = sorted(self._toolkits.values(), key=lambda d: d.slug)
        if category is not None:
            found = [d for d in found if category in d.categories]
        return found

    def slugs(self) -> builtins.list[str]:
        return sorted(self._toolkits)

    def __contains__(self, slug: object) -> bool:
        return isinstance(slug, str) and slug.lower() in self._toolkits

    def __len__(self) -> int:
        return len(self._toolkits)
