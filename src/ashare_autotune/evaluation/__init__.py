"""Evaluation of scored rows: metrics, thresholds, trading views and the backtest."""
