"""How each provider diffs a resource registered again, and which resource options it honours.

A second program run over the same engine is an update: each resource registered again is
compared with the previous run's inputs as its provider's Diff would (Terraform SDKv2 schemas
for the bridged docker resources, pulumi-command's and pulumi-docker's native Diff otherwise),
which decides between leaving it alone, updating it in place and replacing it.  The sources
are cited where each rule is encoded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.programrun import RegistrationOptions

from .errors import HarnessError, short
from .inputs import is_unset
from .keys import HANDLED_KEYS, T_COMMAND, T_CONTAINER, T_IMAGE, T_NETWORK, T_REMOTE_IMAGE, T_VOLUME


@dataclass(frozen=True)
class _TfSchema:
    """What decides a Terraform-bridged resource's diff (SDKv2 schema), in Pulumi names."""

    force_new: frozenset[str]  # ForceNew attributes: a change replaces the resource
    defaults: dict[str, Any]  # non-zero Default values: unset means the default
    keeps_prior: frozenset[str] = frozenset()  # Optional+Computed: unset keeps the prior value
    sets: frozenset[str] = frozenset()  # TypeSet attributes: their order does not matter


# kreuzwerker/terraform-provider-docker v4.5.0 (the upstream submodule of pulumi/pulumi-docker's
# newest mirrored tree, v5.1.0+), internal/provider/resource_docker_container_funcs.go,
# resourceDockerContainerUpdate: one ContainerUpdate call with the restart policy and these
# resources when any of them changed.
CONTAINER_UPDATE_API = frozenset(
    {"restart", "maxRetryCount", "cpuShares", "memory", "memoryReservation", "cpuSet", "memorySwap"}
)
# resource_docker_container.go: the attributes without ForceNew.  Besides those above, their
# change only updates the state, which later operations read (Delete: destroyGraceSeconds,
# removeVolumes); must_run false -> true also starts the container.  Neither tmpfs,
# healthcheck nor init reaches the running container: the provider's Update ignores them.
_CONTAINER_IN_PLACE = CONTAINER_UPDATE_API | frozenset(
    {
        "rm",
        "start",
        "wait",
        "waitTimeout",
        "attach",
        "logs",
        "mustRun",
        "removeVolumes",
        "tmpfs",
        "destroyGraceSeconds",
        "healthcheck",
        "containerReadRefreshTimeoutMilliseconds",
        "init",
    }
)
# The same provider's schemas (resource_docker_{container,network,volume,image}.go, v4.5.0).
_TF_SCHEMAS: dict[str, _TfSchema] = {
    T_CONTAINER: _TfSchema(
        force_new=frozenset(HANDLED_KEYS[T_CONTAINER]) - _CONTAINER_IN_PLACE,
        defaults={
            "start": True,
            "waitTimeout": 60,
            "mustRun": True,
            "restart": "no",
            "removeVolumes": True,
            "networkMode": "bridge",
            "containerReadRefreshTimeoutMilliseconds": 15000,
        },
        # user and working_dir: a DiffSuppressFunc treats "" as no change
        keeps_prior=frozenset(
            {
                "hostname",
                "command",
                "entrypoints",
                "envs",
                "labels",
                "securityOpts",
                "stopSignal",
                "stopTimeout",
                "shmSize",
                "logDriver",
                "healthcheck",
                "ipcMode",
                "init",
                "user",
                "workingDir",
            }
        ),
        sets=frozenset(
            {
                "dns",
                "dnsOpts",
                "dnsSearches",
                "securityOpts",
                "mounts",
                "volumes",
                "hosts",
                "ulimits",
                "envs",
                "labels",
                "networksAdvanced",
                "uploads",
                "groupAdds",
            }
        ),
    ),
    # no Update function: every attribute is ForceNew
    T_NETWORK: _TfSchema(
        force_new=frozenset(HANDLED_KEYS[T_NETWORK]),
        defaults={"ipamDriver": "default"},
        keeps_prior=frozenset({"driver", "options", "internal", "ipamConfigs"}),
        sets=frozenset({"labels", "ipamConfigs"}),
    ),
    # resourceDockerVolumeUpdate only updates cluster volumes (not translated); `name` is
    # Computed too, but Pulumi's autonamer always fills it, so it never keeps the prior value
    T_VOLUME: _TfSchema(
        force_new=frozenset(HANDLED_KEYS[T_VOLUME]),
        defaults={},
        keeps_prior=frozenset({"driver"}),
        sets=frozenset({"labels"}),
    ),
    # resourceDockerImageUpdate only reads the image again: keepLocally and forceRemove are
    # read by Delete
    T_REMOTE_IMAGE: _TfSchema(
        force_new=frozenset({"name", "triggers", "pullTriggers"}),
        defaults={},
        sets=frozenset({"pullTriggers"}),
    ),
}

# The input keys whose change makes the provider's Diff ask for a replacement.  pulumi-command
# 1.2.1: `triggers` is tagged provider:"replaceOnChanges" (provider/pkg/provider/common/inputs.go,
# applied by pulumi-go-provider v1.3.0 infer/resource.go Diff); any other change is an Update
# (local/commandController.go).  pulumi-docker's native Image (provider/provider.go Diff) never
# asks for one: any change is an Update, which builds again.  Types missing here (RandomPassword)
# are not translated.
REPLACING_KEYS: dict[str, frozenset[str]] = {
    **{typ: schema.force_new for typ, schema in _TF_SCHEMAS.items()},
    T_COMMAND: frozenset({"triggers"}),
    T_IMAGE: frozenset(),
}


def _with_prior(typ: str, old: dict, new: dict) -> dict:
    """New inputs plus the prior values of the Optional+Computed attributes they leave unset (an
    SDKv2 plan keeps the prior state for those)."""
    schema = _TF_SCHEMAS.get(typ)
    if schema is None:
        return new
    kept = {
        k: old[k] for k in schema.keeps_prior if is_unset(new.get(k)) and not is_unset(old.get(k))
    }
    return {**new, **kept}


def _changed_keys(typ: str, old: dict, new: dict) -> list[str]:
    """The top-level input keys the provider's Diff finds changed, sorted."""
    schema = _TF_SCHEMAS.get(typ)
    changed = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if schema is not None:
            # SDKv2: a zero value is unset (d.GetOk), unset is the schema's Default
            default = schema.defaults.get(key)
            before = default if is_unset(before) else before
            after = default if is_unset(after) else after
            if is_unset(before) and is_unset(after):
                continue
            if key in schema.sets and isinstance(before, list) and isinstance(after, list):
                before, after = _as_set(before), _as_set(after)
        if before != after:
            changed.append(key)
    if typ == T_IMAGE and "registry" in changed and _same_registry_server(old, new):
        changed.remove("registry")
    return changed


def _same_registry_server(old: dict, new: dict) -> bool:
    """provider.go diffUpdates: of an Image's registry, only a changed server is a change."""
    before, after = old.get("registry"), new.get("registry")
    return (
        isinstance(before, dict)
        and isinstance(after, dict)
        and before.get("server") == after.get("server")
    )


def _as_set(values: list) -> list[str]:
    """A TypeSet attribute's elements in an order-free, comparable form."""
    return sorted(json.dumps(v, sort_keys=True) for v in values)


def _replace_on_changes_keys(typ: str, name: str, paths: tuple[str, ...]) -> frozenset[str]:
    """The input keys a replaceOnChanges option names: a plain key matches any change under it
    (step_generator.go applyReplaceOnChanges, PropertyPath.Contains); a Command's `triggers[*]`,
    which pulumi-command's SDK adds to every registration, says what its provider already does."""
    keys = set()
    for path in paths:
        if typ == T_COMMAND and path == "triggers[*]":
            keys.add("triggers")
        elif path in HANDLED_KEYS[typ]:
            keys.add(path)
        else:
            raise HarnessError(
                f"{typ} {name!r}: resource option replaceOnChanges={list(paths)} is not "
                f"translated by the test harness (only top-level input keys)"
            )
    return frozenset(keys)


def forces_replacement(typ: str, name: str, key: str, options: RegistrationOptions) -> bool:
    """Whether a change of input `key` replaces the resource (its provider or replaceOnChanges)."""
    return key in REPLACING_KEYS[typ] or key in _replace_on_changes_keys(
        typ, name, options.replace_on_changes
    )


def planned_diff(
    typ: str, name: str, old: dict, new: dict, options: RegistrationOptions
) -> tuple[dict, list[str], bool]:
    """A resource registered again as its provider's Diff sees it: the planned inputs (with the
    prior values the schema keeps), the changed keys, and whether they replace it. The engine
    acts on it; tests/preview.py prints it as `pulumi preview` would."""
    planned = _with_prior(typ, old, new)
    changed = _changed_keys(typ, old, planned)
    if changed and typ not in REPLACING_KEYS:
        raise HarnessError(
            f"{typ} {name!r}: an update changing {changed} is not translated by the test harness"
        )
    return planned, changed, any(forces_replacement(typ, name, k, options) for k in changed)


def check_options(typ: str, name: str, options: RegistrationOptions) -> None:
    """Refuses the resource options of a custom resource the harness does not translate."""

    def refuse(option: str, value: Any) -> HarnessError:
        return HarnessError(
            f"{typ} {name!r}: resource option {option}={short(value)} is not translated by the "
            "test harness"
        )

    if options.ignore_changes:
        raise refuse("ignoreChanges", list(options.ignore_changes))
    if options.deleted_with:
        raise refuse("deletedWith", options.deleted_with)
    for alias in options.aliases:
        # An alias only matters when it can name a record.  pulumi-docker's SDK aliases every
        # Image to its v3 type token, which no record has: harmless.
        spec = alias.get("spec") or {}
        named = {key for key, value in spec.items() if value}
        if "urn" in alias or named != {"type"} or spec["type"] in HANDLED_KEYS:
            raise refuse("aliases", list(options.aliases))
    if options.other_options:
        raise refuse(options.other_options[0], "set")
    _replace_on_changes_keys(typ, name, options.replace_on_changes)


def delete_before_replace(typ: str, inputs: dict, options: RegistrationOptions) -> bool:
    """The option when set, else the provider's choice: pulumi-terraform-bridge
    pkg/tfbridge/provider.go Diff asks for it when the ResourceInfo does (pulumi-docker
    provider/resources.go: every Container) or when an autonamed `name` was set explicitly
    (schema.go nameRequiresDeleteBeforeReplace: Networks and Volumes, whose `name` pulumi-docker
    autonames with SetAutonaming); the Command and Image providers never ask for it."""
    if options.delete_before_replace is not None:
        return options.delete_before_replace
    if typ == T_CONTAINER:
        return True
    return typ in (T_NETWORK, T_VOLUME) and bool(inputs.get("name"))
