"""Log output for the daemon: readable lines by default, JSON lines on request.

Log records never carry shares, MACs, MAC keys or secret values; callers pass
ids, counts and party numbers only. Structured context goes in ``extra={"ctx":
{...}}`` and is rendered as ``key=value`` pairs (text) or merged into the JSON
object.

L0: standard library only.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Final, Literal

__all__ = ["LOGGER_NAME", "configure_logging", "get_logger"]

LOGGER_NAME: Final = "vcpd"


def get_logger(name: str = "") -> logging.Logger:
    """A child of the ``vcpd`` logger (``get_logger("mesh")`` -> ``vcpd.mesh``)."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        ctx: dict[str, Any] = getattr(record, "ctx", {}) or {}
        extra = "".join(f" {k}={v}" for k, v in ctx.items())
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}{extra}"
        if record.exc_info and record.levelno >= logging.ERROR:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(getattr(record, "ctx", {}) or {})
        if record.exc_info and record.levelno >= logging.ERROR:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_logging(fmt: Literal["text", "json"] = "text", level: str = "INFO", *, party: int | None = None) -> None:
    """Send ``vcpd.*`` records to stderr in the chosen format (idempotent)."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    if party is not None:
        handler.addFilter(_PartyFilter(party))
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


class _PartyFilter(logging.Filter):
    """Stamp every record with the party id so interleaved local logs stay legible."""

    def __init__(self, party: int) -> None:
        super().__init__()
        self.party = party

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = dict(getattr(record, "ctx", {}) or {})
        ctx.setdefault("party", self.party)
        record.ctx = ctx
        return True
