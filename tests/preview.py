"""What `pulumi preview` would show for a second program run over a deployed stack: each resource
created, updated, replaced, deleted or left alone, with the input keys that changed.

Both runs go through EchoMocks (no Docker). The per-type diff rules are the integration
harness's (tests/integration/engine/diff.py `planned_diff`, with the providers' sources cited there);
on top of them, as the Pulumi engine does in a preview, an input that depends on a resource being
replaced or rebuilt is unknown, so it counts as changed (an image rebuilt gives every container
a new image id; a replaced container gives a new id to the commands it triggers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from tests.integration.engine import planned_diff
from tests.programrun import EchoMocks, RegistrationOptions, run_stack

IMAGE = "docker:index/image:Image"
CONTAINER = "docker:index/container:Container"


class _OptionsMocks(EchoMocks):
    """EchoMocks that keep each registration's options (property dependencies, ...)."""

    def __init__(self) -> None:
        self.options: dict[str, RegistrationOptions] = {}

    def before_register(self, options: RegistrationOptions) -> None:
        self.options[options.urn] = options


@dataclass(frozen=True)
class Step:
    action: str  # create, update, replace, delete, same
    type: str
    name: str
    keys: tuple[str, ...] = ()
    delete_first: bool = False

    def line(self) -> str:
        keys = f"  ({', '.join(self.keys)})" if self.keys else ""
        order = "  [delete before replace]" if self.delete_first else ""
        return f"{self.action:8} {self.type} {self.name}{keys}{order}"


def preview(
    stack: str,
    before_config: dict[str, Any],
    after_config: dict[str, Any],
    *,
    before_secrets: Optional[dict[str, str]] = None,
    after_secrets: Optional[dict[str, str]] = None,
) -> list[Step]:
    """The steps of `pulumi up` from a stack deployed with `before_config` to `after_config`,
    in the second run's registration order, deletes last."""
    first, second = _OptionsMocks(), _OptionsMocks()
    before = run_stack(stack, first, config=before_config, secrets=before_secrets)
    after = run_stack(stack, second, config=after_config, secrets=after_secrets)
    old = {(r.type, r.name): r for r in before.resources if r.custom}
    unknown: set[str] = set()  # URNs whose outputs a preview cannot know
    steps: list[Step] = []
    for resource in after.resources:
        if not resource.custom:
            continue
        options = second.options[resource.urn]
        previous = old.get((resource.type, resource.name))
        if previous is None:
            steps.append(Step("create", resource.type, resource.name))
            unknown.add(resource.urn)
            continue
        _, changed, replace = planned_diff(
            resource.type, resource.name, previous.inputs, resource.inputs, options
        )
        fed_by_unknown = [
            key
            for key, urns in options.property_dependencies.items()
            if unknown.intersection(urns) and key not in changed
        ]
        if fed_by_unknown:
            # The provider's Diff with those inputs unknown: a replace when any of them would be.
            _, _, replace_unknown = planned_diff(
                resource.type,
                resource.name,
                previous.inputs,
                {**resource.inputs, **{k: _Unknown() for k in fed_by_unknown}},
                options,
            )
            changed, replace = sorted({*changed, *fed_by_unknown}), replace or replace_unknown
        if replace:
            # pulumi-docker marks containers delete-before-replace; the option may say so too.
            delete_first = options.delete_before_replace or (
                options.delete_before_replace is None and resource.type == CONTAINER
            )
            steps.append(
                Step("replace", resource.type, resource.name, tuple(changed), delete_first)
            )
            unknown.add(resource.urn)
        elif changed:
            steps.append(Step("update", resource.type, resource.name, tuple(changed)))
            if resource.type == IMAGE:  # an update builds again: a new repoDigest
                unknown.add(resource.urn)
        else:
            steps.append(Step("same", resource.type, resource.name))
    registered = {(r.type, r.name) for r in after.resources}
    steps += [Step("delete", t, n) for (t, n) in old if (t, n) not in registered]
    return steps


class _Unknown:
    """An input value a preview does not know yet: unequal to anything known."""

    def __eq__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return "<unknown>"


ORDER = ("create", "update", "replace", "delete")


def render(steps: list[Step]) -> str:
    """The steps that change something, by action, type and name (registration order varies
    from run to run: registrations run concurrently), under a count line."""
    changed = sorted(
        (s for s in steps if s.action != "same"),
        key=lambda s: (ORDER.index(s.action), s.type, s.name),
    )
    counts = {
        a: sum(s.action == a for s in steps) for a in ("create", "update", "replace", "delete")
    }
    same = sum(s.action == "same" for s in steps)
    header = ", ".join(f"{n} to {a}" for a, n in counts.items() if n) or "no changes"
    return "\n".join([f"# {header}; {same} unchanged", *(s.line() for s in changed)]) + "\n"
