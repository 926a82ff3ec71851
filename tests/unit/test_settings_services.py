"""The service layer's settings: endpoints, pooler, monitoring and backups (every rule, valid
and invalid; messages name the key, the value and the rule)."""

import ipaddress

import pytest

from patroni_citus.config import load_settings
from patroni_citus.plan import render
from tests.unit.test_settings import base, only_problem, plain, problems


def test_services_are_off_by_default():
    s = load_settings(base(), {})
    assert not s.endpoints.enabled and not s.pooler.enabled
    assert not s.monitoring.enabled and not s.backups.enabled
    assert s.backups.restore is None


def test_defaults_of_an_enabled_service_layer():
    s = load_settings(
        base(
            endpoints={"enabled": True},
            pooler={"enabled": True},
            monitoring={"enabled": True},
            backups={"enabled": True},
        ),
        {},
    )
    assert (s.endpoints.instances, s.endpoints.host_ip) == (2, "127.0.0.1")
    assert [s.endpoints.host_ports(i) for i in range(2)] == [(5000, 5001), (5010, 5011)]
    assert s.endpoints.max_replica_lag_bytes == 16 * 1024 * 1024
    assert (s.pooler.port, s.pooler.pool_size, s.pooler.user, s.pooler.auth_user) == (
        6432,
        20,
        "app",
        "pgbouncer",
    )
    assert (s.monitoring.scrape_interval_s, s.monitoring.retention) == (15, "15d")
    assert s.monitoring.user == "monitor" and s.monitoring.disk_usage_ratio == 0.85
    b = s.backups
    assert (b.repository_volume, b.full_interval_s, b.incremental_interval_s) == (
        "citus-backups",
        7 * 86400,
        86400,
    )
    assert b.stanza("citus", 2, True) == "citus-g2" and b.stanza("pg", 0, False) == "pg"


def test_service_addresses_sit_at_the_top_of_the_member_range_and_never_collide():
    s = load_settings(
        base(
            endpoints={"enabled": True, "instances": 4},
            pooler={"enabled": True},
            monitoring={"enabled": True},
            observability={"enabled": True, "adminer": {"enabled": True}},
            crashWatcher={"enabled": True},
        ),
        {},
    )
    taken = [s.adminer_address, s.crash_watcher_address]
    taken += [s.service_address("haproxy", i) for i in range(4)]
    taken += [s.service_address("pgbouncer", i) for i in range(4)]
    taken.append(s.service_address("prometheus"))
    assert len(set(taken)) == len(taken)
    assert all(a in s.network.member_range for a in taken)
    assert s.service_address("haproxy", 0) == ipaddress.IPv4Address("172.30.1.252")
    members = {m.address for g in s.groups for m in g.members}
    assert not members & set(taken)


@pytest.mark.parametrize(
    ("section", "values", "key", "rule"),
    [
        ("endpoints", {"instances": 5}, "endpoints.instances", "must be between 1 and 4"),
        ("endpoints", {"instances": 0}, "endpoints.instances", "must be between 1 and 4"),
        ("endpoints", {"hostIp": "0.0.0.0"}, "endpoints.hostIp", "publishes beyond loopback"),
        ("endpoints", {"readOnlyPort": 5010}, "endpoints.readOnlyPort", "collides"),
        ("endpoints", {"readWritePort": 65530}, "endpoints.readWritePort", "must be between"),
        ("endpoints", {"maxReplicaLagBytes": -1}, "endpoints.maxReplicaLagBytes", "between"),
        ("endpoints", {"colour": "red"}, "endpoints.colour", "unknown key"),
        ("pooler", {"poolSize": 0}, "pooler.poolSize", "must be between 1"),
        ("pooler", {"user": "pg_app"}, "pooler.user", "must not start with pg_"),
        ("pooler", {"authUser": "app"}, "pooler.authUser", "must differ from pooler.user"),
        ("pooler", {"port": 5010}, "pooler.port", "collides with an endpoints port"),
        ("monitoring", {"scrapeInterval": "15"}, "monitoring.scrapeInterval", "duration"),
        ("monitoring", {"scrapeInterval": "0s"}, "monitoring.scrapeInterval", "duration"),
        ("monitoring", {"retention": "15 days"}, "monitoring.retention", "a whole number"),
        ("monitoring", {"diskUsageRatio": 1.5}, "monitoring.diskUsageRatio", "between 0 and 1"),
        ("monitoring", {"hostIp": "10.0.0.1"}, "monitoring.hostIp", "beyond loopback"),
        ("backups", {"incrementalInterval": "30s"}, "backups.incrementalInterval", "at least 60"),
        ("backups", {"fullInterval": "1w"}, "backups.fullInterval", "must be a duration"),
        ("backups", {"incrementalInterval": "8d"}, "backups.incrementalInterval", "not be longer"),
        ("backups", {"retentionFull": 0}, "backups.retentionFull", "between 1 and 100"),
        ("backups", {"repositoryVolume": "a/b"}, "backups.repositoryVolume", "volume name"),
    ],
)
def test_bad_service_values_name_the_key(section, values, key, rule):
    enabled = {s: {"enabled": True} for s in ("endpoints", "pooler", "monitoring", "backups")}
    enabled[section] = {**enabled[section], **values}
    problem = only_problem(base(**enabled))
    assert problem.startswith(f"patroni-citus:{key} = "), problem
    assert rule in problem, problem


def test_public_ports_need_the_explicit_switch():
    s = load_settings(
        base(endpoints={"enabled": True, "hostIp": "0.0.0.0", "allowPublicPorts": True}), {}
    )
    assert s.endpoints.host_ip == "0.0.0.0"


def test_the_pooler_needs_the_endpoints():
    problem = only_problem(base(pooler={"enabled": True}))
    assert problem.startswith("patroni-citus:pooler.enabled = True: needs endpoints.enabled")


def test_every_role_has_one_name():
    problem = only_problem(base(pooler={"user": "postgres"}))
    assert (
        problem
        == "patroni-citus:pooler.user = 'postgres': is already patroni-citus:patroni.superuser"
    )
    problem = only_problem(base(monitoring={"user": "pgbouncer"}))
    assert "monitoring.user = 'pgbouncer': is already patroni-citus:pooler.authUser" in problem


def test_services_and_members_never_share_an_address():
    found = problems(
        plain(
            network={"memberRange": "172.30.1.0/27"},
            patroni={"members": 14},
            vip={"enabled": False},
            endpoints={"enabled": True, "instances": 4},
            pooler={"enabled": True},
            monitoring={"enabled": True},
        )
    )
    assert (
        "patroni-citus:network.memberRange = '172.30.1.0/27': citus-pg-4 would get "
        "172.30.1.20, already used by prometheus 1" in found
    ), found


RESTORE = {"enabled": True, "restore": {"source": "old"}}


@pytest.mark.parametrize(
    ("restore", "rule"),
    [
        ({"source": "citus"}, "must differ from cluster.scope"),
        ({"source": ""}, "is required"),
        ({"source": "old", "type": "time"}, "is required with type time"),
        ({"source": "old", "type": "name"}, "is required with type name"),
        ({"source": "old", "type": "latest", "target": "x"}, "does not apply to type latest"),
        ({"source": "old", "type": "time", "target": "2026-11-22 08:35:14"}, "time zone"),
        ({"source": "old", "type": "name", "target": "a b"}, "restore point name"),
        ({"source": "old", "type": "sometime"}, "must be one of latest, time, name, immediate"),
    ],
)
def test_bad_restore_settings_name_the_key(restore, rule):
    found = problems(plain(backups={"enabled": True, "restore": restore}))
    assert any(rule in p and "backups.restore." in p for p in found), found


def test_a_restore_needs_backups_on_and_citus_restores_to_a_named_point():
    problem = only_problem(plain(backups={**RESTORE, "enabled": False}))
    assert problem.startswith("patroni-citus:backups.enabled = False: must be true to restore")
    time_target = {"source": "old", "type": "time", "target": "2026-11-22 08:35:14+00"}
    problem = only_problem(base(backups={"enabled": True, "restore": time_target}))
    assert "backups.restore.type = 'time': is not consistent across Citus groups" in problem
    s = load_settings(plain(backups={"enabled": True, "restore": time_target}), {})
    assert s.backups.restore is not None and s.backups.restore.target == time_target["target"]
    named = {"source": "old", "type": "name", "target": "pc-20261122T0835Z"}
    s = load_settings(base(backups={"enabled": True, "restore": named}), {})
    assert s.backups.restore is not None and s.backups.restore.type == "name"


def test_service_roles_are_those_of_the_enabled_services():
    credentials = render.Credentials("s" * 12, "r" * 12, "a" * 12, "app-pw", "auth-pw", "mon-pw")
    none = load_settings(base(), {})
    assert render.service_roles(none, credentials) == {}
    s = load_settings(
        base(endpoints={"enabled": True}, pooler={"enabled": True}, monitoring={"enabled": True}),
        {},
    )
    assert render.service_roles(s, credentials) == {
        "app": {"password": "app-pw", "authinfo": True},
        "pgbouncer": {"password": "auth-pw"},
        "monitor": {"password": "mon-pw", "member_of": ["pg_monitor"]},
    }
    argv = render.service_roles_command(s, 60)
    assert "--lookup-function pgbouncer" in argv and "--database test" in argv
    assert "pw" not in argv  # passwords travel in the environment only
