"""Each kind of day-2 change as `pulumi preview` shows it (tests/preview.py), on the
`offline-vip` stack with groups of two: what is replaced, updated or untouched. The snapshots
in tests/snapshots/day2/ are the review copy; regenerate with UPDATE_SNAPSHOTS=1."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.preview import Step, preview, render
from tests.programrun import PROJECT, stack_config
from tests.snapshot import assert_matches_snapshot

STACK = "offline-vip"
SNAPSHOTS = Path(__file__).resolve().parent.parent / "snapshots" / "day2"
CONTAINER = "docker:index/container:Container"
COMMAND = "command:local:Command"
PASSWORDS = {
    "superuserPassword": "superuser-password-1",
    "replicationPassword": "replication-password-1",
    "restApiPassword": "rest-api-password-1",
}
ROTATED = {key: value.replace("-1", "-2") for key, value in PASSWORDS.items()}


def base() -> dict:
    config = copy.deepcopy(stack_config(STACK))
    config[f"{PROJECT}:patroni"]["members"] = 2
    return config


def changed(section: str, **values) -> dict:
    config = base()
    config[f"{PROJECT}:{section}"] = {**config.get(f"{PROJECT}:{section}", {}), **values}
    return config


SCENARIOS = {
    "reloadable-parameter": (base(), changed("patroni", parameters={"work_mem": "8MB"})),
    "loop-wait": (base(), changed("patroni", loopWait=3)),
    "restart-parameter": (base(), changed("patroni", parameters={"max_connections": 150})),
    "memory-limit": (
        changed("patroni", resources={"memoryMb": 1024}),
        changed("patroni", resources={"memoryMb": 768}),
    ),
    "image-upgrade": (base(), changed("image", baseImage="local/debian:bookworm-day2")),
    "members-2-to-3": (base(), changed("patroni", members=3)),
    "members-3-to-2": (changed("patroni", members=3), base()),
}


def steps_of(name: str) -> list[Step]:
    if name == "password-rotation":
        return preview(STACK, base(), base(), before_secrets=PASSWORDS, after_secrets=ROTATED)
    before, after = SCENARIOS[name]
    return preview(STACK, before, after, before_secrets=PASSWORDS, after_secrets=PASSWORDS)


def by_action(steps: list[Step], action: str, typ: str = "") -> set[str]:
    return {s.name for s in steps if s.action == action and (not typ or s.type == typ)}


@pytest.mark.parametrize("name", [*SCENARIOS, "password-rotation"])
def test_preview_matches_snapshot(name):
    text = render(steps_of(name))
    assert_matches_snapshot(SNAPSHOTS / f"{name}.txt", text, f"the preview of {name}")


@pytest.mark.parametrize(
    "name", ["reloadable-parameter", "loop-wait", "restart-parameter", "password-rotation"]
)
def test_settings_and_passwords_never_replace_a_container(name):
    steps = steps_of(name)
    assert not by_action(steps, "replace", CONTAINER)
    assert not by_action(steps, "delete") and not by_action(steps, "create")


def test_dynamic_settings_update_only_the_groups_config_and_member_files():
    steps = steps_of("restart-parameter")
    assert by_action(steps, "update") == {
        "offvip-pg-dynamic-config",
        "offvip-pg-1-config",  # the bootstrap section of patroni.yml: a reload, no effect
        "offvip-pg-2-config",
    }


def test_a_rotation_sets_the_roles_before_rewriting_the_members_files():
    steps = steps_of("password-rotation")
    assert by_action(steps, "update") == {
        "offvip-passwords",
        "offvip-pg-1-config",
        "offvip-pg-2-config",
    }


def test_a_memory_limit_is_changed_in_place():
    steps = steps_of("memory-limit")
    assert by_action(steps, "update", CONTAINER) == {"offvip-pg-1", "offvip-pg-2"}
    assert not by_action(steps, "replace", CONTAINER)


def test_an_image_upgrade_replaces_every_container_behind_its_turn():
    steps = steps_of("image-upgrade")
    replaced = by_action(steps, "replace", CONTAINER)
    assert {"offvip-pg-1", "offvip-pg-2", "offvip-etcd-1", "offvip-vip-1"} <= replaced
    assert {"offvip-pg-1-turn", "offvip-pg-2-turn"} <= by_action(steps, "replace", COMMAND)
    assert all(s.delete_first for s in steps if s.action == "replace" and s.type == CONTAINER)


def test_members_are_added_and_removed_without_touching_the_others():
    grown = steps_of("members-2-to-3")
    assert {"offvip-pg-3", "offvip-vip-3"} <= by_action(grown, "create", CONTAINER)
    assert not by_action(grown, "replace", CONTAINER)
    shrunk = steps_of("members-3-to-2")
    assert {"offvip-pg-3", "offvip-pg-3-ready"} <= by_action(shrunk, "delete")
    assert not by_action(shrunk, "replace", CONTAINER)
