"""What every resource type's translation works with, and the shape of one translation.

A :class:`Provider` does what the real provider's Create, Update and Delete do for one
resource type, on the engine the current step works on; the :class:`Context` gives it that
engine's client, the program's working directory (which the Pulumi CLI gives providers), the
name prefix every Docker object must carry, and the record log.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import docker

from .engines import Engines
from .errors import HarnessError
from .records import Record, RecordLog


@dataclass
class Context:
    """The deployment's shared settings and state, as the providers see them."""

    engines: Engines
    records: RecordLog
    program_dir: Optional[str]  # None: os.getcwd() at registration time
    name_prefix: Optional[str]  # when set, every Docker object name must start with it
    build_timeout: int  # seconds for one image build

    @property
    def client(self) -> docker.DockerClient:
        """The client of the engine the current step works on."""
        return self.engines.client

    def cwd(self) -> str:
        """Where relative build contexts, upload sources and command dirs resolve."""
        return self.program_dir or os.getcwd()

    def add(self, rec: Record) -> Record:
        """Records a created object, on the engine the current step works on."""
        rec.engine = self.engines.current
        self.records.add(rec)
        return rec

    def check_prefix(self, typ: str, name: str, what: str, value: str) -> None:
        """Refuses a Docker object name (or an image reference's last part) without the
        prefix, so that tests never touch objects they did not create."""
        if not self.name_prefix:
            return
        last = value.rsplit("/", 1)[-1]
        if not (value.startswith(self.name_prefix) or last.startswith(self.name_prefix)):
            raise HarnessError(
                f"{typ} {name!r}: {what} {value!r} does not start with {self.name_prefix!r}"
            )


class Provider:
    """One resource type's Create, Update and Delete, as its real provider does them."""

    typ: str

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def check(self, name: str, inputs: dict) -> dict:
        """Checks and completes the inputs (its provider's Check), before any diff."""
        return inputs

    def create(self, name: str, inputs: dict) -> tuple[str, dict]:
        """Creates the resource and records it; returns its id and outputs."""
        raise NotImplementedError

    def update(self, rec: Record, inputs: dict, changed: list[str]) -> None:
        """Updates `rec` in place for the `changed` keys (its provider's Update), which
        diff.planned_diff leaves to an update; the state takes the new inputs afterwards.
        By default only the outputs follow (a RemoteImage's keepLocally and forceRemove,
        which its Delete reads)."""
        rec.outputs = {**rec.outputs, **inputs}

    def delete(self, rec: Record) -> None:
        """Deletes what `rec` names (its provider's Delete); the caller marks it removed."""
