"""Dependency order between recorded resources, as the Pulumi engine derives it.

Deletes run dependents before their dependencies, and a delete-before-replace first deletes
the dependents the replacement would replace too.  Both follow pulumi/pulumi
``pkg/resource/deploy/step_generator.go`` (``ScheduleDeletes``,
``calculateDependentReplacements``); a dependency is a ``dependsOn``, a property dependency or
the parent.
"""

from __future__ import annotations

from .diff import REPLACING_KEYS, forces_replacement
from .errors import HarnessError
from .records import Record, dependencies


def dependency_order(records: list[Record], positions: dict[int, int]) -> list[Record]:
    """`records` ordered so that each comes after those of them it depends on (through
    dependencies, property dependencies or its parent); creation order (`positions`, by
    ``id(record)``) otherwise."""
    remaining = sorted(records, key=lambda r: positions[id(r)])
    ordered: list[Record] = []
    while remaining:
        urns = {r.options.urn for r in remaining} - {""}
        ready = [
            r
            for r in remaining
            if not ((dependencies(r) | {r.options.parent}) - {r.options.urn}) & urns
        ]
        if not ready:
            raise HarnessError(
                "dependency cycle among " + ", ".join(f"{r.typ} {r.name!r}" for r in remaining)
            )
        ordered += ready
        placed = {id(r) for r in ready}
        remaining = [r for r in remaining if id(r) not in placed]
    return ordered


def dependent_replacements(
    root: Record, candidates: list[Record], positions: dict[int, int]
) -> list[Record]:
    """calculateDependentReplacements: the `candidates` (the previous run's resources not
    registered yet in this run) that depend on `root`, transitively through any dependency, and
    would be replaced once the inputs fed by a replaced resource become unknown; in dependency
    order."""
    if not root.options.urn:
        return []
    dependents, replaced = {root.options.urn}, {root.options.urn}
    found: list[Record] = []
    for rec in dependency_order(candidates, positions):
        if not dependencies(rec) & dependents:
            continue
        dependents.add(rec.options.urn)
        if _replaced_with(root, rec, replaced):
            found.append(rec)
            replaced.add(rec.options.urn)
    return found


def _replaced_with(root: Record, rec: Record, replaced: set[str]) -> bool:
    """Whether `rec` is replaced because inputs of it that a replaced resource feeds become
    unknown, as its provider's Diff (or its replaceOnChanges) decides for those keys."""
    unknown = [
        key
        for key, urns in rec.options.property_dependencies.items()
        if replaced.intersection(urns)
    ]
    if unknown and rec.typ not in REPLACING_KEYS:
        raise HarnessError(
            f"{rec.typ} {rec.name!r}: whether replacing {root.typ} {root.name!r} "
            f"replaces it (its inputs {unknown} depend on it) is not translated by the "
            "test harness"
        )
    return any(forces_replacement(rec.typ, rec.name, k, rec.options) for k in unknown)
