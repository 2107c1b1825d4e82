"""Ingest state: a JSON object in the lake, written atomically, refused loudly when corrupt."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from marketlake.errors import MarketlakeError
from marketlake.lake.state import (
    STATE_KEY,
    IngestState,
    SymbolState,
    load_state,
    save_state,
)


def sample_state() -> IngestState:
    return IngestState(
        lake_kind="synthetic",
        symbols={
            "NVDA": SymbolState(
                "2024-07-03",
                "synthetic",
                "2024-07-03 20:00:00.123",
                None,
                earnings_on="2024-06-28",
                earnings_tried="2024-07-03",
            ),
            "BRK.B": SymbolState(None, None, None, "Invalid API call"),
        },
        quota_date="2024-07-03",
        quota_used=17,
        deferred=["AMD", "INTC"],
    )


def test_json_round_trip():
    state = sample_state()
    again = IngestState.from_json(state.to_json())
    assert again == state
    assert again.watermark("NVDA") == dt.date(2024, 7, 3)
    assert again.watermark("BRK.B") is None
    assert again.watermark("UNKNOWN") is None
    assert again.used_on(dt.date(2024, 7, 3)) == 17
    assert again.used_on(dt.date(2024, 7, 4)) == 0


def test_the_json_is_a_readable_versioned_object():
    body = json.loads(sample_state().to_json())
    assert body["version"] == 1
    assert body["quota"] == {"date": "2024-07-03", "used": 17}
    assert list(body["symbols"]) == ["BRK.B", "NVDA"]  # sorted, so diffs stay small


def test_save_then_load_through_the_store(lake_store):
    save_state(lake_store, sample_state())
    assert lake_store.exists(STATE_KEY)
    assert load_state(lake_store) == sample_state()


def test_a_missing_state_is_an_empty_state(lake_store):
    state = load_state(lake_store)
    assert state == IngestState()
    assert state.lake_kind is None
    assert state.symbols == {}
    assert not lake_store.exists(STATE_KEY)  # loading does not write


@pytest.mark.parametrize(
    "body",
    [
        b'{"version": 1, "symbols": {"NVDA": {"watermark": "2024-07-0',  # truncated
        b"\xff\xfe garbage",
        b'{"version": 99}',
        b'{"version": 1, "symbols": {"NVDA": {"colour": "red"}}}',
        b'{"version": 1, "quota": {"used": "many"}}',
    ],
)
def test_a_corrupt_state_file_is_a_marketlake_error_naming_the_file(lake_store, body):
    lake_store.put_bytes(STATE_KEY, body)
    with pytest.raises(MarketlakeError) as info:
        load_state(lake_store)
    assert STATE_KEY in str(info.value)
    assert "\n" not in str(info.value)


# Regression: a state file holding JSON that is not an object (or a non-object 'quota') raised
# AttributeError instead of the MarketlakeError naming the file.
@pytest.mark.parametrize("body", [b"[]", b"null", b'"state"', b'{"version": 1, "quota": 5}'])
def test_a_state_file_that_is_not_a_json_object_is_a_marketlake_error(lake_store, body):
    lake_store.put_bytes(STATE_KEY, body)
    with pytest.raises(MarketlakeError, match=r"ingest_state\.json"):
        load_state(lake_store)


def test_save_leaves_no_temp_files(lake_store):
    first = sample_state()
    first.quota_used = 0
    save_state(lake_store, first)
    for used in (1, 2):  # each run reads the state, then saves what it changed
        state = load_state(lake_store)
        state.quota_used = used
        save_state(lake_store, state)
    folder = lake_store.root / "state"
    assert sorted(p.name for p in folder.iterdir()) == ["ingest_state.json"]
    assert load_state(lake_store).quota_used == 2


def test_a_failing_write_keeps_the_previous_state(lake_store, monkeypatch):
    save_state(lake_store, sample_state())
    before = lake_store.get_bytes(STATE_KEY)

    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    changed = sample_state()
    changed.symbols["NVDA"].watermark = "2024-07-05"
    with pytest.raises(OSError, match="disk full"):
        save_state(lake_store, changed)
    monkeypatch.undo()

    assert lake_store.get_bytes(STATE_KEY) == before
    assert load_state(lake_store).watermark("NVDA") == dt.date(2024, 7, 3)
    assert sorted(p.name for p in (lake_store.root / "state").iterdir()) == ["ingest_state.json"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"version": 1, "symbols": {"NVDA": {"watermark": "garbage"}}}',
        b'{"version": 1, "symbols": {"NVDA": {"watermark": 20240628}}}',
        b'{"version": 1, "symbols": {"NVDA": {"invalid": "x", "invalid_on": "yesterday"}}}',
        b'{"version": 1, "quota": {"date": "07/03/2024", "used": 3}}',
        b'{"version": 1, "newest_ingest_date": "soon"}',
        b'{"version": 1, "symbols": {"NVDA": {"earnings_on": "2024-06-31"}}}',
        b'{"version": 1, "symbols": {"NVDA": {"earnings_tried": "last week"}}}',
    ],
)
def test_a_garbage_date_in_the_state_file_is_an_error_naming_the_file_and_the_symbol(
    lake_store, body
):
    lake_store.put_bytes(STATE_KEY, body)
    with pytest.raises(MarketlakeError) as info:
        load_state(lake_store)
    message = str(info.value)
    assert STATE_KEY in message and "\n" not in message
    assert "restore it" in message
    if b"NVDA" in body:
        assert "NVDA" in message
