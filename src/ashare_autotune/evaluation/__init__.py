"""Evaluation: metrics, threshold, trading view, walk-forward, out-of-time and daily picks."""
