"""Compare two sources' bars over their common stock-days: do their daily returns agree?

A return is a stock's close over its previous bar's close in the same source, minus one, so
two sources that adjust prices differently (qfq anchored on different days) still agree when
their data do; a day one source has and the other lacks shows up as a differing return on the
next common day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TOLERANCE = 1e-4


@dataclass
class SourceComparison:
    """How two sources' returns compare; `examples` lists the largest differences."""

    name_a: str
    name_b: str
    common: int
    compared: int
    differing: int
    only_a: int
    only_b: int
    tolerance: float
    examples: pd.DataFrame

    @property
    def share_differing(self) -> float:
        """Share of compared stock-days whose returns differ by more than the tolerance."""
        return self.differing / self.compared if self.compared else float("nan")

    def lines(self) -> list[str]:
        """A short report for the terminal."""
        head = (
            f"{self.name_a} vs {self.name_b}: {self.common} common stock-days "
            f"({self.only_a} only in {self.name_a}, {self.only_b} only in {self.name_b}); "
            f"returns differ by more than {self.tolerance:g} on {self.differing} of "
            f"{self.compared} ({self.share_differing:.2%})"
        )
        rows = [
            f"  {r.ts_code} {r.trade_date:%Y%m%d}: {self.name_a} {r.return_a:+.6f}, "
            f"{self.name_b} {r.return_b:+.6f}"
            for r in self.examples.itertuples()
        ]
        return [head, *rows]


def _returns(daily: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "ts_code": daily["ts_code"].astype(str).to_numpy(),
            "trade_date": daily["trade_date"].to_numpy(),
            "close": daily["close"].to_numpy(np.float64),
        }
    ).sort_values(["ts_code", "trade_date"], ignore_index=True)
    frame["ret"] = frame.groupby("ts_code")["close"].pct_change()
    return frame.drop(columns="close")


def compare_returns(
    a: pd.DataFrame,
    b: pd.DataFrame,
    name_a: str = "a",
    name_b: str = "b",
    tolerance: float = TOLERANCE,
    n_examples: int = 5,
) -> SourceComparison:
    """Compare the daily returns of two sources' bars on the stock-days both have.

    Args:
        a: bars of the first source (ts_code, trade_date, close).
        b: bars of the second source.
        name_a: the first source's name in the report.
        name_b: the second source's name.
        tolerance: the largest absolute return difference counted as agreement.
        n_examples: how many of the largest differences to list.

    Returns:
        A `SourceComparison`; a stock's first common day is not compared when either source
        has no earlier bar for it.
    """
    ra, rb = _returns(a), _returns(b)
    both = ra.merge(rb, on=["ts_code", "trade_date"], suffixes=("_a", "_b"))
    known = both["ret_a"].notna() | both["ret_b"].notna()
    compared = both.loc[known].copy()
    compared["diff"] = (compared["ret_a"] - compared["ret_b"]).abs().fillna(np.inf)
    bad = compared[compared["diff"] > tolerance]
    examples = bad.nlargest(n_examples, "diff").rename(
        columns={"ret_a": "return_a", "ret_b": "return_b"}
    )
    return SourceComparison(
        name_a,
        name_b,
        common=len(both),
        compared=len(compared),
        differing=len(bad),
        only_a=len(ra) - len(both),
        only_b=len(rb) - len(both),
        tolerance=tolerance,
        examples=examples.reset_index(drop=True),
    )
