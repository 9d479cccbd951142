"""XGBoost stock selection for China A-shares, tuned with Optuna and tracked in MLflow."""

import os

# XGBoost's OpenMP threads (libgomp) spin while they wait for each other, by default for about
# 300,000 iterations. On cores shared with other work a descheduled thread leaves its partner
# spinning at every barrier: beside two busy processes a 2-thread boosting round was ~80x slower
# (benchmarks/README.md). Sleeping waiters (OMP_WAIT_POLICY=PASSIVE) avoid that but made rounds
# ~1.4x slower on an idle machine; a short spin (10,000) was as fast as the default when idle
# and 1.4x slower than PASSIVE when loaded. It only takes effect before libgomp is loaded, i.e.
# before xgboost is imported, hence here; a wait policy or spin count the user set is kept.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")

__version__ = "0.1.0"
