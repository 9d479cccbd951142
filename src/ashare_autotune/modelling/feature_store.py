"""The feature block of a large job on disk, one row-major float32 file per segment, read back
in batches: all rows x 198 `features=full` columns never sit in memory at once.

Whole market: 6.9M kept rows x 198 columns are 5.5 GB of float32. `feature_sets.feature_chunks`
yields them a chunk of whole stocks at a time; each chunk's rows go to their segment's file
(train, val, test: every kept row of the segment, also those whose entry cannot fill, in the
order of the dataset's frame). Reads are plain file reads into fresh arrays, not a memory map:
mapped pages would count in the job's resident memory (RSS) as they are touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SEGMENTS = ("train", "val", "test")
READ_ROWS = 1 << 16  # rows per plain read when picking scattered rows (~50 MB at 198 columns)


@dataclass
class FeatureStore:
    """Row-major float32 files of each segment's feature rows (`write_feature_store`).

    Attributes:
        directory: where the files live (job-private, removed with it).
        names: the feature columns, in order.
        n_rows: rows per segment.
    """

    directory: Path
    names: list[str]
    n_rows: dict[str, int]

    def path(self, segment: str) -> Path:
        """The segment's file."""
        return self.directory / f"{segment}.f32"

    def read(self, segment: str, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of a segment: a fresh (rows x features) float32 array."""
        k = len(self.names)
        stop = min(stop, self.n_rows[segment])
        count = max(stop - start, 0) * k
        offset = start * k * np.dtype(np.float32).itemsize
        values = np.fromfile(self.path(segment), np.float32, count=count, offset=offset)
        return values.reshape(-1, k)

    def take(self, segment: str, positions: np.ndarray) -> np.ndarray:
        """The rows at sorted `positions` of a segment (reads at most `READ_ROWS` at a time).

        Args:
            segment: "train", "val" or "test".
            positions: increasing row numbers in the segment's file.
        """
        positions = np.asarray(positions, dtype=np.int64)
        out = np.empty((len(positions), len(self.names)), dtype=np.float32)
        i = 0
        while i < len(positions):
            lo = int(positions[i])
            j = int(np.searchsorted(positions, lo + READ_ROWS))
            out[i:j] = self.read(segment, lo, int(positions[j - 1]) + 1)[positions[i:j] - lo]
            i = j
        return out

    def batches(self, segment: str, batch_rows: int) -> Iterator[np.ndarray]:
        """Every row of a segment, `batch_rows` at a time, in order."""
        for start in range(0, self.n_rows[segment], batch_rows):
            yield self.read(segment, start, start + batch_rows)


def write_feature_store(
    chunks: Iterable[tuple[int, np.ndarray]],
    segment: np.ndarray,
    names: list[str],
    directory: Path,
) -> FeatureStore:
    """Append each chunk's rows to its segment's file.

    Args:
        chunks: (first row, row-major float32 block) in row order (`feature_chunks`).
        segment: per row, its index in `SEGMENTS` (-1: in no segment, e.g. an embargo day:
            not written).
        names: the feature columns of the blocks.
        directory: an existing, empty directory (the caller removes it).

    Returns:
        The store of the written files.
    """
    store = FeatureStore(directory, list(names), {s: 0 for s in SEGMENTS})
    files = {s: open(store.path(s), "wb") for s in SEGMENTS}  # noqa: SIM115 (closed below)
    try:
        for start, block in chunks:
            ids = segment[start : start + len(block)]
            for k, name in enumerate(SEGMENTS):
                rows = block[ids == k]
                rows.tofile(files[name])
                store.n_rows[name] += len(rows)
    finally:
        for f in files.values():
            f.close()
    return store
