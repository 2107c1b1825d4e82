"""A late split on the cloud path: the Glue job's build on Athena (athena_fake over moto)
recomputes only the split symbol, through the same SQL and steps as on DuckDB."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from test_glue_job import (
    FIRST_BARS,
    FIRST_INGEST,
    FIRST_NOW,
    SECOND_NOW,
    Lake,
    ingested,
    lake,  # noqa: F401 (the fixture)
)

from marketlake.lake import actions

ROWS = "SELECT * FROM daily_prices WHERE symbol = '{}' ORDER BY trade_date"


def test_a_late_split_restates_only_its_symbol_on_athena(lake: Lake):  # noqa: F811
    lake.land(FIRST_INGEST, FIRST_BARS, ingested(FIRST_INGEST))
    first, _ = lake.build(FIRST_NOW)
    before = {s: lake.read(ROWS.format(s)) for s in ("AAA", "BBB")}

    valid = actions.judge_actions(
        actions.SPLITS, pd.DataFrame({"date": ["2023-12-01"], "value": ["2"]})
    )[0]
    actions.land_actions(
        lake.store,
        actions.SPLITS,
        "AAA",
        valid,
        "import",
        dt.date(2024, 2, 8),
        ingested(dt.date(2024, 2, 8)),
    )
    late, _ = lake.build(SECOND_NOW)

    assert (late.status, late.mode) == ("published", "incremental")
    assert late.restated == {"AAA": "2023-11-01"} and late.years == [2023, 2024]
    pd.testing.assert_frame_equal(lake.read(ROWS.format("BBB")), before["BBB"])
    aaa = lake.read(ROWS.format("AAA"))
    early = aaa["trade_date"] < dt.date(2023, 12, 1)
    assert set(aaa.loc[early, "adj_factor"]) == {2.0}
    assert set(aaa.loc[~early, "adj_factor"]) == {1.0}
    pd.testing.assert_series_equal(
        aaa["adj_close"][early], aaa["close"][early] / 2, check_names=False
    )
    assert first.run_id != late.run_id
