"""Cold import cost of toolauth: time and peak RSS, and which heavy modules each import pulls in.

Every measurement is a fresh interpreter (``python -c``), so nothing is imported yet; the
figure is the median of ``--runs`` processes, after one discarded run that fills
``__pycache__`` and the OS page cache. "import ms" is measured inside the child around the
import statement; "peak RSS" is the child's ``ru_maxrss`` at exit, next to a bare
interpreter's for reference.

Run: .venv/bin/python bench/import_time.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

HEAVY = (
    "uvicorn", "starlette", "asyncpg", "langgraph", "langchain_core", "langchain",
    "aiosqlite", "jinja2", "authlib", "cryptography", "httpx", "pydantic",
)  # fmt: skip

TARGETS = {
    "python (no import)": "pass",
    "import toolauth": "import toolauth",
    "langchain_core.tools.BaseTool": "from langchain_core.tools import BaseTool",
    "import toolauth.langchain": "import toolauth.langchain",
}
# Goal (issue 10): toolauth.langchain adds at most this over langchain-core's own BaseTool.
LANGCHAIN_BUDGET = (100.0, 15.0)  # ms, MiB

CHILD = """
import resource, sys, time
start = time.perf_counter()
exec(compile({code!r}, "<bench>", "exec"))
elapsed = time.perf_counter() - start
heavy = [m for m in {heavy!r} if m in sys.modules]
rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(__import__("json").dumps({{"s": elapsed, "rss": rss_kib, "heavy": heavy}}))
"""


def _child(code: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(code=code, heavy=HEAVY)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(f"{sys.executable}; median of {args.runs} fresh processes each")
    print(f"{'what':38} {'import ms':>10} {'peak RSS MiB':>13}  heavy modules loaded")
    figures: dict[str, tuple[float, float]] = {}
    for name, code in TARGETS.items():
        _child(code)  # warm __pycache__ and the page cache
        runs = [_child(code) for _ in range(args.runs)]
        ms = statistics.median(float(r["s"]) for r in runs) * 1e3  # type: ignore[arg-type]
        rss = statistics.median(float(r["rss"]) for r in runs) / 1024  # type: ignore[arg-type]
        heavy = ", ".join(runs[-1]["heavy"]) or "-"  # type: ignore[arg-type]
        print(f"{name:38} {ms:10.1f} {rss:13.1f}  {heavy}")
        figures[name] = (ms, rss)
    base, ours = figures["langchain_core.tools.BaseTool"], figures["import toolauth.langchain"]
    extra_ms, extra_mib = ours[0] - base[0], ours[1] - base[1]
    within = extra_ms <= LANGCHAIN_BUDGET[0] and extra_mib <= LANGCHAIN_BUDGET[1]
    verdict = "within" if within else "OVER"
    print(
        f"toolauth.langchain over BaseTool: +{extra_ms:.1f} ms, +{extra_mib:.1f} MiB "
        f"({verdict} the budget of +{LANGCHAIN_BUDGET[0]:.0f} ms, +{LANGCHAIN_BUDGET[1]:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
