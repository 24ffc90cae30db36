"""A webhook receiver on loopback: records what it is sent, and answers per path.

``/ok`` answers 204; ``/fail`` 500; ``/slow`` waits ``slow_seconds`` then answers 200;
``/hold`` answers only once ``release`` is set (a delivery stays in flight meanwhile);
``/redirect`` answers 307 to ``/ok`` (a delivery must not follow it).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    got: list[Received] = field(default_factory=list)
    slow_seconds: float = 0.5
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def on(self, path: str) -> list[Received]:
        return [r for r in self.got if r.path == path]

    async def handle(self, request: Request) -> Response:
        path = request.url.path
        self.got.append(Received(path, dict(request.headers), await request.body()))
        self.arrived.set()
        if path == "/fail":
            return Response("no", status_code=500)
        if path == "/slow":
            await asyncio.sleep(self.slow_seconds)
            return Response("late", status_code=200)
        if path == "/redirect":
            return Response(status_code=307, headers={"location": "/ok"})
        if path == "/hold":
            await self.release.wait()
            return Response("ok", status_code=200)
        return Response(status_code=204)

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(p, self.handle, methods=["POST"])
                for p in ("/ok", "/fail", "/slow", "/hold", "/redirect")
            ]
        )
