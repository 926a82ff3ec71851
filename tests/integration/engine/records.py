"""The harness's state: one record per object it created, as Pulumi's state keeps resources.

Records are what later steps read: an update diffs against their inputs, a delete follows
their options, teardown removes what they name.
"""

from __future__ import annotations

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
