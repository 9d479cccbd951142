"""The schema of `python -m ashare_autotune.backtest` (conf/backtest_cli.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ashare_autotune.config.backtest import BacktestConfig
from ashare_autotune.config.choices import check_window
from ashare_autotune.config.schema import (
    DEFAULT_MODEL_URI,
    DataConfig,
    LabelConfig,
    MlflowConfig,
)


@dataclass
class BacktestCliConfig:
    """Backtest a model on a window of days and log the report as a new MLflow run (the
    threshold, features and label come from the model; `label=...` overrides the label)."""

    model_uri: str = DEFAULT_MODEL_URI
    start: str | None = None  # YYYYMMDD, first signal day; None: the day after the model's data
    end: str | None = None  # YYYYMMDD, the last signal day; None: the last day of the data
    allow_other_data: bool = False  # score data other than the model's (tracking.data_match)
    data: DataConfig = field(default_factory=DataConfig)
    label: LabelConfig | None = None  # None: the label stored with the model
    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)

    def __post_init__(self) -> None:
        check_window(self.start, self.end)
