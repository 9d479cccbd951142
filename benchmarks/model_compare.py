"""Which model and objective, chosen on validation with the honest account (issue 25 item 5).

Whole market, the default dataset (`label.kind=excess`, `features=full`, the universe and split
of `conf/`), features built once by the project's own path (`modelling.dataset.build_dataset`
with the job's on-disk feature store). Each candidate is trained through the model seam as
`train` does (`models.build.build_model`, `jobs.pipeline_data.quantise`: its target, its matrices,
its sample of `tuning.trial_rows` training rows, `ScoreModel.fit` early-stopping on its own
validation metric) with one fixed setting, the centre of its search space (no tuning, so the
comparison is fair and fast), one candidate at a time. Then, on every candidate row of
validation and test:

- daily Rank IC (mean, t) against the forward return, and daily top-k precision on the label
  (`trading.top_k`) with the base rate (`evaluation.signal`);
- the threshold chosen on validation (`candidates.choose_threshold`) and its per-day capped
  picks' precision on the label on each segment (`evaluation.metrics.segment_metrics`);
- the default account (`backtest.strategy=topk_dropout`: 50 names, fully invested, after costs)
  against 000905.SH, its exposure, and the one-line baselines (`evaluation.baselines`) through
  the same account once per segment;
- all of it by calendar year as well (validation: 2019-12, 2020, 2021 H1).

Ensembles (`--ensembles a+b`) are computed from the members' scores, as `model=ensemble`
combines them: each row's mean of its within-day percentile ranks (`targets.day_rank`); and,
when one member is binary and the other not, also with `model.picks=filter_then_rank`
(`ensemble:a+b/filter_then_rank`): the classifier's threshold chosen on validation with the
rule's picks, the rule's score (`evaluation.picks_rule`) in place of the blend, as the
pipeline does. `--load-scores DIR` takes a candidate's scores saved by `--save-scores` instead
of training it (for the ensembles; it is not reported again); `--merge-into FILE` adds this
run's rows to an earlier result.

`--refit NAME` also refits that candidate on all training rows, early-stopping on validation,
as the job's final model is (`tuning.refit.fit_best` on a sampled study), timed, and reports
the refitted model as `NAME/refit`.

    python -m benchmarks.model_compare --out benchmarks/results/model_compare_whole_market.json

Choose from the validation columns; the test columns are reported, never chosen on.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ashare_autotune.config.schema import AppConfig
from ashare_autotune.data.benchmark import load_benchmark
from ashare_autotune.data.indices import label_benchmark
from ashare_autotune.data.loader import load_market
from ashare_autotune.evaluation import candidates as scored_candidates
from ashare_autotune.evaluation.backtest_window import (
    BacktestInputs,
    run_window_backtest,
    signal_scores,
    window_inputs,
)
from ashare_autotune.evaluation.baselines import history_start
from ashare_autotune.evaluation.metrics import segment_metrics
from ashare_autotune.evaluation.picks_rule import rule_scores
from ashare_autotune.evaluation.signal import daily_signal, summarise_signal
from ashare_autotune.jobs.pipeline_data import quantise
from ashare_autotune.modelling.dataset import Dataset, build_dataset
from ashare_autotune.modelling.targets import day_rank
from ashare_autotune.models.base import FittedModel
from ashare_autotune.models.build import build_model
from benchmarks.common import SHARED_DATA, Phases, load, peak_rss_gb, run_facts, write_result
from benchmarks.model_table import table
from benchmarks.signal_compare import (
    BT_KEYS,
    FIXED,
    SIGNAL_KEYS,
    baseline_report,
    compose_app,
    yearly_account,
)

log = logging.getLogger("model_compare")

# the centre of conf/model/lightgbm.yaml's space (geometric for log-scaled dimensions)
LGB_FIXED = {
    "learning_rate": 0.055,
    "num_leaves": 32,
    "min_child_samples": 50,
    "bagging_fraction": 0.75,
    "feature_fraction": 0.7,
    "lambda_l2": 0.141,
    "lambda_l1": 0.141,
    "min_gain_to_split": 2.5,
}
RANKED = ["tuning.metric=rank_ic"]  # the pipeline refuses auc for a non-binary objective
# name -> (Hydra overrides, the fixed parameters)
CANDIDATES: dict[str, tuple[list[str], dict[str, Any]]] = {
    "xgboost_binary": (["model=xgboost"], FIXED),
    "lightgbm_binary": (["model=lightgbm"], LGB_FIXED),
    "lightgbm_lambdarank": (["model=lightgbm", "model.objective=lambdarank", *RANKED], LGB_FIXED),
    "lightgbm_regression": (["model=lightgbm", "model.objective=regression", *RANKED], LGB_FIXED),
    "xgboost_rank_pairwise": (["model=xgboost", "model.objective=rank:pairwise", *RANKED], FIXED),
}
ENSEMBLES = "lightgbm_lambdarank+xgboost_binary,lightgbm_regression+xgboost_binary"
ROW_COLUMNS = ["ts_code", "trade_date", "label", "fwd_return", "fillable"]
PRECISION_KEYS = ("threshold", "val_best_precision", "val_precision", "val_n_picks")
PRECISION_KEYS += ("val_n_pick_days", "test_precision", "test_n_picks", "test_n_pick_days")
PRECISION_KEYS += ("val_base_rate", "test_base_rate")


def objective(name: str) -> str:
    """A candidate's `model.objective` (binary unless its overrides set another)."""
    given = [o.split("=", 1)[1] for o in CANDIDATES[name][0] if o.startswith("model.objective=")]
    return given[0] if given else "binary"


def signal_by_year(daily: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per calendar year of the signal days: mean daily Rank IC, its t, and the mean daily
    top-k precision (days with a NaN statistic left out)."""
    years = pd.to_datetime(daily.index.astype(str)).year
    out: dict[str, dict[str, float]] = {}
    for year, part in daily.groupby(years):
        ic = part["rank_ic"].dropna().to_numpy(np.float64)
        t = ic.mean() / ic.std(ddof=1) * np.sqrt(len(ic)) if len(ic) > 1 else np.nan
        out[str(year)] = {
            "days": float(len(part)),
            "rank_ic_mean": round(float(ic.mean()), 5),
            "rank_ic_t": round(float(t), 2),
            "topk_precision_mean": round(float(part["topk_precision"].mean()), 5),
        }
    return out


def segment_report(
    ds: Dataset, seg: str, scores: np.ndarray, backtest: BacktestInputs, app: AppConfig
) -> tuple[dict[str, Any], Any, pd.DataFrame]:
    """The signal summary over every candidate of `seg`, the account after costs, both by
    calendar year; also the account and the scored rows (for the baselines)."""
    every = ds.segment_rows(seg, ROW_COLUMNS, all_rows=True).reset_index(drop=True)
    every = every.assign(score=scores)
    daily = daily_signal(every, app.trading.top_k)
    summary = summarise_signal(daily)
    out: dict[str, Any] = {k: round(float(summary[k]), 5) for k in SIGNAL_KEYS}
    out["rank_ic_t"] = round(float(summary["rank_ic_t"]), 2)
    labelled = every["label"].notna() & every["fillable"].astype(bool)
    out["base_rate"] = round(float(every.loc[labelled, "label"].mean()), 5)
    account = run_window_backtest(backtest, signal_scores(every, scores, 1.0), "")
    out |= {k: round(float(account.metrics[k]), 5) for k in BT_KEYS}
    years = yearly_account(account)
    for year, values in signal_by_year(daily).items():
        years.setdefault(year, {}).update(values)
    out["years"] = years
    return out, account, every


def threshold_precision(
    ds: Dataset, app: AppConfig, scores: dict[str, np.ndarray], choice: Any = None
) -> dict:
    """The threshold chosen on validation (`choice`, else by `choose_threshold`) and the
    capped picks' precision on each segment."""
    val = scored_candidates.candidates(ds, "val", scores["val"])
    test = scored_candidates.candidates(ds, "test", scores["test"])
    if choice is None:
        choice = scored_candidates.choose_threshold(app.threshold, app.model.objective, *val)
    metrics = segment_metrics(val, test, choice, app.threshold.max_picks_per_day)
    return {k: round(float(metrics[k]), 5) for k in PRECISION_KEYS if k in metrics}


def fit_candidate(
    name: str, app: AppConfig, ds: Dataset, market: Any, refit: bool, phases: Phases
) -> list[tuple[str, dict[str, Any], dict[str, np.ndarray]]]:
    """Train one candidate through the seam with its fixed setting (and, with `refit`, again
    on all training rows); its scores of every validation and test candidate."""
    params = CANDIDATES[name][1]
    model = build_model(app.model)
    with phases.timed(f"{name}/matrices"):
        data = quantise(app.tuning, market, ds, model)
    with phases.timed(f"{name}/fit"):
        start = time.perf_counter()
        fitted = model.fit(params, data.matrices, app.tuning.eval_every)
        fit_s = time.perf_counter() - start
    fits: list[tuple[str, FittedModel, float]] = [(name, fitted, fit_s)]
    if refit:
        with phases.timed(f"{name}/refit"):
            start = time.perf_counter()
            m = data.matrices
            full = dataclasses.replace(m, train=m.full_train(), trial_train=None)
            fits.append((f"{name}/refit", model.fit(params, full, app.tuning.eval_every), 0.0))
            fits[-1] = (fits[-1][0], fits[-1][1], time.perf_counter() - start)
            del full
    del data
    gc.collect()
    out = []
    for label, fit, seconds in fits:
        with phases.timed(f"{label}/predict"):
            scores = {s: ds.predict(s, fit.predict, all_rows=True) for s in ("val", "test")}
        facts = {
            "params": params,
            "objective": app.model.objective,
            "model": fit.kind,
            "rounds": int(fit.best_round),
            "early_stop_score": round(float(fit.best_score), 5),
            "fit_s": round(seconds, 1),
        }
        out.append((label, facts, scores))
    return out


def blend(ds: Dataset, members: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Each row's mean of its members' within-day percentile ranks (`model=ensemble`)."""
    out = {}
    for seg in ("val", "test"):
        days = ds.segment_rows(seg, ["day"], all_rows=True)["day"].to_numpy()
        out[seg] = np.mean([day_rank(m[seg], days) for m in members], axis=0)
    return out


def rule(
    ds: Dataset, app: AppConfig, classifier: dict[str, np.ndarray], ranker: dict[str, np.ndarray]
) -> tuple[Any, dict[str, np.ndarray]]:
    """`model.picks=filter_then_rank` of two members' scores: the classifier's threshold chosen
    on validation with the rule's picks, and the rule's score of each segment."""
    choice = scored_candidates.rule_threshold(ds, app.threshold, classifier["val"], ranker["val"])
    out = {}
    for seg in ("val", "test"):
        days = ds.segment_rows(seg, ["trade_date"], all_rows=True)["trade_date"].to_numpy()
        out[seg] = rule_scores(classifier[seg], ranker[seg], days, choice.threshold)
    return choice, out


def report(
    ds: Dataset,
    app: AppConfig,
    backtest: BacktestInputs,
    scores: dict[str, np.ndarray],
    baselines: dict[str, Any],
    choice: Any = None,
) -> dict[str, Any]:
    """Validation and test of one candidate's scores (the baselines once per segment)."""
    out: dict[str, Any] = {"threshold_picks": threshold_precision(ds, app, scores, choice)}
    for seg in ("val", "test"):
        out[seg], account, every = segment_report(ds, seg, scores[seg], backtest, app)
        if seg not in baselines:
            baselines[seg] = baseline_report(backtest, account, every, app)
    return out


def dataset_and_account(app: AppConfig, store: Path) -> tuple[Any, Dataset, BacktestInputs]:
    """The market (its bars let go once used), the dataset as `train` builds it (features on
    disk in `store`) and the default account's inputs from the validation start's history."""
    market = load_market(app.data)
    bench = label_benchmark(app.data, app.label, market)
    index_bars = load_benchmark(app.data, market, app.backtest.benchmark)
    rules = app.universe.rules()
    ds = build_dataset(market, app.features, app.label, app.split, rules, bench, store)
    first = history_start(market.daily["trade_date"], ds.date_range("val")[0])
    backtest = window_inputs(app.backtest, index_bars, market, first)
    market = market.without_bars()
    gc.collect()
    return market, ds, backtest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--ensembles", default=ENSEMBLES, help="'a+b,...' of --candidates")
    parser.add_argument("--refit", default="", help="candidates also refitted on all rows")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--sample", action="store_true", help="the 300-stock daily.parquet")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    parser.add_argument("--save-scores", type=Path, help="each run's val/test scores (.npz)")
    parser.add_argument("--load-scores", type=Path, help="scores saved by --save-scores")
    parser.add_argument("--merge-into", type=Path, help="add the runs to this result JSON")
    parser.add_argument("--table", type=Path, help="print the README table of a result JSON")
    parser.add_argument("override", nargs="*", help="extra Hydra overrides for every run")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(args.table.read_text())))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    phases = Phases()
    result: dict[str, Any] = {
        **run_facts("benchmarks.model_compare"),
        "data": "daily.parquet (300 stocks)" if args.sample else "market_daily.parquet",
        "runs": {},
        "baselines": {},
    }
    common = [f"model.n_jobs={args.n_jobs}", *args.override]
    app = compose_app(args.data_dir, args.sample, common)
    with tempfile.TemporaryDirectory(prefix="model-compare-") as tmp:
        with phases.timed("dataset"):
            market, ds, backtest = dataset_and_account(app, Path(tmp))
        result["segments"] = ds.summary()
        result["features"] = len(ds.feature_names)
        kept: dict[str, dict[str, np.ndarray]] = {}
        wanted = {m for e in args.ensembles.split(",") if e for m in e.split("+")}
        for name in args.candidates.split(","):
            saved = args.load_scores / f"{name}.npz" if args.load_scores else None
            if saved is not None and saved.exists():
                kept[name] = dict(np.load(saved))
                log.info("candidate %s: scores from %s", name, saved)
                continue
            log.info("candidate %s", name)
            app_c = compose_app(args.data_dir, args.sample, [*CANDIDATES[name][0], *common])
            refit = name in args.refit.split(",")
            for label, facts, scores in fit_candidate(name, app_c, ds, market, refit, phases):
                with phases.timed(f"{label}/report"):
                    facts |= report(ds, app_c, backtest, scores, result["baselines"])
                result["runs"][label] = facts
                log.info("%s %s", label, json.dumps(facts))
                if label in wanted:
                    kept[label] = scores
                if args.save_scores:
                    args.save_scores.mkdir(parents=True, exist_ok=True)
                    np.savez(args.save_scores / f"{label.replace('/', '_')}.npz", **scores)
            if args.out:  # partial results survive an interrupted run
                args.out.write_text(json.dumps(result, indent=2) + "\n")
        for ensemble in filter(None, args.ensembles.split(",")):
            members = ensemble.split("+")
            if not all(m in kept for m in members):
                log.warning("ensemble %s: a member did not run", ensemble)
                continue
            scores = blend(ds, [kept[m] for m in members])
            facts = {"members": members, "combination": "mean of within-day percentile ranks"}
            # a rank score, not a probability: its threshold is searched over its quantiles
            ranked = compose_app(args.data_dir, args.sample, [*CANDIDATES[members[0]][0], *common])
            facts |= report(ds, ranked, backtest, scores, result["baselines"])
            result["runs"][f"ensemble:{ensemble}"] = facts
            binary = [m for m in members if objective(m) == "binary"]
            if len(members) != 2 or len(binary) != 1:
                continue
            ranker = next(m for m in members if m not in binary)
            with phases.timed(f"ensemble:{ensemble}/filter_then_rank"):
                choice, scores = rule(ds, app, kept[binary[0]], kept[ranker])
                facts = {"members": members, "combination": "filter_then_rank"}
                facts |= {"classifier": binary[0], "ranker": ranker}
                facts |= report(ds, app, backtest, scores, result["baselines"], choice)
            result["runs"][f"ensemble:{ensemble}/filter_then_rank"] = facts
    result |= {
        "phases_s": phases.rounded(),
        "phase_peak_rss_gb": phases.peaks(),
        "peak_rss_gb": round(peak_rss_gb(), 2),
        "load_end": load(),
    }
    write_result(merged(args.merge_into, result) if args.merge_into else result, args.out)


def merged(path: Path, result: dict[str, Any]) -> dict[str, Any]:
    """The result at `path` with this run's runs added (a run of the same name replaced) and
    this run's facts under `merged` (argv, when, load, phases, peak RSS)."""
    earlier = json.loads(path.read_text())
    earlier["runs"] |= result["runs"]
    for seg, rows in result["baselines"].items():
        earlier["baselines"].setdefault(seg, rows)
    facts = {k: v for k, v in result.items() if k not in ("runs", "baselines", "segments")}
    earlier.setdefault("merged", []).append(facts)
    return earlier


if __name__ == "__main__":
    main()
