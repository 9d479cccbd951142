"""The Optuna study over the chosen model's search space: objective, scoring, refit and storage."""
