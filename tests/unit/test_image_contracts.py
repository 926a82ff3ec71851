"""The image's Python tools keep copies of the program's contracts (label names, paths, ports,
the leader-key layout): inside the image neither the program nor its policy pack can be
imported. Each copy is tied here to its source, policies/conventions.py or the program's own
Settings and rendering, so a change to one side fails until the other follows."""

from __future__ import annotations

import pytest

from patroni_citus.config import load_settings
from patroni_citus.plan import backups as render_backups
from policies import conventions
from tests.imagetools import load_image_tool
from tests.programrun import PROJECT, run_stack, stack_config, stack_names

CONTAINER = "docker:index/container:Container"

crash_watch = load_image_tool("pc-crash-watch")
pc_backup = load_image_tool("pc-backup")
pc_rest = load_image_tool("pc-rest")
passfile = load_image_tool("pc-replication-passfile")

# The stacks that run the crash watcher, between them Citus and not, etcd v2 and v3.
WATCHED_STACKS = [
    s for s in stack_names() if stack_config(s).get(f"{PROJECT}:crashWatcher", {}).get("enabled")
]


def stack_settings(stack: str):
    raw = {key[len(PROJECT) + 1 :]: value for key, value in stack_config(stack).items()}
    return load_settings(raw, {})


def test_the_crash_watcher_s_labels_are_the_conventions():
    assert crash_watch.LABEL_CLUSTER == conventions.LABEL_CLUSTER
    assert crash_watch.LABEL_ROLE == conventions.LABEL_ROLE
    assert crash_watch.LABEL_MEMBER == conventions.LABEL_MEMBER
    assert crash_watch.LABEL_GROUP == conventions.LABEL_GROUP
    assert crash_watch.ROLE_PATRONI == conventions.ROLE_PATRONI


def test_the_watched_stacks_cover_citus_or_not_and_both_etcd_apis():
    kinds = {(s.citus.enabled, s.etcd.api) for s in map(stack_settings, WATCHED_STACKS)}
    assert kinds == {(False, "v2"), (False, "v3"), (True, "v2"), (True, "v3")}


@pytest.mark.parametrize("stack", WATCHED_STACKS)
def test_the_crash_watcher_finds_each_member_s_leader_key_where_the_program_puts_it(stack):
    """From the graph: the watcher configured by its container's environment selects exactly
    the Patroni members by their labels, and the group label of each leads it to the key
    Settings.leader_key names, the one the stack exports (dcs.leaderKeys)."""
    settings = stack_settings(stack)
    run = run_stack(stack)
    containers = run.of_type(CONTAINER)
    (watcher,) = [c for c in containers if c.role == conventions.ROLE_CRASH_WATCHER]
    config = crash_watch.Config.from_environment(
        dict(env.split("=", 1) for env in watcher.inputs["envs"])
    )
    selected = [
        c
        for c in containers
        if all(c.labels.get(k) == v for k, v in (f.split("=", 1) for f in config.label_filters))
    ]
    assert {c.name for c in selected} == {m.name for g in settings.groups for m in g.members}
    for member in selected:
        group = member.labels[crash_watch.LABEL_GROUP]
        key = config.leader_key(group)
        assert key == settings.leader_key(int(group)), member.name
        assert key == run.outputs["dcs"]["leaderKeys"][group], member.name


def test_pc_backup_s_paths_are_the_program_s():
    assert pc_backup.SCHEDULE == conventions.PGBACKREST_SCHEDULE_PATH
    assert pc_backup.PGBACKREST == render_backups.PGBACKREST
    assert pc_backup.PRIMARY_URL == f"http://127.0.0.1:{conventions.REST_API_PORT}/primary"
    assert render_backups.POST_BOOTSTRAP.split()[:2] == ["pc-backup", "stanza-create"]


def test_pc_rest_and_the_passfile_fix_read_patroni_s_configuration_where_it_is():
    assert pc_rest.PATRONI_CONFIG == conventions.PATRONI_CONFIG_PATH
    assert pc_rest.REST_API == f"127.0.0.1:{conventions.REST_API_PORT}"
    assert passfile.PATRONI_CONFIG == conventions.PATRONI_CONFIG_PATH
