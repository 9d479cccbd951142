"""Evaluation, pure: metrics, threshold, signal, records, the backtest engine and its account,
the one-line baselines. No MLflow, no data source: frames and scores in, values out."""
