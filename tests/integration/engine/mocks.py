"""``DockerEngine``: the ``pulumi.runtime.Mocks`` that deploys to a real Docker engine.

It receives every registration as the Pulumi engine would send it to a provider, refuses what
the harness does not translate, and hands the rest to the type's provider (providers.py) on
the right engine (engines.py), or to the update in progress (updates.py).  Its public methods
are what tests use: records of what was created, the steps of a replacement done by hand,
the update's boundaries, and teardown.
"""

from __future__ import annotations

import copy
import os
import threading
from typing import Any, Callable, Optional

import docker
import docker.errors
import pulumi

from tests.programrun import RegistrationOptions

from .context import Context
from .diff import check_options
from .engines import EngineId, Engines
from .errors import HarnessError, short
from .inputs import check_keys, plain
from .keys import HANDLED_KEYS, T_COMMAND, T_CONTAINER, T_IMAGE, T_NETWORK, T_REMOTE_IMAGE, T_VOLUME
from .providers import Providers
from .records import Record, RecordLog
from .updates import Updater

# teardown's order: what uses the others first
_TEARDOWN_ORDER = [T_CONTAINER, T_COMMAND, T_NETWORK, T_VOLUME]
_IMAGE_TYPES = [T_IMAGE, T_REMOTE_IMAGE]


class DockerEngine(pulumi.runtime.Mocks):
    """A ``pulumi.runtime.Mocks`` that deploys to a real Docker engine.

    :param program_dir: the program's working directory (relative build contexts, Dockerfiles,
        upload sources and command dirs resolve against it); default: ``os.getcwd()`` at
        registration time, which is what the Pulumi CLI gives providers.
    :param name_prefix: when set, every Docker object name (containers, networks, volumes, built
        image references) must start with it, or registration fails.
    :param client_factory: returns a ``docker.DockerClient``; default ``docker.from_env(version="auto")``.
        One client per worker thread.
    :param build_timeout: seconds for one image build.
    """

    def __init__(
        self,
        program_dir: Optional[str] = None,
        *,
        name_prefix: Optional[str] = None,
        client_factory: Optional[Callable[[], docker.DockerClient]] = None,
        build_timeout: int = 1800,
    ):
        engines = Engines(
            client_factory or (lambda: docker.from_env(version="auto", timeout=build_timeout)),
            build_timeout,
        )
        self._ctx = Context(
            engines=engines,
            records=RecordLog(),
            program_dir=os.path.abspath(program_dir) if program_dir else None,
            name_prefix=name_prefix,
            build_timeout=build_timeout,
        )
        self._providers = Providers(self._ctx)
        self._updates = Updater(self._providers)
        self._lock = threading.Lock()
        self._inflight = 0
        self._idle = threading.Condition(self._lock)
        self.invocations: list[tuple[str, dict]] = []
        # Options of registrations whose new_resource has not run yet, by (type, name).
        self._pending_options: dict[tuple[str, str], RegistrationOptions] = {}

    # ---- what was created --------------------------------------------------------------

    @property
    def records(self) -> list[Record]:
        """A snapshot of every created object, in creation order."""
        return self._ctx.records.snapshot()

    def record(self, resource_name: str, typ: Optional[str] = None) -> Record:
        """The record of a resource by its Pulumi name (and optionally type): after a
        replacement, the newest instance."""
        found = self._ctx.records.named(resource_name, typ)
        if not found or len({r.typ for r in found}) != 1:
            raise KeyError(
                f"{len(found)} records named {resource_name!r}" + (f" of type {typ}" if typ else "")
            )
        return found[-1]

    def container_spec(self, resource_name: str) -> dict:
        """A deep copy of the translated create plan of a container resource."""
        return copy.deepcopy(self.record(resource_name, T_CONTAINER).spec)

    @property
    def client(self) -> docker.DockerClient:
        """The client of the engine the current step works on (the default engine outside
        one)."""
        return self._ctx.engines.client

    def client_for(self, engine: EngineId) -> docker.DockerClient:
        """A client of the default engine (None) or of the engine an explicit docker
        provider's id names; one per worker thread."""
        return self._ctx.engines.client_for(engine)

    # ---- a replacement's steps, by hand ------------------------------------------------

    def remove_container(self, resource_name: str) -> None:
        """Delete a container as the provider's Delete does (stop with destroyGraceSeconds, force-remove)."""
        self._providers.containers.delete(self.record(resource_name, T_CONTAINER))

    def recreate_container(self, resource_name: str) -> str:
        """Replace a container: delete it (if still there) and create it again from the recorded plan.

        This is what a Pulumi replacement does; named volumes survive.  Returns the new id.
        """
        containers = self._providers.containers
        rec = self.record(resource_name, T_CONTAINER)
        if not rec.removed:
            containers.delete(rec)
        with self._ctx.engines.on(rec.engine):
            new_id = containers.execute(rec.spec, rec)
            rec.outputs = containers.read_outputs(rec.inputs, new_id)
        return new_id

    def rerun_command(self, resource_name: str) -> None:
        """Runs a command's `create` again, as its replacement does when a resource its
        `triggers` name is replaced (a member's config command after its container)."""
        rec = self.record(resource_name, T_COMMAND)
        self._providers.commands.run(rec.name, rec.inputs, rec.inputs["create"], "create")

    # ---- updates and teardown ----------------------------------------------------------

    def begin_update(self) -> None:
        """The next program run updates what the previous runs created (see updates.py)."""
        self._updates.begin()

    def finish_update(self) -> list[Record]:
        """Ends the update as the Pulumi engine does once the program's registrations are done:
        deletes the old instances of create-before-delete replacements and what the run no
        longer registers, dependents before their dependencies (recorded dependencies,
        property dependencies and parents).  A resource registered with ``retainOnDelete`` is
        left in Docker and only dropped; one registered with ``protect`` that is no longer
        registered raises :class:`HarnessError`.  Returns the records deleted or dropped, in
        that order."""
        return self._updates.finish()

    def teardown(self, remove_images: bool = False) -> None:
        """Remove what was created, newest first: containers, command deletes, networks, then the
        volumes the harness created; images only with ``remove_images`` (built images, and remote
        images whose ``keepLocally`` is not true).  Errors are collected and raised at the end."""
        errors = self._wait_idle()
        newest_first = list(reversed(self.records))
        for typ in _TEARDOWN_ORDER + (_IMAGE_TYPES if remove_images else []):
            for rec in newest_first:
                if rec.typ != typ or rec.removed or not rec.created:
                    continue
                try:
                    self._providers.delete(rec)
                except Exception as exc:  # keep going: leave as little behind as possible
                    errors.append(
                        f"{rec.typ} {rec.name!r} ({rec.docker_name or rec.docker_id}): {exc}"
                    )
        if errors:
            raise HarnessError("teardown left errors:\n  " + "\n  ".join(errors))

    def _wait_idle(self) -> list[str]:
        """Waits for registrations still running on worker threads (a failed program run may
        leave some); returns the error to report if they do not finish."""
        with self._idle:
            timeout = self._ctx.build_timeout
            if not self._idle.wait_for(lambda: self._inflight == 0, timeout=timeout):
                return [f"{self._inflight} registrations still in flight; tearing down anyway"]
        return []

    # ---- Mocks interface ---------------------------------------------------------------

    def before_register(self, options: RegistrationOptions) -> None:
        """Receives a registration's resource options before its ``new_resource`` runs."""
        with self._lock:
            self._pending_options[(options.type, options.name)] = options

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        self.invocations.append((args.token, dict(args.args)))
        raise HarnessError(
            f"invoke {args.token!r} is not translated by the test harness (args={short(args.args)})"
        )

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> Any:
        typ, name = args.typ, args.name
        with self._lock:
            # a registration without the monitor's hook (a direct call) has no options
            options = self._pending_options.pop((typ, name), RegistrationOptions(typ, name))
        if not args.custom:
            # Component resources: nothing to create.
            return f"{args.name}-component", {}
        if typ.startswith("pulumi:providers:"):
            return self._ctx.engines.register_provider(typ, name, dict(args.inputs))
        if not self._providers.translates(typ):
            raise HarnessError(
                f"resource type {typ!r} ({name!r}) is not translated by the test harness"
            )
        inputs = plain(dict(args.inputs), f"{typ} {name!r}")
        check_keys(typ, name, inputs, HANDLED_KEYS[typ])
        check_options(typ, name, options)
        engine = self._ctx.engines.engine_of(typ, name, args.provider)
        with self._lock:
            self._inflight += 1
        try:
            with self._ctx.engines.on(engine):
                return self._register(typ, name, inputs, options)
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    def _register(
        self, typ: str, name: str, inputs: dict, options: RegistrationOptions
    ) -> tuple[str, dict]:
        """Creates, updates or replaces the resource, on the current step's engine."""
        try:
            inputs = self._providers[typ].check(name, inputs)
            previous = self._updates.registered_before(typ, name)
            if previous is None or previous.removed:
                # new, or deleted earlier in this run as a dependent of a replacement
                return self._providers.create(typ, name, inputs, options)
            if previous.engine != self._ctx.engines.current:
                # Another provider: the Pulumi engine replaces the resource (a moved member).
                return self._updates.replace(previous, inputs, options)
            return self._updates.update(previous, inputs, options)
        except HarnessError:
            raise
        except docker.errors.APIError as exc:
            raise HarnessError(f"{typ} {name!r}: Docker API error: {exc}") from exc
