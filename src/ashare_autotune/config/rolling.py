"""The `rolling` group's schema (`python -m ashare_autotune.rolling`): the span scored, how
often the model is refitted, on which window of the past, and how often it is re-tuned."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ashare_autotune.config.choices import PROMOTION_METRICS, PicksRule, check, check_date, choose
from ashare_autotune.config.schema import AppConfig

# rolling.step -> calendar months between refits
STEP_MONTHS = {"month": 1, "quarter": 3, "half": 6, "year": 12}
# promotion metrics of `train` that a rolling model does not log (its window's validation is
# only early-stopped on): it compares `val_roll_*`, the stitched record before its own step
NOT_LOGGED_BY_ROLLING = tuple(m for m in PROMOTION_METRICS if m.startswith("val_bt_"))
NOT_LOGGED_BY_ROLLING += ("val_rank_ic_mean", "val_topk_precision_mean")
# the fewest trading days a step of each size holds (a February around the Spring Festival)
STEP_MIN_DAYS = {"month": 15, "quarter": 55, "half": 115, "year": 235}


class WindowKind(StrEnum):
    """Which past a window trains on: all of it, or the last `rolling.train_years`."""

    expanding = "expanding"
    sliding = "sliding"


@dataclass
class RollingConfig:
    """Refit every `step` over `start..end`: each window trains on the labelled days before its
    step (an embargo of `label.max_days` before its validation and before the step), early-stops
    on its last `val_days` labelled days, and scores the step's days."""

    start: str = "20190701"  # YYYYMMDD: the first day scored
    end: str = "20230331"  # YYYYMMDD: the last day scored (inclusive)
    step: str = "quarter"  # month, quarter, half or year
    window: str = WindowKind.expanding.value
    train_years: float = 3.0  # sliding: the years of past (validation included) a window sees
    val_days: int = 120  # trading days each window early-stops on (and picks its threshold)
    retune_every: int = 0  # re-tune every this many windows (0: tune once, on the first)
    refit_on_val: bool = True  # refit on train + validation for the early-stopped rounds
    state_dir: str = "rolling_state"  # finished windows, kept so a killed run resumes
    min_train_days: int = 60  # a window trains on at least this many trading days
    # A window's fits (early-stopping and refit) train on a seeded sample of this many of its
    # training rows (None: all); the whole market's budget (docs/rolling.md).
    fit_rows: int | None = None

    def __post_init__(self) -> None:
        check_date("rolling.start", self.start)
        check_date("rolling.end", self.end)
        check(
            self.start <= self.end,
            "rolling.start",
            self.start,
            f"is after rolling.end={self.end!r}",
        )
        names = list(STEP_MONTHS)
        why = f"must be {', '.join(names[:-1])} or {names[-1]}"
        check(self.step in STEP_MONTHS, "rolling.step", self.step, why)
        self.window = choose(WindowKind, self.window, "rolling.window")
        if self.window == WindowKind.sliding:
            why = "a sliding window shorter than one year cannot see a year's seasons; use >= 1"
            check(self.train_years >= 1, "rolling.train_years", self.train_years, why)
        check(self.val_days >= 10, "rolling.val_days", self.val_days, "must be >= 10")
        if self.fit_rows is not None:
            check(self.fit_rows >= 1000, "rolling.fit_rows", self.fit_rows, "must be >= 1000")
        check(self.retune_every >= 0, "rolling.retune_every", self.retune_every, "must be >= 0")
        check(
            self.min_train_days >= 10,
            "rolling.min_train_days",
            self.min_train_days,
            "must be >= 10",
        )


@dataclass
class RollingAppConfig(AppConfig):
    """The training configuration plus the `rolling` group."""

    rolling: RollingConfig = field(default_factory=RollingConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        horizon = self.label.max_days
        why = f"holds fewer trading days than the label horizon label.max_days={horizon}"
        check(STEP_MIN_DAYS[self.rolling.step] >= horizon, "rolling.step", self.rolling.step, why)
        why = "is not supported by the rolling job; use auc, rank_ic or topk_precision"
        check(
            self.tuning.metric != "bt_information_ratio", "tuning.metric", self.tuning.metric, why
        )
        why = "needs split.kind=single (each window is one train/validation split)"
        check(self.split.kind == "single", "split.kind", self.split.kind, why)
        absent = [m for m in self.registry.promotion_metrics if m in NOT_LOGGED_BY_ROLLING]
        why = (
            "a rolling model logs no validation account or signal of its own; compare the "
            "stitched record before its step, e.g. val_roll_bt_excess_return_exposure"
        )
        check(not absent, "registry.promotion_metrics", absent, why)
        why = "is not applied by the rolling job yet (its windows pick by the blend)"
        check(self.model.picks == PicksRule.blend, "model.picks", str(self.model.picks), why)
