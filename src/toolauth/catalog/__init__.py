"""The toolkit catalog: the shipped definitions in ``toolkits/*.json`` plus the ones a user
registers at run time, validated with the same schema."""

from __future__ import annotations

import builtins
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pydantic

from .._exceptions import CatalogError, ConfigurationError
from .schema import (
    ApiKeySchemeSpec,
    CredentialField,
    CredentialPlacement,
    IdentitySpec,
    McpServerSpec,
    McpToolSpec,
    NoAuthSchemeSpec,
    OAuth2SchemeSpec,
    TestRequest,
    ToolkitDefinition,
    ToolkitSource,
)

__all__ = [
    "ApiKeySchemeSpec",
    "Catalog",
    "CredentialField",
    "CredentialPlacement",
    "IdentitySpec",
    "McpServerSpec",
    "McpToolSpec",
    "NoAuthSchemeSpec",
    "OAuth2SchemeSpec",
    "TestRequest",
    "ToolkitDefinition",
    "ToolkitSource",
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


Loader = Callable[[str], Awaitable[None]]


class Catalog:
    """The toolkits a deployment knows, by slug.

    Four layers, the later winning: the shipped definitions, the files of ``extra_dirs``
    (``TOOLAUTH_TOOLKITS_DIR``), the definitions stored in the database (kept in step by
    ``ta.toolkits``, shared by every process) and the ones :meth:`register` adds to this
    catalog object only.

    ```python
    catalog = Catalog()              # the shipped definitions
    catalog.get("github").name       # 'GitHub'
    catalog.register({...})          # one of your own, same schema, this catalog only
    ```
    """

    def __init__(self, *, extra_dirs: Iterable[str | Path] = ()) -> None:
        self._fixed: dict[str, tuple[ToolkitDefinition, str]] = {}
        self._stored: dict[str, tuple[ToolkitDefinition, str, int]] = {}
        self._local: dict[str, ToolkitDefinition] = {}
        self._broken: dict[str, str] = {}
        self._toolkits: dict[str, ToolkitDefinition] = {}
        self._loader: Loader | None = None
        for source, raw in _shipped_files():
            self._add_fixed(load_definition(raw, source=source), source)
        for folder in extra_dirs:
            if not Path(folder).is_dir():
                raise CatalogError(
                    f"{folder}: the toolkits folder (TOOLAUTH_TOOLKITS_DIR) does not exist or "
                    "is not a folder; create it or unset the variable.",
                    source=str(folder),
                )
            for path in sorted(Path(folder).glob("*.json")):
                self._add_fixed(load_definition(path.read_bytes(), source=str(path)), str(path))
        self._rebuild()

    def _add_fixed(self, definition: ToolkitDefinition, source: str) -> None:
        if definition.slug in self._fixed:
            raise CatalogError(
                f"{source}: toolkit {definition.slug!r} is already in the catalog (from "
                f"{self._fixed[definition.slug][1]}); give it another slug",
                source=source,
            )
        self._fixed[definition.slug] = (definition, source)

    def _rebuild(self) -> None:
        # One new dict, swapped in whole: readers on other threads (the sync client's caller)
        # see the old catalog or the new one, never half of a change.
        toolkits = {slug: d for slug, (d, _) in self._fixed.items()}
        toolkits.update((slug, d) for slug, (d, _, _) in self._stored.items())
        toolkits.update(self._local)
        self._toolkits = toolkits

    def register(
        self, definition: ToolkitDefinition | Mapping[str, Any], *, replace: bool = False
    ) -> ToolkitDefinition:
        """Add a toolkit (a definition or a mapping in the data-file schema) to this catalog
        object only, and return it. ``ta.toolkits.register`` stores it for every process."""
        if not isinstance(definition, ToolkitDefinition):
            definition = load_definition(definition, source="register()")
        if not replace and definition.slug in self._toolkits:
            raise CatalogError(
                f"register(): toolkit {definition.slug!r} is already in the catalog; "
                "pass replace=True to override it",
                source="register()",
            )
        self._local[definition.slug] = definition
        self._rebuild()
        return definition

    # the stored layer (kept in step with the store by ta.toolkits) -------------------------
    def fixed_source(self, slug: str) -> str | None:
        """Where a shipped or folder definition of ``slug`` comes from, if there is one."""
        found = self._fixed.get(slug.lower())
        return found[1] if found is not None else None

    def stored_version(self, slug: str) -> tuple[str, int] | None:
        """``(source, version)`` of the stored definition of ``slug`` this catalog holds."""
        found = self._stored.get(slug.lower())
        return (found[1], found[2]) if found is not None else None

    def set_stored(
        self, slug: str, definition: ToolkitDefinition | None, *, source: str = "", version: int = 0
    ) -> None:
        """Hold ``definition`` as the stored one of ``slug`` (``None``: there is none)."""
        self._broken.pop(slug, None)
        if definition is None:
            self._stored.pop(slug, None)
        else:
            self._stored[slug] = (definition, source, version)
            self._local.pop(slug, None)  # the shared definition wins over a local copy
        self._rebuild()

    def set_broken(self, slug: str, message: str) -> None:
        """The stored row of ``slug`` cannot be used: :meth:`get` says why (``message``)."""
        self._stored.pop(slug, None)
        self._broken[slug] = message
        self._rebuild()

    def stored_slugs(self) -> set[str]:
        return set(self._stored) | set(self._broken)

    def attach(self, loader: Loader) -> None:
        """``loader(slug)`` reads ``slug`` from the store into this catalog (:meth:`resolve`)."""
        self._loader = loader

    async def resolve(self, slug: str, *, fresh: bool = False) -> ToolkitDefinition:
        """:meth:`get`, after asking the store when ``slug`` is unknown here (another process
        stored it) or, with ``fresh``, in any case (a link page, a refresh: the newest)."""
        key = slug.lower() if isinstance(slug, str) else slug
        if self._loader is not None and (fresh or key not in self._toolkits):
            await self._loader(key)
        return self.get(slug)

    # reading ---------------------------------------------------------------------------
    def get(self, slug: str) -> ToolkitDefinition:
        """The toolkit ``slug``; an unknown slug raises an error that lists the known ones."""
        key = slug.lower()
        try:
            return self._toolkits[key]
        except KeyError:
            if key in self._broken:
                raise CatalogError(self._broken[key], source=f"stored toolkit {key}") from None
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
