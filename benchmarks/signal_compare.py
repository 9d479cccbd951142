"""Label designs x feature sets on the whole market, one fixed XGBoost setting (issue 17).

For each label kind (touch, barrier, excess) and feature set (basic, full, ashare+basic), on the
project's own dataset (`modelling.dataset.build_dataset`: its label, entry, universe, split)
of `market_daily.parquet`: one XGBoost fit with the centre of the search space (no tuning, so
the comparison is fair and fast), early-stopped on validation AUC, then on validation and test:
AUC; the daily top-k precision and that label's base rate; IC / Rank IC mean and IR against the
dataset's forward return (`evaluation.signal`); and the backtest after costs
(`evaluation.backtest`: top-k a day, A-share rules) against 000905.SH: annualised excess return
and information ratio. The market, limit flags and index bars are loaded once; the combinations
run one after the other in this process.

    python -m benchmarks.signal_compare --out benchmarks/results/signal_compare_honest_account.json
    python -m benchmarks.signal_compare --labels excess --feature-sets basic --rank excess:basic \
        --rankers 'rank:pairwise/quintile/mean/1/rank_ic' --out ...   # a ranking objective too

With `--rank`, the named label:feature_set pairs are also fitted with XGBoost ranking
objectives (`fit_ranker`): each day a query group (rows sorted by day), relevance the binary
label or the day's quintile (0..4) of the forward return, on a seeded sample of whole train
days, early-stopped on validation NDCG or mean daily Rank IC.

Choose defaults from the validation columns; the test columns are reported, not chosen on.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from sklearn.metrics import roc_auc_score

from ashare_autotune.config.loading import register_configs, to_app_config
from ashare_autotune.config.schema import AppConfig
from ashare_autotune.data.benchmark import load_benchmark
from ashare_autotune.data.indices import label_benchmark
from ashare_autotune.data.loader import load_market
from ashare_autotune.data.market import Market
from ashare_autotune.evaluation.backtest_report import exposure_benchmark, strategy_returns
from ashare_autotune.evaluation.backtest_window import (
    BacktestInputs,
    BacktestReport,
    run_window_backtest,
    signal_scores,
    window_inputs,
)
from ashare_autotune.evaluation.baseline_compare import compare_baselines
from ashare_autotune.evaluation.baselines import history_start
from ashare_autotune.evaluation.signal import daily_signal, summarise_signal
from ashare_autotune.modelling.dataset import Dataset, build_dataset, label_rows
from ashare_autotune.models.xgboost.matrices import build_matrices_in_batches
from ashare_autotune.models.xgboost.model import XGBoostModel, train_early_stopping
from ashare_autotune.tuning.scoring import whole_days
from benchmarks.common import ROOT, SHARED_DATA, load, peak_rss_gb, run_facts, write_result

log = logging.getLogger("signal_compare")

LABELS = ("touch", "barrier", "excess")
FEATURE_SETS = {"basic": "[basic]", "full": "[full]", "ashare+basic": "[basic,ashare]"}
# the centre of conf/tuning/default.yaml's space (geometric for log-scaled dimensions)
FIXED = {
    "learning_rate": 0.055,
    "max_depth": 5,
    "min_child_weight": 14.1,
    "subsample": 0.75,
    "colsample_bytree": 0.7,
    "reg_lambda": 0.141,
    "reg_alpha": 0.141,
    "gamma": 2.5,
}
BENCHMARK = "000905.SH"  # the excess label's and the backtest's (conf default)
MARKET_FILES = ("market_daily.parquet", "market_stock_basic.csv")
SIGNAL_KEYS = ("topk_precision_mean", "ic_mean", "ic_ir", "rank_ic_mean", "rank_ic_ir")
BT_KEYS = ("bt_annual_return", "bt_excess_return", "bt_information_ratio", "bt_max_drawdown")
BT_KEYS += ("bt_turnover", "bt_trades", "bt_total_costs", "bt_invested_mean", "bt_beta")
BT_KEYS += ("bt_alpha", "bt_excess_return_exposure", "bt_information_ratio_exposure")


def compose_app(data_dir: Path, sample: bool, overrides: list[str]) -> AppConfig:
    """The project's config for the whole-market files (`sample`: the 300-stock sample) plus
    `overrides`."""
    register_configs()
    GlobalHydra.instance().clear()
    daily, basic = ("daily.parquet", "stock_basic.csv") if sample else MARKET_FILES
    data = [
        "data=files",
        f"data.daily={data_dir / daily}",
        f"data.index={data_dir / 'index_daily.parquet'}",
        f"data.stock_basic={data_dir / basic}",
        f"label.benchmark={BENCHMARK}",
    ]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return to_app_config(compose("config", overrides=data + overrides))


def fit_fixed(ds: Dataset, app: AppConfig) -> Any:
    """One booster with `FIXED`, trained as a trial is (on `tuning.trial_rows` of train, a
    seeded sample, early-stopped on `tuning.watch_rows` of validation's AUC)."""
    masks = ds.masks()
    matrices = build_matrices_in_batches(
        (ds.frame, np.flatnonzero(masks["train"])),
        (ds.frame, np.flatnonzero(masks["val"])),
        ds.feature_names,
        "label",
        app.model.max_bin,
        app.model.n_jobs,
        watch_rows=app.tuning.watch_rows,
        trial_rows=app.tuning.trial_rows,  # as a trial trains: a seeded sample of train
        seed=app.tuning.seed,
    )
    booster = train_early_stopping(
        XGBoostModel(app.model).base_params() | FIXED, matrices, app.model, app.tuning.eval_every
    )
    return booster[: booster.best_iteration + 1]


def day_quintiles(fwd_return: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Each row's quintile (0..4) of its forward return among its day's rows.

    The benchmark's return over a day's horizon is the same for every stock of that day (all
    exit at T+max_days unless suspended), so these are also the quintiles of the forward
    excess return; the return is known at T+max_days, inside the split's embargo.
    """
    pct = pd.Series(fwd_return).groupby(day).rank(method="average", pct=True).to_numpy()
    return np.clip(np.ceil(pct * 5) - 1, 0, 4).astype(np.float32)


def ranker_params(spec: str, app: AppConfig) -> dict[str, Any]:
    """XGBoost parameters of a ranker spec `objective/relevance[/pair_method[/pairs[/stop]]]`,
    e.g. `rank:pairwise/quintile/mean/1/ndcg` (XGBoost 3: pairs per sample for `mean`, the
    truncation of the list for `topk`; `stop`: the validation metric early stopping watches,
    default ndcg@top_k, `ndcg` for the whole day's list, `auc` XGBoost's AUC over the day
    groups (the share of each day's pairs of different relevance put in order, averaged over
    days), `rank_ic` the mean daily Rank IC against the forward return, `fit_ranker`'s custom
    metric; `eval_metric` is then None)."""
    objective, _, *rest = spec.split("/")
    params = {"objective": objective, "eval_metric": f"ndcg@{app.trading.top_k}"}
    if rest and rest[0]:
        params["lambdarank_pair_method"] = rest[0]
    if len(rest) > 1 and rest[1]:
        params["lambdarank_num_pair_per_sample"] = int(rest[1])
    if len(rest) > 2:
        params["eval_metric"] = None if rest[2] == "rank_ic" else rest[2]
    return params


def fit_ranker(ds: Dataset, app: AppConfig, spec: str) -> Any:
    """One booster with `FIXED` and an XGBoost ranking objective (`ranker_params`), each day a
    query group, relevance the label (`label`), the day's quintile of the forward return
    (`quintile`) or whether the row is in its day's top quintile (`top_quintile`, 0/1: the
    cross-sectional label a binary:logistic spec can learn too); trained on a seeded sample of
    whole train days of at most `tuning.trial_rows` rows (as the binary fit's row sample),
    early-stopped on the NDCG@top_k (or the mean daily Rank IC) of whole validation days (at
    most `tuning.watch_rows` rows)."""
    masks = ds.masks()
    relevance = spec.split("/")[1]
    day_all = ds.frame["day"].to_numpy()

    def by_day(seg: str, max_rows: int | None) -> tuple[xgb.DMatrix, np.ndarray]:
        rows = whole_days(day_all, np.flatnonzero(masks[seg]), max_rows, app.tuning.seed)
        rows = rows[np.argsort(day_all[rows], kind="stable")]  # groups must be contiguous
        day = day_all[rows]
        if relevance in ("quintile", "top_quintile"):
            y = day_quintiles(ds.frame["fwd_return"].to_numpy()[rows], day)
            y = (y == 4).astype(np.float32) if relevance == "top_quintile" else y
        else:
            y = ds.frame["label"].to_numpy()[rows]
        x = ds.frame.iloc[rows][ds.feature_names]
        return xgb.DMatrix(x, y, qid=day, nthread=app.model.n_jobs), rows

    dtrain, _ = by_day("train", app.tuning.trial_rows)
    dval, val_rows = by_day("val", app.tuning.watch_rows)
    params = XGBoostModel(app.model).base_params() | FIXED | ranker_params(spec, app)
    by_rank_ic = params["eval_metric"] is None
    if by_rank_ic:  # only the custom metric: the last metric is the one early stopping watches
        params = {k: v for k, v in params.items() if k != "eval_metric"}
        params["disable_default_eval_metric"] = 1
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=app.model.num_boost_round,
        evals=[(dval, "val")],
        early_stopping_rounds=app.model.early_stopping_rounds,
        custom_metric=rank_ic_metric(ds, val_rows, app.trading.top_k) if by_rank_ic else None,
        maximize=True,
        verbose_eval=False,
    )
    return booster[: booster.best_iteration + 1]


def rank_ic_metric(ds: Dataset, rows: np.ndarray, top_k: int) -> Any:
    """XGBoost custom metric: the mean daily Rank IC of the predictions of `rows` against
    their forward return (`evaluation.signal`, as reported)."""
    frame = ds.frame.iloc[rows][["trade_date", "label", "fwd_return"]].reset_index(drop=True)

    def rank_ic(predt: np.ndarray, _: xgb.DMatrix) -> tuple[str, float]:
        summary = summarise_signal(daily_signal(frame.assign(score=predt), top_k))
        return "rank_ic", float(summary["rank_ic_mean"])

    return rank_ic


def predict(booster: Any, ds: Dataset, rows: np.ndarray, batch: int = 1 << 20) -> np.ndarray:
    """Probabilities of `rows` in batches (no copy of a whole segment's features)."""
    cols = [ds.frame.columns.get_loc(c) for c in ds.feature_names]
    parts = [
        booster.inplace_predict(ds.frame.iloc[rows[lo : lo + batch], cols])
        for lo in range(0, len(rows), batch)
    ]
    return np.concatenate(parts) if parts else np.empty(0, np.float32)


def segment_report(
    ds: Dataset, seg: str, booster: Any, backtest: BacktestInputs, app: AppConfig
) -> tuple[dict[str, Any], BacktestReport, pd.DataFrame]:
    """AUC and base rate on the segment's labelled rows; the signal summary over every
    candidate (an unfillable top-k pick is not bought, as the records count it); the account of
    all its scored rows (`backtest.strategy`, the project's default: topk_dropout) with its
    exposure and its calendar years. Also returns the account and the scored candidates (for
    the baselines)."""
    scored = np.flatnonzero(ds.masks(all_rows=True)[seg])
    proba_all = predict(booster, ds, scored)
    measured = ds.masks()[seg][scored]
    columns = ["ts_code", "trade_date", "label", "fwd_return", "fillable"]
    every = ds.frame.iloc[scored][columns].assign(score=proba_all).reset_index(drop=True)
    y = every["label"].to_numpy()[measured]
    out: dict[str, Any] = {
        "rows": float(measured.sum()),
        "auc": float(roc_auc_score(y, proba_all[measured])),
        "base_rate": float(y.mean()),
    }
    summary = summarise_signal(daily_signal(every, app.trading.top_k))
    out |= {k: summary[k] for k in SIGNAL_KEYS}
    out["topk_precision_over_base"] = out["topk_precision_mean"] / out["base_rate"]
    scores = signal_scores(ds.frame.iloc[scored], proba_all, 1.0)
    report = run_window_backtest(backtest, scores, "")
    out |= {k: float(report.metrics[k]) for k in BT_KEYS}
    out["years"] = yearly_account(report)
    return out, report, every


def yearly_account(report: BacktestReport) -> dict[str, dict[str, float]]:
    """The account's compounded return by calendar year, the benchmark's and the benchmark's
    held at the account's exposure, and the excess over each (after costs)."""
    returns = strategy_returns(report.result)
    frame = pd.DataFrame(
        {
            "account": returns.to_numpy(),
            "benchmark": report.benchmark.to_numpy(np.float64),
            "at_exposure": exposure_benchmark(report.result, report.benchmark).to_numpy(),
        },
        index=returns.index,
    )
    years: dict[str, dict[str, float]] = {}
    for year, part in frame.groupby(frame.index.year):
        total = (1 + part).prod() - 1
        years[str(year)] = {
            "days": float(len(part)),
            "account": round(float(total["account"]), 5),
            "benchmark": round(float(total["benchmark"]), 5),
            "excess": round(float(total["account"] - total["benchmark"]), 5),
            "excess_at_exposure": round(float(total["account"] - total["at_exposure"]), 5),
        }
    return years


def baseline_report(
    backtest: BacktestInputs, model: BacktestReport, every: pd.DataFrame, app: AppConfig
) -> dict[str, Any]:
    """The one-line baselines on the same candidates and account (`compare_baselines`), with
    their calendar years."""
    candidates = every[["ts_code", "trade_date"]]
    comparison = compare_baselines(backtest, model, candidates, every, app.trading.top_k)
    out: dict[str, Any] = {}
    for contender in comparison.contenders[1:]:
        metrics = {k: float(contender.metrics[k]) for k in SIGNAL_KEYS if k in contender.metrics}
        metrics |= {k: float(contender.metrics[k]) for k in BT_KEYS if k in contender.metrics}
        out[contender.name] = metrics | {"years": yearly_account(contender.report)}
    return out


def daily_positions(ds: Dataset, market: Market) -> np.ndarray:
    """The row of `market.daily` each dataset row came from."""
    keys = pd.MultiIndex.from_arrays([market.daily["ts_code"], market.daily["trade_date"]])
    rows = pd.MultiIndex.from_arrays([ds.frame["ts_code"], ds.frame["trade_date"]])
    return keys.get_indexer(rows)


def relabel(
    ds: Dataset, market: Market, app: AppConfig, where: np.ndarray, day: np.ndarray
) -> int:
    """The same rows and features with `app.label`'s kind (`dataset.label_rows`, the universe
    and entry of `app`): its labels and fillable flags replace the columns; a row the kind
    leaves without an observed horizon is moved out of every segment (day -1), not copied out.

    Args:
        ds: the dataset built once for this feature set (changed in place).
        market: the market it was built from.
        app: the configuration with the label kind to use.
        where: each dataset row's row in `market.daily` (`daily_positions`).
        day: the dataset's original trading-day numbers.

    Returns:
        how many of the dataset's rows the kind does not keep.
    """
    bench = label_benchmark(app.data, app.label, market)
    rows = label_rows(market, ds.calendar, app.label, app.universe.rules(), bench)
    keep = rows.keep[where]
    ds.frame["label"] = rows.label[where]
    ds.frame["fillable"] = rows.fillable[where] & keep
    ds.frame["fwd_return"] = rows.fwd_return[where]
    ds.frame["day"] = np.where(keep, day, -1).astype(np.int32)
    return int((~keep).sum())


def run_combo(
    ds: Dataset,
    backtest: BacktestInputs,
    app: AppConfig,
    objective: str = "binary:logistic",
    with_baselines: bool = False,
) -> dict[str, Any]:
    """Fixed fit and the validation and test reports of one configuration (`objective`:
    binary:logistic or a `fit_ranker` spec), with the baselines beside it when asked."""
    start = time.perf_counter()
    binary = objective == "binary:logistic"
    booster = fit_fixed(ds, app) if binary else fit_ranker(ds, app, objective)
    fitted = time.perf_counter() - start
    out: dict[str, Any] = {
        "objective": objective,
        "features": len(ds.feature_names),
        "rounds": int(booster.num_boosted_rounds()),
        "fit_s": round(fitted, 1),
    }
    for seg in ("val", "test"):
        report, account, every = segment_report(ds, seg, booster, backtest, app)
        out[seg] = {k: v if isinstance(v, dict) else round(v, 5) for k, v in report.items()}
        if with_baselines:  # the same every run: once per segment
            out[f"{seg}_baselines"] = baseline_report(backtest, account, every, app)
    out["wall_s"] = round(time.perf_counter() - start, 1)
    out["segments"] = {s: ds.date_range(s) for s in ("train", "val", "test")}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    parser.add_argument("--labels", default=",".join(LABELS))
    parser.add_argument("--feature-sets", default=",".join(FEATURE_SETS))
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--sample", action="store_true", help="the 300-stock daily.parquet")
    parser.add_argument(
        "--rank",
        default="",
        help="label:feature_set pairs to also fit with each of --rankers, e.g. excess:basic",
    )
    parser.add_argument(
        "--rankers",
        default="rank:pairwise/label",
        help="objective/relevance[/pair_method[/pairs[/stop]]] specs, ';'-separated, relevance "
        "label, quintile or top_quintile, stop ndcg@k (default), ndcg or rank_ic, e.g. "
        "'rank:pairwise/quintile/mean/1/rank_ic;binary:logistic/top_quintile///rank_ic'",
    )
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    parser.add_argument("override", nargs="*", help="extra Hydra overrides for every run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    result: dict[str, Any] = {
        **run_facts("benchmarks.signal_compare"),
        "fixed_params": FIXED,
        "benchmark": BENCHMARK,
        "overrides": args.override,
        "data": "daily.parquet (300 stocks)" if args.sample else MARKET_FILES[0],
        "runs": [],
    }
    base = compose_app(args.data_dir, args.sample, [f"model.n_jobs={args.n_jobs}", *args.override])
    market = load_market(base.data)
    index_bars = load_benchmark(base.data, market, base.backtest.benchmark)
    backtest = None
    for name in args.feature_sets.split(","):
        overrides = [f"model.n_jobs={args.n_jobs}", f"features.sets={FEATURE_SETS[name]}"]
        start = time.perf_counter()
        first = compose_app(args.data_dir, args.sample, overrides + args.override)
        rules = first.universe.rules()
        ds = build_dataset(market, first.features, first.label, first.split, rules)
        built = round(time.perf_counter() - start, 1)
        if backtest is None:  # bars with limit flags from the first validation day on
            # bars with limit flags from 20 market days before validation (the baselines'
            # history) on
            first = history_start(market.daily["trade_date"], ds.date_range("val")[0])
            backtest = window_inputs(base.backtest, index_bars, market, first)
        where, day = daily_positions(ds, market), ds.frame["day"].to_numpy().copy()
        for kind in args.labels.split(","):
            app = compose_app(
                args.data_dir, args.sample, [*overrides, f"label.kind={kind}", *args.override]
            )
            log.info("running label=%s features=%s", kind, name)
            dropped = relabel(ds, market, app, where, day)
            facts = {"label": kind, "feature_set": name, "dataset_s": built, "unlabelled": dropped}
            run = facts | run_combo(ds, backtest, app, with_baselines=not result["runs"])
            log.info("%s", json.dumps(run))
            result["runs"].append(run)
            if f"{kind}:{name}" in args.rank.split(","):
                for spec in args.rankers.split(";"):
                    result["runs"].append(facts | run_combo(ds, backtest, app, spec))
                    log.info("%s", json.dumps(result["runs"][-1]))
                    if args.out:
                        args.out.write_text(json.dumps(result, indent=2) + "\n")
            gc.collect()
            if args.out:  # partial results survive an interrupted run
                args.out.write_text(json.dumps(result, indent=2) + "\n")
    result |= {"peak_rss_gb": round(peak_rss_gb(), 2), "load_end": load()}
    write_result(result, args.out)


if __name__ == "__main__":
    main()
