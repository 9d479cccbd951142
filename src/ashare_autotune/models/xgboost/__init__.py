"""XGBoost behind the model protocol: matrices, training, pruning, the fitted booster."""
