"""Object stores keyed like S3: the local lake directory, or a bucket."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Protocol

import tenacity

from marketlake.errors import LakeUnreachable, MarketlakeError
from marketlake.faults import crash_point


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    version: str  # an mtime or an ETag: changes whenever the content is rewritten


class ObjectStore(Protocol):
    def put_bytes(self, key: str, data: bytes) -> str:
        """Write `data` at `key` atomically: a reader sees the old object or the new one.
        Returns the object's digest, as digests() will report it while it is unchanged."""

    def get_bytes(self, key: str) -> bytes:
        """Raise KeyError when there is no object at `key`."""

    def exists(self, key: str) -> bool: ...

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        """Objects whose key starts with `prefix`, sorted by key."""

    def list_prefixes(self, prefix: str) -> list[str]:
        """The names of the "folders" directly under `prefix` (which ends with '/'), sorted."""

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix`; return how many went."""

    def make_durable(self, prefix: str) -> None:
        """Make every object under `prefix`, written by anyone, survive a power cut."""

    def digests(self, prefix: str, reuse: bool = False) -> dict[str, str]:
        """The digest of every object under `prefix`, by key, as cheaply as the store can tell
        it: what put_bytes returned when it wrote the object, while its bytes are unchanged.
        `reuse` (readers): a store that hashes may reuse a digest it computed before for a
        file whose metadata shows no write since."""

    def get_tagged(self, key: str) -> tuple[bytes | None, str | None]:
        """The object at `key` and a tag of this exact content (an ETag), or (None, None)."""

    def put_if(self, key: str, data: bytes, tag: str | None) -> str:
        """Write `data` at `key` only if the object is still the one `tag` names (tag None:
        only if there is no object). Raise WriteConflict, writing nothing, otherwise.
        Returns the tag of what was written: the writer's next put_if or delete_if."""

    def delete_if(self, key: str, tag: str) -> None:
        """Delete the object at `key` only if it is still the one `tag` names. Raise
        WriteConflict, deleting nothing, otherwise (also when it is gone)."""

    def update_bytes(self, key: str, change: Change) -> bytes | None:
        """Read-modify-write of one object that never loses another writer's update; see
        update_bytes() below."""


# A change of one object: its current bytes (None: no object) -> the new bytes, or None to
# write nothing. It may run more than once (after a conflict): it must derive its answer
# from what it is given, not from state of its own earlier calls.
Change = Callable[[Optional[bytes]], Optional[bytes]]
UPDATE_ATTEMPTS = 8


class WriteConflict(MarketlakeError):
    """Another writer changed the object between our read and our conditional write."""


def update_bytes(store, key: str, change: Change, attempts: int = UPDATE_ATTEMPTS):
    """Read the object with its tag, apply `change`, and write the result only if the object
    is still the one read. On a conflict (someone wrote in between), read again and apply
    `change` again to what they wrote, a bounded number of times. Returns what was written
    (or, when `change` answers None, the current bytes)."""

    def attempt() -> bytes | None:
        current, tag = store.get_tagged(key)
        new = change(current)
        if new is None:
            return current
        store.put_if(key, new, tag)
        return new

    try:
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(WriteConflict),
            stop=tenacity.stop_after_attempt(attempts),
            wait=tenacity.wait_random_exponential(multiplier=0.05, max=2.0),
            reraise=True,
        )(attempt)
    except WriteConflict as exc:
        raise WriteConflict(
            f"{key} kept changing under this write ({attempts} attempts); another run is "
            f"writing it: run this again when it is done ({exc})"
        ) from None


def _check_prefix(prefix: str) -> None:
    """A prefix may be empty or end in '/', but never climb out of the lake."""
    if prefix.startswith("/") or any(p in (".", "..") for p in prefix.split("/")):
        raise ValueError(f"invalid key prefix {prefix!r}")


def _check_key(key: str) -> None:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid object key {key!r}")


# Threads hashing a local lake's files (LocalStore.digests): the machines have 2 to 8 cores.
HASH_THREADS = min(4, os.cpu_count() or 1)
# Digests readers may reuse (LocalStore.digests, reuse=True): key -> [inode, size, mtime_ns,
# ctime_ns, digest], one file per lake in the user's cache folder: a reader writes nothing
# into the lake, and a lake it may only read benefits too.
DIGEST_CACHE_DIR = "marketlake"


def digest_cache_path(root: os.PathLike, environ: Mapping[str, str]) -> Path:
    """The cache file of the lake at `root`, under XDG_CACHE_HOME (or ~/.cache). The caller
    hands the environment: the Glue job's code reads none."""
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    name = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:16]
    return Path(base) / DIGEST_CACHE_DIR / f"digests-{name}.json"


# A write in flight is a hidden temp file beside its target: `.NAME.<random>.tmp`.
TEMP_SUFFIX = ".tmp"
# The zones put_bytes writes into (curated Parquet is written by the engine, never here).
WRITTEN_ZONES = ("state", "audit", "raw", "quarantine", "reference")


# What a lake directory answers when it cannot be used at all, whatever the object: no
# symbol's fault, and no retry helps. Anything else (a file not there) is the caller's.
_NO_ACCESS = (
    "let the user running marketlake read and write it (chmod -R u+rwX {root}), or point "
    "--home (MARKETLAKE_HOME) at a lake you can write"
)
_LOCAL_REFUSALS = {
    errno.EACCES: _NO_ACCESS,
    errno.EPERM: _NO_ACCESS,
    errno.EROFS: "the file system is read-only: point --home (MARKETLAKE_HOME) at a writable "
    "directory",
    errno.ENOTDIR: "it is a file where the lake needs a folder: move it out of the lake",
    errno.EISDIR: "it is a folder where the lake needs a file: move it out of the lake",
    errno.ENOSPC: "the disk holding the lake is full: free some space, then run this again",
    errno.EDQUOT: "the disk quota of the lake's owner is spent: free some space, then run "
    "this again",
}


def local_unreachable(exc: OSError, root: Path, path: Path) -> LakeUnreachable | None:
    """The LakeUnreachable an OSError on `path` of the lake at `root` means, or None."""
    remedy = _LOCAL_REFUSALS.get(exc.errno or 0)
    if remedy is None:
        return None
    where = Path(exc.filename) if exc.filename else path
    if exc.errno == errno.ENOTDIR:
        # Name the file in the way, not the path that runs through it.
        where = next((p for p in [*reversed(where.parents), where] if p.is_file()), where)
    return LakeUnreachable(str(where), exc.strerror or str(exc), remedy.format(root=root))


def _walk_error(exc: OSError) -> None:
    # os.walk skips a folder it cannot read unless told: a listing must not come back short.
    if not isinstance(exc, FileNotFoundError):  # gone since it was listed: nothing to read
        raise exc


class LocalStore:
    """The lake directory standing in for S3."""

    def __init__(self, root: os.PathLike, digest_cache: Path | None = None) -> None:
        """`digest_cache` (readers, see digests): where digests hashed before are kept."""
        self.root = Path(root).resolve()
        self.digest_cache = digest_cache

    def path(self, key: str) -> Path:
        _check_key(key)
        return self.root / key

    @contextlib.contextmanager
    def _reaching(self, key: str) -> Iterator[None]:
        """The file system's refusals of the lake itself become LakeUnreachable, naming the
        path and the remedy; a missing file and everything else pass as they are."""
        try:
            yield
        except OSError as exc:
            refused = local_unreachable(exc, self.root, self.root / key)
            if refused is None:
                raise
            raise refused from exc

    def put_bytes(self, key: str, data: bytes) -> str:
        with self._reaching(key):
            self._put_bytes(key, data)
        return sha256_digest(data)

    def digests(self, prefix: str, reuse: bool = False) -> dict[str, str]:
        """The sha256 of each file's bytes: a local lake has no checksum the disk keeps.
        Files are hashed on a few threads (hashlib lets go of the GIL on large buffers).

        `reuse`: a digest hashed before is reused while the file's inode, size, mtime and
        ctime are what they were then (in self.digest_cache; none: no reuse). Any write, truncate
        or rename changes ctime, which no user tool can set back; bytes that rot on the disk
        without a write are not seen, and `marketlake verify` and every build hash afresh."""
        reuse = reuse and self.digest_cache is not None
        seen = self._digest_cache() if reuse else {}

        def digest(key: str) -> tuple[str, str | None, list | None]:
            try:
                with self._reaching(key):
                    path = self.path(key)
                    before = _stat_key(path)
                    cached = seen.get(key)
                    if cached is not None and cached[:-1] == before:
                        return key, cached[-1], None
                    value = sha256_digest(path.read_bytes())
                    # Only a file that did not change while it was read is remembered.
                    keep = [*before, value] if _stat_key(path) == before else None
                    return key, value, keep
            except FileNotFoundError:
                return key, None, None  # deleted since the listing: absent, as it is now

        keys = [info.key for info in self.list_objects(prefix)]
        if len(keys) < 2:
            found = [digest(k) for k in keys]
        else:
            with ThreadPoolExecutor(min(HASH_THREADS, len(keys))) as pool:
                found = list(pool.map(digest, keys))
        fresh = {key: keep for key, _, keep in found if keep is not None}
        if reuse and fresh:
            self._save_digest_cache({**seen, **fresh})
        return {key: d for key, d, _ in found if d is not None}

    def _digest_cache(self) -> dict[str, list]:
        assert self.digest_cache is not None
        try:
            body = json.loads(self.digest_cache.read_bytes())
        except (OSError, ValueError):
            return {}  # none yet, or unreadable: hash afresh
        return body if isinstance(body, dict) else {}

    def _save_digest_cache(self, entries: dict[str, list]) -> None:
        # Only files still there: the cache never outgrows the lake.
        kept = {k: v for k, v in entries.items() if self.path(k).is_file()}
        target = self.digest_cache
        assert target is not None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            with os.fdopen(fd, "w") as fh:
                json.dump(kept, fh)
            os.replace(tmp, target)
        except OSError:
            pass  # no cache folder to write: readers hash every time

    def _put_bytes(self, key: str, data: bytes) -> None:
        target = self.path(key)
        self._make_dirs(target.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            crash_point(f"write {key}")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)  # the rename itself survives a power cut

    def _make_dirs(self, folder: Path) -> None:
        """mkdir -p, each new folder synced into its parent: a new ingest_date=D/ (and what
        the write then puts in it) survives a power cut, not only the file's own entry."""
        missing = []
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for new in reversed(missing):
            new.mkdir(exist_ok=True)
            _fsync_dir(new.parent)

    def get_tagged(self, key: str) -> tuple[bytes | None, str | None]:
        try:
            data = self.get_bytes(key)
        except KeyError:
            return None, None
        return data, _content_tag(data)

    def put_if(self, key: str, data: bytes, tag: str | None) -> str:
        """The same check as S3's If-Match / If-None-Match. Only the holder of the lake's lock
        writes a local lake, so nothing can slip in between this check and the rename."""
        current, now = self.get_tagged(key)
        if now != tag:
            state = "exists" if tag is None else ("is gone" if current is None else "changed")
            raise WriteConflict(f"{key} {state} since it was read")
        self.put_bytes(key, data)
        return _content_tag(data)

    def delete_if(self, key: str, tag: str) -> None:
        """S3's DeleteObject If-Match, checked the same way as put_if (and as safe: one writer)."""
        current, now = self.get_tagged(key)
        if now != tag:
            raise WriteConflict(
                f"{key} {'is gone' if current is None else 'changed'} since it was read"
            )
        with self._reaching(key):
            self.path(key).unlink(missing_ok=True)

    def update_bytes(self, key: str, change: Change) -> bytes | None:
        return update_bytes(self, key, change)

    def make_durable(self, prefix: str) -> None:
        """fsync every file under `prefix`, every directory holding them, and the directories
        above up to the lake root (a new directory's entry lives in its parent)."""
        _check_prefix(prefix)
        with self._reaching(prefix):
            self._make_durable(prefix)

    def _make_durable(self, prefix: str) -> None:
        folder = self.root / prefix.rstrip("/")
        if not folder.is_dir():
            return
        for dirpath, _dirnames, filenames in os.walk(folder, onerror=_walk_error):
            for name in filenames:
                fd = os.open(Path(dirpath) / name, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            _fsync_dir(Path(dirpath))
        for parent in folder.parents:
            _fsync_dir(parent)
            if parent == self.root:
                break

    def remove_leftovers(self) -> list[Path]:
        """Delete the temp files of writes a kill interrupted. Only for the holder of the
        lake's lock: no other write can be in flight then."""
        removed = []
        for zone in WRITTEN_ZONES:
            with self._reaching(zone):
                for dirpath, _dirnames, filenames in os.walk(self.root / zone, onerror=_walk_error):
                    for name in filenames:
                        if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                            path = Path(dirpath) / name
                            path.unlink(missing_ok=True)
                            removed.append(path)
        return removed

    def get_bytes(self, key: str) -> bytes:
        with self._reaching(key):
            try:
                return self.path(key).read_bytes()
            except FileNotFoundError:
                raise KeyError(key) from None

    def exists(self, key: str) -> bool:
        with self._reaching(key):
            return self.path(key).is_file()

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        _check_prefix(prefix)
        with self._reaching(prefix):
            return sorted(self._walk(prefix), key=lambda info: info.key)

    def _walk(self, prefix: str) -> Iterator[ObjectInfo]:
        # Walk the deepest directory the prefix names, then filter on the full prefix.
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / base if base else self.root
        if not start.is_dir():
            return
        for dirpath, _dirnames, filenames in os.walk(start, onerror=_walk_error):
            for name in filenames:
                if name.startswith("."):  # temp files of writes in flight
                    continue
                full = Path(dirpath) / name
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    stat = full.stat()
                    # Size too: a rewrite within a coarse mtime tick (some network and FAT
                    # file systems) must still look changed to the build's plan.
                    yield ObjectInfo(key, stat.st_size, f"{stat.st_mtime_ns}-{stat.st_size}")

    def list_prefixes(self, prefix: str) -> list[str]:
        _check_prefix(prefix)
        folder = self.root / prefix
        with self._reaching(prefix):
            if not folder.is_dir():
                return []
            return sorted(p.name for p in folder.iterdir() if p.is_dir())

    def delete_prefix(self, prefix: str) -> int:
        doomed = self.list_objects(prefix)
        with self._reaching(prefix):
            for info in doomed:
                self.path(info.key).unlink(missing_ok=True)
            # Drop directories the deletes emptied, so listings stay clean.
            if prefix.endswith("/"):
                folder = self.root / prefix.rstrip("/")
                if folder.is_dir() and not any(p.is_file() for p in folder.rglob("*")):
                    shutil.rmtree(folder, ignore_errors=True)
        return len(doomed)


def _content_tag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _stat_key(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def sha256_digest(data: bytes) -> str:
    """A local object's digest (LocalStore.digests)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# The bucket's store: its own module, built on what is above.
from marketlake.storage.s3 import (  # noqa: E402
    CONFLICT_CODES,
    S3Store,
    require_conditional_writes,
    s3_unreachable,
)

__all__ = [
    "CONFLICT_CODES",
    "LocalStore",
    "ObjectInfo",
    "ObjectStore",
    "S3Store",
    "WriteConflict",
    "digest_cache_path",
    "require_conditional_writes",
    "s3_unreachable",
    "sha256_digest",
    "update_bytes",
]
