"""Shared helpers for the benchmark scripts: data selection, timing, memory and load."""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"  # ../shared/data, as the README says


def add_data_args(parser: argparse.ArgumentParser) -> None:
    """The data options every benchmark script shares (same data for both sides)."""
    parser.add_argument("--source", choices=("synthetic", "files"), default="synthetic")
    parser.add_argument("--n-stocks", type=int, default=150)
    parser.add_argument("--n-days", type=int, default=2000, help="synthetic trading days")
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA, help="--source files")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write the result as JSON here")


def first_codes(data_dir: Path, n: int) -> list[str]:
    """The first n ts_codes (sorted by code) of the daily bars in `data_dir`."""
    codes = pd.read_parquet(data_dir / "daily.parquet", columns=["ts_code"])["ts_code"]
    return sorted(codes.astype(str).unique())[:n]


def data_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """DataConfig fields for the chosen data: synthetic size, or the first n stocks by code."""
    if args.source == "synthetic":
        return {"source": "synthetic", "n_stocks": args.n_stocks, "n_days": args.n_days}
    return files_data(args.data_dir, args.n_stocks)


def files_data(data_dir: Path, n_stocks: int) -> dict[str, Any]:
    """DataConfig fields for the first `n_stocks` stocks by code of the files in `data_dir`."""
    return {
        "source": "files",
        "daily": str(data_dir / "daily.parquet"),
        "index": str(data_dir / "index_daily.parquet"),
        "stock_basic": str(data_dir / "stock_basic.csv"),
        "ts_codes": first_codes(data_dir, n_stocks),
        "n_stocks": None,
    }


def peak_rss_gb() -> float:
    """Peak resident set size of this process so far, GB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def load() -> list[float]:
    """The machine's 1/5/15-minute load averages (2 shared cores: > 2 means contention)."""
    return [round(x, 2) for x in os.getloadavg()]


class CollectorTime:
    """Seconds spent in Python's garbage collector, and its collections, by generation, from
    now on (`gc.callbacks`)."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        self._start = 0.0
        gc.callbacks.append(self._on_collect)

    def _on_collect(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
            return
        generation = info["generation"]
        self.seconds[generation] += time.perf_counter() - self._start
        self.collections[generation] += 1

    def summary(self) -> dict[str, Any]:
        """Total seconds, and seconds and collections per generation."""
        return {
            "total_s": round(sum(self.seconds), 2),
            "seconds_by_generation": [round(s, 3) for s in self.seconds],
            "collections_by_generation": list(self.collections),
        }


class Phases:
    """Wall time per named phase, accumulated over calls, and the peak RSS seen in each
    (sampled every `interval` seconds by a background thread; "other" is outside any phase)."""

    def __init__(self, interval: float = 0.05) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.peak_gb: dict[str, float] = {}
        self.end_gb: dict[str, float] = {}  # RSS when the phase last ended
        self._stack: list[str] = []
        self._process = psutil.Process()
        threading.Thread(target=self._sample, args=(interval,), daemon=True).start()

    def _sample(self, interval: float) -> None:
        while True:
            name = self._stack[-1] if self._stack else "other"
            rss = self._process.memory_info().rss / 1e9
            self.peak_gb[name] = max(self.peak_gb.get(name, 0.0), rss)
            time.sleep(interval)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Add the wall time of the block to phase `name`."""
        start = time.perf_counter()
        self._stack.append(name)
        try:
            yield
        finally:
            self._stack.pop()
            self.end_gb[name] = round(self._process.memory_info().rss / 1e9, 2)
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
            self.calls[name] = self.calls.get(name, 0) + 1

    def wrap(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        """`func` with its wall time added to phase `name` on every call."""

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.timed(name):
                return func(*args, **kwargs)

        return wrapper

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 2) for k, v in self.seconds.items()}

    def peaks(self) -> dict[str, float]:
        return {k: round(v, 2) for k, v in self.peak_gb.items()}


def write_result(result: dict[str, Any], out: Path | None) -> None:
    """Print the result as JSON and write it to `out` when given."""
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")


def run_facts(script: str) -> dict[str, Any]:
    """The head of a result: the script, its arguments, when, where and the load it started at."""
    return {
        "script": script,
        "argv": sys.argv[1:],
        "when_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": platform.node(),
        "load_start": load(),
    }
