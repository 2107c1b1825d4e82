"""Test doubles that record what the code under test reports: a provider's backoff sleeps and
events, and an ingest observer's events."""

from __future__ import annotations

import traceback

from marketlake.ingest.report import QuietObserver


class Recorder:
    """A provider's ``sleep`` (recorded, never slept) and ``on_event``."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.events: list[tuple[str, str]] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def event(self, kind: str, message: str) -> None:
        self.events.append((kind, message))

    def kinds(self) -> list[str]:
        return [k for k, _ in self.events]


class Observer(QuietObserver):
    """An ingest observer that keeps the events it is told, and says them by kind."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def event(self, kind: str, message: str) -> None:
        self.events.append((kind, message))

    def said(self, kind: str) -> list[str]:
        return [m for k, m in self.events if k == kind]


def shown(exc: BaseException) -> list[str]:
    """Every text an exception shows a user or a log: its str, repr, attributes and the
    formatted traceback (a key-redaction test looks for the key in each)."""
    return [
        str(exc),
        repr(exc),
        repr(vars(exc)),
        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    ]
