"""XGBoost stock selection for China A-shares, tuned with Optuna and tracked in MLflow."""

__version__ = "0.1.0"
