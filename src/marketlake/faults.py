"""A fault hook for crash tests: MARKETLAKE_FAULT=STEP makes the process kill itself
(SIGKILL: no cleanup, no finally) when it reaches the durable step named STEP.

Unset, it costs one environment lookup per step. Never set it outside tests.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "MARKETLAKE_FAULT"


def crash_point(step: str) -> None:
    """Die here, as a power cut or `kill -9` would, if MARKETLAKE_FAULT names this step."""
    if os.environ.get(FAULT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)
