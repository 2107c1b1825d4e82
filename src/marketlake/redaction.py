"""Keeping a secret (an API key) out of every message, payload, event and log line.

Providers redact what they raise and report; ingest redacts whatever else reaches a report.
"""

from __future__ import annotations

import re
import urllib.parse

# A key in a query string, however the service spells the parameter (apikey=, api_key=).
_APIKEY_PARAM = re.compile(r"(?i)(api_?key=)[^&\s\"'<>#]*")


def redact(text: str | None, secret: str | None) -> str:
    """``text`` without the secret (any letter case, raw or URL-encoded) or any apikey= value."""
    if not text:
        return ""
    out = text
    if secret:
        forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}
        for form in sorted(forms, key=len, reverse=True):
            out = re.sub(re.escape(form), "***", out, flags=re.IGNORECASE)
    out = _APIKEY_PARAM.sub(r"\1***", out)
    if secret:
        # Only a secret made of '*' or similar can re-form around a mask: drop it outright.
        pattern = re.compile(re.escape(secret), re.IGNORECASE)
        while pattern.search(out):
            out = pattern.sub("", out)
    return out
