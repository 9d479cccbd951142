"""LightGBM behind the model protocol (native API): datasets, training, pruning, the booster."""
