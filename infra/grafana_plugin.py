"""A Grafana plugin at a pinned version, installed through the Grafana HTTP API, idempotently.

`make deploy` (infra/stacks.py) calls ensure() for an Amazon Managed Grafana workspace it
created, with the short-lived service-account token it mints, after the AWS stack and before
the Grafana stack, whose data source of type grafana-athena-datasource needs the plugin
(workspaces of Grafana 9 and newer may not have it).

The calls, as Grafana answers them:
  GET  /api/plugins/<id>/settings   404 when not installed; 200 with info.version when it is
  POST /api/plugins/<id>/install    {"version": "x.y.z"}: 200 once installed, also when it
                                    replaces another version (an update); 409 when that
                                    version is already there
The workspace must have plugin management on (pluginAdminEnabled) and the token's service
account must be an Admin.

The token goes only into the Authorization header, which is never sent on to a redirect
(redirects are not followed at all) and never appears in a message: Grafana's own answer is
quoted with the token masked.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

PLUGIN_ID = "grafana-athena-datasource"
TRANSIENT = (502, 503, 504)  # a workspace restarting after a configuration change answers these
ATTEMPTS = 5
BACKOFF_SECONDS = 2.0  # doubled after each transient answer: 2 + 4 + 8 + 16 s at most
READ_TIMEOUT = 30
INSTALL_TIMEOUT = 180  # Grafana downloads the plugin from its catalog before it answers
QUOTE_CHARS = 200


class PluginError(Exception):
    """One line: the Grafana URL, the plugin, what was answered, what to do. Never the token."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx (e.g. to a sign-in page) is an answer to report, not a place to send the token."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class Grafana:
    """The plugin API of one Grafana, signed in with one token."""

    def __init__(
        self,
        url: str,
        token: str,
        plugin_id: str = PLUGIN_ID,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = ATTEMPTS,
    ) -> None:
        if not re.match(r"^https?://[^/\s]+", url or ""):
            raise PluginError(f"not a Grafana URL: {url!r} (expected https://host)")
        self.url = url.rstrip("/")
        self.token = token
        self.plugin_id = plugin_id
        self.sleep = sleep
        self.attempts = attempts

    def _path(self, action: str) -> str:
        return f"/api/plugins/{urllib.parse.quote(self.plugin_id, safe='')}/{action}"

    def _once(self, method: str, path: str, body: dict | None, timeout: float) -> tuple[int, str]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        request.add_unredirected_header("Authorization", f"Bearer {self.token}")
        try:
            with _OPENER.open(request, timeout=timeout) as answer:
                return answer.status, answer.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:  # 4xx, 5xx and the unfollowed 3xx
            return exc.code, exc.read().decode("utf-8", "replace")

    def call(self, method: str, action: str, body: dict | None = None) -> tuple[int, str]:
        """(status, body text); a transient answer or no answer is retried a few times."""
        path = self._path(action)
        timeout = INSTALL_TIMEOUT if method == "POST" else READ_TIMEOUT
        wait = BACKOFF_SECONDS
        for attempt in range(1, self.attempts + 1):
            try:
                status, text = self._once(method, path, body, timeout)
            except (urllib.error.URLError, OSError) as exc:
                if attempt == self.attempts:
                    reason = getattr(exc, "reason", exc)
                    raise PluginError(
                        f"{method} {self.url}{path} for plugin {self.plugin_id}: no answer after "
                        f"{attempt} attempts ({self.masked(str(reason))})"
                    ) from None
            else:
                if status not in TRANSIENT or attempt == self.attempts:
                    return status, text
            self.sleep(wait)
            wait *= 2
        raise AssertionError("unreachable: the last attempt returns or raises")

    def masked(self, text: str) -> str:
        """Grafana's answer in one short line: its "message" when JSON, the token masked."""
        try:
            parsed = json.loads(text)
            if isinstance(parsed, dict) and parsed.get("message"):
                text = str(parsed["message"])
        except ValueError:
            pass
        if self.token:
            text = text.replace(self.token, "***")
        text = " ".join(text.split())
        return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 3] + "..."

    def refused(
        self, method: str, action: str, status: int, text: str, version: str
    ) -> PluginError:
        hint = {
            401: "the token was not accepted (expired or revoked?): run make deploy again",
            403: "the token's service account must be an Admin and the workspace must have "
            "plugin management on (pluginAdminEnabled)",
            404: f"the plugin catalog offers no {self.plugin_id} {version} for this Grafana: "
            "set grafana_athena_plugin_version to a version it offers",
        }.get(status, "see Grafana's answer")
        quoted = self.masked(text) or "no body"
        return PluginError(
            f"{method} {self.url}{self._path(action)} for plugin {self.plugin_id} {version}: "
            f"HTTP {status} ({quoted}); {hint}"
        )

    def installed_version(self, wanted: str) -> str | None:
        """The installed version, or None when the plugin is not installed."""
        status, text = self.call("GET", "settings")
        if status == 404:
            return None
        if status != 200:
            raise self.refused("GET", "settings", status, text, wanted)
        try:
            version = json.loads(text)["info"]["version"]
        except (ValueError, KeyError, TypeError):
            version = None
        if not isinstance(version, str) or not version:
            raise PluginError(
                f"GET {self.url}{self._path('settings')} for plugin {self.plugin_id}: HTTP 200 "
                f"without info.version ({self.masked(text)})"
            )
        return version

    def ensure(self, version: str) -> str:
        """The plugin at `version`, installed or updated only when it is not; a summary line."""
        before = self.installed_version(version)
        if before == version:
            return f"plugin {self.plugin_id} {version} already installed in {self.url}"
        status, text = self.call("POST", "install", {"version": version})
        # 409: that version is there already (e.g. installed meanwhile); the check below says.
        if status not in (200, 409):
            raise self.refused("POST", "install", status, text, version)
        after = self.installed_version(version)
        if after != version:
            # e.g. 409 "Plugin version not supported": not for this Grafana version.
            raise PluginError(
                f"POST {self.url}{self._path('install')} for plugin {self.plugin_id} {version}: "
                f"HTTP {status} ({self.masked(text) or 'no body'}), yet Grafana reports version "
                f"{after or 'none'} installed; set grafana_athena_plugin_version to a version "
                "that supports this Grafana"
            )
        done = "installed" if before is None else f"updated from {before} to"
        return f"plugin {self.plugin_id} {done} {version} in {self.url}"


def ensure(url: str, token: str, version: str, plugin_id: str = PLUGIN_ID, **kwargs) -> str:
    """Grafana at `url` has `plugin_id` at `version`; the summary line. PluginError if not."""
    return Grafana(url, token, plugin_id, **kwargs).ensure(version)
