"""LocalStore: the lake directory standing in for S3."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from marketlake.storage import LocalStore, digest_cache_path


def test_put_get_exists(lake_store):
    assert not lake_store.exists("raw/a.csv")
    lake_store.put_bytes("raw/x/a.csv", b"one")
    assert lake_store.exists("raw/x/a.csv")
    assert lake_store.get_bytes("raw/x/a.csv") == b"one"
    assert (lake_store.root / "raw" / "x" / "a.csv").read_bytes() == b"one"
    lake_store.put_bytes("raw/x/a.csv", b"two")
    assert lake_store.get_bytes("raw/x/a.csv") == b"two"
    assert not lake_store.exists("raw/x")  # a folder is not an object


def test_get_of_a_missing_key_is_a_key_error(lake_store):
    with pytest.raises(KeyError):
        lake_store.get_bytes("raw/nothing.csv")


def test_list_objects_is_sorted_filtered_by_prefix_and_sized(lake_store):
    for key, data in [
        ("raw/b/2.csv", b"22"),
        ("raw/a/1.csv", b"1"),
        ("raw/a/10.csv", b"101010"),
        ("rawfoo/x.csv", b"x"),
        ("curated/t/p.parquet", b"p"),
    ]:
        lake_store.put_bytes(key, data)
    listed = lake_store.list_objects("raw/")
    assert [i.key for i in listed] == ["raw/a/1.csv", "raw/a/10.csv", "raw/b/2.csv"]
    assert [i.size for i in listed] == [1, 6, 2]
    # S3 semantics: a prefix is a string prefix, not a folder.
    assert [i.key for i in lake_store.list_objects("raw/a/1")] == ["raw/a/1.csv", "raw/a/10.csv"]
    assert [i.key for i in lake_store.list_objects("raw")] == [
        "raw/a/1.csv",
        "raw/a/10.csv",
        "raw/b/2.csv",
        "rawfoo/x.csv",
    ]
    assert len(lake_store.list_objects("")) == 5
    assert lake_store.list_objects("audit/") == []


def test_a_rewrite_within_one_mtime_tick_still_changes_the_version(lake_store):
    lake_store.put_bytes("raw/a.csv", b"one row")
    path = lake_store.root / "raw" / "a.csv"
    before = path.stat()
    first = lake_store.list_objects("raw/")[0].version
    lake_store.put_bytes("raw/a.csv", b"one row\nand another")
    # A file system with a coarse clock gives the rewrite the same mtime.
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert lake_store.list_objects("raw/")[0].version != first


def test_the_version_changes_when_an_object_is_rewritten(lake_store):
    lake_store.put_bytes("raw/a.csv", b"1")
    first = lake_store.list_objects("raw/")[0].version
    lake_store.put_bytes("raw/a.csv", b"2")
    assert lake_store.list_objects("raw/")[0].version != first


def test_listing_skips_in_flight_temp_files(lake_store):
    lake_store.put_bytes("raw/d/A.csv", b"a")
    (lake_store.root / "raw" / "d" / ".B.csv.x1y2.tmp").write_bytes(b"half")
    assert [i.key for i in lake_store.list_objects("raw/")] == ["raw/d/A.csv"]
    assert lake_store.delete_prefix("raw/d/") == 1


def test_delete_prefix_removes_objects_and_emptied_folders(lake_store):
    for key in ("curated/t/version=1/year=2024/a.parquet", "curated/t/version=1/b.parquet"):
        lake_store.put_bytes(key, b"x")
    lake_store.put_bytes("curated/t/version=2/a.parquet", b"y")
    assert lake_store.delete_prefix("curated/t/version=1/") == 2
    assert [i.key for i in lake_store.list_objects("curated/")] == ["curated/t/version=2/a.parquet"]
    assert not (lake_store.root / "curated" / "t" / "version=1").exists()
    assert lake_store.delete_prefix("curated/t/version=9/") == 0


@pytest.mark.parametrize(
    "key", ["../escape.csv", "raw/../../escape.csv", "/etc/passwd", "", "raw//a.csv", "raw/./a"]
)
def test_bad_keys_are_rejected(lake_store, key):
    with pytest.raises(ValueError, match="invalid object key"):
        lake_store.put_bytes(key, b"x")
    with pytest.raises(ValueError):
        lake_store.get_bytes(key)
    with pytest.raises(ValueError):
        lake_store.exists(key)
    assert not (lake_store.root.parent / "escape.csv").exists()


# Regression: list_objects did not check its prefix; '../sibling/' listed keys outside the lake.
def test_a_listing_never_leaves_the_lake(tmp_path):
    store = LocalStore(tmp_path / "lake")
    store.put_bytes("raw/a.csv", b"a")
    (tmp_path / "sibling").mkdir()
    (tmp_path / "sibling" / "secret.txt").write_text("x")
    try:
        listed = store.list_objects("../sibling/")
    except ValueError:
        listed = []
    assert listed == []


# Regression: delete_prefix did not check its prefix; for '../sibling/' it found no object and
# then removed <lake>/../sibling, a directory outside the lake.
def test_delete_prefix_never_removes_anything_outside_the_lake(tmp_path):
    store = LocalStore(tmp_path / "lake")
    store.put_bytes("raw/a.csv", b"a")
    (tmp_path / "sibling" / "empty").mkdir(parents=True)
    with contextlib.suppress(ValueError):
        store.delete_prefix("../sibling/")
    assert (tmp_path / "sibling" / "empty").is_dir()


@pytest.mark.parametrize("prefix", ["../", "raw/../../", "/raw/"])
def test_prefixes_that_climb_out_are_rejected(lake_store, prefix):
    lake_store.put_bytes("raw/a.csv", b"a")
    for call in (lake_store.list_objects, lake_store.list_prefixes, lake_store.delete_prefix):
        with pytest.raises(ValueError):
            call(prefix)
    assert lake_store.exists("raw/a.csv")


def test_list_prefixes_names_the_folders_directly_under_a_prefix(lake_store):
    for key in ("raw/d/ingest_date=2024-07-03/A.csv", "raw/d/ingest_date=2024-07-02/B.csv"):
        lake_store.put_bytes(key, b"x")
    lake_store.put_bytes("raw/d/loose.csv", b"x")
    assert lake_store.list_prefixes("raw/d/") == [
        "ingest_date=2024-07-02",
        "ingest_date=2024-07-03",
    ]
    assert lake_store.list_prefixes("nothing/") == []


def test_a_reader_reuses_a_digest_only_while_the_file_is_untouched(tmp_path, monkeypatch):
    cache = digest_cache_path(tmp_path / "lake", {"XDG_CACHE_HOME": str(tmp_path / "cache")})
    store = LocalStore(tmp_path / "lake", cache)
    store.put_bytes("curated/t/version=1/year=2024/data_0.parquet", b"a" * 1000)
    store.put_bytes("curated/t/version=1/year=2024/data_1.parquet", b"b" * 1000)
    prefix = "curated/t/version=1/"
    first = store.digests(prefix, reuse=True)
    reads = []
    real = Path.read_bytes

    def read_bytes(self):
        if self.suffix == ".parquet":  # the files, not the cache of their digests
            reads.append(self.name)
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    assert store.digests(prefix, reuse=True) == first
    assert reads == []  # both reused: nothing changed since they were hashed
    # The same size, and the old mtime put back: the ctime still tells the write.
    path = tmp_path / "lake/curated/t/version=1/year=2024/data_1.parquet"
    before = path.stat()
    path.write_bytes(b"c" * 1000)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    again = store.digests(prefix, reuse=True)
    assert reads == ["data_1.parquet"]
    assert again[prefix + "year=2024/data_1.parquet"] != first[prefix + "year=2024/data_1.parquet"]
    # Builds and verify never reuse: every file is read.
    reads.clear()
    assert store.digests(prefix) == again
    assert sorted(reads) == ["data_0.parquet", "data_1.parquet"]
    assert cache.is_file() and cache.is_relative_to(tmp_path / "cache")  # outside the lake
    # A store without a cache (builds, the Glue job) never reuses.
    reads.clear()
    assert LocalStore(tmp_path / "lake").digests(prefix, reuse=True) == again
    assert sorted(reads) == ["data_0.parquet", "data_1.parquet"]
    assert sorted(store.digests("")) == sorted(first)
