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


class Unreachable(MarketlakeError):
    """A resource the run needs refused it (access denied, a KMS key it cannot use, a missing
    bucket or secret, a lake directory it cannot write). No symbol is at fault and no retry
    helps: the run stops and says which resource and what to do."""

    def __init__(self, resource: str, problem: str, remedy: str) -> None:
        super().__init__(f"{resource}: {problem}; {remedy}")
        self.resource = resource
        self.remedy = remedy


class LakeUnreachable(Unreachable):
    """The lake's storage (the bucket or the lake directory) refused a read or a write."""
