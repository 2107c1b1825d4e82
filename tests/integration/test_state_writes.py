"""State writes on S3 can't clobber each other (issue 11, point 11).

The Lambda and the Glue job both read-modify-write JSON under state/. Every such write is a
conditional PUT (If-Match on the ETag read, If-None-Match: * to create); on 412 the writer
reads again and re-applies its change. Runs against moto, which honours both conditions on
put_object (moto 5.2.5), and against the local lake, which keeps the same semantics.
"""

from __future__ import annotations

import boto3
import pytest
from athena_fake import Recorder

from marketlake.lake.state import (
    STATE_KEY,
    clear_rebuild_needed,
    landed_key,
    load_landed,
    load_state,
    read_state_bytes,
    record_landed,
    save_state,
)
from marketlake.storage import LocalStore, S3Store, WriteConflict
from marketlake.wap import pipeline as wap
from marketlake.wap.versions import Registry, Version, load_registry, update_registry

BUCKET = "marketlake-state-test"


@pytest.fixture()
def s3(moto_aws):
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield client


@pytest.fixture(params=["s3", "local"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "lake")
    return S3Store(BUCKET, client=request.getfixturevalue("s3"))


class Interleaved:
    """A store whose next conditional write first lets another writer run to completion:
    the other read-modify-write lands between this writer's read and its write."""

    def __init__(self, store, meanwhile) -> None:
        self.store = store
        self.meanwhile = meanwhile
        self.conflicts = 0
        self.writes = 0

    def __getattr__(self, name):
        return getattr(self.store, name)

    def put_if(self, key, data, tag):
        if self.meanwhile is not None:
            hook, self.meanwhile = self.meanwhile, None
            hook()
        self.writes += 1
        try:
            return self.store.put_if(key, data, tag)
        except WriteConflict:
            self.conflicts += 1
            raise

    def update_bytes(self, key, change):
        from marketlake.storage import update_bytes

        return update_bytes(self, key, change)


def test_moto_and_s3store_honour_if_match_and_if_none_match(s3):
    recorded = Recorder(s3)
    store = S3Store(BUCKET, client=recorded)
    store.put_if("state/x.json", b"1", None)  # create
    with pytest.raises(WriteConflict):
        store.put_if("state/x.json", b"2", None)  # exists already
    data, tag = store.get_tagged("state/x.json")
    assert data == b"1"
    store.put_if("state/x.json", b"2", tag)
    with pytest.raises(WriteConflict):
        store.put_if("state/x.json", b"3", tag)  # stale ETag: 412
    assert store.get_bytes("state/x.json") == b"2"
    puts = recorded.named("put_object")
    assert [p.get("IfNoneMatch") for p in puts] == ["*", "*", None, None]
    assert [p.get("IfMatch") for p in puts] == [None, None, tag, tag]


def _seed(store) -> None:
    state = load_state(store)
    state.entry("NVDA").watermark = "2024-06-28"
    state.rebuild_needed = True
    state.quota_date, state.quota_used = "2024-07-01", 3
    save_state(store, state)


def test_two_writers_of_the_ingest_state_lose_neither_update(store):
    """The Lambda and the Glue job read the state, each changes its part; the one that saves
    last must not write back the other's fields as it read them."""
    _seed(store)
    lambda_view, glue_view = load_state(store), load_state(store)
    lambda_view.entry("AMD").watermark = "2024-07-01"
    lambda_view.quota_used = 4
    glue_view.rebuild_needed = False
    save_state(store, glue_view)
    save_state(store, lambda_view)  # read before the Glue job saved
    stored = load_state(store)
    assert stored.rebuild_needed is False  # the Glue job's update survived
    assert stored.watermark("AMD").isoformat() == "2024-07-01"
    assert stored.watermark("NVDA").isoformat() == "2024-06-28"
    assert stored.quota_used == 4
    assert lambda_view.rebuild_needed is False  # the saver now holds the merged state


def test_a_write_that_lands_mid_update_is_re_read_and_re_applied(store):
    """Deterministic interleaving inside one read-modify-write: writer A reads, writer B
    reads-modifies-writes completely, then A's conditional write fails (412) and A retries
    on B's state."""
    _seed(store)
    a, b = load_state(store), load_state(store)
    a.entry("AMD").watermark = "2024-07-01"
    b.entry("INTC").watermark = "2024-07-02"
    b.deferred = ["TSM"]
    racing = Interleaved(store, lambda: save_state(store, b))
    save_state(racing, a)
    assert racing.conflicts == 1 and racing.writes == 2
    stored = load_state(store)
    assert {s: stored.watermark(s).isoformat() for s in ("NVDA", "AMD", "INTC")} == {
        "NVDA": "2024-06-28",
        "AMD": "2024-07-01",
        "INTC": "2024-07-02",
    }
    assert stored.deferred == ["TSM"]


def test_creating_state_twice_at_once_keeps_both(store):
    """No object yet: both writers create it (If-None-Match: *); the second re-reads."""
    a, b = load_state(store), load_state(store)
    a.entry("AMD").watermark = "2024-07-01"
    b.entry("NVDA").watermark = "2024-07-02"
    racing = Interleaved(store, lambda: save_state(store, b))
    save_state(racing, a)
    assert racing.conflicts == 1
    assert sorted(load_state(store).symbols) == ["AMD", "NVDA"]


def test_raw_landed_records_written_at_once_keep_both(store):
    one = "raw/daily_prices/ingest_date=2024-07-01/NVDA.csv"
    two = "raw/daily_prices/ingest_date=2024-07-01/AMD.csv"
    racing = Interleaved(store, lambda: record_landed(store, two, b"y", ["2024-07-01"]))
    record_landed(racing, one, b"x", ["2024-06-28", "2024-07-01"])
    assert racing.conflicts == 1
    records = load_landed(store, landed_key(one))
    assert {k: v["rows"] for k, v in records.items()} == {one: 2, two: 1}


def test_a_full_build_leaves_the_rebuild_flag_an_ingest_set_meanwhile(store):
    """The build clears rebuild_needed only if no ingest wrote the state since it looked:
    an ingest may have landed bars in an old partition after the build listed raw."""
    _seed(store)
    seen = read_state_bytes(store)
    ingest = load_state(store)
    ingest.entry("AMD").watermark = "2024-07-01"
    save_state(store, ingest)
    assert clear_rebuild_needed(store, seen) is False
    assert load_state(store).rebuild_needed is True
    assert clear_rebuild_needed(store, read_state_bytes(store)) is True
    assert load_state(store).rebuild_needed is False


def _version(run_id: str, parent: str | None) -> Version:
    return Version(run_id, "2024-07-01T00:00:00+00:00", "full", "sql", {}, parent=parent)


def test_registry_updates_racing_keep_both(store):
    """A prune (forget old versions) and a publish at once: the publish is kept."""
    registry = Registry(wap.TABLE, current="R2", versions=[_version("R1", None)])
    registry.versions.append(_version("R2", "R1"))
    update_registry(store, wap.TABLE, lambda _stored: registry)

    def publish() -> None:
        wap._commit(store, "R2", "R3", _version("R3", "R2"))

    def forget_r1(latest: Registry) -> Registry:
        latest.versions = [v for v in latest.versions if v.run_id != "R1"]
        return latest

    racing = Interleaved(store, publish)
    update_registry(racing, wap.TABLE, forget_r1)
    assert racing.conflicts == 1
    stored = load_registry(store, wap.TABLE)
    assert stored.current == "R3"
    assert [v.run_id for v in stored.versions] == ["R2", "R3"]


def test_a_publish_built_on_a_version_no_longer_current_is_refused(store):
    """Two builds both built on R1: the second to publish must not hide the first's bars by
    switching to a version that never saw them; it is refused and nothing changes."""
    update_registry(store, wap.TABLE, lambda _: Registry(wap.TABLE, "R1", [_version("R1", None)]))
    wap._commit(store, "R1", "R2", _version("R2", "R1"))
    with pytest.raises(wap.PublishConflict, match="switched to run R2"):
        wap._commit(store, "R1", "R3", _version("R3", "R1"))
    stored = load_registry(store, wap.TABLE)
    assert stored.current == "R2"
    assert [v.run_id for v in stored.versions] == ["R1", "R2"]


def test_state_key_is_written_conditionally_on_s3(s3):
    recorded = Recorder(s3)
    store = S3Store(BUCKET, client=recorded)
    _seed(store)
    state = load_state(store)
    state.entry("AMD").watermark = "2024-07-01"
    save_state(store, state)
    puts = [p for p in recorded.named("put_object") if p["Key"] == STATE_KEY]
    assert puts[0].get("IfNoneMatch") == "*"
    assert puts[1].get("IfMatch", "").startswith('"')


def test_an_sdk_without_conditional_writes_is_named_before_any_state_write():
    """An old Lambda runtime or Glue image (botocore < 1.35.69) would reject IfMatch on every
    state write: the store says which SDK and what to use, and writes nothing."""
    import types

    from marketlake.errors import ConfigError
    from marketlake.storage import S3Store, require_conditional_writes

    client = boto3.client("s3", region_name="us-east-1")
    require_conditional_writes(client)  # this venv's botocore has them
    members = {"Bucket": None, "Key": None, "Body": None}  # PutObject before late 2024
    model = types.SimpleNamespace(input_shape=types.SimpleNamespace(members=members))
    old = types.SimpleNamespace(
        meta=types.SimpleNamespace(
            service_model=types.SimpleNamespace(operation_model=lambda name: model)
        ),
        put_object=lambda **kw: pytest.fail("an old SDK must not be asked to write"),
    )
    with pytest.raises(ConfigError, match=r"no S3 conditional writes .* 1\.35\.69 or newer"):
        S3Store("bucket", client=old).put_if("state/ingest_state.json", b"{}", None)


def test_two_ingests_on_one_day_both_count_against_the_quota(store):
    """Both spent requests: the stored count is the sum of what each added, never the larger
    of the two (which would let a third run overspend the daily quota)."""
    _seed(store)  # 3 used on 2024-07-01
    first, second = load_state(store), load_state(store)
    first.quota_used += 5
    second.quota_used += 2
    save_state(store, first)
    save_state(store, second)
    assert load_state(store).quota_used == 3 + 5 + 2
    fresh_day = load_state(store)
    fresh_day.quota_date, fresh_day.quota_used = "2024-07-02", 1
    other = load_state(store)
    save_state(store, fresh_day)
    other.quota_date, other.quota_used = "2024-07-02", 4  # its own first calls of the new day
    save_state(store, other)
    assert (load_state(store).quota_date, load_state(store).quota_used) == ("2024-07-02", 5)
