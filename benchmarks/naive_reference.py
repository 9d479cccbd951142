"""The naive reference the pipeline is measured against (issue 6).

What the original script did, kept on purpose:
- features in a pandas loop over stocks (groupby, then rolling per stock), on float64 frames,
  downcast to float32 only at the end, just before training;
- in every Optuna trial a fresh `XGBClassifier(tree_method="hist", max_bin=128)` fitted from the
  DataFrames with 100-500 trees (`n_estimators` is searched) and no early stopping or pruning.

To compare like with like it reads the same data (`load_market`), uses the same label
(`make_labels`), the same embargoed split, the same search space (conf/tuning/default.yaml) and
the same seeded TPE sampler as the pipeline. It does no MLflow logging and keeps the best trial's
model instead of refitting it, both of which make the reference faster, not slower.

    python -m benchmarks.naive_reference --source files --n-stocks 150 --trials 50
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import numpy as np
import optuna
import pandas as pd
from omegaconf import OmegaConf
from sklearn.metrics import roc_auc_score
from xgboost import XGBClassifier

from ashare_autotune.config.schema import DataConfig, LabelConfig, ParamSpec
from ashare_autotune.data.loader import load_market
from ashare_autotune.data.market import Market
from ashare_autotune.modelling.features import FEATURES
from ashare_autotune.modelling.labels import day_numbers, make_labels, trading_calendar
from ashare_autotune.modelling.split import split_by_time
from ashare_autotune.tuning.objective import suggest_params
from benchmarks.common import ROOT, Phases, add_data_args, data_overrides, load, peak_rss_gb
from benchmarks.common import write_result as write_json

PRICES = ("open", "high", "low", "close", "vol")
N_ESTIMATORS = (100, 500)


def stock_features(g: pd.DataFrame) -> pd.DataFrame:
    """The features of one stock's bars (float64, pandas rolling)."""
    c = g["close"]
    out = pd.DataFrame(index=g.index)
    out["ret_1"] = c / c.shift(1) - 1
    for w in (5, 10, 20):
        out[f"ma{w}_ratio"] = c / c.rolling(w).mean() - 1
        out[f"mom_{w}"] = c / c.shift(w) - 1
    out["volatility_10"] = out["ret_1"].rolling(10).std()
    out["volume_ratio_5"] = g["vol"] / g["vol"].shift(1).rolling(5).mean()
    diff = c.diff()
    gain = diff.clip(lower=0).rolling(14).mean()
    loss = (-diff).clip(lower=0).rolling(14).mean()
    total = gain + loss
    out["rsi_14"] = (100 * gain / total).where(total > 0, 50.0).where(total.notna())
    out["range_1"] = (g["high"] - g["low"]) / c
    span = g["high"] - g["low"]
    out["close_pos"] = ((c - g["low"]) / span).where(span > 0, 0.5)
    out["dist_high_20"] = c / c.rolling(20).max() - 1
    return out


def naive_features(market: Market) -> pd.DataFrame:
    """All features, one stock at a time, float64 throughout; aligned with `market.daily`."""
    daily = market.daily.astype({c: np.float64 for c in PRICES})
    daily["ts_code"] = daily["ts_code"].astype(str)
    frames = [stock_features(g) for _, g in daily.groupby("ts_code", sort=True)]
    feats = pd.concat(frames).sort_index()
    feats["trade_date"] = daily["trade_date"]
    idx = market.index.sort_values("trade_date").set_index("trade_date")["close"].astype(float)
    feats["mkt_ret_1"] = feats["trade_date"].map(idx / idx.shift(1) - 1)
    feats["mkt_mom_5"] = feats["trade_date"].map(idx / idx.shift(5) - 1)
    industry = daily["ts_code"].map(market.stock_basic.set_index("ts_code")["industry"])
    feats["industry"] = industry
    by_day = feats.groupby(["trade_date", "industry"])
    feats["ind_ret_1"] = by_day["ret_1"].transform("mean")
    feats["ind_mom_5"] = by_day["mom_5"].transform("mean")
    feats["ret_rel_ind"] = feats["ret_1"] - feats["ind_ret_1"]
    feats = feats[list(FEATURES)].replace([np.inf, -np.inf], np.nan)
    return feats


def segments(market: Market, feats: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    """Label, drop rows without a full horizon, split by time; features downcast late."""
    calendar = trading_calendar(market.daily, market.index)
    label = LabelConfig()
    y = make_labels(market.daily, calendar, label.min_days, label.max_days, label.min_return)
    keep = y.notna().to_numpy()
    frame = feats.loc[keep].copy()
    frame["label"] = y.to_numpy()[keep]
    frame["day"] = day_numbers(market.daily["trade_date"][keep], calendar)
    plan = split_by_time(
        int(frame["day"].min()), int(frame["day"].max()), (0.6, 0.2, 0.2), label.max_days
    )
    masks = plan.masks(frame["day"].to_numpy())
    out = {}
    for name, mask in masks.items():
        rows = frame.loc[mask]
        out[name] = (rows[list(FEATURES)].astype(np.float32), rows["label"].to_numpy())
    return out


def search_space() -> dict[str, ParamSpec]:
    """The pipeline's search space, from conf/tuning/default.yaml."""
    raw = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "tuning" / "default.yaml"))
    return {name: ParamSpec(**spec) for name, spec in raw["space"].items()}


def run_study(
    data: dict[str, tuple[pd.DataFrame, np.ndarray]], n_trials: int, n_jobs: int
) -> tuple[optuna.Study, XGBClassifier]:
    """Seeded TPE; each trial fits a fresh classifier without early stopping."""
    space = search_space()
    (x_train, y_train), (x_val, y_val) = data["train"], data["val"]
    best: dict[str, Any] = {"auc": -1.0, "model": None}

    def objective(trial: optuna.Trial) -> float:
        params = suggest_params(trial, space)
        params["n_estimators"] = trial.suggest_int("n_estimators", *N_ESTIMATORS)
        model = XGBClassifier(
            tree_method="hist", max_bin=128, n_jobs=n_jobs, random_state=42, **params
        )
        model.fit(x_train, y_train)
        auc = float(roc_auc_score(y_val, model.predict_proba(x_val)[:, 1]))
        if auc > best["auc"]:
            best.update(auc=auc, model=model)
        return auc

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=42))
    study.optimize(objective, n_trials=n_trials)
    return study, best["model"]


def main() -> None:
    """Run the reference job and print (or write) its timings, memory and AUCs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_args(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    load_start, start = load(), time.perf_counter()
    phases = Phases()
    with phases.timed("data"):
        market = load_market(DataConfig(**data_overrides(args)))
    with phases.timed("features"):
        feats = naive_features(market)
    with phases.timed("labels_split"):
        data = segments(market, feats)
        del feats
    with phases.timed("study"):
        study, model = run_study(data, args.trials, args.n_jobs)
    x_test, y_test = data["test"]
    test_auc = float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]))
    wall = time.perf_counter() - start
    write_json(
        {
            "job": "naive_reference",
            "rows": len(market.daily),
            "stocks": market.n_stocks,
            "trials": len(study.trials),
            "wall_s": round(wall, 2),
            "per_trial_s": round(phases.seconds["study"] / len(study.trials), 3),
            "phases_s": phases.rounded(),
            "features_rows_per_s": round(len(market.daily) / phases.seconds["features"]),
            "best_val_auc": round(study.best_value, 5),
            "val_auc": round(study.best_value, 5),  # its final model is the best trial's
            "test_auc": round(test_auc, 5),
            "best_params": study.best_params,
            "peak_rss_gb": round(peak_rss_gb(), 3),
            "peak_rss_by_phase_gb": phases.peaks(),
            "load_start": load_start,
            "load_end": load(),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
