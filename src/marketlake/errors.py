"""Errors a user can act on. The CLI prints their message as one line, without a traceback."""


class MarketlakeError(Exception):
    """An error whose message tells the user what went wrong and what to do."""


class ConfigError(MarketlakeError):
    """A setting is missing or malformed."""


class QueryError(MarketlakeError):
    """A user's SQL could not be parsed or run."""


class BuildBlocked(MarketlakeError):
    """A blocking data-quality check failed; the published data was left as it was."""


class DamagedFile(QueryError):
    """A published file of the lake cannot be read (torn, truncated, garbled)."""
