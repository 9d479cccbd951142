"""A trained ensemble behind the `FittedModel` protocol: its fitted members, each saved in its
own folder, and the day-rank blend of their scores (the pyfunc model loads it).

Kept free of the rest of the package's heavy imports, as every fitted model: the pyfunc model
loads it with the members' own classes."""

from __future__ import annotations

import importlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ashare_autotune.models.ensemble.blend import day_rank_blend

MEMBERS_FILE = "members.json"


@dataclass
class EnsembleInput:
    """Rows to score in the members' own forms (a study's validation, `scoring_matrix`), with
    each row's day (None: all one day)."""

    parts: dict[str, Any]  # member name -> its matrix of the rows
    days: np.ndarray | None


class EnsembleFitted:
    """Fitted members; the score of a row is the mean of the members' percentile ranks within
    the row's day (`blend.day_rank_blend`)."""

    kind: ClassVar[str] = "ensemble"
    scored_by_day: ClassVar[bool] = True  # a row's score depends on its day's other rows

    def __init__(self, members: dict[str, Any]) -> None:
        self.members = members
        self.best_round = max(m.best_round for m in members.values())
        self.best_score = math.nan  # no score of its own: each member early-stopped on its own

    def member_scores(self, x: Any) -> np.ndarray:
        """Each member's score of the rows (one column per member, in the members' order): a
        frame or float32 array in model column order, or an `EnsembleInput`."""
        if isinstance(x, EnsembleInput):
            return np.column_stack([m.predict(x.parts[n]) for n, m in self.members.items()])
        return np.column_stack([m.predict(x) for m in self.members.values()])

    def blend(self, scores: np.ndarray, days: np.ndarray | None) -> np.ndarray:
        """The day-rank blend of members' scores (`member_scores`) of rows of `days`."""
        return day_rank_blend(scores, days)

    def predict(self, x: Any, days: np.ndarray | None = None) -> np.ndarray:
        """The blend of the rows: an `EnsembleInput` carries its days; a frame or array is
        ranked by `days` (None: its rows are one day, as a day's picks are)."""
        if isinstance(x, EnsembleInput):
            days = x.days
        return self.blend(self.member_scores(x), days)

    def contributions(self, x: pd.DataFrame) -> np.ndarray:
        """None of its own: a rank blend has no margin; each member explains itself."""
        raise TypeError("an ensemble has no margin to explain: use each of its .members")

    def importance(self) -> dict[str, float]:
        """Each feature's share of a member's total gain, averaged over the members."""
        out: dict[str, float] = {}
        for member in self.members.values():
            gain = member.importance()
            total = sum(gain.values()) or 1.0
            for name, value in gain.items():
                out[name] = out.get(name, 0.0) + value / total / len(self.members)
        return out

    def save(self, directory: Path) -> None:
        """Each member in its folder `<name>/`, and `members.json` naming their classes."""
        listed = []
        for name, member in self.members.items():
            (Path(directory) / name).mkdir()
            member.save(Path(directory) / name)
            path = f"{type(member).__module__}:{type(member).__qualname__}"
            listed.append({"name": name, "kind": member.kind, "class": path})
        text = json.dumps({"members": listed}, indent=2)
        (Path(directory) / MEMBERS_FILE).write_text(text, encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, n_jobs: int = 1) -> EnsembleFitted:
        """A saved ensemble (`save`), its members predicting on `n_jobs` threads."""
        listed = json.loads((Path(directory) / MEMBERS_FILE).read_text(encoding="utf-8"))
        members = {}
        for entry in listed["members"]:
            module, name = entry["class"].split(":")
            member_cls = getattr(importlib.import_module(module), name)
            members[entry["name"]] = member_cls.load(Path(directory) / entry["name"], n_jobs)
        return cls(members)

    def requirements(self) -> list[str]:
        """The members' requirements, each once."""
        return list(dict.fromkeys(r for m in self.members.values() for r in m.requirements()))
