"""The Optuna study over XGBoost: matrices, booster training, objective and study storage."""
