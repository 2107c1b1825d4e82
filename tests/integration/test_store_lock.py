"""The lake's lock on an object store (marketlake.lock.store_lock): a lease object taken with
a conditional create, taken over with If-Match once its holder died, renewed by a heartbeat,
released with a conditional delete. On moto's S3 (which honours If-Match / If-None-Match on
PutObject and If-Match on DeleteObject, moto 5.2.5) and on the local lake, whose put_if and
delete_if make the same checks. The clock is injected: no test waits for a lease to lapse.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import boto3
import pytest
from athena_fake import Recorder

from marketlake.errors import MarketlakeError
from marketlake.lock import LOCK_KEY, LakeLocked, lake_lock, store_lock, take_lock
from marketlake.storage import LocalStore, S3Store, WriteConflict

BUCKET = "marketlake-lock-test"
T0 = dt.datetime(2026, 3, 2, 22, 0, tzinfo=dt.timezone.utc)
TTL = 600.0


class Clock:
    def __init__(self, at: dt.datetime = T0) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=seconds)


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


def lock_body(store) -> dict | None:
    data, _ = store.get_tagged(LOCK_KEY)
    return None if data is None else json.loads(data)


def test_put_if_answers_the_tag_get_tagged_reads_and_delete_if_checks_it(store):
    tag = store.put_if("state/x.json", b"1", None)
    assert store.get_tagged("state/x.json") == (b"1", tag)
    newer = store.put_if("state/x.json", b"2", tag)
    with pytest.raises(WriteConflict):
        store.delete_if("state/x.json", tag)  # stale: someone wrote since
    assert store.get_bytes("state/x.json") == b"2"
    store.delete_if("state/x.json", newer)
    assert store.get_tagged("state/x.json") == (None, None)
    with pytest.raises(WriteConflict):
        store.delete_if("state/x.json", newer)  # gone


def test_the_lock_is_taken_recorded_and_released(store):
    clock = Clock()
    with store_lock(store, "marketlake build on laptop pid 1", now=clock) as lease:
        body = lock_body(store)
        assert body["holder"] == "marketlake build on laptop pid 1"
        assert body["started_at"] == "2026-03-02T22:00:00Z"
        assert body["expires_at"] == "2026-03-02T22:10:00Z"
        assert lease.tag == store.get_tagged(LOCK_KEY)[1]
        assert not lease.lost
    assert lock_body(store) is None
    assert lease.released
    with store_lock(store, "the next one", now=clock):  # free again
        assert lock_body(store)["holder"] == "the next one"


def test_a_second_taker_is_refused_in_one_line_naming_the_holder(store):
    clock = Clock()
    with store_lock(store, "glue job marketlake-build run jr_1", now=clock):
        clock.advance(60)
        with pytest.raises(LakeLocked) as refused, store_lock(store, "rollback", now=clock):
            pytest.fail("a second holder got in")
        assert lock_body(store)["holder"] == "glue job marketlake-build run jr_1"  # untouched
    message = str(refused.value)
    assert "\n" not in message
    where = store.uri() if isinstance(store, S3Store) else str(store.root)
    assert message == (
        f"the lake {where} is locked by glue job marketlake-build run jr_1 since "
        "2026-03-02T22:00:00Z; wait for it to finish, then run this again; a holder that "
        "died releases it at 2026-03-02T22:10:00Z"
    )
    assert refused.value.holder == "glue job marketlake-build run jr_1"
    assert isinstance(refused.value, MarketlakeError)
    assert lock_body(store) is None  # the refused taker deleted nothing on its way out


def test_a_holder_name_over_several_lines_is_recorded_on_one(store):
    refused = pytest.raises(LakeLocked, match="locked by ingest lambda request 7 since")
    with store_lock(store, "ingest\nlambda  request 7", heartbeat=False), refused:
        take_lock(store, "other")


def test_an_expired_lock_is_taken_over_and_its_dead_holder_releases_nothing(store):
    clock = Clock()
    dead = take_lock(store, "ingest lambda request dead", now=clock)  # then killed
    clock.advance(TTL - 1)
    with pytest.raises(LakeLocked):
        take_lock(store, "too early", now=clock)
    clock.advance(2)
    with store_lock(store, "the build", now=clock, heartbeat=False) as lease:
        assert lock_body(store)["holder"] == "the build"
        assert lock_body(store)["expires_at"] == "2026-03-02T22:20:01Z"
        # The dead holder comes back: it may neither renew nor release the new lease.
        assert dead.renew() is False
        assert dead.lost and "the build took it over" in dead.why_lost
        assert dead.release() is False
        assert lock_body(store)["holder"] == "the build"
        assert lease.tag == store.get_tagged(LOCK_KEY)[1]
    assert lock_body(store) is None


class Racing:
    """A store whose next get_tagged, once it has read, lets another taker run to the end:
    both takers read the same expired lock, then both try to take it over."""

    def __init__(self, store, meanwhile) -> None:
        self.store = store
        self.meanwhile = meanwhile

    def __getattr__(self, name):
        return getattr(self.store, name)

    def get_tagged(self, key):
        seen = self.store.get_tagged(key)
        if self.meanwhile is not None:
            hook, self.meanwhile = self.meanwhile, None
            hook()
        return seen


def test_of_two_takers_of_an_expired_lock_exactly_one_wins(store):
    clock = Clock()
    take_lock(store, "dead holder", now=clock)
    clock.advance(TTL + 1)
    winners = []
    racing = Racing(store, lambda: winners.append(take_lock(store, "taker A", now=clock)))
    with pytest.raises(LakeLocked, match="locked by taker A since"):
        take_lock(racing, "taker B", now=clock)
    (winner,) = winners
    assert lock_body(store)["holder"] == "taker A"
    assert winner.tag == store.get_tagged(LOCK_KEY)[1]
    assert winner.release()
    assert lock_body(store) is None


def test_a_lapsed_holder_that_renews_before_a_taker_writes_keeps_the_lock(store):
    """A holder that stalled past its expiry renews just as a taker takes over: whoever's
    conditional write lands first keeps it, the other is told."""
    clock = Clock()
    slow = take_lock(store, "slow build", now=clock)
    clock.advance(TTL + 1)
    racing = Racing(store, slow.renew)  # the holder renews between the taker's read and write
    with pytest.raises(LakeLocked, match="locked by slow build"):
        take_lock(racing, "rollback", now=clock)
    assert not slow.lost
    assert lock_body(store)["expires_at"] == "2026-03-02T22:20:01Z"
    assert slow.release()


def test_renewing_pushes_expires_at_and_chains_the_tags(store):
    clock = Clock()
    with store_lock(store, "backfill", now=clock, heartbeat=False) as lease:
        for minutes in (3, 6, 9):
            clock.at = T0 + dt.timedelta(minutes=minutes)
            assert lease.renew()
            expected = (T0 + dt.timedelta(minutes=minutes, seconds=TTL)).strftime("%H:%M")
            assert lock_body(store)["expires_at"] == f"2026-03-02T{expected}:00Z"
            assert lock_body(store)["started_at"] == "2026-03-02T22:00:00Z"
            assert lease.tag == store.get_tagged(LOCK_KEY)[1]
        clock.advance(TTL - 1)  # 22:18:59, still within the last renewal's lease
        with pytest.raises(LakeLocked, match="releases it at 2026-03-02T22:19:00Z"):
            take_lock(store, "other", now=clock)
    assert lock_body(store) is None


def test_the_heartbeat_renews_on_its_own_and_stops_on_exit(store):
    clock = Clock()
    ttl = 0.3  # a beat every 0.1 s
    with store_lock(store, "long build", ttl_seconds=ttl, now=clock) as lease:
        clock.advance(3600)
        deadline = time.monotonic() + 5
        while lock_body(store)["expires_at"] != "2026-03-02T23:00:00Z":
            assert time.monotonic() < deadline, "the heartbeat never renewed the lease"
            time.sleep(0.02)
        assert not lease.lost
    assert lock_body(store) is None
    assert not [t for t in threading.enumerate() if t.name == "marketlake-lock-heartbeat"]


def test_the_heartbeat_stops_once_the_lease_is_lost(store):
    clock = Clock()
    with store_lock(store, "stalled", ttl_seconds=0.3, now=clock) as lease:
        # The lease lapsed (a laptop asleep) and another run took it over.
        clock.advance(1)
        other = take_lock(store, "other", now=clock)
        deadline = time.monotonic() + 5
        while not lease.lost:
            assert time.monotonic() < deadline, "the heartbeat never noticed"
            time.sleep(0.02)
        assert "other took it over" in lease.why_lost
    assert lock_body(store)["holder"] == "other"  # the loser released nothing
    assert other.release()


class Flaky:
    """A store whose put_if fails `fails` times with an error S3 may answer (a 500, a
    timeout), or writes and then raises as an SDK retry meeting its own write would."""

    def __init__(self, store, fails: int = 0, lost_answers: int = 0) -> None:
        self.store, self.fails, self.lost_answers = store, fails, lost_answers

    def __getattr__(self, name):
        return getattr(self.store, name)

    def put_if(self, key, data, tag):
        if self.fails:
            self.fails -= 1
            raise ConnectionError("S3 did not answer")
        if self.lost_answers:
            self.lost_answers -= 1
            self.store.put_if(key, data, tag)
            raise WriteConflict(f"{key}: PreconditionFailed on a conditional write")
        return self.store.put_if(key, data, tag)


def test_a_failed_renewal_keeps_the_lease_and_the_next_one_extends_it(store):
    clock = Clock()
    flaky = Flaky(store)
    with store_lock(flaky, "build", now=clock, heartbeat=False) as lease:
        clock.advance(200)
        flaky.fails = 1
        assert lease.renew()  # kept: the next beat tries again
        assert lease.expires_at == T0 + dt.timedelta(seconds=TTL)
        assert lock_body(store)["expires_at"] == "2026-03-02T22:10:00Z"
        assert lease.renew()
        assert lock_body(store)["expires_at"] == "2026-03-02T22:13:20Z"


def test_a_write_whose_answer_was_lost_is_still_recognised_as_ours(store):
    """An SDK retry of a conditional PUT that had landed meets its own write (412): the
    lease's token in the body tells it apart from another holder's."""
    clock = Clock()
    flaky = Flaky(store, lost_answers=1)
    with store_lock(flaky, "ingest", now=clock, heartbeat=False) as lease:
        assert lease.tag == store.get_tagged(LOCK_KEY)[1]
        flaky.lost_answers = 1
        clock.advance(200)
        assert lease.renew() and not lease.lost
        assert lease.tag == store.get_tagged(LOCK_KEY)[1]
        assert lock_body(store)["expires_at"] == "2026-03-02T22:13:20Z"
    assert lock_body(store) is None


def test_the_lock_is_released_when_the_block_raises(store):
    with pytest.raises(RuntimeError, match="the build failed"), store_lock(store, "build"):
        raise RuntimeError("the build failed")
    assert lock_body(store) is None
    assert not [t for t in threading.enumerate() if t.name == "marketlake-lock-heartbeat"]


def test_a_failed_release_never_hides_what_the_block_raised(store):
    class NoDelete:
        def __init__(self, store) -> None:
            self.store = store

        def __getattr__(self, name):
            return getattr(self.store, name)

        def delete_if(self, key, tag):
            raise ConnectionError("S3 did not answer")

    failing = pytest.raises(RuntimeError, match="the build failed")
    with failing, store_lock(NoDelete(store), "build", heartbeat=False):
        raise RuntimeError("the build failed")
    assert lock_body(store)["holder"] == "build"  # left to lapse at its expiry


@pytest.mark.parametrize("garbled", [b"not json{", b"{}", b'{"holder": "x", "expires_at": 3}'])
def test_an_unreadable_lock_is_held_and_the_refusal_says_how_to_clear_it(store, garbled):
    store.put_bytes(LOCK_KEY, garbled)
    with pytest.raises(LakeLocked) as refused:
        take_lock(store, "build", now=Clock(T0 + dt.timedelta(days=30)))
    message = str(refused.value)
    assert "\n" not in message
    if isinstance(store, S3Store):
        assert f"delete it (aws s3 rm s3://{BUCKET}/{LOCK_KEY})" in message
    else:
        assert f"delete it (rm {store.root / LOCK_KEY})" in message
    assert message.startswith("the lake's lock ") and "cannot be read" in message
    assert store.get_bytes(LOCK_KEY) == garbled  # never overwritten


def test_on_s3_the_lock_is_conditional_create_renew_and_delete(s3):
    recorded = Recorder(s3)
    store = S3Store(BUCKET, client=recorded)
    clock = Clock()
    with store_lock(store, "build", now=clock, heartbeat=False) as lease:
        created = lease.tag
        clock.advance(200)
        lease.renew()
    puts = recorded.named("put_object")
    assert [p.get("IfNoneMatch") for p in puts] == ["*", None]
    assert [p.get("IfMatch") for p in puts] == [None, created]
    (deleted,) = recorded.named("delete_object")
    assert deleted["Key"] == LOCK_KEY and deleted["IfMatch"] == lease.tag


def test_the_local_lake_lock_refuses_with_lake_locked_as_before(tmp_path):
    refused = pytest.raises(LakeLocked, match=r"another marketlake command \(pid \d+\) is writ")
    with lake_lock(tmp_path / "lake"), refused, lake_lock(tmp_path / "lake"):
        pass
