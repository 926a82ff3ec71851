"""A second program run over the same engine: an update, as ``pulumi up`` on an existing stack.

A resource registered again is diffed as its provider does (diff.py): unchanged, it is left
alone; changed in keys the provider updates in place, it is updated; otherwise it is replaced,
as the Pulumi engine does (pulumi/pulumi ``pkg/resource/deploy/step_generator.go``,
``continueStepsFromDiff``): delete-before-replace when the option or the provider asks for it,
after deleting the previous run's dependents that the replacement would replace
(``calculateDependentReplacements``), else create-before-delete with the old instance deleted
when the update finishes.  Finishing deletes those and the resources the run no longer
registers, dependents before their dependencies (``GenerateDeletes``/``ScheduleDeletes``),
leaving ``retainOnDelete`` resources in Docker and refusing to delete protected ones.
"""

from __future__ import annotations

import threading
from typing import Optional

import docker.errors

from tests.programrun import RegistrationOptions

from .diff import delete_before_replace, planned_diff
from .errors import HarnessError
from .graph import dependency_order, dependent_replacements
from .keys import T_IMAGE
from .providers import Providers
from .records import Record

_Key = tuple[str, str]  # (type, name): what identifies a resource across runs


class Updater:
    """The update in progress, if any: the previous run's live records, those registered
    again, and the old instances of create-before-delete replacements."""

    def __init__(self, providers: Providers):
        self._providers = providers
        self._records = providers.ctx.records
        self._lock = threading.Lock()
        self._previous: Optional[dict[_Key, Record]] = None
        self._seen: set[_Key] = set()
        self._condemned: list[Record] = []

    def begin(self) -> None:
        """The next program run updates what the previous runs created."""
        with self._lock:
            self._previous = {(r.typ, r.name): r for r in self._records.live()}
            self._seen = set()
            self._condemned = []

    def registered_before(self, typ: str, name: str) -> Optional[Record]:
        """The previous run's record of a resource registered again (None outside an
        update, or for a new one); the update remembers it was registered."""
        with self._lock:
            if self._previous is None or (typ, name) not in self._previous:
                return None
            self._seen.add((typ, name))
            return self._previous[(typ, name)]

    def update(
        self, previous: Record, inputs: dict, options: RegistrationOptions
    ) -> tuple[str, dict]:
        """A registration of a resource the previous run has: same, update or replace."""
        typ, name = previous.typ, previous.name
        planned, changed, replace = planned_diff(typ, name, previous.inputs, inputs, options)
        if replace:
            # a new instance: no prior values to keep
            return self.replace(previous, inputs, options)
        if changed:
            self._providers[typ].update(previous, planned, changed)
        # the state takes the new inputs and options (a same step too)
        previous.inputs, previous.options = planned, options
        return str(previous.resource_id), previous.outputs

    def replace(
        self, previous: Record, inputs: dict, options: RegistrationOptions
    ) -> tuple[str, dict]:
        """continueStepsFromDiff, replacement: delete-before-replace (after the dependents it
        condemns) when the option or the provider asks for it, else create now and leave the
        old instance to finish."""
        typ, name = previous.typ, previous.name
        if options.protect and previous.options.protect:
            raise HarnessError(
                f"{typ} {name!r}: unable to replace resource {options.urn!r} as it is currently "
                "marked for protection"
            )
        if not delete_before_replace(typ, inputs, options):
            created = self._providers.create(typ, name, inputs, options)
            with self._lock:
                self._condemned.append(previous)
            return created
        dependents = self._dependent_replacements(previous)
        _refuse_protected_dependents(previous, dependents)
        # dependents before their dependencies, then the resource itself
        for dependent in reversed(dependents):
            self._delete_step(dependent, replacing=True)
        self._delete_step(previous, replacing=True)
        return self._providers.create(typ, name, inputs, options)

    def finish(self) -> list[Record]:
        """Ends the update as the Pulumi engine does once the program's registrations are done
        (``GenerateDeletes``, ``ScheduleDeletes``): deletes the old instances of
        create-before-delete replacements and what the run no longer registers, dependents
        before their dependencies.  Returns the records deleted or dropped, in that order."""
        with self._lock:
            if self._previous is None:
                raise HarnessError("finish_update without begin_update")
            replaced = self._condemned
            unregistered = [
                rec
                for key, rec in self._previous.items()
                if key not in self._seen and not rec.removed
            ]
            self._previous, self._condemned = None, []
        replaced_ids = {id(rec) for rec in replaced}
        done = []
        for rec in reversed(self._dependency_order(replaced + unregistered)):
            self._delete_step(rec, replacing=id(rec) in replaced_ids)
            done.append(rec)
        return done

    def _dependent_replacements(self, root: Record) -> list[Record]:
        """The previous run's resources, not registered yet in this run, that replacing
        `root` replaces too (graph.dependent_replacements)."""
        with self._lock:
            candidates = [
                rec
                for key, rec in (self._previous or {}).items()
                if key not in self._seen and not rec.removed and rec.options.urn
            ]
        return dependent_replacements(root, candidates, self._records.creation_positions())

    def _dependency_order(self, records: list[Record]) -> list[Record]:
        return dependency_order(records, self._records.creation_positions())

    def _delete_step(self, rec: Record, replacing: bool) -> None:
        """pulumi/pulumi pkg/resource/deploy/step.go DeleteStep.Apply: a protected resource is
        not deleted (unless replaced: checked before), a retainOnDelete one is only dropped
        from the state, any other is deleted by its provider."""
        if rec.options.protect and not replacing:
            raise HarnessError(
                f"{rec.typ} {rec.name!r}: resource {rec.options.urn!r} cannot be deleted because "
                "it is protected"
            )
        if rec.options.retain_on_delete:
            rec.created = False  # no longer ours: left in Docker
            rec.removed = True
            return
        try:
            if rec.typ == T_IMAGE:
                # provider.go Delete does nothing: the image stays (teardown may remove it)
                rec.removed = True
            else:
                self._providers.delete(rec)
        except docker.errors.APIError as exc:
            raise HarnessError(
                f"{rec.typ} {rec.name!r}: Docker API error while deleting: {exc}"
            ) from exc


def _refuse_protected_dependents(root: Record, dependents: list[Record]) -> None:
    """A delete-before-replace cannot delete a protected dependent it would replace."""
    for dependent in dependents:
        if dependent.options.protect:
            raise HarnessError(
                f"{root.typ} {root.name!r}: unable to replace resource {dependent.options.urn!r} "
                f"as part of replacing {root.options.urn!r} as it is currently marked for "
                "protection"
            )
