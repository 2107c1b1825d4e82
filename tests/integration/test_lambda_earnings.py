"""Quarterly earnings through the deployed ingest Lambda (lambdas/ingest/handler.py) on moto
S3, against the loopback Alpha Vantage: they land in the bucket's raw/earnings/ on the fetch
day's share basis, and a run that lands only earnings starts the build. The Lambda's other
behaviour, and the fixtures used here, are in test_lambda_ingest.py."""

from __future__ import annotations

import datetime as dt

from av_fake_server import (
    ByFunction,
    BySymbol,
    Reply,
    daily_reply,
    dividends_json,
    earnings_json,
    splits_json,
)
from test_lambda_ingest import (  # noqa: F401 -- the fixtures, by name
    BUCKET,
    COMPACT1,
    S1,
    _build_read_everything,
    cloud,
    lambda_module,
)

from marketlake.lake import earnings
from marketlake.lake.state import STATE_KEY
from marketlake.sessions import eastern_date
from marketlake.storage import S3Store


def test_earnings_land_in_s3_and_a_report_without_new_bars_starts_the_build(cloud, monkeypatch):  # noqa: F811
    monkeypatch.setenv("MARKETLAKE_ACTIONS_EVERY_DAYS", "7")
    quarters = [
        ("2024-06-30", "2024-07-24", "2.43", "2.20"),  # after the first session: held back
        ("2024-03-31", "2024-04-24", "1.68", "1.60"),
        ("2023-12-31", "2024-01-24", "3.87", "3.78"),
    ]
    cloud.server.default = ByFunction(
        daily_reply(COMPACT1),
        {
            "SPLITS": lambda q: Reply(splits_json(q["symbol"], [])),
            "DIVIDENDS": lambda q: Reply(dividends_json(q["symbol"], [])),
            "EARNINGS": BySymbol({"AAA": Reply(earnings_json("AAA", quarters))}, Reply({})),
        },
    )
    first = cloud.invoke()
    assert first["new_bars"] == 300 and first["earnings_landed"] == 2
    assert earnings.EARNINGS.key(S1, "AAA") in cloud.object_keys("raw/earnings/")
    assert cloud.object_keys("state/raw_landed/earnings/") == [
        "state/raw_landed/earnings/ingest_date=2024-07-03.json"
    ]
    store = S3Store(BUCKET, client=cloud.s3)
    # Alpha Vantage's EPS are restated up to the moment it answers: on the fetch day's basis
    # (the real clock's day; the event's as_of pins only the session).
    fetched_on = eastern_date(dt.datetime.now(dt.timezone.utc))
    (basis,) = set(earnings.current(store, "AAA")["basis"])
    assert basis in {fetched_on - dt.timedelta(1), fetched_on}  # a fetch across midnight
    _build_read_everything(cloud)

    # A week on (the state says so), the held report is out; the vendor's bars are the same.
    state = cloud.state()
    for entry in state.symbols.values():
        entry.earnings_on = "2024-07-01"
    cloud.s3.put_object(Bucket=BUCKET, Key=STATE_KEY, Body=state.to_json())
    later = cloud.invoke({"as_of": "2024-07-31"})
    assert later["new_bars"] == 0 and later["earnings_landed"] == 1
    assert later["workflow_run_id"] is not None
