"""Whole-market raw objects (one per session, every ticker: Polygon's grouped daily) through
the crawler's table and the build on Athena: read like any raw object, reconciled per object
by Athena's "$path", and a short one names the day to ask again."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from test_glue_job import (  # the same moto lake, FakeAthena and crawler stand-in
    BUCKET,
    DATABASE,
    FIRST_BARS,
    FIRST_INGEST,
    FIRST_NOW,
    SECOND_INGEST,
    SECOND_NOW,
    Lake,
    crawl_raw,
    environment,  # noqa: F401 (the fixture: moto's credentials, no awsglue)
    ingested,
    lake,  # noqa: F401 (the fixture)
)

from marketlake.errors import BuildBlocked
from marketlake.lake import raw
from marketlake.lake.state import landed_key, record_landed
from marketlake.providers.synthetic import SyntheticProvider
from marketlake.sessions import sessions_between

MARKET = ("AAA", "BBB", "CCC.B", "DDDpA")  # as Polygon spells them


def land_market(target: Lake, ingest_date: dt.date, first: dt.date, last: dt.date) -> dict:
    """One object per session holding every symbol's bar, as ingest.market lands a grouped
    answer; returns {key: rows}."""
    provider = SyntheticProvider(seed=7)
    bars = {s: provider.fetch_daily(s, first, last) for s in MARKET}
    landed = {}
    for session in sessions_between(first, last):
        rows = []
        for symbol in MARKET:
            day = bars[symbol][bars[symbol]["trade_date"] == session]
            rows.append(day.assign(symbol=symbol))
        frame = raw.bars_to_frame(None, pd.concat(rows), "polygon", ingested(ingest_date))
        key, data = raw.market_key(ingest_date, session), raw.frame_to_csv(frame)
        digest = target.store.put_bytes(key, data)
        record_landed(target.store, key, data, frame["trade_date"], digest)
        landed[key] = len(frame)
    crawl_raw(target.glue, target.s3, BUCKET, DATABASE)
    return landed


def test_market_objects_build_on_athena_beside_per_symbol_ones(lake):  # noqa: F811
    first_rows = lake.land(FIRST_INGEST, FIRST_BARS, ingested(FIRST_INGEST))
    lake.build(FIRST_NOW)
    landed = land_market(lake, SECOND_INGEST, dt.date(2024, 2, 1), dt.date(2024, 2, 7))
    assert all(raw.MARKET_OBJECT in key for key in landed)
    result, _ = lake.build(SECOND_NOW)
    assert result.status == "published"
    seen = lake.read("SELECT symbol, count(*) AS n FROM daily_prices GROUP BY symbol")
    counts = dict(zip(seen["symbol"], seen["n"]))
    sessions = len(sessions_between(dt.date(2024, 2, 1), dt.date(2024, 2, 7)))
    assert counts["CCC.B"] == counts["DDDpA"] == sessions
    assert sum(counts.values()) == first_rows + sessions * len(MARKET)
    # The raw table reads the objects too, and says which object each row came from.
    paths = lake.read('SELECT DISTINCT "$path" AS p FROM raw_daily_prices')["p"]
    assert sum(raw.MARKET_OBJECT in p for p in paths) == len(landed)


def test_a_market_object_short_of_rows_blocks_naming_the_day_to_ask_again(lake):  # noqa: F811
    lake.land(FIRST_INGEST, FIRST_BARS, ingested(FIRST_INGEST))
    lake.build(FIRST_NOW)
    landed = land_market(lake, SECOND_INGEST, dt.date(2024, 2, 1), dt.date(2024, 2, 7))
    # The record says one row more than the object holds, with its digest unchanged: only
    # the per-object count ("$path") can see it.
    key = sorted(landed)[2]
    record_file = landed_key(key)
    records = json.loads(lake.store.get_bytes(record_file))
    records[key]["rows"] += 1
    lake.store.put_bytes(record_file, json.dumps(records).encode())
    session = key.rsplit("~", 1)[1].removesuffix(".csv")
    with pytest.raises(BuildBlocked) as blocked:
        lake.build(SECOND_NOW)
    message = str(blocked.value)
    assert f"raw object {key} holds {landed[key]} of the {landed[key] + 1} rows" in message
    assert f"marketlake ingest --refetch-days {session}" in message
