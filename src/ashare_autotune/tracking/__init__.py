"""The MLflow layer: runs, registry and promotion, the pyfunc model and plots."""
