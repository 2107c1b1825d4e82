"""One writer at a time per lake.

A local lake: an flock on LAKE/.lock (DuckDB's catalog file allows a single writer).
A lake in S3: a lease, the object state/lock.json, taken and kept with conditional writes by
the CLI's writing commands, the ingest Lambda and the Glue job alike, so a rollback never
runs inside a build, nor a build inside another. Python 3.9-compatible: the Glue job imports it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from marketlake.errors import MarketlakeError
from marketlake.storage import LocalStore, ObjectStore, WriteConflict

log = logging.getLogger("marketlake.lock")

LOCK_KEY = "state/lock.json"

# How long a lease lasts unless renewed, and so how long a holder that died (a Lambda killed
# at its timeout, a Glue job stopped, a laptop losing power) keeps everyone else out: 10
# minutes, against daily runs and a person waiting at a prompt. The heartbeat renews every
# third of it (200 s): two renewals in a row may fail (an S3 hiccup, a laptop's Wi-Fi) before
# the lease lapses. Renewing costs one PUT each time (18 an hour), and one small noncurrent
# version, which the bucket's lifecycle expires.
#
# expires_at is written on the holder's clock and read on the taker's. A taker whose clock is
# s seconds ahead sees a lease end s seconds early; a live holder's lease always has at least
# 2/3 of the TTL left (6 min 40 s) on its own clock, so skews below that cannot take a live
# lease, and NTP keeps Lambda, Glue and laptops within a second. A taker whose clock is behind
# waits that much longer for a dead holder's lease: nothing worse.
LEASE_SECONDS = 600.0
# Rounds of create / read / take over before giving up: each lost round means another taker
# won, and the next read names it, so 3 is plenty.
TAKE_ATTEMPTS = 3

Clock = Callable[[], dt.datetime]


class LakeLocked(MarketlakeError):
    """Another command, ingest or build holds the lake's lock. The message is one line: who,
    since when, and what to do. `holder` is None when the lock could not be read."""

    def __init__(
        self,
        message: str,
        holder: str | None = None,
        started_at: dt.datetime | None = None,
        expires_at: dt.datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.holder = holder
        self.started_at = started_at
        self.expires_at = expires_at


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def holder_here(what: str) -> str:
    """A holder naming this process: "marketlake build on laptop.local pid 123"."""
    return f"{what} on {socket.gethostname()} pid {os.getpid()}"


@contextlib.contextmanager
def lake_lock(home: Path) -> Iterator[None]:
    home.mkdir(parents=True, exist_ok=True)
    path = home / ".lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise LakeLocked(
                f"another marketlake command (pid {holder}) is writing to {home}; "
                "wait for it to finish, then run this again"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            # Whatever a killed command was writing is garbage now: nobody else writes.
            LocalStore(home).remove_leftovers()
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


# -- the lease on an object store -------------------------------------------------------------


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: Any) -> dt.datetime:
    when = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return when


def _where(store: Any, key: str = "") -> str:
    """The lake (or one of its objects) as a user would name it."""
    uri = getattr(store, "uri", None)
    if uri is not None:
        return uri(key)
    return str(Path(store.root) / key) if key else str(store.root)


@dataclass
class Held:
    """What a lock object says."""

    holder: str
    started_at: dt.datetime
    expires_at: dt.datetime
    token: str


def _read_lock(store: Any, data: bytes) -> Held:
    """The lock's body, or LakeLocked saying how to clear a lock nobody can read. Such a
    lock is treated as held, never taken over: marketlake writes a whole body in one PUT, so
    a garbled one was written by someone else, who may still be relying on it."""
    try:
        body = json.loads(data)
        return Held(
            " ".join(str(body["holder"]).split())[:200],  # one line, whatever it holds
            _parse_time(body["started_at"]),
            _parse_time(body["expires_at"]),
            str(body.get("lease", "")),
        )
    except (ValueError, TypeError, KeyError) as exc:
        problem = f"{type(exc).__name__}: {exc}"[:120]
        uri = _where(store, LOCK_KEY)
        remove = f"aws s3 rm {uri}" if uri.startswith("s3://") else f"rm {uri}"
        raise LakeLocked(
            f"the lake's lock {uri} cannot be read ({problem}); if no marketlake command, "
            f"ingest or build is running on this lake, delete it ({remove}), then run this again"
        ) from None


def _refusal(store: Any, held: Held) -> LakeLocked:
    return LakeLocked(
        f"the lake {_where(store)} is locked by {held.holder} since {_iso(held.started_at)}; "
        "wait for it to finish, then run this again; a holder that died releases it at "
        f"{_iso(held.expires_at)}",
        held.holder,
        held.started_at,
        held.expires_at,
    )


@dataclass
class Lease:
    """The lake's lock while this process holds it. `lost` turns True when a renewal finds
    the lock taken by someone else (this holder stalled past expires_at); it is then neither
    renewed nor released."""

    store: Any
    holder: str
    ttl_seconds: float
    now: Clock
    token: str  # tells our own body from another holder's, whatever the tags say
    started_at: dt.datetime
    expires_at: dt.datetime
    tag: str | None = None
    lost: bool = False
    why_lost: str = ""
    released: bool = False
    _mutex: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def body(self) -> bytes:
        return json.dumps(
            {
                "holder": self.holder,
                "started_at": _iso(self.started_at),
                "expires_at": _iso(self.expires_at),
                "ttl_seconds": self.ttl_seconds,
                "lease": self.token,
            }
        ).encode()

    def renew(self) -> bool:
        """Push expires_at to now + ttl. False once the lease is lost or released."""
        with self._mutex:
            if self.lost or self.released:
                return False
            before = self.expires_at
            self.expires_at = self.now() + dt.timedelta(seconds=self.ttl_seconds)
            try:
                self.tag = self.store.put_if(LOCK_KEY, self.body(), self.tag)
                return True
            except WriteConflict:
                return self._after_conflict(before)
            except Exception as exc:
                # The next beat tries again; the lease lasts two more of them.
                self.expires_at = before
                log.warning("could not renew the lake's lock (will retry): %s", exc)
                return True

    def _after_conflict(self, before: dt.datetime) -> bool:
        try:
            current, tag = self.store.get_tagged(LOCK_KEY)
            held = None if current is None else _read_lock(self.store, current)
        except LakeLocked as exc:
            return self._lose(str(exc))
        except Exception as exc:
            self.expires_at = before
            log.warning("could not renew the lake's lock (will retry): %s", exc)
            return True
        if held is not None and held.token == self.token:
            # Our write landed but its answer was lost (an SDK retry then met a 412): it is
            # ours, under the tag S3 gave it.
            self.tag, self.expires_at = tag, held.expires_at
            return True
        self.expires_at = before
        if held is None:
            return self._lose("the lock was deleted")
        return self._lose(f"{held.holder} took it over at {_iso(held.started_at)}")

    def _lose(self, why: str) -> bool:
        self.lost, self.why_lost = True, why
        log.warning(
            "lost the lake's lock (%s): it expired at %s before this run renewed it; another "
            "writer may have run beside this one",
            why,
            _iso(self.expires_at),
        )
        return False

    def release(self) -> bool:
        """Delete the lock if it is still this lease's (a conditional delete: never another
        holder's). Never raises: it runs on the way out of a run that may be failing already,
        and a lock left behind lapses at expires_at anyway."""
        with self._mutex:
            if self.lost or self.released or self.tag is None:
                return False
            self.released = True
            try:
                self.store.delete_if(LOCK_KEY, self.tag)
                return True
            except WriteConflict:
                self._lose("it was no longer this run's at release")
            except Exception as exc:
                log.warning(
                    "could not release the lake's lock %s (%s); it lapses at %s",
                    _where(self.store, LOCK_KEY),
                    exc,
                    _iso(self.expires_at),
                )
            return False


def take_lock(
    store: ObjectStore, holder: str, ttl_seconds: float = LEASE_SECONDS, now: Clock = _utcnow
) -> Lease:
    """Create the lock object (If-None-Match: *), or take over one whose holder died (If-Match
    on the expired lock's tag: of two takers, one wins and the other is refused). Raise
    LakeLocked, in one line, while someone else holds it."""
    holder = " ".join(holder.split())
    token = uuid.uuid4().hex
    for _ in range(TAKE_ATTEMPTS):
        started = now()
        expires = started + dt.timedelta(seconds=ttl_seconds)
        lease = Lease(store, holder, ttl_seconds, now, token, started, expires)
        try:
            lease.tag = store.put_if(LOCK_KEY, lease.body(), None)
            return lease
        except WriteConflict:
            pass
        current, tag = store.get_tagged(LOCK_KEY)
        if current is None:
            continue  # released since: create it again
        held = _read_lock(store, current)
        if held.token == token:
            # Our create landed but its answer was lost (an SDK retry then met a 412).
            lease.tag, lease.started_at, lease.expires_at = tag, held.started_at, held.expires_at
            return lease
        if held.expires_at > now():
            raise _refusal(store, held)
        try:
            lease.tag = store.put_if(LOCK_KEY, lease.body(), tag)
        except WriteConflict:
            continue  # another taker won, or the holder renewed after all: read who holds it
        log.warning(
            "took over the lake's lock from %s, whose lease expired at %s",
            held.holder,
            _iso(held.expires_at),
        )
        return lease
    raise LakeLocked(
        f"the lake's lock {_where(store, LOCK_KEY)} kept changing hands while this run tried "
        f"to take it ({TAKE_ATTEMPTS} attempts): another run is starting; run this again later"
    )


@contextlib.contextmanager
def store_lock(
    store: ObjectStore,
    holder: str,
    ttl_seconds: float = LEASE_SECONDS,
    now: Clock = _utcnow,
    heartbeat: bool = True,
) -> Iterator[Lease]:
    """Hold the lake's lock for the block: taken on entry (LakeLocked if someone else holds
    it), renewed every ttl/3 by a daemon thread while the block runs (`heartbeat`), released on
    exit, also when the block raises.

    On S3 the conditional writes make this safe between machines. On a LocalStore the same
    checks run, but a check and its write are two steps: between processes, lake_lock is a
    local lake's lock."""
    lease = take_lock(store, holder, ttl_seconds, now)
    stop = threading.Event()
    beat = None
    if heartbeat:
        # Event.wait, not time.sleep: it ends at once on exit, and a test or rehearsal that
        # stubs time.sleep does not make it spin.
        def renewing() -> None:
            while not stop.wait(ttl_seconds / 3) and lease.renew():
                pass

        beat = threading.Thread(target=renewing, name="marketlake-lock-heartbeat", daemon=True)
        beat.start()
    try:
        yield lease
    finally:
        stop.set()
        if beat is not None:
            beat.join()
        lease.release()


def refuse_if_held(store: ObjectStore, now: Clock = _utcnow) -> None:
    """The LakeLocked a taker would meet now, without taking the lock (it reads only): for
    what starts a writer elsewhere (`build` starting the Glue job) and should be refused here
    rather than in that writer's log."""
    data, _ = store.get_tagged(LOCK_KEY)
    if data is None:
        return
    held = _read_lock(store, data)
    if held.expires_at > now():
        raise _refusal(store, held)
