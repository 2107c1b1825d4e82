"""The rehearsal's loopback Alpha Vantage (infra/weekday.py alpha_vantage_stand_in): what the
deployed Lambda asks it, it answers in the vendor's shapes from the synthetic market, so
`make rehearse` lands bars, splits, dividends and earnings as a real weekday would."""

from __future__ import annotations

import datetime as dt

import pytest
import weekday

from marketlake.config import Settings
from marketlake.ingest.runner import run_ingest
from marketlake.lake import earnings
from marketlake.providers.alphavantage import AlphaVantageProvider, InvalidApiKey
from marketlake.providers.synthetic import SyntheticProvider
from marketlake.sessions import EASTERN
from marketlake.storage import LocalStore

AS_OF = dt.date(2025, 11, 28)


def test_it_serves_the_synthetic_markets_earnings_as_alpha_vantage_shapes_them():
    with weekday.alpha_vantage_stand_in(AS_OF) as server:
        provider = AlphaVantageProvider(weekday.TEST_KEY, base_url=server.url, max_retries=0)
        rows = provider.fetch_earnings("AMAT", AS_OF)
        assert [q["function"] for q in server.requests] == ["EARNINGS"]
        other = AlphaVantageProvider("NOTTHEKEY", base_url=server.url, max_retries=0)
        with pytest.raises(InvalidApiKey):
            other.fetch_earnings("AMAT", AS_OF)
    expected = SyntheticProvider(seed=weekday.SEED).fetch_earnings("AMAT", AS_OF)
    judged = earnings.judge(rows)
    assert len(judged.valid) == len(expected) > 8 and judged.rejected.empty
    assert sorted(rows["fiscal_date_ending"]) == sorted(expected["fiscal_date_ending"])


def test_an_ingest_against_it_lands_earnings(tmp_path):
    moment = dt.datetime(2025, 11, 28, 18, 0, tzinfo=EASTERN)
    with weekday.alpha_vantage_stand_in(AS_OF) as server:
        settings = Settings.from_env(
            {
                "ALPHAVANTAGE_API_KEY": weekday.TEST_KEY,
                "ALPHAVANTAGE_BASE_URL": server.url,
                "ALPHAVANTAGE_CALLS_PER_MINUTE": "6000",
                "MARKETLAKE_TICKERS": "AMAT",
            },
            home=tmp_path / "lake",
        )
        report = run_ingest(settings, LocalStore(settings.home), None, moment, now=lambda: moment)
    assert report.earnings_asked == ["AMAT"] and report.earnings_landed > 8
    assert not report.earnings_off and not report.actions_off


def test_it_restates_the_eps_for_later_splits_as_alpha_vantage_does():
    # AMAT splits 10:1 on 2025-06-16 in the synthetic market: a quarter reported before it is
    # served divided by 10, one reported after it as reported.
    provider = SyntheticProvider(seed=weekday.SEED)
    splits = weekday.actions_of(provider, "splits", "AMAT", AS_OF)
    assert (dt.date(2025, 6, 16), 10.0) in splits
    served = weekday.earnings_of(provider, "AMAT", AS_OF)
    reported = weekday.earnings_of(provider, "AMAT", AS_OF, restated=False)
    assert [q[:2] for q in served] == [q[:2] for q in reported]
    before = [(s, r) for s, r in zip(served, reported) if r[1] < "2025-06-16"]
    after = [(s, r) for s, r in zip(served, reported) if r[1] >= "2025-06-16"]
    assert before and after
    for s, r in before:
        assert float(s[2]) * 10 == pytest.approx(float(r[2]), rel=1e-12)
    assert all(s[2] == r[2] for s, r in after)
