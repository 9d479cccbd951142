"""The features on disk (`modelling.feature_store`, `Dataset.store`): the same float32 values in
the same order as the in-memory build, read back by position and in batches, and the job's
directory removed when the job ends, also when it fails."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from ashare_autotune.config.features import FeaturesConfig
from ashare_autotune.config.schema import AppConfig, LabelConfig, SplitConfig
from ashare_autotune.data.market import Market
from ashare_autotune.jobs import pipeline
from ashare_autotune.modelling import feature_sets
from ashare_autotune.modelling.dataset import Dataset, build_dataset
from ashare_autotune.modelling.feature_store import SEGMENTS, FeatureStore, write_feature_store

CONFIG = FeaturesConfig(sets=["full"], cs_rank=["mom_5", "STD20"])


def _both(market: Market, tmp_path: Path) -> tuple[Dataset, Dataset]:
    """The same dataset built in memory and with its features on disk."""
    in_memory = build_dataset(market, CONFIG, LabelConfig(), SplitConfig())
    on_disk = build_dataset(market, CONFIG, LabelConfig(), SplitConfig(), store_dir=tmp_path)
    return in_memory, on_disk


def test_the_store_holds_the_in_memory_builds_values_in_row_order_by_segment(
    small_market: Market, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feature_sets, "CHUNK_ROWS", 1000)  # many chunks of whole stocks
    in_memory, on_disk = _both(small_market, tmp_path)
    assert on_disk.store is not None and on_disk.feature_names == in_memory.feature_names
    assert not set(on_disk.feature_names) & set(on_disk.frame.columns)  # features only on disk
    others = [c for c in in_memory.frame.columns if c not in in_memory.feature_names]
    pd.testing.assert_frame_equal(on_disk.frame, in_memory.frame[others])
    masks = in_memory.masks(all_rows=True)
    for name in SEGMENTS:
        expected = in_memory.frame.loc[masks[name], in_memory.feature_names].to_numpy()
        stored = on_disk.store.read(name, 0, on_disk.store.n_rows[name])
        assert stored.dtype == np.float32 and len(stored) > 0
        np.testing.assert_array_equal(stored, expected)  # NaN where NaN, bit for bit
        x_mem, y_mem = in_memory.segment(name)
        x_disk, y_disk = on_disk.segment(name)
        np.testing.assert_array_equal(x_disk.to_numpy(), x_mem.to_numpy())
        np.testing.assert_array_equal(y_disk, y_mem)


def test_reading_by_position_and_in_batches_gives_the_written_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    block = rng.normal(size=(1000, 3)).astype(np.float32)
    segment = rng.integers(-1, 3, size=1000).astype(np.int8)  # -1: an embargo row, not kept
    chunks = ((lo, block[lo : lo + 128]) for lo in range(0, 1000, 128))
    store = write_feature_store(chunks, segment, ["a", "b", "c"], tmp_path)
    for k, name in enumerate(SEGMENTS):
        rows = block[segment == k]
        assert store.n_rows[name] == len(rows)
        np.testing.assert_array_equal(np.concatenate(list(store.batches(name, 37))), rows)
        picked = np.sort(rng.choice(len(rows), 50, replace=False))
        np.testing.assert_array_equal(store.take(name, picked), rows[picked])


def test_scattered_positions_are_read_a_window_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ashare_autotune.modelling import feature_store

    monkeypatch.setattr(feature_store, "READ_ROWS", 10)
    block = np.arange(400, dtype=np.float32).reshape(200, 2)
    store = write_feature_store([(0, block)], np.zeros(200, np.int8), ["a", "b"], tmp_path)
    picked = np.array([0, 3, 9, 10, 55, 56, 199])
    np.testing.assert_array_equal(store.take("train", picked), block[picked])
    assert isinstance(store, FeatureStore) and store.n_rows["val"] == 0


def test_predictions_and_samples_from_the_store_equal_the_in_memory_ones(
    small_market: Market, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ashare_autotune.modelling import dataset

    monkeypatch.setattr(dataset, "PREDICT_ROWS", 100)  # many batches
    in_memory, on_disk = _both(small_market, tmp_path)

    x, y = in_memory.segment("train")
    params = {"objective": "binary:logistic", "max_depth": 3, "nthread": 1}
    score = xgb.train(params, xgb.DMatrix(x, y), num_boost_round=5).inplace_predict

    for name in ("val", "test"):
        for all_rows in (False, True):
            np.testing.assert_array_equal(
                on_disk.predict(name, score, all_rows), in_memory.predict(name, score, all_rows)
            )
        picked = in_memory.positions(name)[::7]
        pd.testing.assert_frame_equal(
            on_disk.features(name, picked), in_memory.features(name, picked)
        )
        pd.testing.assert_frame_equal(on_disk.head(name, 50), in_memory.head(name, 50))


def test_the_jobs_feature_directory_is_removed_also_when_the_job_fails(
    compose_app: Callable[..., AppConfig],
    tracking_uri: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = compose_app(f"mlflow.tracking_uri={tracking_uri}", "features=basic")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    seen: list[Path] = []

    def fail(app: AppConfig, job: object, run: object, data: object) -> None:
        seen.extend(scratch.iterdir())
        raise RuntimeError("the study failed")

    monkeypatch.setattr(pipeline, "tune_and_fit", fail)
    with pytest.raises(RuntimeError, match="the study failed"):
        pipeline.run_training(app)
    assert [p.name.startswith(pipeline.SCRATCH_PREFIX) for p in seen] == [True]
    assert list(scratch.iterdir()) == []
