"""The MLflow-facing jobs: training (the pipeline), out-of-time evaluation, the standalone
backtest and the daily picks; the entry points are thin Hydra apps over them."""
