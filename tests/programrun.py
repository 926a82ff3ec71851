"""Runs the Pulumi program for a stack file under mocks and records what it registers.

The recording is what `pulumi preview` would see: every resource with its type, name, parent,
inputs as the engine receives them (camelCase), options, and the stack outputs. Any
`pulumi.runtime.Mocks` can be plugged in: `EchoMocks` for unit tests, or the integration
suite's engine that creates the resources on a real Docker engine.
"""

from __future__ import annotations

import contextvars
import json
import os
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pulumi
import yaml
from google.protobuf.json_format import MessageToDict
from pulumi.runtime import mocks as runtime_mocks
from pulumi.runtime.settings import SETTINGS
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from policies import conventions

PROJECT_DIR = Path(__file__).resolve().parent.parent
PROJECT = "patroni-citus"


@dataclass
class RegisteredResource:
    type: str
    name: str
    urn: str
    custom: bool
    inputs: dict
    outputs: dict
    id: str
    options: dict  # parent, dependencies, protect, retainOnDelete, deleteBeforeReplace, ...

    @property
    def labels(self) -> dict[str, str]:
        """A Docker resource's labels as a mapping (inputs hold them as label/value pairs)."""
        return {i["label"]: i["value"] for i in self.inputs.get("labels", [])}

    @property
    def role(self) -> Optional[str]:
        return self.labels.get(conventions.LABEL_ROLE)


@dataclass(frozen=True)
class RegistrationOptions:
    """A registration's resource options as the Pulumi engine receives them, handed to a Mocks'
    `before_register` hook before its `new_resource` runs (which sees only type, name and inputs).
    The defaults are a registration without options."""

    type: str = ""
    name: str = ""
    urn: str = ""
    custom: bool = True
    parent: str = ""
    dependencies: tuple[str, ...] = ()  # every URN it depends on: dependsOn and its inputs'
    property_dependencies: dict[str, tuple[str, ...]] = field(default_factory=dict)  # key -> URNs
    delete_before_replace: Optional[bool] = None  # None: unset, the provider decides
    retain_on_delete: bool = False
    protect: bool = False
    ignore_changes: tuple[str, ...] = ()
    replace_on_changes: tuple[str, ...] = ()
    deleted_with: str = ""
    aliases: tuple[dict, ...] = ()  # {"urn": ...} or {"spec": {"name"/"type"/...: ...}}
    other_options: tuple[str, ...] = ()  # further lifecycle options it sets, by name

    @classmethod
    def from_request(cls, urn: str, request: Any) -> RegistrationOptions:
        """From a RegisterResourceRequest; deleteBeforeReplace is read as the engine does
        (pulumi/pulumi pkg/resource/deploy/source_eval.go, RegisterResource)."""
        others = {
            "customTimeouts": bool(request.customTimeouts.ListFields()),
            "import": bool(request.importId),
            "replaceWith": bool(request.replace_with),
            "replacementTrigger": request.HasField("replacement_trigger"),
            "hooks": bool(request.hooks.ListFields()),
        }
        defined = request.deleteBeforeReplaceDefined or request.deleteBeforeReplace
        return cls(
            type=request.type,
            name=request.name,
            urn=urn,
            custom=bool(request.custom),
            parent=request.parent,
            dependencies=tuple(request.dependencies),
            property_dependencies={
                key: tuple(deps.urns) for key, deps in request.propertyDependencies.items()
            },
            delete_before_replace=bool(request.deleteBeforeReplace) if defined else None,
            retain_on_delete=bool(request.retainOnDelete),
            protect=bool(request.protect),
            ignore_changes=tuple(request.ignoreChanges),
            replace_on_changes=tuple(request.replaceOnChanges),
            deleted_with=request.deletedWith,
            aliases=tuple(MessageToDict(alias) for alias in request.aliases)
            + tuple({"urn": urn} for urn in request.aliasURNs),
            other_options=tuple(name for name, used in others.items() if used),
        )


@dataclass
class ProgramRun:
    stack: str
    resources: list[RegisteredResource]
    outputs: dict  # stack outputs, resolved
    secret_outputs: set[str] = field(default_factory=set)

    def of_type(self, type_: str) -> list[RegisteredResource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> RegisteredResource:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]

    def by_urn(self, urn: str) -> RegisteredResource:
        return next(r for r in self.resources if r.urn == urn)


class EchoMocks(pulumi.runtime.Mocks):
    """Returns inputs as outputs, plus the computed outputs the program reads."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        outputs = dict(args.inputs)
        if args.typ == "docker:index/image:Image":
            outputs["repoDigest"] = f"sha256:{'0' * 63}{len(args.name) % 10}"
        elif args.typ == "docker:index/remoteImage:RemoteImage":
            outputs["imageId"] = f"sha256:{'1' * 64}"
        elif args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = f"mock-password-{args.name}"
        elif args.typ == "command:local:Command":
            outputs["stdout"] = "{}"
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


class RecordingMonitor(runtime_mocks.MockMonitor):
    """A mock monitor that also keeps each registration's parent and options, and hands the
    options to the mocks' `before_register(options: RegistrationOptions)`, when it has one,
    before their `new_resource` runs (on the same worker thread; registrations run concurrently)."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.registered: list[RegisteredResource] = []

    def RegisterResource(self, request):
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        before_register = getattr(self.mocks, "before_register", None)
        if before_register is not None:
            urn = self.make_urn(request.parent, request.type, request.name)
            before_register(RegistrationOptions.from_request(urn, request))
        response = super().RegisterResource(request)
        registration = self.resources[response.urn]
        inputs = runtime_mocks.rpc.deserialize_properties(request.object)
        self.registered.append(
            RegisteredResource(
                type=request.type,
                name=request.name,
                urn=response.urn,
                custom=bool(request.custom),
                inputs=_plain(inputs),
                outputs=_plain(registration.state),
                id=registration.id,
                options={
                    "parent": request.parent,
                    "dependencies": sorted(request.dependencies),
                    "protect": bool(request.protect),
                    "retainOnDelete": bool(request.retainOnDelete),
                    "deleteBeforeReplace": bool(request.deleteBeforeReplace),
                    "ignoreChanges": list(request.ignoreChanges),
                    # "urn::id" of an explicit provider, the default provider's otherwise
                    "provider": request.provider,
                },
            )
        )
        return response


def _plain(value: Any) -> Any:
    """Unwraps secret markers and turns the SDK's containers into plain dicts and lists."""
    if isinstance(value, dict):
        if value.get(pulumi.runtime.rpc._special_sig_key) == pulumi.runtime.rpc._special_secret_sig:
            return _plain(value["value"])
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def stack_names() -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in PROJECT_DIR.glob("Pulumi.*.yaml"))


def stack_config(stack: str) -> dict[str, Any]:
    """The `config:` block of Pulumi.<stack>.yaml, keys with their project prefix."""
    document = yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text()) or {}
    return dict(document.get("config") or {})


def run_stack(
    stack: str,
    mocks: Optional[pulumi.runtime.Mocks] = None,
    *,
    config: Optional[dict[str, Any]] = None,
    secrets: Optional[dict[str, str]] = None,
) -> ProgramRun:
    """Runs __main__.py for `stack` (config from its stack file unless `config` is given;
    `secrets` adds encrypted-style config values) and returns what it registered."""
    values = stack_config(stack) if config is None else dict(config)
    secret_keys = []
    for key, value in (secrets or {}).items():
        values[f"{PROJECT}:{key}"] = value
        secret_keys.append(f"{PROJECT}:{key}")
    engine_config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    # A fresh context gives every run its own root stack, config and settings.
    return contextvars.Context().run(_run, stack, mocks or EchoMocks(), engine_config, secret_keys)


def _run(
    stack: str, mocks: pulumi.runtime.Mocks, config: dict[str, str], secret_keys: list[str]
) -> ProgramRun:
    # The RPC manager is process-wide: a failed earlier run must not fail this one.
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()
    pulumi.runtime.set_all_config(config, secret_keys)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    root = pulumi.runtime.settings.get_root_resource()
    resolved: dict[str, Any] = {}
    secret: set[str] = set()

    async def collect() -> None:
        for name, value in root.outputs.items():
            output = pulumi.Output.from_input(value)
            resolved[name] = _plain(await output.future())
            if await output.is_secret():
                secret.add(name)

    def program() -> None:
        cwd = os.getcwd()
        os.chdir(PROJECT_DIR)  # Pulumi runs programs from the project directory
        try:
            runpy.run_path(str(PROJECT_DIR / "__main__.py"), run_name="__main__")
        finally:
            os.chdir(cwd)
        _sync_await(collect())

    _sync_await(run_pulumi_func(program))
    return ProgramRun(stack, monitor.registered, resolved, secret)
