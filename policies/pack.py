"""Adapters between pulumi-policy 1.21 and the plain rules in ``rules.py``.

``build_policies()`` wraps every ``rules.RULES`` entry in a ``ResourceValidationPolicy`` or a
``StackValidationPolicy``; ``__main__.py`` hands them to ``PolicyPack``. Kept apart from
``__main__.py`` so tests can build the very same policies without starting the gRPC server.

What pulumi-policy gives a policy (checked in pulumi_policy/policy.py, 1.21.0):
* ``ResourceValidationArgs``: resource_type, props, urn, name, opts, provider, get_config(),
  stack_tags; ``PolicyResource`` (stack policies) adds parent, dependencies,
  property_dependencies.
* ``opts`` (``PolicyResourceOptions``): protect, ignore_changes, delete_before_replace, aliases,
  custom_timeouts, additional_secret_outputs, parent. There is no retainOnDelete (the
  analyzer protocol does not carry it), hence the ``patroni-citus.retain`` volume label.
* ``props`` is an "unknown-checking proxy": reading a value that is unknown at preview raises
  ``UnknownValueError``, and pulumi-policy would then skip the whole policy with an advisory
  "can't run policy ... during preview" note. ``to_plain`` reads the proxy key by key instead
  and turns each unknown into ``rules.UNKNOWN``, so one unknown field only skips the checks
  that need it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, List, Optional

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

try:  # imported as the package ``policies`` (tests)
    from . import rules
except ImportError:  # run by Pulumi: runpy puts policies/ itself on sys.path
    import rules  # type: ignore[no-redef,import-not-found]

PACK_NAME = "patroni-citus"

_SENTINELS = frozenset(
    (
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_STRING_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_OBJECT_VALUE,
    )
)


def to_plain(value: Any) -> Any:
    """Deep-copy engine properties into dicts/lists, unknowns as ``rules.UNKNOWN``.

    JSON numbers come through protobuf Structs as floats; integral ones become ints again.
    """
    if isinstance(value, str):
        return rules.UNKNOWN if value in _SENTINELS else value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        out = {}
        for key in value:
            try:
                item = value[key]
            except UnknownValueError:
                item = rules.UNKNOWN
            out[key] = to_plain(item)
        return out
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        items = []
        for i in range(len(value)):
            try:
                item = value[i]
            except UnknownValueError:
                item = rules.UNKNOWN
            items.append(to_plain(item))
        return items
    return value


def resource_from_args(args: ResourceValidationArgs) -> rules.Resource:
    opts = args.opts
    return rules.Resource(
        type=args.resource_type,
        name=args.name,
        urn=args.urn,
        props=to_plain(args.props),
        protect=bool(getattr(opts, "protect", False)),
        parent=getattr(opts, "parent", None) or None,
    )


def resource_from_policy_resource(r: Any) -> rules.Resource:
    opts = r.opts
    parent = getattr(opts, "parent", None) or (r.parent.urn if getattr(r, "parent", None) else None)
    return rules.Resource(
        type=r.resource_type,
        name=r.name,
        urn=r.urn,
        props=to_plain(r.props),
        protect=bool(getattr(opts, "protect", False)),
        parent=parent,
        dependencies=tuple(d.urn for d in (getattr(r, "dependencies", None) or [])),
    )


def _schema(rule: rules.Rule) -> Optional[PolicyConfigSchema]:
    if not rule.config_schema:
        return None
    return PolicyConfigSchema(properties={k: dict(v) for k, v in rule.config_schema.items()})


def _resource_policy(rule: rules.Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        resource = resource_from_args(args)
        for v in rule.check(resource, rule.config(args.get_config())):
            report_violation(v.message, None)

    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel(rule.enforcement_level),
        config_schema=_schema(rule),
    )


def _stack_policy(rule: rules.Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [resource_from_policy_resource(r) for r in args.resources]
        for v in rule.check(resources, rule.config(args.get_config())):
            report_violation(v.message, v.urn)

    return StackValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel(rule.enforcement_level),
        config_schema=_schema(rule),
    )


def build_policies() -> List[Any]:
    return [_stack_policy(r) if r.kind == "stack" else _resource_policy(r) for r in rules.RULES]
