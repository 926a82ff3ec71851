"""Rendering is pure: Patroni YAML, etcd flags and vip-manager flags from settings."""

import yaml

from patroni_citus.config import load_settings
from patroni_citus.plan import render
from policies import conventions

ETCD, PEER = conventions.ETCD_CLIENT_PORT, conventions.ETCD_PEER_PORT
ETCD_HOSTS = [f"172.30.1.{i}:{ETCD}" for i in (1, 2, 3)]
CREDENTIALS = render.Credentials(
    superuser="su-secret-123456", replication="repl-secret-123", rest_api="rest-secret-1234"
)


def citus_settings(**overrides):
    config = {
        "citus": {"enabled": True, "database": "test", "workerGroups": 2},
        "vip": {"enabled": True, "address": "172.30.254.254"},
    }
    config.update(overrides)
    return load_settings(config, {})


def plain_settings():
    return load_settings(
        {
            "citus": {"enabled": False},
            "patroni": {"members": 3},
            "etcd": {"apiVersion": "v2"},
            "image": {"flavour": "debian"},
            "vip": {"enabled": True, "address": "172.30.254.254"},
        },
        {},
    )


def test_patroni_config_for_a_citus_worker():
    s = citus_settings()
    group = s.groups[1]
    member = group.members[1]
    config = yaml.safe_load(render.to_yaml(render.patroni_config(s, group, member, CREDENTIALS)))
    assert config["scope"] == "citus" and config["namespace"] == "/service/"
    assert config["name"] == "citus-work1-2"
    assert config["citus"] == {"group": 1, "database": "test"}
    assert config["etcd3"] == {"hosts": ETCD_HOSTS}
    assert "etcd" not in config
    assert config["restapi"]["connect_address"] == f"172.30.1.34:{conventions.REST_API_PORT}"
    assert config["restapi"]["authentication"] == {
        "username": "patroni",
        "password": "rest-secret-1234",
    }
    pg = config["postgresql"]
    assert pg["connect_address"] == f"172.30.1.34:{conventions.POSTGRES_PORT}"
    assert pg["data_dir"] == conventions.PGDATA
    assert pg["bin_dir"] == conventions.postgres_bin_dir(18)
    assert pg["basebackup"] == [{"checkpoint": "fast"}]
    assert pg["authentication"]["superuser"] == {
        "username": "postgres",
        "password": "su-secret-123456",
    }
    assert pg["authentication"]["replication"]["username"] == "replicator"
    dcs = config["bootstrap"]["dcs"]
    assert (dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"]) == (30, 10, 10)
    assert dcs["synchronous_mode"] is True and dcs["failsafe_mode"] is False
    assert dcs["postgresql"]["use_pg_rewind"] is True
    assert dcs["postgresql"]["parameters"]["password_encryption"] == "scram-sha-256"


def test_pg_hba_is_limited_to_the_subnet_with_scram_and_local_replication():
    hba = [line.split() for line in render.pg_hba(citus_settings())]
    assert ["host", "replication", "replicator", "127.0.0.1/32", "scram-sha-256"] in hba
    assert ["host", "replication", "replicator", "172.30.0.0/16", "scram-sha-256"] in hba
    assert ["host", "all", "all", "172.30.0.0/16", "scram-sha-256"] in hba
    assert all(line[-1] == "scram-sha-256" for line in hba)
    assert not any("0.0.0.0/0" in line for line in hba)


def test_patroni_config_without_citus_uses_etcd_v2_when_asked():
    s = plain_settings()
    config = render.patroni_config(s, s.groups[0], s.groups[0].members[0], CREDENTIALS)
    assert "citus" not in config
    assert config["etcd"] == {"hosts": ETCD_HOSTS}
    assert config["postgresql"]["bin_dir"] == conventions.postgres_bin_dir(15)


def test_user_parameters_reach_the_dcs_bootstrap():
    s = citus_settings(patroni={"parameters": {"max_connections": 300, "work_mem": "16MB"}})
    config = render.patroni_config(s, s.groups[0], s.groups[0].members[0], CREDENTIALS)
    parameters = config["bootstrap"]["dcs"]["postgresql"]["parameters"]
    assert parameters["max_connections"] == 300 and parameters["work_mem"] == "16MB"


def test_yaml_quotes_awkward_passwords():
    s = citus_settings()
    awkward = render.Credentials(superuser="a: b #c 'd\"", replication="x" * 12, rest_api="y" * 12)
    text = render.to_yaml(render.patroni_config(s, s.groups[0], s.groups[0].members[0], awkward))
    assert (
        yaml.safe_load(text)["postgresql"]["authentication"]["superuser"]["password"]
        == "a: b #c 'd\""
    )


def test_pgpass_escapes_colons_and_backslashes():
    s = citus_settings()
    line = render.pgpass(s, render.Credentials("p:a\\ss-word-long", "r" * 12, "x" * 12))
    assert line == f"*:{conventions.POSTGRES_PORT}:*:postgres:p\\:a\\\\ss-word-long\n"


def test_etcd_command():
    s = citus_settings()
    member = s.etcd_members[1]
    command = render.etcd_command(s, member)
    assert command[0] == "etcd"
    assert "--name=citus-etcd-2" in command
    assert f"--data-dir={conventions.ETCD_DATA_DIR}" in command
    assert f"--initial-advertise-peer-urls=http://172.30.1.2:{PEER}" in command
    assert f"--advertise-client-urls=http://172.30.1.2:{ETCD}" in command
    assert (
        "--initial-cluster="
        + ",".join(f"citus-etcd-{i}=http://172.30.1.{i}:{PEER}" for i in (1, 2, 3))
    ) in command
    assert "--initial-cluster-token=citus-etcd" in command
    assert "--auto-compaction-retention=1" in command
    assert not any(flag.startswith("--enable-v2") for flag in command)
    assert "--enable-v2=true" in render.etcd_command(plain_settings(), member)


def test_vip_manager_flags_in_citus_mode():
    s = citus_settings()
    command = render.vip_manager_command(s, s.groups[0].members[1])
    assert command[0] == "vip-manager"
    assert "--ip=172.30.254.254" in command
    assert "--netmask=16" in command
    assert "--interface=eth0" in command
    assert "--trigger-key=/service/citus/0/leader" in command
    assert "--trigger-value=citus-coord-2" in command
    assert f"--dcs-endpoints={','.join(f'http://{host}' for host in ETCD_HOSTS)}" in command


def test_vip_manager_flags_without_citus():
    s = plain_settings()
    command = render.vip_manager_command(s, s.groups[0].members[0])
    assert "--trigger-key=/service/citus/leader" in command
    assert "--trigger-value=citus-pg-1" in command


def test_group_leaders_command_lists_every_group():
    s = citus_settings()
    command = render.group_leaders_command(s, ["citus-coord-1", "citus-coord-2"], 120)
    assert command.startswith("python3 scripts/group_leaders.py --groups 0,1,2 --timeout 120")
    assert command.endswith("citus-coord-1 citus-coord-2")


def test_citus_membership_joins_and_drains_a_worker_group():
    settings = citus_settings(
        citus={"enabled": True, "database": "test", "workerGroups": 2, "rebalanceOnJoin": True}
    )
    join, drain = render.citus_membership_commands(
        settings, settings.groups[2], ["citus-coord-1", "citus-coord-2"], 300
    )
    common = ("--group 2 --database test --superuser postgres --scope citus "
              "--config /etc/patroni/patroni.yml --timeout 300")  # fmt: skip
    assert join == (f"python3 scripts/citus_group.py join {common} --rebalance "
                    "citus-coord-1 citus-coord-2")  # fmt: skip
    assert drain == (f"python3 scripts/citus_group.py drain {common} "
                     "--members citus-work2-1,citus-work2-2 citus-coord-1 citus-coord-2")  # fmt: skip
