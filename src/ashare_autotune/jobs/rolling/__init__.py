"""The rolling retrain (`python -m ashare_autotune.rolling`): refit on a schedule, score each
step with the model that existed that day, and judge the stitched record."""
