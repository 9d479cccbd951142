"""What a rolling run has finished, on disk: one predictions file per window, the latest
window's model and a manifest, in a directory named by the run's identity (the config and the
data loaded), so a killed run resumes where it stopped and never refits a finished window.

Every file is written beside its final name and renamed into place, and the manifest is
written last: a window is finished once the manifest lists it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock, Timeout

from ashare_autotune.errors import UserError
from ashare_autotune.models.base import FittedModel, fitted_class_path
from ashare_autotune.tracking.pyfunc_model import MODEL_ARTIFACT, load_fitted

MANIFEST = "manifest.json"
MODEL_DIR = "model"
FIRST_MODEL_DIR = "model_w001"  # the first window's, kept: the model trained once
LOCK = ".lock"


@contextmanager
def holding(directory: Path) -> Iterator[None]:
    """Hold a run's state directory for the block: an exclusive OS file lock taken without
    waiting (the system releases it when the process dies, so a killed run never blocks its
    rerun). A second run on the same directory stops with one line instead of both writing
    the same windows, manifest and models.

    Raises:
        UserError: another live process holds the directory.
    """
    directory.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(directory / LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise UserError(
            f"rolling.state_dir: {directory} is being run by another rolling process (it holds "
            f"{directory / LOCK}); wait for it to finish, or give this run another "
            "rolling.state_dir"
        ) from None
    try:
        yield
    finally:
        lock.release()


class RollingState:
    """The finished windows of one rolling run (`directory/manifest.json`)."""

    def __init__(self, directory: Path, identity: dict[str, Any]) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / MANIFEST
        self.manifest: dict[str, Any] = (
            json.loads(path.read_text())
            if path.exists()
            else {"identity": identity, "parent_run_id": None, "windows": {}, "tuned": {}}
        )

    def _write(self) -> None:
        tmp = self.directory / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(self.manifest, indent=2, default=str))
        os.replace(tmp, self.directory / MANIFEST)

    @property
    def parent_run_id(self) -> str | None:
        return self.manifest["parent_run_id"]

    def set_parent_run(self, run_id: str) -> None:
        self.manifest["parent_run_id"] = run_id
        self._write()

    def tuned(self, tune_round: int) -> dict[str, Any] | None:
        """The best parameters of a tuning round, once it finished."""
        return self.manifest["tuned"].get(str(tune_round))

    def set_tuned(self, tune_round: int, params: dict[str, Any]) -> None:
        self.manifest["tuned"][str(tune_round)] = params
        self._write()

    def registered(self) -> tuple[str, str | None, str] | None:
        """(model name, version or None, model URI) once the run logged its model."""
        done = self.manifest.get("registered")
        return (done["name"], done["version"], done["uri"]) if done else None

    def set_registered(self, name: str, version: str | None, uri: str) -> None:
        self.manifest["registered"] = {"name": name, "version": version, "uri": uri}
        self._write()

    def finished(self) -> dict[int, dict[str, Any]]:
        """Each finished window's facts (params, spans, rounds, metrics) by window number."""
        return {int(k): v for k, v in self.manifest["windows"].items()}

    def window_path(self, k: int) -> Path:
        return self.directory / f"w{k:03d}.parquet"

    def save_window(
        self, k: int, record: pd.DataFrame, facts: dict[str, Any], fitted: FittedModel
    ) -> None:
        """Keep a finished window: its record, its model (the latest only) and its facts."""
        tmp = self.window_path(k).with_suffix(".tmp")
        record.to_parquet(tmp, index=False)
        os.replace(tmp, self.window_path(k))
        for name in (MODEL_DIR, FIRST_MODEL_DIR) if k == 1 else (MODEL_DIR,):
            model_tmp = self.directory / f".{name}.tmp"
            shutil.rmtree(model_tmp, ignore_errors=True)
            model_tmp.mkdir()
            fitted.save(model_tmp)
            shutil.rmtree(self.directory / name, ignore_errors=True)
            os.replace(model_tmp, self.directory / name)
        self.manifest["windows"][str(k)] = facts | {"model_class": fitted_class_path(fitted)}
        self._write()

    def latest_model(self) -> FittedModel:
        """The model of the last finished window."""
        last = max(self.finished())
        spec = {"class": self.finished()[last]["model_class"]}
        return load_fitted(spec, {MODEL_ARTIFACT: str(self.directory / MODEL_DIR)})

    def first_model(self) -> FittedModel | None:
        """The first window's model (None when the run kept none)."""
        if not (self.directory / FIRST_MODEL_DIR).exists():
            return None
        spec = {"class": self.finished()[1]["model_class"]}
        return load_fitted(spec, {MODEL_ARTIFACT: str(self.directory / FIRST_MODEL_DIR)})

    def record(self) -> pd.DataFrame:
        """The stitched record: every finished window's predictions, oldest first."""
        parts = [pd.read_parquet(self.window_path(k)) for k in sorted(self.finished())]
        return pd.concat(parts, ignore_index=True)
