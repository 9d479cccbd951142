"""The `model` group (conf/model/<name>.yaml): the model's class, objective, fixed settings and
Optuna search space; an ensemble's members are groups of the same schema."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ashare_autotune.config.choices import (
    FIXED_PARAMS,
    Missing,
    ParamType,
    PicksRule,
    TargetNorm,
    check,
    choose,
)

ENSEMBLE_OBJECTIVE = "blend"  # `models.ensemble`: members' scores blended by day rank
# keys a member sets itself; the others it takes from the ensemble (n_jobs, seed, rounds, ...)
MEMBER_KEYS = ("_target_", "objective", "params", "space", "members")
ENSEMBLE_KEYS = ("picks",)  # the ensemble's own, never handed to a member


@dataclass
class ParamSpec:
    """One dimension of the search space."""

    type: str = ParamType.float.value
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None

    def check(self, name: str) -> None:
        """Check this dimension, named `name` in `model.space`."""
        key = f"model.space.{name}"
        self.type = choose(ParamType, self.type, f"{key}.type")
        check(
            name not in FIXED_PARAMS, key, name, "is fixed by the project and may not be searched"
        )
        if self.type == ParamType.categorical:
            check(bool(self.choices), f"{key}.choices", self.choices, "needs at least one choice")
            return
        lo, hi = self.low, self.high
        ok = lo is not None and hi is not None and lo <= hi
        check(ok, f"{key}.low", lo, f"needs low <= high (high={hi})")
        check(not self.log or (lo or 0) > 0, f"{key}.low", lo, "must be > 0 on a log scale")


@dataclass
class ModelConfig:
    """The model (conf/model/<name>.yaml): its class, objective, settings fixed for every trial
    and its Optuna search space (`models.base.ScoreModel`)."""

    # The model class, built with the whole group (`models.build.build_model`).
    _target_: str = "ashare_autotune.models.xgboost.model.XGBoostModel"
    # What is learned: binary on the label (the precision threshold applies to its probability).
    objective: str = "binary"
    # regression: the forward return normalised per day; rank (the day's percentile in [0, 1])
    # is robust to the outliers of a limit-up run and removes the day's market move
    target_norm: str = TargetNorm.rank.value
    # lambdarank / rank:pairwise: relevance = the day's forward-return quantile, 0..bins-1
    relevance_bins: int = 5
    params: dict[str, Any] = field(default_factory=dict)  # fixed library parameters
    space: dict[str, ParamSpec] = field(default_factory=dict)  # searched by the study
    # model=ensemble: name -> a member's own group (_target_, objective, params, space; the
    # keys it does not set are the ensemble's), `models.ensemble.model.EnsembleModel`
    members: dict[str, Any] = field(default_factory=dict)
    # an ensemble's picks: `blend` (the day's best blends at or above the threshold) or
    # `filter_then_rank` (its binary member's probability at or above the threshold, ordered
    # by its ranking/regression member: `evaluation.picks_rule`; needs one member of each)
    picks: str = PicksRule.blend.value
    max_bin: int = 128
    # XGBoost: a NaN feature enters the booster as a value below every other (`fill`): its
    # histogram index is then 1 byte an entry instead of 4, the rounds ~1.5x faster, the trees
    # still split it off; `native`: XGBoost's missing values (a learned default direction).
    # LightGBM bins missing values compactly and ignores it.
    missing: str = Missing.fill.value
    num_boost_round: int = 500  # upper bound; early stopping on validation AUC picks the count
    # rounds without a better validation AUC, checked every tuning.eval_every rounds
    early_stopping_rounds: int = 20
    n_jobs: int = 2
    seed: int = 42

    def __post_init__(self) -> None:
        self.target_norm = choose(TargetNorm, self.target_norm, "model.target_norm")
        bins = self.relevance_bins
        check(2 <= bins <= 31, "model.relevance_bins", bins, "must be in 2..31")
        check(self.max_bin >= 2, "model.max_bin", self.max_bin, "must be >= 2")
        rounds = self.num_boost_round
        check(rounds >= 1, "model.num_boost_round", rounds, "must be >= 1")
        check(self.n_jobs >= 1, "model.n_jobs", self.n_jobs, "must be >= 1")
        why = "an ensemble (model.objective=blend) needs at least one member"
        check(self.objective != ENSEMBLE_OBJECTIVE or bool(self.members), "model.members", {}, why)
        self.picks = choose(PicksRule, self.picks, "model.picks")
        self.missing = choose(Missing, self.missing, "model.missing")
        if self.members:  # an ensemble searches its members' spaces, each name prefixed
            members = self.member_configs()
            self.space = {f"{m}.{k}": s for m, c in members.items() for k, s in c.space.items()}
        if self.picks == PicksRule.filter_then_rank:
            self.rule_members()
        for name, spec in self.space.items():
            spec.check(name)

    def member_configs(self) -> dict[str, ModelConfig]:
        """Each member's group (an ensemble's): the keys the member sets (`MEMBER_KEYS`: its
        class, XGBoost's by default, objective, params, space), the others the ensemble's."""
        own_keys = MEMBER_KEYS + ENSEMBLE_KEYS
        shared = {k: v for k, v in vars(self).items() if k not in own_keys}
        out = {}
        for name, group in self.members.items():
            own = dict(group or {})
            unknown = sorted(set(own) - {f.name for f in fields(ModelConfig)})
            check(not unknown, f"model.members.{name}", unknown, "unknown key(s)")
            space = {k: _spec(v) for k, v in dict(own.pop("space", None) or {}).items()}
            out[name] = ModelConfig(**(shared | own | {"space": space}))
        return out

    def rule_members(self) -> tuple[str, str]:
        """(the classifier, the ranker) of `model.picks=filter_then_rank`: the one member with
        the binary objective and the one with another (ranking, regression).

        Raises:
            ConfigError: naming `model.picks` when the model is not such an ensemble.
        """
        objectives = {n: c.objective for n, c in self.member_configs().items()}
        binary = [n for n, o in objectives.items() if o == "binary"]
        other = [n for n, o in objectives.items() if o != "binary"]
        listed = ", ".join(f"{n}={o}" for n, o in objectives.items()) or "none"
        why = (
            "needs model=ensemble with one binary member and one ranking or regression "
            f"member (members: {listed})"
        )
        check(len(binary) == 1 and len(other) == 1, "model.picks", str(self.picks), why)
        return binary[0], other[0]


def _spec(value: ParamSpec | dict[str, Any]) -> ParamSpec:
    return value if isinstance(value, ParamSpec) else ParamSpec(**value)
