"""Docker labels the components set, in pulumi-docker's list form. The keys and roles are the
shared conventions (policies/conventions.py, docs/conventions.md): the policy pack identifies
resources by them."""

from __future__ import annotations

from typing import Optional, TypedDict

import pulumi

from .. import conventions


class Label(TypedDict):
    """One label in pulumi-docker's list form: the shape of its Container-, Volume- and
    NetworkLabelArgsDict, so one list serves all three."""

    label: pulumi.Input[str]
    value: pulumi.Input[str]


# docker_labels' keyword names for the labels other than cluster and role.
_EXTRA_LABELS = {
    "member": conventions.LABEL_MEMBER,
    "group": conventions.LABEL_GROUP,
    "data_path": conventions.LABEL_DATA_PATH,
    "member_range": conventions.LABEL_MEMBER_RANGE,
    "vip": conventions.LABEL_VIP,
    "retain": conventions.LABEL_RETAIN,
    "revision": conventions.LABEL_REVISION,
    "host": conventions.LABEL_HOST,
}


def docker_labels(
    scope: str, role: Optional[conventions.Role] = None, **extra: object
) -> list[Label]:
    """Labels in pulumi-docker's list form, `[{label, value}]`, sorted for stable diffs.
    `extra` takes the other labels by their short names: member=, group=, data_path=,
    member_range=, vip=, retain=, revision=, host=; None leaves a label out, booleans are
    written in lowercase, outputs (a revision hash) passed on as they are."""
    values: dict[str, pulumi.Input[str]] = {conventions.LABEL_CLUSTER: scope}
    if role is not None:
        values[conventions.LABEL_ROLE] = role
    for key, value in extra.items():
        if value is None:
            continue
        if isinstance(value, pulumi.Output):
            values[_EXTRA_LABELS[key]] = value
        elif isinstance(value, bool):
            values[_EXTRA_LABELS[key]] = str(value).lower()
        else:
            values[_EXTRA_LABELS[key]] = str(value)
    return [{"label": k, "value": v} for k, v in sorted(values.items())]
