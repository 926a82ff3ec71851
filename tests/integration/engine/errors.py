"""The harness's failures: what it refuses, what it does not translate, and how they surface.

Every refusal is a :class:`HarnessError`, so a program the harness cannot deploy faithfully
fails loudly instead of deploying something the real providers would not.
"""

from __future__ import annotations

import logging
from typing import Any


class HarnessError(RuntimeError):
    """The deploying mock refused or failed to create a resource."""


class UntranslatedInputError(HarnessError):
    """An input key the harness does not translate (so program and harness would drift)."""

    def __init__(self, typ: str, name: str, key: str, value: Any = None, why: str = ""):
        self.typ, self.resource_name, self.key = typ, name, key
        msg = f"{typ} {name!r}: input key {key!r} is not translated by the test harness"
        if why:
            msg += f" ({why})"
        msg += f"; value={short(value)}"
        super().__init__(msg)


def short(value: Any, limit: int = 120) -> str:
    """A value's repr, cut to `limit` characters for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _UnretrievedHarnessErrors(logging.Filter):
    """Drops asyncio's reports of a HarnessError nobody retrieved (see below)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (
            isinstance(exc, HarnessError)
            and record.getMessage().startswith("Future exception was never retrieved")
        )


def quiet_unretrieved_harness_errors() -> None:
    """Drop asyncio's "Future exception was never retrieved" reports of HarnessError.

    When a registration fails, Pulumi leaves one future per output property holding the same
    exception; asyncio reports each at garbage collection.  The error itself still propagates
    to the program runner; only the duplicate reports are dropped (other exceptions untouched).
    """
    log = logging.getLogger("asyncio")
    # by name: a second import of the harness (under another module path) adds no second filter
    if not any(type(f).__name__ == _UnretrievedHarnessErrors.__name__ for f in log.filters):
        log.addFilter(_UnretrievedHarnessErrors())
