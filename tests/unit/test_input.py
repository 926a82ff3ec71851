"""Bad input, tried as a careless user and as an attacker would: every case is refused at
preview with the key, a safe rendering of the value and the rule; never a traceback, never a
secret in the message."""

from __future__ import annotations

import json

import pytest

from patroni_citus.config import SettingsError, Unreadable, load_settings
from tests.unit.test_settings import base, only_problem, plain, problems

SECRET = "s3cr3t-value-never-shown"


def message_for(config, key, **kwargs):
    found = [
        p
        for p in problems(config, **kwargs)
        if p.startswith(f"patroni-citus:{key} ") or p.startswith(f"patroni-citus:{key}:")
    ]
    assert len(found) == 1, problems(config, **kwargs)
    return found[0]


# --- crashes instead of errors ------------------------------------------------------------


@pytest.mark.parametrize(
    "section, key",
    [
        ("etcd", "members"),
        ("patroni", "ttl"),
        ("vip", "group"),
        ("patroni", "maximumLagOnFailover"),
    ],
)
def test_absurdly_long_numbers_are_refused_not_crashed_on(section, key):
    message = message_for(base(**{section: {key: "9" * 5000}}), f"{section}.{key}")
    assert "must be an integer" in message and len(message) < 300


@pytest.mark.parametrize("key", ["patroniVersion", "vipManagerVersion", "citusPackageVersion"])
def test_absurdly_long_versions_are_refused_not_crashed_on(key):
    # Found by the property test: a 5000-digit "version line" reached int().
    message = message_for(base(image={key: "9" * 5000}), f"image.{key}")
    assert "must be a version line" in message and len(message) < 300


def test_huge_integers_are_shown_without_crashing():
    message = message_for(base(etcd={"members": 10**5000}), "etcd.members")
    assert "[not shown: too large]" in message


def test_deep_nesting_is_refused_at_the_top():
    deep: object = []
    for _ in range(2000):
        deep = [deep]
    assert only_problem(base(patroni={"parameters": {"x": deep}})) == (
        "patroni-citus:patroni: nested more than 16 levels deep"
    )


def test_json_the_adapter_could_not_read_is_named():
    config = {**base(), "patroni": Unreadable("is nested too deeply to read")}
    assert only_problem(config) == "patroni-citus:patroni: is nested too deeply to read"


def test_long_values_are_cut_in_messages():
    message = message_for(base(cluster={"scope": "x" * 10000}), "cluster.scope")
    assert len(message) < 200 and "…" in message


# --- secrets echoed -----------------------------------------------------------------------


def test_a_section_stored_as_secret_is_refused_and_never_shown():
    config = base(patroni={"superuser": SECRET, "ttl": SECRET})
    found = problems(config, secret_sections=frozenset({"patroni"}))
    assert (
        "patroni-citus:patroni = [secret]: is stored as a secret; only superuserPassword, "
        "replicationPassword, restApiPassword, applicationPassword, poolerAuthPassword, "
        "monitoringPassword may be: the program does not keep other values "
        "encrypted (outputs, labels, commands)" in found
    )
    assert "patroni-citus:patroni.ttl = [secret]: must be an integer" in found
    assert not any(SECRET in p for p in found)


@pytest.mark.parametrize(
    "value, rule",
    [
        ({"nested": SECRET}, "must be a string (set it without --path)"),
        ([SECRET], "must be a string (set it without --path)"),
        (SECRET + "\n*:5432:*:evil:x", "must not contain control characters"),
        (" " * 20, "must not be blank"),
        (f" {SECRET} ", "must not be blank or start or end with white space"),
        ("x" * 1025, "must be at most 1024 characters"),
        ("short", "must be at least 12 characters"),
    ],
)
def test_password_content_is_checked_and_never_shown(value, rule):
    found = problems(base(), secrets={"replicationPassword": value})
    assert len(found) == 1 and found[0].startswith(
        "patroni-citus:replicationPassword = [secret]: " + rule
    ), found
    assert SECRET not in found[0] and "x" * 20 not in found[0]


def test_a_password_that_reads_as_a_number_is_still_a_password():
    settings = load_settings(base(), {"superuserPassword": "123456789012345"})
    assert settings.passwords.superuser == "123456789012345"


# --- patroni.parameters -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "password_encryption",
        "wal_log_hints",
        "hba_file",
        "ident_file",
        "listen_addresses",
        "port",
        "unix_socket_directories",
        "data_directory",
        "config_file",
        "cluster_name",
        "hot_standby",
        "synchronous_standby_names",
        "primary_conninfo",
        "restore_command",
    ],
)
def test_managed_parameters_are_refused_with_the_reason(name):
    message = only_problem(base(patroni={"parameters": {name: "x"}}))
    assert message.startswith(f"patroni-citus:patroni.parameters.{name} = 'x': is managed: ")


@pytest.mark.parametrize(
    "name, value, rule",
    [
        ("max_connections", -5, "must be an integer from 1 to 262143"),
        ("max_connections", "lots", "must be an integer from 1 to 262143"),
        ("max_connections", True, "must be an integer from 1 to 262143"),
        ("shared_buffers", "-1GB", "must be a size such as 256MB"),
        ("work_mem", "16 parsecs", "must be a size such as 256MB"),
        ("checkpoint_timeout", "soon", "must be a duration such as 30s"),
        ("wal_level", "minimal", "must be one of replica, logical"),
        ("fsync", "off", "must be one of on"),
        ("synchronous_commit", "off", "local or off acknowledge commits a failover may lose"),
        ("synchronous_commit", "local", "local or off acknowledge commits a failover may lose"),
        ("search_path", "a'; DROP", "without quotes, backslashes or control characters"),
        ("application_name", "x\ny = 1", "without quotes, backslashes or control characters"),
        ("work_mem", ["16MB"], "must be a string, number or boolean"),
    ],
)
def test_parameter_values_are_type_checked(name, value, rule):
    message = only_problem(base(patroni={"parameters": {name: value}}))
    assert message.startswith(f"patroni-citus:patroni.parameters.{name} = ") and rule in message


def test_synchronous_commit_local_is_fine_without_synchronous_mode():
    load_settings(
        base(patroni={"synchronousMode": False, "parameters": {"synchronous_commit": "local"}}), {}
    )


def test_common_parameters_pass():
    load_settings(
        base(
            patroni={
                "parameters": {
                    "max_connections": 300,
                    "shared_buffers": "1GB",
                    "work_mem": "16MB",
                    "wal_level": "logical",
                    "checkpoint_timeout": "15min",
                    "log_connections": "on",
                    "citus.shard_count": 64,
                    "synchronous_commit": "remote_apply",
                }
            }
        ),
        {},
    )


# --- values that only failed at `pulumi up` ------------------------------------------------


@pytest.mark.parametrize(
    "reference",
    [
        "quay.io/coreos/etcd@sha256:",
        "quay.io/coreos/etcd:v3.5.16@sha256:abc",
        "quay.io/coreos/etcd:v3.5 .16",
        "Quay.io/CoreOS/Etcd:v3.5.16",
        "etcd:v3.5.16 AS x",
        "etcd:",
        ":v3",
        "etcd:v3:5",
        "etcd:-bad",
    ],
)
def test_image_references_follow_dockers_grammar(reference):
    message = only_problem(base(etcd={"image": reference}))
    assert message.startswith("patroni-citus:etcd.image = ") and "Docker image reference" in message


@pytest.mark.parametrize(
    "reference",
    [
        "quay.io/coreos/etcd:v3.5.16",
        "localhost:5000/etcd:3.5",
        "REGISTRY.local/etcd:v3",
        "etcd@sha256:" + "a" * 64,
        "gcr.io/etcd-development/etcd:v3.5.16@sha256:" + "0" * 64,
    ],
)
def test_valid_image_references_pass(reference):
    load_settings(base(etcd={"image": reference}), {})


def test_etcd_releases_without_the_v2_api_are_refused_for_v2():
    message = message_for(
        base(
            etcd={"apiVersion": "v2", "image": "quay.io/coreos/etcd:v3.6.4"}, vip={"enabled": False}
        ),
        "etcd.image",
    )
    assert "etcd 3.6 removed the v2 API" in message
    load_settings(
        plain(
            etcd={"apiVersion": "v2", "image": "quay.io/coreos/etcd:v3.5.16"},
            vip={"enabled": False},
        ),
        {},
    )


@pytest.mark.parametrize("name", ["host", "bridge", "none"])
def test_dockers_predefined_networks_are_refused(name):
    assert only_problem(base(network={"name": name})).startswith(
        f"patroni-citus:network.name = '{name}': is one of Docker's predefined networks"
    )


@pytest.mark.parametrize(
    "section, key, value",
    [
        ("citus", "database", "template0"),
        ("citus", "database", "template1"),
        ("citus", "database", "all"),
        ("patroni", "superuser", "pg_monitor"),
        ("patroni", "replicationUser", "public"),
        ("patroni", "superuser", "all"),
        ("patroni", "replicationUser", "replication"),
        ("patroni", "superuser", "current_user"),
    ],
)
def test_postgres_reserved_names_are_refused(section, key, value):
    message = only_problem(base(**{section: {key: value}}))
    assert message.startswith(f"patroni-citus:{section}.{key} = '{value}': ")
    assert "reserve" in message


@pytest.mark.parametrize(
    "subnet, rule",
    [
        ("127.0.0.0/16", "must lie in a private range"),
        ("224.0.0.0/16", "must lie in a private range"),
        ("169.254.0.0/16", "must lie in a private range"),
        ("8.8.0.0/16", "must lie in a private range"),
        ("10.0.0.0/8", "must be a /16 to /28"),
        ("172.16.0.0/12", "must be a /16 to /28"),
    ],
)
def test_unsuitable_subnets_are_refused(subnet, rule):
    found = problems(base(network={"subnet": subnet}, vip={"enabled": False, "address": None}))
    assert any(p.startswith(f"patroni-citus:network.subnet = '{subnet}': {rule}") for p in found), (
        found
    )


@pytest.mark.parametrize(
    "resources, key, rule",
    [
        ({"memoryMb": 4 * 1024 * 1024}, "memoryMb", "must be 0 (no limit) or from 256 to 1048576"),
        ({"cpus": "0"}, "cpus", "must be a number of CPUs from 0.01 to 1024"),
        ({"cpus": "5000"}, "cpus", "must be a number of CPUs from 0.01 to 1024"),
        ({"cpus": "1e3"}, "cpus", "must be a number of CPUs from 0.01 to 1024"),
        (
            {"memoryMb": 512, "shmSizeMb": 512},
            "shmSizeMb",
            "must be below patroni.resources.memoryMb",
        ),
    ],
)
def test_resource_limits_docker_would_refuse(resources, key, rule):
    message = only_problem(base(patroni={"resources": resources}))
    assert message.startswith(f"patroni-citus:patroni.resources.{key} = ") and rule in message


@pytest.mark.parametrize("name", ["..", ".", "eth 0", "a" * 16, "eth0/1"])
def test_interface_names_linux_refuses(name):
    assert "must be a network interface name" in only_problem(base(vip={"interface": name}))


# --- over-strict or misleading ------------------------------------------------------------


def test_numbers_are_accepted_where_a_string_is_expected():
    settings = load_settings(
        base(
            etcd={"autoCompactionRetention": 1},
            patroni={"resources": {"cpus": 1.5}},
            image={"citusVersion": 14.0},
        ),
        {},
    )
    assert settings.etcd.auto_compaction_retention == "1"
    assert settings.patroni.resources.cpus == "1.5"
    assert settings.image.citus_version == "14.0"


def test_vip_netmask_is_not_checked_when_the_vip_is_off():
    load_settings(
        plain(
            network={"subnet": "10.20.0.0/16", "memberRange": "10.20.1.0/24"},
            vip={"enabled": False, "address": None, "netmask": None},
        ),
        {},
    )


def test_a_dotted_key_without_path_gets_the_path_hint():
    config = {**base(), "cluster.scope": "x"}
    assert only_problem(config) == (
        "patroni-citus:cluster.scope: unknown key; to set a nested value use "
        "`pulumi config set --path cluster.scope VALUE`"
    )


def test_a_truly_unknown_key_is_named():
    assert only_problem({**base(), "clsuter": {}}) == (
        "patroni-citus:clsuter: unknown key (see docs/configuration.md)"
    )


def test_problems_are_never_a_traceback():
    with pytest.raises(SettingsError) as info:
        load_settings({"cluster": json.loads("[1, 2]"), "network": "x", "etcd": 3}, {})
    assert all(p.startswith("patroni-citus:") for p in info.value.problems)
