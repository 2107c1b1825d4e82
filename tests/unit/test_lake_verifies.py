"""Issue 20: the lake verifies what it reads. Each test damages a lake as a disk, a hand or a
bug might, and checks the build blocks naming the object (or rebuilds around it where that is
the documented remedy) rather than publishing a silently wrong table."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil

import pytest
from test_failure_paths import after_close
from test_lake_integrity import Lake, symbol_rows, two_versions
from test_wap_versions import same_rows

from marketlake.engines.duckdb import DuckDBEngine
from marketlake.errors import BuildBlocked, MarketlakeError
from marketlake.ingest.importer import run_import, run_import_actions
from marketlake.lake import raw
from marketlake.lake.integrity import DAMAGED_PREFIX
from marketlake.lake.state import forget_landed, landed_key, load_landed
from marketlake.wap import pipeline as wap
from marketlake.wap.versions import load_registry, registry_key

ALL_ROWS = "SELECT * FROM daily_prices ORDER BY symbol, trade_date"


@pytest.fixture()
def lake(tmp_path):
    return Lake(tmp_path / "lake")


def raw_key(day: str, symbol: str) -> str:
    return f"{raw.RAW_PREFIX}ingest_date={day}/{symbol}.csv"


def rows(lake: Lake, sql: str = ALL_ROWS) -> list[dict]:
    with DuckDBEngine(lake.root, read_only=True) as engine:
        wap.follow_registry_read_only(lake.store, engine)
        return engine.fetch_arrow(sql).to_pylist()


def registry_bytes(lake: Lake) -> bytes:
    return lake.store.get_bytes(registry_key(wap.TABLE))


# -- 1. a raw object cut short blocks the incremental build ----------------------------------


def test_a_newest_raw_object_cut_short_blocks_the_incremental_build_naming_it(lake):
    two_versions(lake)
    newest = max(i.key for i in lake.store.list_objects(raw.RAW_PREFIX))
    assert newest == raw_key("2024-06-10", "NVDA")
    before = registry_bytes(lake)
    path = lake.store.path(newest)
    os.truncate(path, path.stat().st_size - 25)  # truncate -s -25: the last bar is torn
    with pytest.raises(BuildBlocked) as caught:
        lake.build()
    message = str(caught.value)
    assert f"raw object {newest} changed since it landed" in message
    assert "marketlake ingest --refetch NVDA" in message and "nothing was published" in message
    assert registry_bytes(lake) == before


# -- 2. an unrecorded raw object with a damaged watermark is never dropped silently -----------


def test_an_unrecorded_raw_object_with_a_lost_ingested_at_is_read_not_dropped(lake, tmp_path):
    two_versions(lake)
    key = raw_key("2024-06-10", "NVDA")
    lines = lake.store.get_bytes(key).split(b"\r\n")
    header, bars = lines[0], lines[1:-1]
    assert [b.split(b",")[1] for b in bars] == [
        b"2024-06-04",
        b"2024-06-05",
        b"2024-06-06",
        b"2024-06-07",
        b"2024-06-10",
    ]
    bars[-1] = bars[-1].rsplit(b",", 1)[0] + b","  # the last bar lost its ingested_at
    bars[1] = b",".join(bars[1].split(b",")[:4])  # 2024-06-05 garbled to four fields
    lake.store.put_bytes(key, b"\r\n".join([header, *bars, b""]))
    forget_landed(lake.store, key)  # as a lake from before landing records has it
    # Two bad bars of ten new ones: over the default 5% gate.
    lake.settings = dataclasses.replace(lake.settings, max_bad_row_pct=50.0)
    result = lake.build()
    assert (result.status, result.mode) == ("published", "incremental")
    # The bar without ingested_at is published: its partition is newer than the last read.
    june_10 = rows(
        lake,
        "SELECT close FROM daily_prices WHERE symbol = 'NVDA' AND trade_date = DATE '2024-06-10'",
    )
    assert june_10 == [{"close": 92.8}]
    # The four-field bar is read with empty prices, and the row checks quarantine it.
    quarantined = rows(
        lake,
        "SELECT DISTINCT check_name, symbol, CAST(trade_date AS VARCHAR) AS day "
        "FROM quarantined_rows ORDER BY check_name",
    )
    assert quarantined == [
        {"check_name": name, "symbol": "NVDA", "day": "2024-06-05"}
        for name in ("high_is_highest", "low_is_lowest", "prices_positive", "volume_non_negative")
    ]
    assert result.rows_quarantined == 1
    nvda_days = rows(
        lake,
        "SELECT CAST(trade_date AS VARCHAR) AS d FROM daily_prices WHERE symbol = 'NVDA' "
        "AND trade_date >= DATE '2024-06-03' ORDER BY 1",
    )
    assert [r["d"] for r in nvda_days] == [
        "2024-06-03",
        "2024-06-04",
        "2024-06-06",
        "2024-06-07",
        "2024-06-10",
    ]
    # The same lake built from scratch publishes the same rows.
    copy = Lake(tmp_path / "copy")
    shutil.copytree(lake.root, copy.root)
    copy.settings = dataclasses.replace(copy.settings, max_bad_row_pct=50.0)
    assert copy.build(full=True).status == "published"
    same_rows(rows(lake), rows(copy), rel=1e-12)


# -- 5. an old raw object edited after it landed blocks a full build -------------------------


def test_an_edited_old_raw_object_blocks_the_full_build_naming_it(lake):
    two_versions(lake)
    lake.build()
    key = raw_key("2024-06-03", "NVDA")
    assert key in load_landed(lake.store, landed_key(key))
    lines = lake.store.get_bytes(key).split(b"\r\n")
    fields = lines[5].split(b",")
    fields[5] = b"%.2f" % (float(fields[5]) + 1)  # one close, one dollar more
    lines[5] = b",".join(fields)
    lake.store.put_bytes(key, b"\r\n".join(lines))
    before = registry_bytes(lake)
    with pytest.raises(BuildBlocked) as caught:
        lake.build(full=True)
    message = str(caught.value)
    assert f"raw object {key} changed since it landed" in message
    assert "marketlake ingest --refetch NVDA" in message
    assert registry_bytes(lake) == before


# -- 6. an emptied raw object: blocked, then a refetch sets it aside ---------------------------


def test_an_emptied_raw_object_blocks_until_a_refetch_sets_it_aside(lake):
    two_versions(lake)
    lake.build()
    nvda = symbol_rows(lake, "NVDA")
    key = raw_key("2024-06-03", "NVDA")
    lake.store.path(key).write_bytes(b"")
    with pytest.raises(BuildBlocked, match=f"raw object {key} changed since it landed"):
        lake.build(full=True)
    report = lake.ingest("2024-06-10", refetch=["NVDA"])
    assert [r.status for r in report.results if r.symbol == "NVDA"] == ["fetched"]
    assert lake.build(full=True).status == "published"
    assert symbol_rows(lake, "NVDA") == nvda
    assert not lake.store.exists(key)
    assert lake.store.get_bytes(DAMAGED_PREFIX + key) == b""
    assert key not in load_landed(lake.store, landed_key(key))


# -- 7. a deleted raw object: blocked, then a re-import of its bars unblocks -----------------


def import_file(path, bars) -> None:
    """Bars as a user's export has them: date, open, high, low, close, volume."""
    columns = ["trade_date", "open", "high", "low", "close", "volume"]
    bars[columns].rename(columns={"trade_date": "date"}).to_csv(path, index=False)


def test_a_deleted_raw_object_blocks_naming_it_missing_until_a_refetch(lake):
    two_versions(lake)
    lake.build()
    nvda = symbol_rows(lake, "NVDA")
    key = raw_key("2024-06-03", "NVDA")
    lake.store.path(key).unlink()
    with pytest.raises(BuildBlocked) as caught:
        lake.build(full=True)
    assert f"raw object {key} is missing (it held " in str(caught.value)
    lake.ingest("2024-06-10", refetch=["NVDA"])
    assert key not in load_landed(lake.store, landed_key(key))
    assert lake.build(full=True).status == "published"
    assert symbol_rows(lake, "NVDA") == nvda


def test_a_deleted_raw_object_blocks_until_its_bars_are_imported_again(tmp_path):
    source = Lake(tmp_path / "source")  # a synthetic lake; imports need a market-data lake
    source.ingest("2024-06-03")
    export = tmp_path / "nvda.csv"
    import_file(export, raw.read_csv(source.store.get_bytes(raw_key("2024-06-03", "NVDA"))))
    lake = Lake(tmp_path / "lake")
    day = after_close("2024-06-03")
    run_import(lake.settings, lake.store, [export], symbol="NVDA", now=lambda: day)
    assert lake.build().status == "published"
    nvda = symbol_rows(lake, "NVDA")
    key = raw_key("2024-06-03", "NVDA")
    lake.store.path(key).unlink()
    with pytest.raises(BuildBlocked, match=f"raw object {key} is missing"):
        lake.build(full=True)
    later = after_close("2024-06-04")
    run_import(lake.settings, lake.store, [export], symbol="NVDA", now=lambda: later)
    assert lake.build(full=True).status == "published"
    assert symbol_rows(lake, "NVDA") == nvda
    assert key not in load_landed(lake.store, landed_key(key))


# -- 9. the registry holds every published file's digest --------------------------------------


def sha256_of_files(lake: Lake, partitions: dict[str, str]) -> dict[str, str]:
    return {
        info.key: "sha256:" + hashlib.sha256(lake.store.get_bytes(info.key)).hexdigest()
        for location in partitions.values()
        for info in lake.store.list_objects(location + "/")
    }


def test_the_registry_records_each_files_digest_and_keeps_those_of_years_not_rebuilt(lake):
    lake.ingest("2024-01-10")  # sixty days back: 2023 and 2024
    first = lake.build()
    lake.ingest("2024-01-17")
    second = lake.build()
    assert (first.mode, second.mode) == ("full", "incremental")
    registry = load_registry(lake.store, wap.TABLE)
    parent, child = registry.get(first.run_id), registry.get(second.run_id)
    assert child.parent == parent.run_id
    for version in (parent, child):
        assert sorted(version.partitions) == ["2023", "2024"]
        assert version.files == sha256_of_files(lake, version.partitions)
    # 2023 was not rebuilt: the child keeps its parent's files and their recorded digests.
    assert child.partitions["2023"] == parent.partitions["2023"]
    kept = parent.partitions["2023"] + "/"
    assert {k: d for k, d in child.files.items() if k.startswith(kept)} == {
        k: d for k, d in parent.files.items() if k.startswith(kept)
    }
    assert any(k.startswith(kept) for k in child.files)
    assert child.partitions["2024"] != parent.partitions["2024"]


def test_rollback_refuses_a_version_whose_files_are_damaged(tmp_path):
    lake = Lake(tmp_path / "lake")
    first = two_versions(lake)
    lake.build()
    target = load_registry(lake.store, wap.TABLE).get(first.run_id)
    key = sorted(target.files)[0]
    data = bytearray(lake.store.get_bytes(key))
    data[len(data) // 2] ^= 0xFF
    (lake.root / key).write_bytes(bytes(data))
    current = load_registry(lake.store, wap.TABLE).current
    with pytest.raises(MarketlakeError, match=f"version {first.run_id} cannot be rolled back to"):
        lake.rollback(to=first.run_id)
    assert load_registry(lake.store, wap.TABLE).current == current


# -- 10. splits and dividends are checked like bars ---------------------------------------------


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_a_damaged_splits_object_blocks_until_the_splits_are_imported_again(tmp_path, damage):
    """Before: a deleted or truncated raw splits file silently un-split history (adj_factor
    back to 1, exit 0)."""
    source = Lake(tmp_path / "source")
    source.ingest("2024-06-03")
    export = tmp_path / "nvda.csv"
    import_file(export, raw.read_csv(source.store.get_bytes(raw_key("2024-06-03", "NVDA"))))
    lake = Lake(tmp_path / "lake")
    day = after_close("2024-06-03")
    run_import(lake.settings, lake.store, [export], symbol="NVDA", now=lambda: day)
    splits = tmp_path / "splits.csv"
    splits.write_text("date,split_factor\n2024-05-15,2\n2024-05-22,3\n")
    run_import_actions(lake.settings, lake.store, [splits], "splits", "NVDA", now=lambda: day)
    assert lake.build().status == "published"
    adjusted = lake.scalar("SELECT max(adj_factor) FROM daily_prices")
    assert adjusted == 6
    key = "raw/splits/ingest_date=2024-06-03/NVDA.csv"
    assert load_landed(lake.store, landed_key(key))[key]["rows"] == 2
    if damage == "deleted":
        lake.store.path(key).unlink()
        problem = "is missing"
    else:
        data = lake.store.get_bytes(key)
        lake.store.path(key).write_bytes(data[: data.rindex(b"\r\n", 0, len(data) - 2) + 2])
        problem = "changed since it landed"
    with pytest.raises(BuildBlocked, match=f"raw object {key} {problem}.*--splits FILE"):
        lake.build(full=True)
    later = after_close("2024-06-04")
    run_import_actions(lake.settings, lake.store, [splits], "splits", "NVDA", now=lambda: later)
    assert lake.build(full=True).status == "published"
    assert lake.scalar("SELECT max(adj_factor) FROM daily_prices") == adjusted
    assert key not in load_landed(lake.store, landed_key(key))
