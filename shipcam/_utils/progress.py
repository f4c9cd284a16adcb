"""A progress bar that works with or without tqdm (tqdm is not a runtime dependency)."""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], total: int | None = None, desc: str = "", enabled: bool = True) -> Iterator[T]:
    if not enabled:
        yield from items
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:
        yield from _plain(items, total, desc)
        return
    tty = sys.stderr.isatty()  # in logs, a line every 10 s instead of a redraw per item
    yield from tqdm(items, total=total, desc=desc, dynamic_ncols=True, leave=False, mininterval=0.1 if tty else 10.0)


def _plain(items: Iterable[T], total: int | None, desc: str) -> Iterator[T]:
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    start, last = time.perf_counter(), 0.0
    i = 0
    for i, item in enumerate(items, 1):
        yield item
        now = time.perf_counter()
        if now - last > 1.0:
            last = now
            of = f"/{total}" if total else ""
            print(f"\r{desc} {i}{of} ({now - start:.0f}s)", end="", file=sys.stderr, flush=True)
    if i:
        print(f"\r{desc} {i} done in {time.perf_counter() - start:.1f}s", file=sys.stderr)
