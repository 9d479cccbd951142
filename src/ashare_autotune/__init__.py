"""XGBoost stock selection for China A-shares, tuned with Optuna and tracked in MLflow."""

import os

# XGBoost's OpenMP threads spin while they wait for each other by default. On a machine whose
# cores are shared with other work, a descheduled thread leaves its partner spinning at every
# barrier, and a boosting round became ~20x slower with 2 threads than with 1 (benchmarks/
# README.md). Sleeping waiters avoid that. It only takes effect before libgomp is loaded, i.e.
# before xgboost is imported, hence here; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
