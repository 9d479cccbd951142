"""What one SQLite commit costs on this machine's disk, per journal mode and sync setting.

Our job commits ~2,200 times on 150 stocks (Optuna: trial parameters, pruning reports, trial
states; MLflow: one run per trial), so the commit cost is part of its fixed cost
(`ashare_autotune.sqlite_wal`). Each setting commits single-row inserts into a new database
in `--dir` (default: a temporary directory; give the directory the stores live in).

    python -m benchmarks.sqlite_commits --dir . --commits 300
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from benchmarks.common import write_result

SETTINGS = [
    ("DELETE", "FULL"),  # SQLite's default
    ("DELETE", "NORMAL"),
    ("TRUNCATE", "FULL"),
    ("PERSIST", "FULL"),
    ("WAL", "FULL"),
    ("WAL", "NORMAL"),  # ashare_autotune.sqlite_wal
]


def ms_per_commit(path: Path, journal_mode: str, synchronous: str, commits: int) -> float:
    """Milliseconds per commit of a one-row insert into a new database at `path`."""
    con = sqlite3.connect(path)
    try:
        con.execute(f"PRAGMA journal_mode={journal_mode}")
        con.execute(f"PRAGMA synchronous={synchronous}")
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, value TEXT)")
        con.commit()
        start = time.perf_counter()
        for _ in range(commits):
            con.execute("INSERT INTO t (value) VALUES (?)", ("x" * 50,))
            con.commit()
        return (time.perf_counter() - start) / commits * 1e3
    finally:
        con.close()


def main() -> None:
    """Print ms per commit for each setting (twice, interleaved) and write them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="where the databases go (default: a temp dir)")
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for rep in range(2):
            for journal_mode, synchronous in SETTINGS:
                path = Path(tmp) / f"{journal_mode}-{synchronous}-{rep}.db"
                ms = ms_per_commit(path, journal_mode, synchronous, args.commits)
                results.setdefault(f"{journal_mode} {synchronous}", []).append(round(ms, 3))
    for name, values in results.items():
        print(f"{name:16s} {' / '.join(f'{v:.3f}' for v in values)} ms per commit")
    write_result({"commits": args.commits, "ms_per_commit": results}, args.out)


if __name__ == "__main__":
    main()
