"""Timing shared by the overhead benchmarks (``tool_overhead.py``, ``mcp_overhead.py``)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any


async def measure_interleaved(
    variants: dict[str, Callable[[], Awaitable[Any]]], calls: int, warmup: int, block: int = 50
) -> dict[str, list[float]]:
    """Each variant ``calls`` times after ``warmup``, interleaved in blocks so that drift in
    the machine's load hits every variant alike; seconds per call."""
    for fn in variants.values():
        for _ in range(warmup):
            await fn()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    clock = time.perf_counter
    while any(len(s) < calls for s in samples.values()):
        for name, fn in variants.items():
            for _ in range(min(block, calls - len(samples[name]))):
                start = clock()
                await fn()
                samples[name].append(clock() - start)
    return samples
