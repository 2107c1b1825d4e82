"""The raw zone's objects: keys, CSV text (header, CRLF, RFC 4180), exact numbers, merging."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from marketlake.engines.duckdb import DuckDBEngine
from marketlake.lake import raw

HEADER = "symbol,trade_date,open,high,low,close,volume,source,ingested_at"
TRICKY_SOURCE = 'csv import, "mine"'
STAMP = "2024-07-03 20:00:00.123"


def bar_frame(prices: list[tuple[float, float, float, float]], start=dt.date(2024, 7, 1)):
    return pd.DataFrame(
        {
            "trade_date": [start + dt.timedelta(days=i) for i in range(len(prices))],
            "open": [p[0] for p in prices],
            "high": [p[1] for p in prices],
            "low": [p[2] for p in prices],
            "close": [p[3] for p in prices],
            "volume": pd.Series([1000 + i for i in range(len(prices))], dtype="int64"),
        }
    )


def text_rows(symbol: str, days: list[str], close: str, stamp: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": symbol,
            "trade_date": days,
            "open": "10",
            "high": "11",
            "low": "9",
            "close": close,
            "volume": "100",
            "source": "synthetic",
            "ingested_at": stamp,
        },
        columns=raw.RAW_COLUMNS,
    )


def test_raw_key_format():
    key = raw.raw_key(dt.date(2024, 7, 3), "BRK.B")
    assert key == "raw/daily_prices/ingest_date=2024-07-03/BRK.B.csv"
    assert re.fullmatch(r"raw/daily_prices/ingest_date=\d{4}-\d{2}-\d{2}/[A-Z.\-0-9]+\.csv", key)
    assert raw.raw_key(dt.date(2025, 1, 9), "NVDA").startswith(raw.RAW_PREFIX)


def test_quarantine_key_is_outside_the_raw_zone():
    key = raw.quarantine_key(dt.date(2024, 7, 3), "NVDA", "20240703T200000", "csv")
    assert key.startswith("quarantine/daily_prices/ingest_date=2024-07-03/NVDA.")
    assert not key.startswith(raw.RAW_PREFIX)


def test_csv_has_the_design_header_and_crlf_line_ends():
    frame = raw.bars_to_frame("NVDA", bar_frame([(10, 11, 9, 10.5)] * 3), "synthetic", STAMP)
    data = raw.frame_to_csv(frame)
    assert data.startswith(HEADER.encode() + b"\r\n")
    assert data.endswith(b"\r\n")
    lines = data.split(b"\r\n")
    assert lines[-1] == b""
    assert len(lines) == 1 + 3 + 1
    assert all(b"\n" not in line and b"\r" not in line for line in lines)
    assert lines[1] == f"NVDA,2024-07-01,10,11,9,10.5,1000,synthetic,{STAMP}".encode()


def test_a_source_with_a_comma_and_a_quote_is_quoted_per_rfc_4180():
    frame = raw.bars_to_frame("AMD", bar_frame([(10, 11, 9, 10.5)]), TRICKY_SOURCE, STAMP)
    data = raw.frame_to_csv(frame)
    # Quoted field, inner quotes doubled; other fields unquoted.
    assert b',"csv import, ""mine""",' in data
    assert b'"AMD"' not in data

    back = raw.read_csv(data)
    assert list(back.columns) == raw.RAW_COLUMNS
    assert back.loc[0, "source"] == TRICKY_SOURCE
    assert back.loc[0, "ingested_at"] == STAMP
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)

    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert rows[0] == HEADER.split(",")
    assert rows[1][7] == TRICKY_SOURCE
    assert len(rows[1]) == 9


def test_the_tricky_source_reads_back_through_duckdb_as_the_build_reads_raw(tmp_path):
    frame = raw.bars_to_frame("AMD", bar_frame([(10, 11, 9, 10.5)] * 2), TRICKY_SOURCE, STAMP)
    key = raw.raw_key(dt.date(2024, 7, 3), "AMD")
    target = tmp_path / key
    target.parent.mkdir(parents=True)
    target.write_bytes(raw.frame_to_csv(frame))
    with DuckDBEngine(tmp_path) as engine:
        engine.register_raw("raw_check", raw.RAW_PREFIX.rstrip("/"))
        got = engine.fetch_df("SELECT source, ingested_at, close, ingest_date FROM raw_check")
    assert list(got["source"]) == [TRICKY_SOURCE] * 2
    assert list(got["close"]) == ["10.5"] * 2
    assert list(got["ingest_date"]) == ["2024-07-03"] * 2


def test_a_raw_view_since_a_day_lists_no_older_partition_and_the_catalog_keeps_them_all(
    tmp_path,
):
    """A daily build reads raw `since` its first unread ingest_date: DuckDB lists every file
    a glob matches before pruning, so the build's view names only the recent partitions. The
    catalog's view, which users query, still reads every day."""
    for day, symbol in [(1, "AMD"), (2, "AMD"), (3, "MU")]:
        frame = raw.bars_to_frame(symbol, bar_frame([(10, 11, 9, 10.5)]), "import", STAMP)
        target = tmp_path / raw.raw_key(dt.date(2024, 7, day), symbol)
        target.parent.mkdir(parents=True)
        target.write_bytes(raw.frame_to_csv(frame))
    # An older day's object this run must not even open: it is not a CSV the reader accepts.
    (tmp_path / "raw/daily_prices/ingest_date=2024-07-01/BAD.csv").write_bytes(b'a,"b\n')
    days = "SELECT DISTINCT ingest_date FROM raw_daily_prices ORDER BY 1"
    with DuckDBEngine(tmp_path) as engine:
        engine.register_raw("raw_daily_prices", raw.RAW_PREFIX.rstrip("/"), since="2024-07-02")
        assert list(engine.fetch_df(days)["ingest_date"]) == ["2024-07-02", "2024-07-03"]
        assert engine.raw_rejects().empty
        sql = engine.fetch_df("SELECT sql FROM duckdb_views() WHERE temporary")["sql"]
        assert "ingest_date=2024-07-01" not in " ".join(sql) and "*/*.csv" not in " ".join(sql)
        engine.register_raw("raw_daily_prices", raw.RAW_PREFIX.rstrip("/"), since="2024-07-04")
        empty = engine.fetch_df("SELECT * FROM raw_daily_prices")
        assert empty.empty and list(empty.columns) == [*raw.RAW_COLUMNS, "ingest_date", "$path"]
    with DuckDBEngine(tmp_path, read_only=True) as engine:
        every = list(engine.fetch_df(days)["ingest_date"])
        assert every == ["2024-07-01", "2024-07-02", "2024-07-03"]


def test_numbers_round_trip_exactly():
    rng = np.random.default_rng(7)
    awkward = [0.1 + 0.2, 1 / 3, 123.456789012345, 1e-7, 2.5e16, 99999.99, 0.01, 4321.0]
    prices = [(v, v * 1.5, v * 0.5, v) for v in [*awkward, *rng.lognormal(3, 2, 200)]]
    bars = bar_frame(prices)
    bars["volume"] = pd.Series([0, 1, 2**53 + 1, 2**62, *range(len(prices) - 4)], dtype="int64")
    frame = raw.bars_to_frame("MU", bars, "synthetic", STAMP)
    back = raw.read_csv(raw.frame_to_csv(frame))
    for column in ("open", "high", "low", "close"):
        parsed = np.array([float(text) for text in back[column]])
        assert (parsed == bars[column].to_numpy()).all(), column
    assert [int(text) for text in back["volume"]] == list(bars["volume"])
    assert list(back["trade_date"]) == [d.isoformat() for d in bars["trade_date"]]


def test_whole_prices_are_written_without_a_trailing_point_zero():
    frame = raw.bars_to_frame("MU", bar_frame([(10.0, 11.0, 9.0, 10.25)]), "synthetic", STAMP)
    assert list(frame.loc[0, ["open", "high", "low", "close", "volume"]]) == [
        "10",
        "11",
        "9",
        "10.25",
        "1000",
    ]


def test_read_csv_names_missing_columns():
    with pytest.raises(ValueError, match="ingested_at"):
        raw.read_csv(
            b"symbol,trade_date,open,high,low,close,volume,source\r\nA,2024-01-02,1,1,1,1,1,x\r\n"
        )


def test_read_csv_keeps_every_value_as_text():
    back = raw.read_csv(raw.frame_to_csv(text_rows("NA", ["2024-07-01"], "0010.50", STAMP)))
    assert back.loc[0, "symbol"] == "NA"  # not a missing value
    assert back.loc[0, "close"] == "0010.50"


def test_merge_keeps_the_newer_copy_and_never_loses_rows():
    old = pd.concat(
        [
            text_rows("AMD", ["2024-07-01", "2024-07-02"], "10.5", "2024-07-03 14:00:00.000"),
            text_rows("NVDA", ["2024-07-02"], "20", "2024-07-03 14:00:00.000"),
        ],
        ignore_index=True,
    )
    new = text_rows("AMD", ["2024-07-03", "2024-07-02"], "10.75", "2024-07-03 20:00:00.000")
    merged = raw.merge(old, new)
    keys = list(zip(merged["symbol"], merged["trade_date"]))
    assert keys == [
        ("AMD", "2024-07-01"),
        ("AMD", "2024-07-02"),
        ("AMD", "2024-07-03"),
        ("NVDA", "2024-07-02"),
    ]
    by_key = merged.set_index(["symbol", "trade_date"])
    assert by_key.loc[("AMD", "2024-07-01"), "close"] == "10.5"  # only in the old copy
    assert by_key.loc[("AMD", "2024-07-02"), "close"] == "10.75"  # the newer copy wins
    assert by_key.loc[("AMD", "2024-07-02"), "ingested_at"] == "2024-07-03 20:00:00.000"
    assert by_key.loc[("NVDA", "2024-07-02"), "close"] == "20"
    assert list(merged.index) == list(range(4))


def test_merge_round_trips_through_the_csv_text():
    old = raw.read_csv(raw.frame_to_csv(text_rows("AMD", ["2024-07-01"], "10.5", STAMP)))
    new = text_rows("AMD", ["2024-07-02"], "11", STAMP)
    merged = raw.read_csv(raw.frame_to_csv(raw.merge(old, new)))
    assert list(merged["trade_date"]) == ["2024-07-01", "2024-07-02"]


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (dt.datetime(2024, 7, 3, 20, 0, 0, 123456, tzinfo=dt.timezone.utc), STAMP),
        (dt.datetime(2024, 7, 3, 16, 0, 0, 123999, tzinfo=ZoneInfo("America/New_York")), STAMP),
        (
            dt.datetime(2024, 1, 5, 16, 0, tzinfo=ZoneInfo("America/New_York")),
            "2024-01-05 21:00:00.000",
        ),
        (
            dt.datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone.utc),
            "2024-12-31 23:59:59.999",
        ),
    ],
)
def test_format_timestamp_is_utc_with_milliseconds(moment, text):
    assert raw.format_timestamp(moment) == text
