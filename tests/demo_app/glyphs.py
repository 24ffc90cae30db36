"""Which characters the demo's and the connect app's pages may show.

The pages name system fonts only (system-ui, Segoe UI, Roboto, sans-serif; a monospace stack
for code). Symbols such as check marks, arrows, geometric shapes and emoji are missing from
many of those fonts and then render as an empty box, so pages draw marks in CSS and keep their
text to printable ASCII plus a few typographic marks that every system font carries (all in
Windows-1252 and WGL4): the middle dot, dashes, the ellipsis, curly quotes, the bullet and the
section sign.
"""

from __future__ import annotations

# middle dot, en and em dash, ellipsis, curly double and single quotes, bullet, section sign
SAFE_EXTRA = "\u00b7\u2013\u2014\u2026\u201c\u201d\u2018\u2019\u2022\u00a7"
SAFE = frozenset(chr(code) for code in range(0x20, 0x7F)) | set("\n\r\t") | set(SAFE_EXTRA)


def unsafe_glyphs(text: str) -> dict[str, str]:
    """The characters of ``text`` outside :data:`SAFE`, with their code points."""
    return {c: f"U+{ord(c):04X}" for c in sorted(set(text) - SAFE)}
