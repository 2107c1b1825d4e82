"""DuckDB's errors as one line that names the lake file at fault."""

from __future__ import annotations

import re
from pathlib import Path

from marketlake.errors import LakeUnreachable
from marketlake.storage import local_unreachable

# DuckDB's words for a Parquet file it cannot decode; its thrift errors name no file.
PARQUET_DAMAGE = re.compile(
    r"parquet|magic bytes|thrift|Variable-length int|don't know what type|decompression|corrupt",
    re.I,
)


def _csv_error(lines: list[str]) -> str | None:
    """DuckDB's CSV errors put the line number first and the file far below; one line with
    both, and the reason."""
    found = re.search(r"CSV Error on Line: (\d+)", lines[0])
    path = next((ln.split("=", 1)[1].strip() for ln in lines if ln.startswith("file =")), None)
    if not path:
        return None
    if not found:  # e.g. mixed line ends: "The CSV Parser state machine reached an invalid state"
        return f"cannot read {path}: {lines[0].rstrip('.')}"
    reason = ""
    if "Original Line:" in lines:
        after = lines[lines.index("Original Line:") + 1 :]
        # The offending line comes first, then the reason (unless the line was empty).
        candidates = [ln for ln in after[:2] if not ln.startswith(("Possible", "*"))]
        reason = candidates[-1] if candidates else ""
    return f"cannot read line {found.group(1)} of {path}: {reason}".rstrip(": ")


def one_line(exc: BaseException) -> str:
    """DuckDB errors span lines (context, caret); keep the message and any hint."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    csv_error = _csv_error(lines) if lines else None
    if csv_error:
        return csv_error
    keep = [lines[0]] if lines else [type(exc).__name__]
    # DuckDB's guesses often name its own system tables (pg_enum ...): no help to a user.
    keep += [
        line
        for line in lines[1:]
        if line.startswith("Did you mean") and not any(s in line for s in ("pg_", "duckdb_"))
    ]
    return " ".join(keep)


def raw_object(error: str, root: Path) -> str | None:
    """The lake key of the raw object a CSV error names (DuckDB's `file = ...` line)."""
    for found in re.finditer(r"^\s*file = (.+?)\s*$", error, re.M):
        path = Path(found.group(1))
        path = path if path.is_absolute() else root / path
        if path.is_relative_to(root / "raw"):
            return path.relative_to(root).as_posix()
    return None


# How DuckDB words a full disk (or a spent quota) in its IO errors.
_DISK_FULL = ("No space left on device", "Disk quota exceeded")
DISK_FULL_REMEDY = "free some space on the disk holding the lake, then run this again"


def disk_full(exc: BaseException, where: Path) -> LakeUnreachable | None:
    """The one-line error naming `where` (the lake file or folder DuckDB was writing) if
    `exc` is DuckDB's, or the OS's, full disk; else None. DuckDB's own text names at most a
    temporary file, and an OSError from a write names none."""
    if isinstance(exc, OSError):
        return local_unreachable(exc, where.parent, where)
    text = str(exc)
    found = next((s for s in _DISK_FULL if s in text), None)
    if found is None:
        return None
    return LakeUnreachable(str(where), f"{found.lower()} while DuckDB wrote it", DISK_FULL_REMEDY)
