"""A deploying Pulumi mock: ``DockerEngine`` creates what a program declares on a real Docker engine.

Usage (with any runner; the monitor hands each registration's resource options to the engine)::

    engine = DockerEngine(program_dir="/path/to/program", name_prefix="harness-")
    pulumi.runtime.set_mocks(engine, preview=False, monitor=RecordingMonitor(engine))
    ... run the program ...
    engine.teardown()

``new_resource`` receives the inputs as the Pulumi engine would send them to a provider
(camelCase property names, nested objects camelCase too, secrets wrapped in the secret
signature object) and performs what the real provider's Create does, through the Docker SDK
for Python.  The translation follows these sources (read with the search tool):

* ``docker:index/image:Image``: pulumi/pulumi-docker ``provider/image.go`` (``dockerBuild``,
  ``marshalBuildAndApplyDefaults``) and ``provider/provider.go`` (``Check``: the Dockerfile path
  is resolved against the program's working directory, the default is ``<context>/Dockerfile``;
  a relative path that only exists inside the context is an error with a hint); repoDigest of a
  local (not pushed) build is the local image id (pulumi/pulumi-docker PR #739).
* ``docker:index/container:Container``, ``Network``, ``Volume``, ``RemoteImage``:
  kreuzwerker/terraform-provider-docker ``internal/provider/resource_docker_container_funcs.go``
  (``resourceDockerContainerCreate``/``Read``/``Delete``) and ``resource_docker_container_structures.go``
  (``portSetToDockerPorts``, ``volumeSetToDockerVolumes``), plus the pulumi-docker SDK docs.
* ``command:local:Command``: ``/bin/sh -c`` (or ``interpreter``), ``os.Environ()`` plus
  ``environment``, stdout/stderr with one trailing newline trimmed.
* ``random:index/randomPassword:RandomPassword``: terraform-provider-random's string generator
  (min_* characters first, the rest from the enabled classes, then shuffled), with ``secrets``.

Every input key a type does not translate raises :class:`UntranslatedInputError` naming the
type, the resource and the key (zero values -- None, "", 0, False, [], {} -- count as unset, as
``d.GetOk`` does in the Terraform provider).  The engine never pulls and never pushes.

Explicit ``pulumi:providers:docker`` instances name other engines, as pulumi-docker's provider
config does (``host``, ``certPath``: the Docker client's ``DOCKER_HOST`` and
``DOCKER_CERT_PATH`` with TLS verified); every resource registered with one is created, read and
deleted on that engine (``Record.engine``).  An ``ssh://`` host or any other provider key is not
translated and raises.

A second program run over the same engine is an update (``begin_update``/``finish_update``),
as ``pulumi up`` on an existing stack.  Each registration's resource options reach the engine
first (``before_register``, called by tests/programrun.py's ``RecordingMonitor``); options it
does not translate (ignoreChanges, deletedWith, aliases, ...) raise :class:`HarnessError`.  A
resource registered again is diffed as its provider does (see diff.py, and graph.py for the
dependency order): unchanged, it is left alone; changed in keys the provider updates in
place, it is updated (a container through Docker's ContainerUpdate, a Command by its
``update`` or ``create`` script, an Image by building again); otherwise it is replaced, as the
Pulumi engine does (pulumi/pulumi ``pkg/resource/deploy/step_generator.go``,
``continueStepsFromDiff``): delete-before-replace when the option or the provider asks for it,
after deleting the previous run's dependents that the replacement would replace
(``calculateDependentReplacements``), else create-before-delete with the old instance deleted
by ``finish_update``.  ``finish_update`` deletes those and the resources the run no longer
registers, dependents before their dependencies (``GenerateDeletes``/``ScheduleDeletes``),
leaving ``retainOnDelete`` resources in Docker and refusing to delete protected ones.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import os
import secrets as _secrets
import subprocess
import tarfile
import threading
import time
from typing import Any, Callable, Iterator, Optional

import docker
import docker.errors
import docker.utils.build
import pulumi

from tests.programrun import RegistrationOptions

from .container_plan import container_plan, swap_bytes
from .diff import (
    CONTAINER_UPDATE_API,
    check_options,
    delete_before_replace,
    planned_diff,
)
from .durations import parse_go_duration
from .errors import HarnessError, UntranslatedInputError, quiet_unretrieved_harness_errors, short
from .graph import dependency_order, dependent_replacements
from .inputs import autoname, check_keys, labels, plain, str_map
from .keys import (
    HANDLED_KEYS,
    T_COMMAND,
    T_CONTAINER,
    T_IMAGE,
    T_NETWORK,
    T_PASSWORD,
    T_REMOTE_IMAGE,
    T_VOLUME,
)
from .records import Record

__all__ = [
    "DockerEngine",
    "HarnessError",
    "UntranslatedInputError",
    "Record",
    "parse_go_duration",
    "planned_diff",
    "HANDLED_KEYS",
    "quiet_unretrieved_harness_errors",
]

# --------------------------------------------------------------------------------------------
# Helpers


def _context_digest(context: str, dockerfile: str) -> str:
    """A digest of a build context as pulumi-docker's hashContext (provider/provider.go) takes
    it: the Dockerfile, then every file the ignore file (<Dockerfile>.dockerignore, else the
    context's .dockerignore) lets through, by path, mode and content (a symlink by its target).
    Only its changes matter: the value is not the provider's."""
    patterns: list[str] = []
    for ignore_file in (dockerfile + ".dockerignore", os.path.join(context, ".dockerignore")):
        if os.path.isfile(ignore_file):
            with open(ignore_file) as fh:
                lines = (line.strip() for line in fh.read().splitlines())
                patterns = [line for line in lines if line and not line.startswith("#")]
            break
    digest = hashlib.sha256()

    def add(path: str, name: str) -> None:
        content = hashlib.sha256()
        if os.path.islink(path):
            content.update(os.path.realpath(path).encode())
        else:
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    content.update(chunk)
        mode = os.lstat(path).st_mode
        digest.update(f"{name}\0{mode:o}\0".encode() + content.digest())

    add(dockerfile, "Dockerfile")
    included = docker.utils.build.exclude_paths(
        context, patterns, dockerfile=os.path.relpath(dockerfile, context)
    )
    for rel in sorted(included):
        path = os.path.join(context, rel)
        if os.path.islink(path) or os.path.isfile(path):
            add(path, rel)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# The engine


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
        self.program_dir = os.path.abspath(program_dir) if program_dir else None
        self.name_prefix = name_prefix
        self.build_timeout = build_timeout
        self._client_factory = client_factory or (
            lambda: docker.from_env(version="auto", timeout=build_timeout)
        )
        self._local = threading.local()
        self._lock = threading.Lock()
        self._records: list[Record] = []
        self._inflight = 0
        self._idle = threading.Condition(self._lock)
        self.invocations: list[tuple[str, dict]] = []
        # Options of registrations whose new_resource has not run yet, by (type, name).
        self._pending_options: dict[tuple[str, str], RegistrationOptions] = {}
        # During an update: the previous run's live records by (type, name), those registered
        # again, and the old instances of create-before-delete replacements.
        self._previous: Optional[dict[tuple[str, str], Record]] = None
        self._seen: set[tuple[str, str]] = set()
        self._condemned: list[Record] = []
        # Explicit docker providers by id: their `host` and `certPath`.
        self.providers: dict[str, dict] = {}

    # ---- public API --------------------------------------------------------------------

    @property
    def records(self) -> list[Record]:
        """A snapshot of every created object, in creation order."""
        with self._lock:
            return list(self._records)

    def record(self, resource_name: str, typ: Optional[str] = None) -> Record:
        """The record of a resource by its Pulumi name (and optionally type): after a
        replacement, the newest instance."""
        with self._lock:
            found = [
                r
                for r in self._records
                if r.name == resource_name and (typ is None or r.typ == typ)
            ]
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
        return self.client_for(getattr(self._local, "engine", None))

    def client_for(self, engine: Optional[str]) -> docker.DockerClient:
        """A client of the default engine (None) or of the engine an explicit docker
        provider's id names; one per worker thread."""
        clients = getattr(self._local, "clients", None)
        if clients is None:
            clients = self._local.clients = {}
        if engine not in clients:
            clients[engine] = (
                self._client_factory() if engine is None else self._provider_client(engine)
            )
        return clients[engine]

    def _provider_client(self, engine: str) -> docker.DockerClient:
        config = self.providers[engine]
        host = config.get("host")
        if not host:
            return self._client_factory()
        cert_path = config.get("certPath")
        if host.startswith("tcp://") and cert_path:
            # The Docker client's DOCKER_TLS_VERIFY with DOCKER_CERT_PATH, as the provider's.
            tls = docker.tls.TLSConfig(
                client_cert=(f"{cert_path}/cert.pem", f"{cert_path}/key.pem"),
                ca_cert=f"{cert_path}/ca.pem",
                verify=True,
            )
            # Only these certificates: requests would take REQUESTS_CA_BUNDLE from the
            # environment instead (Session.trust_env), which the Docker CLI never reads.
            client = docker.DockerClient(
                base_url="https://" + host[len("tcp://") :],
                tls=tls,
                version="1.41",  # engine 20.10; asking for it would already verify
                timeout=self.build_timeout,
            )
            client.api.trust_env = False
            return client
        if host.startswith("unix://") or host.startswith("tcp://"):
            return docker.DockerClient(base_url=host, version="auto", timeout=self.build_timeout)
        raise HarnessError(f"docker provider {engine!r}: host {host!r} is not translated")

    @contextlib.contextmanager
    def _on(self, engine: Optional[str]) -> Iterator[None]:
        """Steps inside work on `engine` (a record's, or a registration's provider)."""
        previous = getattr(self._local, "engine", None)
        self._local.engine = engine
        try:
            yield
        finally:
            self._local.engine = previous

    def remove_container(self, resource_name: str) -> None:
        """Delete a container as the provider's Delete does (stop with destroyGraceSeconds, force-remove)."""
        rec = self.record(resource_name, T_CONTAINER)
        self._delete_container(rec)

    def recreate_container(self, resource_name: str) -> str:
        """Replace a container: delete it (if still there) and create it again from the recorded plan.

        This is what a Pulumi replacement does; named volumes survive.  Returns the new id.
        """
        rec = self.record(resource_name, T_CONTAINER)
        if not rec.removed:
            self._delete_container(rec)
        with self._on(rec.engine):
            new_id = self._execute_container_plan(rec.spec, rec)
            rec.outputs = self._container_outputs(rec.inputs, new_id)
        return new_id

    def rerun_command(self, resource_name: str) -> None:
        """Runs a command's `create` again, as its replacement does when a resource its
        `triggers` name is replaced (a member's config command after its container)."""
        rec = self.record(resource_name, T_COMMAND)
        self._run_command(rec.name, rec.inputs, rec.inputs["create"], "create")

    def begin_update(self) -> None:
        """The next program run updates what the previous runs created."""
        with self._lock:
            self._previous = {(r.typ, r.name): r for r in self._records if not r.removed}
            self._seen = set()
            self._condemned = []

    def finish_update(self) -> list[Record]:
        """Ends the update as the Pulumi engine does once the program's registrations are done
        (step_generator.go ``GenerateDeletes``, ``ScheduleDeletes``): deletes the old instances
        of create-before-delete replacements and what the run no longer registers, dependents
        before their dependencies (recorded dependencies, property dependencies and parents).
        A resource registered with ``retainOnDelete`` is left in Docker and only dropped; one
        registered with ``protect`` that is no longer registered raises :class:`HarnessError`.
        Returns the records deleted or dropped, in that order."""
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

    def teardown(self, remove_images: bool = False) -> None:
        """Remove what was created, newest first: containers, command deletes, networks, then the
        volumes the harness created; images only with ``remove_images`` (built images, and remote
        images whose ``keepLocally`` is not true).  Errors are collected and raised at the end."""
        errors: list[str] = []
        # a failed program run may leave registrations still running on worker threads
        with self._idle:
            if not self._idle.wait_for(lambda: self._inflight == 0, timeout=self.build_timeout):
                errors.append(
                    f"{self._inflight} registrations still in flight; tearing down anyway"
                )
        recs = list(reversed(self.records))
        order = [T_CONTAINER, T_COMMAND, T_NETWORK, T_VOLUME]
        if remove_images:
            order += [T_IMAGE, T_REMOTE_IMAGE]
        for typ in order:
            for rec in recs:
                if rec.typ != typ or rec.removed or not rec.created:
                    continue
                try:
                    self._delete(rec)
                except Exception as exc:  # keep going: leave as little behind as possible
                    errors.append(
                        f"{rec.typ} {rec.name!r} ({rec.docker_name or rec.docker_id}): {exc}"
                    )
        if errors:
            raise HarnessError("teardown left errors:\n  " + "\n  ".join(errors))

    # ---- Mocks interface ---------------------------------------------------------------

    def before_register(self, options: RegistrationOptions) -> None:
        """Receives a registration's resource options before its ``new_resource`` runs."""
        with self._lock:
            self._pending_options[(options.type, options.name)] = options

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.invocations.append((args.token, dict(args.args)))
        raise HarnessError(
            f"invoke {args.token!r} is not translated by the test harness (args={short(args.args)})"
        )

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        typ, name = args.typ, args.name
        with self._lock:
            # a registration without the monitor's hook (a direct call) has no options
            options = self._pending_options.pop((typ, name), RegistrationOptions(typ, name))
        if not args.custom:
            # Component resources: nothing to create.
            return f"{args.name}-component", {}
        if typ.startswith("pulumi:providers:"):
            inputs = plain(dict(args.inputs), f"{typ} {name!r}")
            keys: dict = {"version": None, "pluginDownloadURL": None}
            if typ == "pulumi:providers:docker":
                keys.update(host=None, certPath=None)
            check_keys(typ, name, inputs, keys)
            provider_id = f"{name}-provider"
            with self._lock:
                self.providers[provider_id] = inputs
            return provider_id, inputs
        if typ not in self._handlers():
            raise HarnessError(
                f"resource type {typ!r} ({name!r}) is not translated by the test harness"
            )
        inputs = plain(dict(args.inputs), f"{typ} {name!r}")
        check_keys(typ, name, inputs, HANDLED_KEYS[typ])
        check_options(typ, name, options)
        engine = self._engine_of(typ, name, args.provider)
        with self._lock:
            self._inflight += 1
        try:
            with self._on(engine):
                return self._register(typ, name, inputs, options)
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    def _engine_of(self, typ: str, name: str, provider: Optional[str]) -> Optional[str]:
        """The explicit docker provider a registration names (its reference is URN::id),
        None for the default one; any other provider of a docker type raises."""
        if not typ.startswith("docker:") or not provider:
            return None
        provider_id = provider.rsplit("::", 1)[-1]
        if provider_id in self.providers:
            return provider_id
        if "::pulumi:providers:docker::default" in provider:
            return None
        raise HarnessError(f"{typ} {name!r}: provider {provider!r} was never registered")

    def _register(
        self, typ: str, name: str, inputs: dict, options: RegistrationOptions
    ) -> tuple[str, dict]:
        try:
            if typ == T_IMAGE:
                inputs = self._check_image(name, inputs)
            previous = self._registered_before(typ, name)
            if previous is None or previous.removed:
                # new, or deleted earlier in this run as a dependent of a replacement
                return self._create(typ, name, inputs, options)
            if previous.engine != getattr(self._local, "engine", None):
                # Another provider: the Pulumi engine replaces the resource (a moved member).
                return self._replace(previous, inputs, options)
            return self._update(previous, inputs, options)
        except HarnessError:
            raise
        except docker.errors.APIError as exc:
            raise HarnessError(f"{typ} {name!r}: Docker API error: {exc}") from exc

    # ---- updates -----------------------------------------------------------------------

    def _registered_before(self, typ: str, name: str) -> Optional[Record]:
        with self._lock:
            if self._previous is None or (typ, name) not in self._previous:
                return None
            self._seen.add((typ, name))
            return self._previous[(typ, name)]

    def _latest(self, typ: str, name: str) -> Record:
        with self._lock:
            return next(r for r in reversed(self._records) if r.typ == typ and r.name == name)

    def _create(
        self, typ: str, name: str, inputs: dict, options: RegistrationOptions
    ) -> tuple[str, dict]:
        resource_id, outputs = self._handlers()[typ](name, inputs)
        created = self._latest(typ, name)
        # What the engine got back: an unchanged resource in a later run returns the same.
        created.resource_id, created.outputs, created.options = resource_id, outputs, options
        return resource_id, outputs

    def _update(
        self, previous: Record, inputs: dict, options: RegistrationOptions
    ) -> tuple[str, dict]:
        """A registration of a resource the previous run has: same, update or replace."""
        typ, name = previous.typ, previous.name
        planned, changed, replace = planned_diff(typ, name, previous.inputs, inputs, options)
        if replace:
            # a new instance: no prior values to keep
            return self._replace(previous, inputs, options)
        inputs = planned
        if typ == T_CONTAINER and changed:
            previous.outputs = self._update_container(previous, inputs, changed)
        elif typ == T_COMMAND and changed:
            previous.outputs = self._update_command(previous, inputs)
        elif typ == T_IMAGE and changed:
            # provider.go Update builds again: a new local image id, so a new repoDigest; the
            # resource id (the first image name) stays
            image_id, previous.outputs = self._build_image(name, inputs)
            previous.docker_id, previous.docker_name = image_id, inputs["imageName"]
        elif changed:  # RemoteImage keepLocally/forceRemove: read by Delete
            previous.outputs = {**previous.outputs, **inputs}
        # the state takes the new inputs and options (a same step too)
        previous.inputs, previous.options = inputs, options
        return str(previous.resource_id), previous.outputs

    def _replace(
        self, previous: Record, inputs: dict, options: RegistrationOptions
    ) -> tuple[str, dict]:
        """step_generator.go continueStepsFromDiff, replacement: delete-before-replace (after the
        dependents it condemns) when the option or the provider asks for it, else create now and
        leave the old instance to finish_update."""
        typ, name = previous.typ, previous.name
        if options.protect and previous.options.protect:
            raise HarnessError(
                f"{typ} {name!r}: unable to replace resource {options.urn!r} as it is currently "
                "marked for protection"
            )
        if not delete_before_replace(typ, inputs, options):
            created = self._create(typ, name, inputs, options)
            with self._lock:
                self._condemned.append(previous)
            return created
        dependents = self._dependent_replacements(previous)
        for dependent in dependents:
            if dependent.options.protect:
                raise HarnessError(
                    f"{typ} {name!r}: unable to replace resource {dependent.options.urn!r} as "
                    f"part of replacing {previous.options.urn!r} as it is currently marked for "
                    "protection"
                )
        # dependents before their dependencies, then the resource itself
        for dependent in reversed(dependents):
            self._delete_step(dependent, replacing=True)
        self._delete_step(previous, replacing=True)
        return self._create(typ, name, inputs, options)

    def _dependent_replacements(self, root: Record) -> list[Record]:
        """The previous run's resources, not registered yet in this run, that replacing
        `root` replaces too (graph.dependent_replacements)."""
        with self._lock:
            candidates = [
                rec
                for key, rec in (self._previous or {}).items()
                if key not in self._seen and not rec.removed and rec.options.urn
            ]
        return dependent_replacements(root, candidates, self._creation_positions())

    def _dependency_order(self, records: list[Record]) -> list[Record]:
        return dependency_order(records, self._creation_positions())

    def _creation_positions(self) -> dict[int, int]:
        with self._lock:
            return {id(r): i for i, r in enumerate(self._records)}

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
                rec.removed = True  # provider.go Delete does nothing: the image stays
            else:
                self._delete(rec)
        except docker.errors.APIError as exc:
            raise HarnessError(
                f"{rec.typ} {rec.name!r}: Docker API error while deleting: {exc}"
            ) from exc

    # ---- dispatch ----------------------------------------------------------------------

    def _handlers(self) -> dict[str, Callable[[str, dict], tuple[str, dict]]]:
        return {
            T_IMAGE: self._image,
            T_REMOTE_IMAGE: self._remote_image,
            T_NETWORK: self._network,
            T_VOLUME: self._volume,
            T_CONTAINER: self._container,
            T_COMMAND: self._command,
            T_PASSWORD: self._password,
        }

    def _add(self, rec: Record) -> Record:
        rec.engine = getattr(self._local, "engine", None)
        with self._lock:
            self._records.append(rec)
        return rec

    def _cwd(self) -> str:
        return self.program_dir or os.getcwd()

    def _check_prefix(self, typ: str, name: str, what: str, value: str) -> None:
        if not self.name_prefix:
            return
        last = value.rsplit("/", 1)[-1]
        if not (value.startswith(self.name_prefix) or last.startswith(self.name_prefix)):
            raise HarnessError(
                f"{typ} {name!r}: {what} {value!r} does not start with {self.name_prefix!r}"
            )

    # ---- docker:index/image:Image ------------------------------------------------------

    def _check_image(self, name: str, inputs: dict) -> dict:
        """provider.go Check: the image name and Dockerfile are checked, and the digest of the
        build context (hashContext) is added as build.contextDigest, so that an edited context
        is a change (an Update: a new build)."""
        typ = T_IMAGE
        image_name = inputs.get("imageName")
        if not image_name:
            raise HarnessError(f"{typ} {name!r}: imageName is required")
        if inputs.get("skipPush") is not True:
            raise HarnessError(
                f"{typ} {name!r}: skipPush must be true (the harness never pushes; "
                f"got {inputs.get('skipPush')!r})"
            )
        self._check_prefix(typ, name, "imageName", image_name)
        _, abs_context, abs_dockerfile = self._image_paths(name, inputs)
        build = {**(inputs.get("build") or {})}
        build["contextDigest"] = _context_digest(abs_context, abs_dockerfile)
        return {**inputs, "build": build}

    def _image_paths(self, name: str, inputs: dict) -> tuple[str, str, str]:
        """The build context as given, and the absolute context and Dockerfile paths."""
        typ = T_IMAGE
        build = inputs.get("build") or {}
        cwd = self._cwd()
        context = build.get("context") or "."
        dockerfile = build.get("dockerfile") or os.path.join(context, "Dockerfile")
        abs_context = os.path.normpath(os.path.join(cwd, context))
        abs_dockerfile = os.path.normpath(os.path.join(cwd, dockerfile))
        if not os.path.isfile(abs_dockerfile):
            # pulumi-docker Check: the Dockerfile path is relative to the working directory.
            if os.path.isabs(dockerfile):
                raise HarnessError(
                    f"{typ} {name!r}: expected a relative Dockerfile path; got {dockerfile!r}: not found"
                )
            hint = os.path.join(context, dockerfile)
            if os.path.isfile(os.path.join(cwd, hint)):
                raise HarnessError(
                    f"{typ} {name!r}: could not open dockerfile at relative path {dockerfile!r}. "
                    f"Try setting `dockerfile` to {hint!r}"
                )
            raise HarnessError(
                f"{typ} {name!r}: could not open dockerfile at relative path {dockerfile!r} "
                f"(resolved against {cwd})"
            )
        if not os.path.isdir(abs_context):
            raise HarnessError(
                f"{typ} {name!r}: build context {context!r} is not a directory (resolved against {cwd})"
            )
        return context, abs_context, abs_dockerfile

    def _image(self, name: str, inputs: dict) -> tuple[str, dict]:
        image_id, outputs = self._build_image(name, inputs)
        image_name = inputs["imageName"]
        self._add(Record(T_IMAGE, name, image_id, image_name, True, inputs=inputs, outputs=outputs))
        return image_name, outputs

    def _build_image(self, name: str, inputs: dict) -> tuple[str, dict]:
        """Builds the image (dockerBuild); returns the local image id and the outputs."""
        typ = T_IMAGE
        image_name = inputs["imageName"]
        build = inputs.get("build") or {}
        context, abs_context, abs_dockerfile = self._image_paths(name, inputs)
        rel_dockerfile = os.path.relpath(abs_dockerfile, abs_context)
        platform = build.get("platform")
        if platform:
            host = "linux/" + {"x86_64": "amd64", "aarch64": "arm64"}.get(
                os.uname().machine, os.uname().machine
            )
            if platform != host:
                raise UntranslatedInputError(
                    typ, name, "build.platform", platform, f"only the host platform {host}"
                )
        if build.get("builderVersion") not in (None, "BuilderV1", "BuilderBuildKit"):
            raise HarnessError(
                f"{typ} {name!r}: invalid Docker Builder version {build.get('builderVersion')!r}"
            )
        kwargs: dict[str, Any] = dict(
            path=abs_context,
            dockerfile=abs_dockerfile,
            tag=image_name,
            rm=True,
            forcerm=True,
            buildargs=str_map(build.get("args")) or None,
            target=build.get("target") or None,
            pull=False,
            timeout=self.build_timeout,
        )
        if build.get("addHosts"):
            kwargs["extra_hosts"] = dict(h.split(":", 1) for h in build["addHosts"])
        if build.get("network"):
            kwargs["network_mode"] = build["network"]
        log_lines: list[str] = []
        try:
            for chunk in self.client.api.build(decode=True, **kwargs):
                if "stream" in chunk:
                    log_lines.append(chunk["stream"])
                if "error" in chunk or "errorDetail" in chunk:
                    err = chunk.get("error") or chunk.get("errorDetail", {}).get("message")
                    tail = "".join(log_lines)[-4000:]
                    raise HarnessError(
                        f"{typ} {name!r}: build of {image_name} failed: {err}\n--- build log tail ---\n{tail}"
                    )
        except docker.errors.APIError as exc:
            raise HarnessError(f"{typ} {name!r}: build of {image_name} failed: {exc}") from exc
        image_id = self.client.api.inspect_image(image_name)["Id"]
        outputs = dict(inputs)
        outputs.update(
            {
                "imageName": image_name,
                "baseImageName": image_name,
                "registryServer": "",
                "dockerfile": rel_dockerfile,
                "context": context,
                "repoDigest": image_id,
            }
        )
        return image_id, outputs

    # ---- docker:index/remoteImage:RemoteImage ------------------------------------------

    def _remote_image(self, name: str, inputs: dict) -> tuple[str, dict]:
        typ = T_REMOTE_IMAGE
        ref = inputs.get("name")
        if not ref:
            raise HarnessError(f"{typ} {name!r}: name is required")
        try:
            info = self.client.api.inspect_image(ref)
        except docker.errors.ImageNotFound:
            raise HarnessError(
                f"{typ} {name!r}: image {ref!r} is not present locally and the harness never "
                f"pulls (no registry is reachable): build or import it first"
            ) from None
        image_id = info["Id"]
        repo_digest = (info.get("RepoDigests") or [""])[0]
        outputs = dict(inputs)
        outputs.update({"imageId": image_id, "repoDigest": repo_digest, "name": ref})
        self._add(Record(typ, name, image_id, ref, True, inputs=inputs, outputs=outputs))
        return f"{image_id}{ref}", outputs

    # ---- docker:index/network:Network --------------------------------------------------

    def _network(self, name: str, inputs: dict) -> tuple[str, dict]:
        typ = T_NETWORK
        net_name = inputs.get("name") or autoname(name)
        self._check_prefix(typ, name, "network name", net_name)
        ipam = None
        if inputs.get("ipamDriver") or inputs.get("ipamOptions") or inputs.get("ipamConfigs"):
            pools = [
                docker.types.IPAMPool(
                    subnet=c.get("subnet") or None,
                    iprange=c.get("ipRange") or None,
                    gateway=c.get("gateway") or None,
                    aux_addresses=str_map(c.get("auxAddress")) or None,
                )
                for c in inputs.get("ipamConfigs") or []
            ]
            ipam = docker.types.IPAMConfig(
                driver=inputs.get("ipamDriver") or "default",
                pool_configs=pools,
                options=str_map(inputs.get("ipamOptions")) or None,
            )
        res = self.client.api.create_network(
            net_name,
            driver=inputs.get("driver") or None,
            options=str_map(inputs.get("options")) or None,
            ipam=ipam,
            internal=bool(inputs.get("internal")),
            labels=labels(inputs.get("labels")) or None,
            enable_ipv6=bool(inputs.get("ipv6")),
            attachable=bool(inputs.get("attachable")) or None,
            check_duplicate=True,
        )
        net_id = res["Id"]
        rec = self._add(Record(typ, name, net_id, net_name, True, inputs=inputs))
        info = self.client.api.inspect_network(net_id)
        outputs = dict(inputs)
        outputs.update(
            {
                "name": net_name,
                "driver": info.get("Driver"),
                "scope": info.get("Scope"),
                "internal": bool(info.get("Internal")),
                "attachable": bool(info.get("Attachable")),
                "ipv6": bool(info.get("EnableIPv6")),
                "options": info.get("Options") or {},
                "ipamDriver": (info.get("IPAM") or {}).get("Driver") or "default",
                "ipamConfigs": [
                    {
                        "subnet": c.get("Subnet", ""),
                        "gateway": c.get("Gateway", ""),
                        "ipRange": c.get("IPRange", ""),
                        "auxAddress": c.get("AuxiliaryAddresses") or {},
                    }
                    for c in (info.get("IPAM") or {}).get("Config") or []
                ],
            }
        )
        rec.outputs = outputs
        return net_id, outputs

    # ---- docker:index/volume:Volume ----------------------------------------------------

    def _volume(self, name: str, inputs: dict) -> tuple[str, dict]:
        typ = T_VOLUME
        vol_name = inputs.get("name") or autoname(name)
        self._check_prefix(typ, name, "volume name", vol_name)
        try:
            self.client.api.inspect_volume(vol_name)
            pre_existing = True
        except docker.errors.NotFound:
            pre_existing = False
        info = self.client.api.create_volume(
            vol_name,
            driver=inputs.get("driver") or None,
            driver_opts=str_map(inputs.get("driverOpts")) or None,
            labels=labels(inputs.get("labels")) or None,
        )
        outputs = dict(inputs)
        outputs.update(
            {
                "name": info["Name"],
                "driver": info.get("Driver"),
                "mountpoint": info.get("Mountpoint"),
                "driverOpts": info.get("Options") or {},
            }
        )
        self._add(
            Record(
                typ,
                name,
                info["Name"],
                info["Name"],
                not pre_existing,
                inputs=inputs,
                outputs=outputs,
            )
        )
        return info["Name"], outputs

    # ---- command:local:Command ---------------------------------------------------------

    def _command(self, name: str, inputs: dict) -> tuple[str, dict]:
        outputs = dict(inputs)
        stdout = stderr = ""
        if inputs.get("create"):
            stdout, stderr = self._run_command(name, inputs, inputs["create"], "create")
        outputs.update({"stdout": stdout, "stderr": stderr})
        self._add(Record(T_COMMAND, name, None, None, True, inputs=inputs, outputs=outputs))
        return f"{name}-{_secrets.token_hex(4)}", outputs

    def _update_command(self, previous: Record, inputs: dict) -> dict:
        """commandController.go Update: the new `update` script, else the new `create`, with
        the previous run's stdout/stderr; with neither, the outputs keep them."""
        outputs = {
            **inputs,
            "stdout": previous.outputs["stdout"],
            "stderr": previous.outputs["stderr"],
        }
        script = inputs.get("update") or inputs.get("create")
        if script:
            stdout, stderr = self._run_command(
                previous.name, inputs, script, "update", previous.outputs
            )
            outputs.update({"stdout": stdout, "stderr": stderr})
        return outputs

    def _run_command(
        self,
        name: str,
        inputs: dict,
        script: str,
        phase: str,
        previous_outputs: Optional[dict] = None,
    ) -> tuple[str, str]:
        """local/commandOutputs.go run: ``os.Environ()`` plus `environment` and, unless
        addPreviousOutputInEnv is false, the previous stdout/stderr (update and delete)."""
        argv = list(inputs.get("interpreter") or ["/bin/sh", "-c"]) + [script]
        cwd = os.path.join(self._cwd(), inputs["dir"]) if inputs.get("dir") else self._cwd()
        env = dict(os.environ)
        env.update(str_map(inputs.get("environment")))
        if previous_outputs and inputs.get("addPreviousOutputInEnv") is not False:
            for key, var in (
                ("stdout", "PULUMI_COMMAND_STDOUT"),
                ("stderr", "PULUMI_COMMAND_STDERR"),
            ):
                if previous_outputs.get(key):
                    env[var] = previous_outputs[key]
        proc = subprocess.run(
            argv, cwd=cwd, env=env, input=(inputs.get("stdin") or "").encode(), capture_output=True
        )
        out = proc.stdout.decode(errors="replace")
        err = proc.stderr.decode(errors="replace")
        if proc.returncode != 0:
            raise HarnessError(
                f"{T_COMMAND} {name!r}: {phase} command exited with {proc.returncode}\n"
                f"--- command ---\n{script}\n--- stdout ---\n{out}\n--- stderr ---\n{err}"
            )
        return out.removesuffix("\n"), err.removesuffix("\n")

    # ---- random:index/randomPassword:RandomPassword ------------------------------------

    def _password(self, name: str, inputs: dict) -> tuple[str, dict]:
        typ = T_PASSWORD
        length = inputs.get("length")
        if not isinstance(length, int) or length < 1:
            raise HarnessError(f"{typ} {name!r}: length must be a positive integer, got {length!r}")
        flags = {
            k: (True if inputs.get(k) is None else bool(inputs[k]))
            for k in ("special", "upper", "lower")
        }
        numeric_vals = {inputs[k] for k in ("numeric", "number") if inputs.get(k) is not None}
        if len(numeric_vals) > 1:
            raise HarnessError(f"{typ} {name!r}: numeric and number disagree")
        numeric = numeric_vals.pop() if numeric_vals else True
        special_chars = inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?"
        classes = [
            ("0123456789", numeric, int(inputs.get("minNumeric") or 0)),
            ("abcdefghijklmnopqrstuvwxyz", flags["lower"], int(inputs.get("minLower") or 0)),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZ", flags["upper"], int(inputs.get("minUpper") or 0)),
            (special_chars, flags["special"], int(inputs.get("minSpecial") or 0)),
        ]
        minimum = sum(m for _, _, m in classes)
        if length < minimum:
            raise HarnessError(
                f"{typ} {name!r}: length ({length}) must be >= the sum of the min_* values ({minimum})"
            )
        pool = "".join(chars for chars, on, _ in classes if on)
        if not pool and length > minimum:
            raise HarnessError(f"{typ} {name!r}: every character class is disabled")
        result = [_secrets.choice(chars) for chars, _, m in classes for _ in range(m)]
        result += [_secrets.choice(pool) for _ in range(length - len(result))]
        _secrets.SystemRandom().shuffle(result)
        outputs = dict(inputs)
        outputs.update(
            {
                "result": "".join(result),
                "length": length,
                "numeric": numeric,
                "number": numeric,
                **flags,
                **{
                    k: int(inputs.get(k) or 0)
                    for k in ("minNumeric", "minLower", "minUpper", "minSpecial")
                },
            }
        )
        self._add(Record(typ, name, None, None, True, inputs=inputs, outputs=outputs))
        return "none", outputs

    # ---- docker:index/container:Container ----------------------------------------------

    def _container(self, name: str, inputs: dict) -> tuple[str, dict]:
        spec = container_plan(name, inputs, self._cwd())
        self._check_prefix(T_CONTAINER, name, "container name", spec["name"])
        rec = Record(T_CONTAINER, name, None, spec["name"], True, inputs=inputs, spec=spec)
        rec.engine = getattr(self._local, "engine", None)
        cid = self._execute_container_plan(spec, rec)
        rec.outputs = self._container_outputs(inputs, cid)
        return cid, rec.outputs

    def _update_container(self, rec: Record, inputs: dict, changed: list[str]) -> dict:
        """resourceDockerContainerUpdate on the running container (see _CONTAINER_IN_PLACE);
        the recorded plan becomes the new one, which a later delete or replacement uses."""
        spec = container_plan(rec.name, {**inputs, "name": rec.docker_name}, self._cwd())
        api = self.client.api
        if CONTAINER_UPDATE_API.intersection(changed):
            # The provider sends zeros for unset values, which the daemon reads as "unchanged"
            # (moby container.UpdateContainer): the SDK leaving them out sends the same.
            mib = 1024 * 1024
            api.update_container(
                rec.docker_id,
                restart_policy=spec["body"]["HostConfig"]["RestartPolicy"],
                cpu_shares=int(inputs.get("cpuShares") or 0),
                mem_limit=int(inputs.get("memory") or 0) * mib,
                mem_reservation=int(inputs.get("memoryReservation") or 0) * mib,
                cpuset_cpus=inputs.get("cpuSet") or None,
                memswap_limit=swap_bytes(int(inputs.get("memorySwap") or 0)),
            )
        was_kept_running = (rec.spec or {}).get("must_run", True)
        if not was_kept_running and spec["must_run"] and spec["start"]:
            api.start(rec.docker_id)  # must_run false -> true
        rec.spec = spec
        return self._container_outputs(inputs, rec.docker_id)

    def _execute_container_plan(self, spec: dict, rec: Record) -> str:
        api = self.client.api
        name = rec.name
        image = spec["body"]["Image"]
        try:
            api.inspect_image(image)
        except docker.errors.ImageNotFound:
            raise HarnessError(
                f"{T_CONTAINER} {name!r}: image {image!r} is not present locally and the harness "
                f"never pulls"
            ) from None
        res = api.create_container_from_config(copy.deepcopy(spec["body"]), name=spec["name"])
        cid = res["Id"]
        rec.docker_id, rec.docker_name, rec.removed = cid, spec["name"], False
        with self._lock:
            if not any(r is rec for r in self._records):
                self._records.append(rec)
        for net, ep in spec["connects"]:
            ipam = ep.get("IPAMConfig") or {}
            api.connect_container_to_network(
                cid,
                net,
                aliases=ep.get("Aliases"),
                ipv4_address=ipam.get("IPv4Address"),
                ipv6_address=ipam.get("IPv6Address"),
                link_local_ips=ipam.get("LinkLocalIPs"),
            )
        for up in spec["uploads"]:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tw:
                info = tarfile.TarInfo(name=up["file"])
                info.size, info.mode, info.mtime = len(up["data"]), up["mode"], int(time.time())
                info.uid, info.gid, info.type = up["uid"], up["gid"], tarfile.REGTYPE
                tw.addfile(info, io.BytesIO(up["data"]))
            api.put_archive(cid, "/", buf.getvalue())
        if spec["start"]:
            started = time.time()
            api.start(cid)
            if spec["wait"]:
                self._wait_healthy(name, cid, spec["wait_timeout"])
            self._wait_running(rec, cid, spec, started)
        return cid

    def _wait_healthy(self, name: str, cid: str, timeout: int) -> None:
        deadline = time.time() + timeout
        while True:
            state = self.client.api.inspect_container(cid)["State"]
            health = state.get("Health")
            if health is None:
                raise HarnessError(
                    f"{T_CONTAINER} {name!r}: wait=true but the container has no healthcheck"
                )
            if health.get("Status") == "healthy":
                return
            if time.time() >= deadline:
                log = (health.get("Log") or [])[-3:]
                raise HarnessError(
                    f"{T_CONTAINER} {name!r}: container failed to be in healthy state in "
                    f"{timeout}s (status {health.get('Status')!r}, last checks {log})"
                )
            time.sleep(0.5)

    def _wait_running(self, rec: Record, cid: str, spec: dict, started: float) -> None:
        """resourceDockerContainerRead's refresh: a must_run container that exited is deleted, error."""
        name = rec.name
        if not spec["must_run"]:
            return
        deadline = time.time() + spec["read_refresh_timeout_ms"] / 1000.0
        time.sleep(0.1)
        while True:
            try:
                state = self.client.api.inspect_container(cid)["State"]
            except docker.errors.NotFound:
                raise HarnessError(
                    f"{T_CONTAINER} {name!r}: container vanished after start (rm=true and it exited?)"
                ) from None
            if state.get("Running"):
                return
            if state.get("Status") == "exited" or time.time() >= deadline:
                logs = self.client.api.logs(cid, tail=40).decode(errors="replace")
                try:
                    self._delete_container(rec)
                finally:
                    raise HarnessError(
                        f"{T_CONTAINER} {name!r}: container failed to be in running state "
                        f"(status {state.get('Status')!r}, exit code {state.get('ExitCode')})\n"
                        f"--- logs ---\n{logs}"
                    )
            time.sleep(0.1)

    def _container_outputs(self, inputs: dict, cid: str) -> dict:
        info = self.client.api.inspect_container(cid)
        outputs = dict(inputs)
        nets = (info.get("NetworkSettings") or {}).get("Networks") or {}
        outputs.update(
            {
                "id": cid,
                "name": info["Name"].lstrip("/"),
                "hostname": info["Config"].get("Hostname", ""),
                "networkMode": info["HostConfig"].get("NetworkMode", ""),
                "bridge": (info.get("NetworkSettings") or {}).get("Bridge", ""),
                "restart": info["HostConfig"]["RestartPolicy"].get("Name") or "no",
                "networkDatas": [
                    {
                        "networkName": n,
                        "ipAddress": d.get("IPAddress", ""),
                        "ipPrefixLength": d.get("IPPrefixLen", 0),
                        "gateway": d.get("Gateway", ""),
                        "globalIpv6Address": d.get("GlobalIPv6Address", ""),
                        "globalIpv6PrefixLength": d.get("GlobalIPv6PrefixLen", 0),
                        "ipv6Gateway": d.get("IPv6Gateway", ""),
                        "macAddress": d.get("MacAddress", ""),
                    }
                    for n, d in sorted(nets.items())
                ],
            }
        )
        if not info["State"].get("Running"):
            outputs["exitCode"] = info["State"].get("ExitCode")
        return outputs

    # ---- deletion ----------------------------------------------------------------------

    def _delete(self, rec: Record) -> None:
        with self._on(rec.engine):
            self._delete_on_engine(rec)

    def _delete_on_engine(self, rec: Record) -> None:
        api = self.client.api
        if rec.typ == T_CONTAINER:
            self._delete_container(rec)
        elif rec.typ == T_COMMAND:
            # commandController.go Delete: the delete script as recorded, previous outputs too
            if rec.inputs.get("delete"):
                self._run_command(rec.name, rec.inputs, rec.inputs["delete"], "delete", rec.outputs)
        elif rec.typ == T_NETWORK:
            try:
                api.remove_network(rec.docker_id)
            except docker.errors.NotFound:
                pass
        elif rec.typ == T_VOLUME:
            try:
                api.remove_volume(rec.docker_name)
            except docker.errors.NotFound:
                pass
        elif rec.typ == T_IMAGE:
            try:
                api.remove_image(rec.docker_name)
            except docker.errors.ImageNotFound:
                pass
        elif rec.typ == T_REMOTE_IMAGE:
            if not rec.inputs.get("keepLocally"):
                try:
                    api.remove_image(rec.docker_name, force=bool(rec.inputs.get("forceRemove")))
                except docker.errors.ImageNotFound:
                    pass
        rec.removed = True

    def _delete_container(self, rec: Record) -> None:
        api = self.client_for(rec.engine).api
        spec = rec.spec or {}
        try:
            grace = spec.get("destroy_grace_seconds") or 0
            if grace > 0:
                api.stop(rec.docker_id, timeout=grace)
            api.remove_container(rec.docker_id, force=True, v=spec.get("remove_volumes", True))
        except docker.errors.NotFound:
            pass
        # wait until it is really gone (removal of an auto-remove container may be in progress)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                api.inspect_container(rec.docker_id)
            except docker.errors.NotFound:
                break
            time.sleep(0.1)
        rec.removed = True
