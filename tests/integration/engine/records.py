"""The harness's state: one record per object it created, as Pulumi's state keeps resources.

Records are what later steps read: an update diffs against their inputs, a delete follows
their options, teardown removes what they name.  Worker threads register resources
concurrently, so the log is guarded by a lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Optional

from tests.programrun import RegistrationOptions


@dataclass
class Record:
    """One object the harness created (or adopted), in creation order."""

    typ: str
    name: str  # Pulumi resource name
    docker_id: Optional[str] = None  # container/network/volume/image id (None for non-Docker types)
    docker_name: Optional[str] = None  # container/network/volume name, image reference
    created: bool = True  # False when the object pre-existed (adopted, never removed)
    removed: bool = False
    inputs: dict = field(default_factory=dict)  # plain (unwrapped) inputs
    outputs: dict = field(default_factory=dict)
    spec: Optional[dict] = None  # containers: the translated create plan (container_plan.py)
    resource_id: Optional[str] = None  # the id returned to the Pulumi engine
    # the registration's options (dependencies, retainOnDelete, ...), as the state keeps them
    options: RegistrationOptions = field(default_factory=RegistrationOptions)
    # the explicit docker provider's id it was created through; None: the default engine
    engine: Optional[str] = None


def dependencies(rec: Record) -> set[str]:
    """The URNs a resource depends on: its dependsOn and its inputs' property dependencies."""
    urns = set(rec.options.dependencies)
    for deps in rec.options.property_dependencies.values():
        urns.update(deps)
    return urns


class RecordLog:
    """Every record, in creation order, shared by the registrations' worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[Record] = []

    def snapshot(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    def add(self, rec: Record) -> None:
        with self._lock:
            self._records.append(rec)

    def add_once(self, rec: Record) -> None:
        """Adds `rec` unless it is there already (a container created again keeps its record)."""
        with self._lock:
            if not any(r is rec for r in self._records):
                self._records.append(rec)

    def named(self, name: str, typ: Optional[str] = None) -> list[Record]:
        """The records of a Pulumi name (of one type when given), oldest first."""
        with self._lock:
            return [r for r in self._records if r.name == name and (typ is None or r.typ == typ)]

    def latest(self, typ: str, name: str) -> Record:
        """The newest record of a resource: after a replacement, its new instance."""
        with self._lock:
            return next(r for r in reversed(self._records) if r.typ == typ and r.name == name)

    def live(self) -> list[Record]:
        """The records not deleted yet, in creation order."""
        with self._lock:
            return [r for r in self._records if not r.removed]

    def creation_positions(self) -> dict[int, int]:
        """Each record's place in creation order, by ``id(record)``."""
        with self._lock:
            return {id(r): i for i, r in enumerate(self._records)}
