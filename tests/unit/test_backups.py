"""Backups and point-in-time recovery: the pure rendering (pgbackrest.conf, pc-backup's
schedule, Patroni's archiving, replica and restore blocks), the settings they interact with,
pc-backup's decisions, and the Backups component and the members' mounts under mocks."""

from __future__ import annotations

import json

import pytest
import yaml

from patroni_citus.config import SettingsError, load_settings
from patroni_citus.plan import backups as render_backups
from patroni_citus.plan import render
from policies import conventions
from tests.imagetools import load_image_tool
from tests.programrun import run_stack, stack_config

CREDENTIALS = render.Credentials(
    superuser="su-secret-123456", replication="repl-secret-123", rest_api="rest-secret-1234"
)
CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
PGBACKREST = "/usr/bin/pgbackrest"


def plain(**backups):
    return load_settings(
        {
            "cluster": {"scope": "bk"},
            "citus": {"enabled": False},
            "patroni": {"members": 2},
            "backups": {"enabled": True, **backups},
        },
        {},
    )


def citus(**backups):
    return load_settings({"cluster": {"scope": "cit"}, "backups": {"enabled": True, **backups}}, {})


def conf_sections(text: str) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        elif line:
            key, value = line.split("=", 1)
            current[key] = value
    return sections


def patroni(settings, group=0, member=0):
    g = settings.groups[group]
    return render.patroni_config(settings, g, g.members[member], CREDENTIALS)


# --- pgbackrest.conf and the schedule ----------------------------------------------------------


def test_pgbackrest_conf_puts_repository_and_locks_on_the_shared_volume():
    s = plain(retentionFull=3)
    sections = conf_sections(render_backups.pgbackrest_conf(s, s.groups[0]))
    assert set(sections) == {"global", "bk"}
    g = sections["global"]
    assert g["repo1-path"] == conventions.PGBACKREST_REPO_MOUNT
    # Otherwise an expire in one member deletes a backup another member is taking.
    assert g["lock-path"].startswith(conventions.PGBACKREST_REPO_MOUNT + "/")
    assert g["repo1-retention-full"] == "3"
    assert g["start-fast"] == "y" and g["compress-type"] == "zst"
    assert sections["bk"] == {
        "pg1-path": conventions.PGDATA,
        "pg1-socket-path": conventions.PG_SOCKET_DIR,
        "pg1-port": "5432",
        "pg1-user": "postgres",
    }
    assert "password" not in render_backups.pgbackrest_conf(s, s.groups[0])


def test_a_restored_cluster_also_knows_the_source_stanza():
    s = plain(restore={"source": "old", "type": "immediate"})
    assert set(conf_sections(render_backups.pgbackrest_conf(s, s.groups[0]))) == {
        "global",
        "bk",
        "old",
    }


def test_citus_has_one_stanza_per_group_and_restores_each_from_its_own():
    s = citus(restore={"source": "old", "type": "name", "target": "pc-20261122T093000Z"})
    for group in s.groups:
        sections = conf_sections(render_backups.pgbackrest_conf(s, group))
        assert set(sections) == {"global", f"cit-g{group.number}", f"old-g{group.number}"}
        bootstrap = patroni(s, group.number)["bootstrap"]
        assert bootstrap["pitr"]["command"] == f"{PGBACKREST} --stanza=old-g{group.number} restore"
        assert bootstrap["pitr"]["type"] == "name"
        assert bootstrap["pitr"]["target"] == "pc-20261122T093000Z"


def test_schedule_carries_intervals_and_the_restore_point_only_on_the_coordinator():
    s = citus(fullInterval="2h", incrementalInterval="10m")
    schedules = [json.loads(render_backups.schedule_file(s, g)) for g in s.groups]
    assert [x["stanza"] for x in schedules] == ["cit-g0", "cit-g1", "cit-g2"]
    assert {x["full_interval_s"] for x in schedules} == {7200}
    assert {x["incremental_interval_s"] for x in schedules} == {600}
    assert [x["restore_point_database"] for x in schedules] == ["citus", None, None]
    p = plain()
    assert (
        json.loads(render_backups.schedule_file(p, p.groups[0]))["restore_point_database"] is None
    )


# --- Patroni ----------------------------------------------------------------------------------


def test_archiving_follows_the_leader_through_the_dcs():
    s = plain()
    parameters = render.dynamic_config(s, s.groups[0])["postgresql"]["parameters"]
    assert parameters["archive_mode"] == "on"  # never `always`: pgBackRest refuses it
    assert parameters["archive_command"] == f"{PGBACKREST} --stanza=bk archive-push %p"
    assert parameters["archive_timeout"] == "60s"
    # The group's config command keeps exactly this in the DCS.
    assert "archive-push" in render.group_config_command(s, s.groups[0], 60)


def test_replicas_come_from_the_repository_then_basebackup():
    config = patroni(plain())
    pg = config["postgresql"]
    assert pg["create_replica_methods"] == ["pgbackrest", "basebackup"]
    assert pg["pgbackrest"] == {
        "command": f"{PGBACKREST} --stanza=bk --delta restore",
        "keep_data": True,
        "no_params": True,
    }
    assert pg["recovery_conf"] == {
        "restore_command": f'{PGBACKREST} --stanza=bk archive-get %f "%p"'
    }
    assert config["bootstrap"]["post_bootstrap"] == "pc-backup stanza-create"
    assert "method" not in config["bootstrap"]  # initdb


@pytest.mark.parametrize(
    "restore, expected",
    [
        (
            {"type": "time", "target": "2026-11-22 08:35:14.012353+00"},
            {"type": "time", "target": "2026-11-22 08:35:14.012353+00", "target-action": "promote"},
        ),
        (
            {"type": "name", "target": "rp1"},
            {"type": "name", "target": "rp1", "target-action": "promote"},
        ),
        ({"type": "immediate"}, {"type": "immediate", "target-action": "promote"}),
        ({"type": "latest"}, {"type": "default"}),
    ],
)
def test_restore_bootstraps_with_pgbackrest_and_promotes(restore, expected):
    config = patroni(plain(restore={"source": "old", **restore}))
    bootstrap = config["bootstrap"]
    assert bootstrap["method"] == "pitr"
    assert bootstrap["pitr"] == {
        "command": f"{PGBACKREST} --stanza=old restore",
        "no_params": True,
        "keep_existing_recovery_conf": True,
        **expected,
    }
    # The restored cluster archives to its own stanza, created once it is up.
    assert bootstrap["post_bootstrap"] == "pc-backup stanza-create"
    assert (
        "--stanza=bk archive-push"
        in bootstrap["dcs"]["postgresql"]["parameters"]["archive_command"]
    )
    # What Patroni is given parses back as written (the target survives YAML).
    reparsed = yaml.safe_load(render.to_yaml(config))
    assert reparsed["bootstrap"]["pitr"] == bootstrap["pitr"]


def test_without_backups_nothing_changes():
    s = load_settings({"citus": {"enabled": False}}, {})
    config = patroni(s)
    assert config["postgresql"]["create_replica_methods"] == ["basebackup"]
    assert "archive_mode" not in config["bootstrap"]["dcs"]["postgresql"]["parameters"]
    assert "post_bootstrap" not in config["bootstrap"]
    files = json.loads(render.member_files(s, s.groups[0], s.groups[0].members[0], CREDENTIALS))
    assert [path for path, _ in files] == [conventions.PGPASS_PATH, conventions.PATRONI_CONFIG_PATH]


def test_member_files_write_pgbackrest_before_patroni():
    s = plain()
    files = json.loads(render.member_files(s, s.groups[0], s.groups[0].members[0], CREDENTIALS))
    assert [path for path, _ in files] == [
        conventions.PGPASS_PATH,
        conventions.PGBACKREST_CONFIG_PATH,
        conventions.PGBACKREST_SCHEDULE_PATH,
        conventions.PATRONI_CONFIG_PATH,
    ]
    # No password outside .pgpass and patroni.yml.
    for path, content in files[1:3]:
        assert CREDENTIALS.superuser not in content, path


@pytest.mark.parametrize(
    "name", ["archive_mode", "archive_command", "archive_timeout", "archive_library"]
)
def test_archiving_settings_are_managed_only_with_backups(name):
    value = "always" if name == "archive_mode" else "x"
    with pytest.raises(SettingsError) as error:
        load_settings(
            {
                "citus": {"enabled": False},
                "backups": {"enabled": True},
                "patroni": {"parameters": {name: value}},
            },
            {},
        )
    assert f"patroni.parameters.{name} = '{value}': is managed: backups.enabled" in str(error.value)
    load_settings({"citus": {"enabled": False}, "patroni": {"parameters": {name: "on"}}}, {})


# --- pc-backup's decisions ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pc_backup():
    return load_image_tool("pc-backup")


def backup(kind: str, stop: float) -> dict:
    return {"type": kind, "timestamp": {"start": stop - 5, "stop": stop}}


@pytest.mark.parametrize(
    "backups, now, expected",
    [
        ([], 1000, "full"),  # none yet
        ([backup("full", 1000)], 1030, None),
        ([backup("full", 1000)], 1060, "incr"),  # incremental interval reached
        ([backup("full", 1000), backup("incr", 1060)], 1100, None),
        ([backup("full", 1000), backup("incr", 1060)], 1120, "incr"),
        ([backup("full", 1000), backup("incr", 1900)], 1000 + 3600, "full"),  # full interval
        ([backup("incr", 1000)], 1010, "full"),  # its full expired
    ],
)
def test_pc_backup_decides_what_is_due(pc_backup, backups, now, expected):
    assert pc_backup.due({"backup": backups}, now, full_s=3600, incremental_s=60) == expected


def test_pc_backup_restore_points_are_short_utc_names(pc_backup):
    name = pc_backup.restore_point_name(1795339814.5)
    assert name == "pc-20261122T093014Z"
    assert len(name) < 64


# --- the component under mocks -------------------------------------------------------------------


def with_backups(stack: str, **backups):
    config = stack_config(stack)
    config["patroni-citus:backups"] = {"enabled": True, **backups}
    config["patroni-citus:volumes"] = {"retainOnDelete": False}
    return run_stack(stack, config=config)


@pytest.fixture(scope="module")
def offline():
    return with_backups("offline")


def test_repository_volume_is_always_retained(offline):
    (volume,) = [v for v in offline.of_type(VOLUME) if v.role == "backup-exporter"]
    assert volume.inputs["name"] == "offline-backups"
    # Even with volumes.retainOnDelete false: it is what outlives the cluster.
    assert volume.options["retainOnDelete"] is True
    assert volume.labels[conventions.LABEL_RETAIN] == "true"
    members = [c for c in offline.of_type(CONTAINER) if c.role == "patroni"]
    assert len(members) == 3
    for member in members:
        assert {
            "volumeName": "offline-backups",
            "containerPath": conventions.PGBACKREST_REPO_MOUNT,
        } in (member.inputs["volumes"])
        assert volume.urn in member.options["dependencies"] or any(
            volume.urn in deps for deps in member.options.get("propertyDependencies", {}).values()
        )


def test_exporter_reads_the_repository_read_only_locked_down(offline):
    (exporter,) = [c for c in offline.of_type(CONTAINER) if c.role == "backup-exporter"]
    assert exporter.inputs["name"] == "offline-backup-exporter"
    assert exporter.inputs["volumes"] == [
        {
            "volumeName": "offline-backups",
            "containerPath": conventions.PGBACKREST_REPO_MOUNT,
            "readOnly": True,
        }
    ]
    assert exporter.labels[conventions.LABEL_DATA_PATH] == conventions.PGBACKREST_REPO_MOUNT
    command = exporter.inputs["command"]
    assert command[0] == "prometheus-pgbackrest-exporter"
    assert f"--web.listen-address=:{conventions.PGBACKREST_EXPORTER_PORT}" in command
    assert "--backrest.stanza-include=offline" in command
    assert exporter.inputs["user"] == "postgres"
    assert exporter.inputs["readOnly"] is True
    assert exporter.inputs["capabilities"] == {"drops": ["ALL"]}
    assert exporter.inputs["networksAdvanced"] == [{"name": "offline-net"}]
    assert not exporter.inputs.get("ports")
    assert exporter.inputs["healthcheck"]["tests"][0] == "CMD"


def test_a_restored_stack_mounts_the_source_repository_without_owning_it():
    run = with_backups(
        "offline",
        repositoryVolume="src-backups",
        restore={"source": "src", "type": "time", "target": "2026-11-22 08:35:14+00"},
    )
    assert not [v for v in run.of_type(VOLUME) if v.role == "backup-exporter"]
    for c in run.of_type(CONTAINER):
        if c.role in ("patroni", "backup-exporter"):
            mounts = {v["containerPath"]: v for v in c.inputs["volumes"]}
            assert mounts[conventions.PGBACKREST_REPO_MOUNT]["volumeName"] == "src-backups"


def test_citus_exporter_covers_every_group():
    run = with_backups("offline-citus")
    (exporter,) = [c for c in run.of_type(CONTAINER) if c.role == "backup-exporter"]
    stanzas = [a.split("=", 1)[1] for a in exporter.inputs["command"] if "stanza-include" in a]
    assert stanzas == ["offcitus-g0", "offcitus-g1", "offcitus-g2"]


def test_backups_change_the_member_revision_only_when_on(offline):
    off = run_stack("offline")

    def revisions(run):
        return {
            c.inputs["name"]: c.labels.get(conventions.LABEL_REVISION)
            for c in run.of_type(CONTAINER)
            if c.role == "patroni"
        }

    assert revisions(off) == revisions(run_stack("offline"))
    assert all(a != b for a, b in zip(revisions(off).values(), revisions(offline).values()))
