"""The connect app: the ASGI app behind connect links (pages, OAuth callback, key forms, a
JSON status endpoint). Mount it with ``ta.asgi_app()``, or run it with ``toolauth serve``."""

from .app import create_connect_app

__all__ = ["create_connect_app"]
