"""What a Hydra job knows of itself: its command-line overrides and its place in a sweep."""

from __future__ import annotations

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode


def hydra_tags() -> dict[str, str]:
    """The command-line overrides of this job (and its number in a `-m` sweep), as run tags."""
    hc = HydraConfig.get()
    tags = {"hydra_overrides": " ".join(hc.overrides.task)}
    if hc.mode == RunMode.MULTIRUN:
        tags["hydra_job"] = str(hc.job.num)
        tags["hydra_sweep_dir"] = str(hc.sweep.dir)
    return tags


def sweep_run_name(overrides: list[str], job: str) -> str:
    """A readable parent-run name for a sweep job: its overrides, without where it logs to."""
    shown = [o for o in overrides if not o.lstrip("+~").startswith(("mlflow.", "hydra."))]
    return " ".join(shown) or f"job {job}"
