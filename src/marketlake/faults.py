"""A fault hook for crash tests: with MARKETLAKE_FAULT=STEP, the `marketlake` command arms
the hook, and the process kills itself (SIGKILL: no cleanup, no finally) when it reaches the
durable step named STEP.

Only the CLI reads the variable (the Glue job's code reads no environment); disarmed, a step
costs one comparison. Never set it outside tests.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "MARKETLAKE_FAULT"
_armed: dict[str, str | None] = {"step": None}


def arm(step: str | None) -> None:
    """Kill the process at `step` (None disarms)."""
    _armed["step"] = step or None


def crash_point(step: str) -> None:
    """Die here, as a power cut or `kill -9` would, if the hook is armed for this step."""
    if _armed["step"] == step:
        os.kill(os.getpid(), signal.SIGKILL)
