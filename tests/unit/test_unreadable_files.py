"""Issue 20: an unreadable raw object or published file is named, with what to do, on every
path that reads it (the build, a confined query, a plain reader)."""

from __future__ import annotations

import pytest
from test_failure_paths import Lake

from marketlake.engines.duckdb import DuckDBEngine
from marketlake.errors import DamagedFile, MarketlakeError
from marketlake.lake import raw
from marketlake.lake.state import forget_landed
from marketlake.wap import pipeline as wap
from marketlake.wap.versions import load_registry


@pytest.fixture()
def lake(tmp_path):
    return Lake(tmp_path / "lake")


def _mixed_line_ends(lake) -> str:
    """Rewrite the day's NVDA raw object with every third line ended by LF, not CRLF."""
    (key,) = [
        info.key
        for info in lake.store.list_objects(raw.RAW_PREFIX)
        if info.key.endswith("/NVDA.csv")
    ]
    lines = lake.store.path(key).read_bytes().split(b"\r\n")
    body = b"".join(ln + (b"\n" if i % 3 == 1 else b"\r\n") for i, ln in enumerate(lines[:-1]))
    lake.store.path(key).write_bytes(body)
    return key


def test_a_raw_object_with_mixed_line_ends_is_named_with_the_remedy(lake):
    lake.ingest("2024-06-03")
    lake.build()
    key = _mixed_line_ends(lake)
    # Recorded when it landed, the object is caught by its digest before it is read.
    with pytest.raises(MarketlakeError, match=f"raw object {key} changed since it landed"):
        lake.build(full=True)
    # One without a record (landed before records were kept) is named by the reader.
    forget_landed(lake.store, key)
    with pytest.raises(MarketlakeError) as info:
        lake.build(full=True)
    messages = [str(info.value)]
    with DuckDBEngine(lake.root, read_only=True, confined=True) as reader:
        for sql in ("SELECT * FROM raw_daily_prices", "SELECT count(*) FROM raw_daily_prices"):
            with pytest.raises(MarketlakeError) as info:
                reader.fetch_read(sql)
            messages.append(str(info.value))
    for message in messages:
        assert message.startswith(f"raw object {key} cannot be read ("), message
        assert "marketlake ingest --refetch NVDA" in message and "marketlake import" in message
        assert "\n" not in message


def test_the_build_still_quarantines_rows_it_cannot_parse(lake):
    """store_rejects stays on: an unparseable row is recorded, not an error."""
    lake.ingest("2024-06-03")
    key = f"{raw.RAW_PREFIX}ingest_date=2024-06-04/BAD.csv"
    good = "BAD,2024-05-31,10,11,9,10.5,100,synthetic,2024-06-04 22:00:00.000"
    header = ",".join(raw.RAW_COLUMNS)
    lake.store.put_bytes(key, f"{header}\r\n{good}\r\n{good},surplus\r\n".encode())
    with DuckDBEngine(lake.root) as engine:
        engine.register_raw(wap.RAW_TABLE, raw.RAW_PREFIX.rstrip("/"))
        engine.fetch_native(f"SELECT count(*) FROM {wap.RAW_TABLE}")
        assert list(engine.raw_rejects()["raw_object"]) == [key]


def _garble_middle(lake) -> str:
    """32 bytes overwritten at 90% of the published file: DuckDB then fails decoding a page
    header with a thrift error (don't know what type / Variable-length int) naming no file."""
    registry = load_registry(lake.store, wap.TABLE)
    (location,) = registry.current_version().partitions.values()
    (info,) = lake.store.list_objects(location + "/")
    path = lake.store.path(info.key)
    data = bytearray(path.read_bytes())
    middle = int(len(data) * 0.9)
    data[middle : middle + 32] = bytes(range(200, 232))
    path.write_bytes(bytes(data))
    return info.key


def test_a_garbled_published_file_is_named_though_duckdb_names_none(lake):
    lake.ingest("2024-06-03")
    lake.build()
    key = _garble_middle(lake)
    confined_reader = DuckDBEngine(lake.root, read_only=True, confined=True)
    with confined_reader, pytest.raises(DamagedFile) as confined:
        confined_reader.fetch_read("SELECT * FROM daily_prices")
    plain_reader = DuckDBEngine(lake.root, read_only=True)  # as status and dashboards read
    with plain_reader, pytest.raises(DamagedFile) as plain:
        plain_reader.fetch_arrow("SELECT * FROM daily_prices")
    for message in (str(confined.value), str(plain.value)):
        assert message.startswith(f"{key} in the lake is damaged ("), message
        assert "marketlake rollback" in message and "marketlake build --full" in message
