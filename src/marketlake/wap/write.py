"""write: the new bars, the published bars their windows reach back to, the row checks'
exclusions, and the new version's partitions (see pipeline.py)."""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
from sqlglot import exp

from marketlake import sqlfiles
from marketlake.errors import BuildBlocked, MarketlakeError
from marketlake.faults import crash_point
from marketlake.lake import integrity
from marketlake.lake.audit import (
    CheckResult,
    write_quarantined,
)
from marketlake.lake.raw import RAW_PREFIX, format_timestamp
from marketlake.lake.state import (
    landed_files,
    load_landed,
)
from marketlake.storage import ObjectStore
from marketlake.wap.build import (
    MIN_SESSIONS_PER_YEAR,
    RAW_TABLE,
    SAMPLE_ROWS,
    Build,
    attach_published,
    nyse_sessions_frame,
    purged_sql,
    run_checks,
)

if TYPE_CHECKING:  # the Glue job never imports DuckDB
    from marketlake.engines.base import Engine


def write(build: Build) -> None:
    """Read the new bars, gather the bars the rebuilt rows need, exclude (and quarantine) the
    bars the row checks reject, and write the new version's partitions."""
    read_new_bars(build)
    gather_bars(build)
    exclude_rejected_bars(build)
    write_version(build)


def read_new_bars(build: Build) -> None:
    """new_bars: the raw rows not read before, typed and deduplicated (sql/staging/bars.sql)."""
    engine, build_plan = build.engine, build.plan
    damages, _ = integrity.verify_raw(build.store, build_plan.raw_from, ("daily_prices",))
    if damages:
        raise BuildBlocked(integrity.raw_blocked(damages))
    engine.register_raw(RAW_TABLE, RAW_PREFIX.rstrip("/"), since=build_plan.raw_from)
    reconcile_raw(build.store, engine, build_plan.raw_from)
    engine.register_frame("xnys_sessions", nyse_sessions_frame(build.started))
    bars_sql = sqlfiles.load("staging/bars.sql")
    if build_plan.raw_from is not None:
        unread = sqlfiles.bind(
            sqlfiles.load("wap/unread_raw.sql"),
            {},
            {
                "raw_from": build_plan.raw_from,
                "ingested_after": build_plan.ingested_after or None,
                "read_through": build.built_on.raw_through,
            },
        )
        bars_sql = sqlfiles.bind(bars_sql, {RAW_TABLE: unread})
    if build_plan.purged:
        # Purged symbols' raw rows stay in the raw zone (for audit), out of the table.
        kept = (
            f"SELECT * FROM {RAW_TABLE} WHERE trim(symbol) NOT IN "
            f"(SELECT symbol FROM purged_symbols)"
        )
        kept = sqlfiles.bind(kept, {"purged_symbols": purged_sql(build_plan.purged)})
        bars_sql = sqlfiles.bind(bars_sql, {RAW_TABLE: kept})
    build.counts["new"] = engine.materialize("new_bars", bars_sql)
    build.unparsed = engine.raw_rejects()  # rows of that scan the CSV reader could not read
    newest = engine.fetch_df("SELECT max(ingested_at) AS t FROM new_bars")["t"]
    build.ingested_through = None if newest.isna().all() else format_timestamp(newest.iloc[0])


def reconcile_raw(store: ObjectStore, engine: Engine, raw_from: str | None) -> None:
    """Block when a raw object this run reads holds fewer rows than ingest or import landed
    in it (state/raw_landed/): its bars would silently vanish from the published table."""
    landed = {}
    for _, key in landed_files(store, "daily_prices", raw_from):
        records = load_landed(store, key)
        landed.update({k: r for k, r in records.items() if k.startswith(RAW_PREFIX)})
    if not landed:
        return
    counts = engine.fetch_df(
        sqlfiles.bind(sqlfiles.load("wap/raw_counts.sql"), {}, {"raw_from": raw_from})
    )
    read: dict[str, int] = {}
    for path, n in counts[["raw_path", "n"]].itertuples(index=False):
        # s3://bucket/prefix/raw/daily_prices/... on Athena, a file path locally.
        key = RAW_PREFIX + str(path).split(RAW_PREFIX, 1)[-1]
        read[key] = read.get(key, 0) + int(n)
    # A row the CSV reader could not parse is not lost: the build keeps it in
    # quarantined_rows, where it counts toward the bad-row gate.
    for key in engine.raw_rejects()["raw_object"]:
        read[key] = read.get(key, 0) + 1
    short = [
        (key, record["rows"], read.get(key, 0))
        for key, record in sorted(landed.items())
        if read.get(key, 0) < int(record.get("rows") or 0)
    ]
    if short:
        key, recorded, found = short[0]
        more = f" (and {len(short) - 1} more raw object(s))" if len(short) > 1 else ""
        raise BuildBlocked(
            f"raw object {key} holds {found} of the {recorded} rows landed in it "
            f"({recorded - found} missing){more}; nothing was published. Restore it from S3 "
            f"versioning (or a backup), or {integrity.refetch_remedy([k for k, _, _ in short])},"
            " then build again"
        )


def gather_bars(build: Build) -> None:
    """bars: in a full build the new bars; in an incremental one, the new bars and, of each
    symbol with new bars or changed splits or dividends, the published bars from its first
    recomputed row on and as many before it as its windows reach. Other symbols are only
    copied (see _splice)."""
    engine = build.engine
    for name, frame in build.corporate.items():
        engine.register_frame(name, frame)
    if build.plan.mode != "incremental":
        build.bars = engine.derive("bars", sqlfiles.load("wap/new_bars.sql"))
        return
    build.restated = _restated_firsts(build)
    build.first_year = first_year = _first_rebuilt_year(build)
    # The metrics SQL as written: binding its input changes no window. rsi_14 continues from
    # the published averages, so its 500-row sums need no history (the SQL's header).
    reach = sqlfiles.longest_lookback(sqlfiles.load(METRICS_SQL), seeded=RSI_SEEDED_WINDOWS)
    years_back = math.ceil(reach / MIN_SESSIONS_PER_YEAR)
    published = build.built_on.partitions
    lookback = {y: loc for y, loc in published.items() if int(y) >= first_year - years_back}
    attach_published(build, "previous_daily_prices", lookback)
    firsts = sqlfiles.load("wap/first_new_bars.sql")
    if build.restated:
        firsts = sqlfiles.bind(sqlfiles.load("wap/first_rebuilt_rows.sql"), {"new_firsts": firsts})
    engine.materialize("firsts", firsts)
    lookback_bars = sqlfiles.load("wap/lookback_bars.sql")
    bars_sql = sqlfiles.bind(lookback_bars, {}, {"lookback_rows": reach + 1})
    build.bars = engine.materialize("bars", bars_sql)
    older = {y: loc for y, loc in published.items() if y not in lookback}
    if older and _back_after_a_gap(build, older):
        # A symbol whose last published bar is older than the years read (back after a long
        # gap) needs that bar for its windows and rsi_14's seed: read every year instead.
        every_year = (
            "SELECT * FROM previous_daily_prices UNION ALL SELECT * FROM older_daily_prices"
        )
        bars_sql = sqlfiles.bind(
            lookback_bars, {"previous_daily_prices": every_year}, {"lookback_rows": reach + 1}
        )
        build.bars = engine.materialize("bars", bars_sql)


# The window columns of sql/staging/daily_prices.sql that an incremental build seeds from the
# published rsi_avg_gain_14 / rsi_avg_loss_14 rather than from history.
RSI_SEEDED_WINDOWS = ("x_gain_even", "x_gain_odd", "x_loss_even", "x_loss_odd")


def _back_after_a_gap(build: Build, older: dict[str, str]) -> bool:
    """Whether a symbol to rebuild has no published bar before its first new one in the
    lookback's years but has one in an older year. Older years are read only when some
    symbol has none (a new ticker, or one back after a gap): most days read none."""
    engine = build.engine
    without = engine.fetch_df(sqlfiles.load("wap/without_history.sql"))
    if without.empty:
        return False
    attach_published(build, "older_daily_prices", older)
    return not engine.fetch_df(sqlfiles.load("wap/back_after_a_gap.sql")).empty


def _restated_firsts(build: Build) -> dict[str, dt.date]:
    """restated_firsts: of each symbol whose splits or dividends changed, the first published
    row the change reaches (restate.py says from which date)."""
    restated, engine = build.plan.restated, build.engine
    history = {
        y: loc
        for y, loc in build.built_on.partitions.items()
        if restated and int(y) >= min(restated.values()).year
    }
    if not history:
        return {}
    attach_published(build, "published_history", history)
    frame = pd.DataFrame(
        {
            "symbol": pd.Series(list(restated), dtype=pd.ArrowDtype(pa.string())),
            "restate_from": pd.Series(
                pd.to_datetime(list(restated.values())), dtype="datetime64[ns]"
            ),
        }
    )
    engine.register_frame("restated_symbols", frame)
    engine.materialize("restated_firsts", sqlfiles.load("wap/restated_firsts.sql"))
    found = engine.fetch_df("SELECT symbol, first_new FROM restated_firsts")
    return {
        str(symbol): pd.Timestamp(day).date()
        for symbol, day in zip(found["symbol"], found["first_new"])
    }


def _first_rebuilt_year(build: Build) -> int:
    years = build.engine.fetch_df(
        "SELECT min(year(trade_date)) AS first_year FROM new_bars WHERE trade_date IS NOT NULL"
    )["first_year"]
    firsts = [] if years.isna().all() else [int(years.iloc[0])]
    firsts += [day.year for day in build.restated.values()]
    if not firsts:
        # No new bar has a readable date (or only splits and dividends changed, and no
        # published row): rebuild the newest year, so the bad rows are counted against the
        # threshold, the published rows carried over, and the actions applied recorded.
        return max(int(y) for y in build.built_on.partitions)
    return min(firsts)


def exclude_rejected_bars(build: Build) -> None:
    """good_bars: the bars every row check passes. The others, and the raw rows the CSV
    reader could not read, are quarantined and counted against the bad-row gate."""
    engine, counts, unparsed = build.engine, build.counts, build.unparsed
    assert unparsed is not None, "read_new_bars runs first"
    row_checks = sqlfiles.checks("rows")
    build.row_results, failing = run_checks(engine, row_checks)
    build.row_results.append(_unparsed_check(unparsed))
    failing["raw_rows_readable"] = unparsed
    keys = sqlfiles.load("wap/rejected_keys.sql")
    rejected = " UNION ".join(sqlfiles.bind(keys, {"failing_bars": c.sql}) for c in row_checks)
    if engine.materialize("rejected_keys", rejected) == 0:
        # Every bar passed (a bar without a key fails keys_not_null): no anti-join over
        # every bar (~5% of a full build on DuckDB), and no copy of them on Athena.
        engine.alias("good_bars", "bars")
        good = build.bars
    else:
        good = engine.derive("good_bars", sqlfiles.load("wap/good_bars.sql"))
    # Unreadable raw rows are new rows that were left out: they count toward the gate.
    counts["new"] += len(unparsed)
    counts["bad"] = build.bars - good + len(unparsed)
    _quarantine(build.store, build.run_id, failing)


def _unparsed_check(unparsed: pd.DataFrame) -> CheckResult:
    sample = unparsed.head(SAMPLE_ROWS).to_dict("records")
    return CheckResult(
        "raw_rows_readable",
        "row",
        "fail" if len(unparsed) else "pass",
        len(unparsed),
        [{k: (int(v) if k == "raw_line" else v) for k, v in r.items()} for r in sample],
        "every raw CSV row can be read: quotes closed, 9 fields, UTF-8",
    )


def _quarantine(store: ObjectStore, run_id: str, failing: dict[str, pd.DataFrame]) -> None:
    frames = [frame.assign(check_name=name) for name, frame in failing.items() if len(frame)]
    if frames:
        write_quarantined(store, run_id, pd.concat(frames, ignore_index=True))


def write_version(build: Build) -> None:
    """The metrics (sql/staging/daily_prices.sql) over good_bars, written as a new version
    of the rebuilt years, partitioned by year."""
    metrics = _metrics_sql()
    if build.first_year is not None:
        metrics = _splice(metrics, build.first_year)
    build.counts["rows"] = build.engine.ctas(metrics, build.location, ["year"])
    crash_point("written")
    if build.counts["rows"] == 0:
        raise MarketlakeError("the build produced no rows: the raw zone holds no usable bars")
    build.written = {
        name.split("=", 1)[1]: f"{build.location}/{name}"
        for name in build.store.list_prefixes(build.location + "/")
        if name.startswith("year=")
    }


METRICS_SQL = "staging/daily_prices.sql"


def _metrics_sql() -> str:
    return sqlfiles.bind(sqlfiles.load(METRICS_SQL), {"bars": "good_bars"})


def _splice(metrics_sql: str, first_year: int) -> str:
    """The rebuilt years of an incremental run (sql/wap/splice.sql): a symbol's rows before
    its first new bar are copied from the published version (their windows saw no new data),
    and only rows from that bar on are recomputed."""
    columns = sqlfiles.output_columns(metrics_sql)
    published = exp.select(*columns).from_("previous_daily_prices").sql(dialect="athena")
    return sqlfiles.bind(
        sqlfiles.load("wap/splice.sql"),
        {"recomputed": metrics_sql, "published": published},
        {"first_year": int(first_year)},
    )
