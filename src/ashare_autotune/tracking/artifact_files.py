"""Artifacts copied into a local artifact store whole or not at all.

MLflow's local artifact repository copies file by file into the run's folder: a job stopped
in the middle (SIGTERM, Ctrl-C, a full disk) leaves a partial folder, e.g. `plots/` with a
0-byte PNG that the UI shows as a broken picture. Here a new folder is copied beside its place
under a hidden name and renamed into place (a rename is atomic on one file system); into a
folder that exists (a resumed run logging again) each file is copied the same way and
replaces its old version. A remote artifact store (S3, ...) is left to MLflow.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import mlflow
from mlflow.utils.file_utils import local_file_uri_to_path

from ashare_autotune.runtime import remove_orphans

PARTIAL = ".partial-"  # the hidden names of copies under way: `.partial-<pid>-<name>`


def log_artifacts_whole(local_dir: str | Path, artifact_path: str | None = None) -> None:
    """Log every file of `local_dir` to the active run, each complete or absent.

    Args:
        local_dir: the folder whose files are logged.
        artifact_path: the folder inside the run's artifacts (None: their root).
    """
    uri = mlflow.get_artifact_uri(artifact_path)
    if urlparse(uri).scheme not in ("", "file"):
        mlflow.log_artifacts(str(local_dir), artifact_path)
        return
    dest = Path(local_file_uri_to_path(uri))
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(PARTIAL, str(dest.parent))  # copies of stopped processes, not live ones
    staging = dest.parent / f"{PARTIAL}{os.getpid()}-{dest.name}"
    shutil.rmtree(staging, ignore_errors=True)  # this process's, from a copy that failed
    shutil.copytree(local_dir, staging)
    if not dest.exists():
        os.replace(staging, dest)
        return
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        target = dest / path.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    shutil.rmtree(staging)
