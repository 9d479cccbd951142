"""The Market and Dataset containers: what they keep and what they let go."""

from __future__ import annotations

from ashare_autotune.data.market import Market


def test_market_without_bars_keeps_its_description_and_drops_the_rows(
    small_market: Market,
) -> None:
    light = small_market.without_bars()
    assert light.describe() == small_market.describe()
    # stocks with bars (the synthetic market lists some of its 40 after the window's start)
    assert light.n_stocks == small_market.n_stocks == small_market.daily["ts_code"].nunique()
    assert len(light.daily) == 0 and list(light.daily.columns) == list(small_market.daily.columns)
    assert len(small_market.daily) > 0  # the original is untouched
