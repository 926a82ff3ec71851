"""The whole program under Pulumi mocks, for every stack file in the repository."""

import json
from pathlib import Path

import pytest
import yaml

from policies import conventions
from tests.programrun import EchoMocks, run_stack, stack_config, stack_names
from tests.snapshot import assert_matches_snapshot, render_graph

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
NETWORK = "docker:index/network:Network"
IMAGE = "docker:index/image:Image"
COMMAND = "command:local:Command"
SNAPSHOTS = Path(__file__).resolve().parent.parent / "snapshots"
MOCK_PASSWORDS_PREFIX = "mock-password-"


@pytest.fixture(scope="module")
def runs():
    return {stack: run_stack(stack) for stack in stack_names()}


def containers(run, role):
    return [r for r in run.of_type(CONTAINER) if r.role == role]


def test_every_stack_file_is_covered(runs):
    assert {"dev", "prod", "offline", "offline-vip", "offline-citus", "offline-hosts"} <= set(runs)


def test_dev_stack_declares_exactly_the_seed_topology(runs):
    run = runs["dev"]
    assert len(run.of_type(IMAGE)) == 1
    # The cluster's network and the engine proxy's.
    assert len(run.of_type(NETWORK)) == 2
    etcd = sorted(containers(run, conventions.ROLE_ETCD), key=lambda r: r.name)
    assert [c.inputs["name"] for c in etcd] == ["citus-etcd-1", "citus-etcd-2", "citus-etcd-3"]
    patroni = containers(run, conventions.ROLE_PATRONI)
    assert len(patroni) == 6
    by_group = {}
    for c in patroni:
        by_group.setdefault(c.labels[conventions.LABEL_GROUP], []).append(c.inputs["name"])
    assert {g: sorted(n) for g, n in by_group.items()} == {
        "0": ["citus-coord-1", "citus-coord-2"],
        "1": ["citus-work1-1", "citus-work1-2"],
        "2": ["citus-work2-1", "citus-work2-2"],
    }
    assert len(containers(run, conventions.ROLE_VIP_MANAGER)) == 2
    assert len(containers(run, conventions.ROLE_ENGINE_PROXY)) == 1
    assert len(containers(run, conventions.ROLE_CRASH_WATCHER)) == 1
    assert len(run.of_type(CONTAINER)) == 13
    assert len(run.of_type(VOLUME)) == 3 + 6
    assert {
        "vip",
        "groupLeaders",
        "coordinator",
        "coordinatorPassword",
        "etcdEndpoints",
        "members",
    } <= set(run.outputs)


def test_component_types_and_parents(runs):
    run = runs["dev"]
    components = {r.name: r.type for r in run.resources if not r.custom}
    assert components == {
        "citus": "patroni-citus:index:PatroniCitusCluster",
        "citus-etcd": "patroni-citus:index:EtcdCluster",
        "citus-coord": "patroni-citus:index:PatroniCitusGroup",
        "citus-work1": "patroni-citus:index:PatroniCitusGroup",
        "citus-work2": "patroni-citus:index:PatroniCitusGroup",
        "citus-vip": "patroni-citus:index:VipManager",
        "citus-observability": "patroni-citus:index:Observability",
        "citus-engine": "patroni-citus:index:EngineProxy",
        "citus-crash-watcher": "patroni-citus:index:CrashWatcher",
    }
    for resource in run.resources:
        if resource.custom:
            parent = run.by_urn(resource.options["parent"])
            assert resource.name.startswith(parent.name + "-"), resource.name


@pytest.mark.parametrize("stack", stack_names())
def test_network_and_static_addresses(runs, stack):
    run = runs[stack]
    config = {
        k.split(":", 1)[1]: v
        for k, v in yaml.safe_load(Path(f"Pulumi.{stack}.yaml").read_text())["config"].items()
    }
    (network,) = [n for n in run.of_type(NETWORK) if n.inputs["name"] == config["network"]["name"]]
    assert network.inputs["ipamConfigs"][0]["subnet"] == config["network"]["subnet"]
    assert network.labels[conventions.LABEL_MEMBER_RANGE] == config["network"]["memberRange"]
    addresses = []
    for c in containers(run, conventions.ROLE_ETCD) + containers(run, conventions.ROLE_PATRONI):
        (attachment,) = c.inputs["networksAdvanced"]
        assert attachment["name"] == network.inputs["name"]
        addresses.append(attachment["ipv4Address"])
    assert len(addresses) == len(set(addresses))
    for sidecar in containers(run, conventions.ROLE_VIP_MANAGER):
        member = sidecar.labels[conventions.LABEL_MEMBER]
        assert sidecar.inputs["networkMode"] == f"container:{member}"
        assert "networksAdvanced" not in sidecar.inputs
        # It reads its member's start stamp to know when to restart into the new namespace.
        assert sidecar.inputs["volumes"] == [
            {
                "volumeName": f"{member}-data",
                "containerPath": conventions.PATRONI_DATA_MOUNT,
                "readOnly": True,
            }
        ]
    vip = config.get("vip", {})
    if vip.get("enabled"):
        assert vip["address"] not in addresses
        assert network.labels[conventions.LABEL_VIP] == vip["address"]


@pytest.mark.parametrize("stack", stack_names())
def test_every_member_mounts_its_own_retained_volume(runs, stack):
    run = runs[stack]
    member_roles = (conventions.ROLE_ETCD, conventions.ROLE_PATRONI)
    volumes = {v.inputs["name"]: v for v in run.of_type(VOLUME) if v.role in member_roles}
    members = containers(run, conventions.ROLE_ETCD) + containers(run, conventions.ROLE_PATRONI)
    assert len(volumes) == len(members)
    for c in members:
        # With backups on, members also mount the shared repository (test_backups.py).
        (mount,) = [v for v in c.inputs["volumes"] if v["volumeName"].endswith("-data")]
        assert mount["volumeName"] == f"{c.inputs['name']}-data"
        role = c.role
        assert mount["containerPath"] == c.labels[conventions.LABEL_DATA_PATH]
        assert mount["containerPath"] == conventions.DATA_PATHS[role]
        assert volumes[mount["volumeName"]].options["retainOnDelete"]
        assert volumes[mount["volumeName"]].labels[conventions.LABEL_RETAIN] == "true"
    for c in run.of_type(CONTAINER):
        assert c.options["deleteBeforeReplace"], "fixed container names need delete-before-replace"


@pytest.mark.parametrize("stack", stack_names())
def test_capabilities_only_on_vip_sidecars(runs, stack):
    for c in runs[stack].of_type(CONTAINER):
        caps = c.inputs["capabilities"]
        if c.role == conventions.ROLE_VIP_MANAGER:
            assert sorted(caps["adds"]) == ["NET_ADMIN", "NET_RAW"]
            assert c.inputs["stopSignal"] == "SIGINT" and c.inputs["user"] == "root"
        elif c.role in (
            conventions.ROLE_ENGINE_PROXY,
            conventions.ROLE_CRASH_WATCHER,
            conventions.ROLE_HAPROXY,
            conventions.ROLE_BACKUP_EXPORTER,
        ):
            # None needs any: the proxy owns the socket as root, the others only read or
            # bind ports above 1024.
            assert caps == {"drops": ["ALL"]}
            assert c.inputs["readOnly"] and c.inputs["securityOpts"] == ["no-new-privileges:true"]
        elif c.role in (
            conventions.ROLE_PGBOUNCER,
            conventions.ROLE_PROMETHEUS,
        ):
            # Their root stays writable (an auth_file that must survive a restart; uploads),
            # everything else is locked down.
            assert caps == {"drops": ["ALL"]}
            assert c.inputs["securityOpts"] == ["no-new-privileges:true"]
            assert c.inputs["user"] != "root"
        else:
            # Docker grants NET_RAW by default: everything but the sidecars drops it.
            assert caps == {"drops": ["NET_RAW"]}
            assert "user" not in c.inputs and not c.inputs.get("privileged")


@pytest.mark.parametrize("stack", stack_names())
def test_restart_policy_and_healthcheck_everywhere(runs, stack):
    run = runs[stack]
    for c in run.of_type(CONTAINER):
        assert c.inputs["restart"] == "unless-stopped"
        assert c.inputs["healthcheck"]["tests"][0] == "CMD"
    # The healthchecks the policy pack suggests are the ones the members get.
    for c in containers(run, conventions.ROLE_ETCD):
        assert c.inputs["healthcheck"]["tests"] == list(conventions.ETCD_HEALTHCHECK)
    for c in containers(run, conventions.ROLE_PATRONI):
        assert c.inputs["healthcheck"]["tests"] == list(conventions.PATRONI_HEALTHCHECK)


def member_files(run, member):
    """The files a member's config command writes into its container, by path."""
    config = run.named(f"{member}-config")
    return dict(json.loads(config.inputs["stdin"]))


def test_member_files_reach_the_running_container_through_its_config_command(runs):
    run = runs["dev"]
    member = run.named("citus-coord-2")
    assert "uploads" not in member.inputs  # a changed file must not replace the container
    config = run.named("citus-coord-2-config")
    assert config.inputs["create"].endswith("write --container citus-coord-2")
    assert config.inputs["triggers"] == [member.outputs.get("id", member.id)]
    depends = {run.by_urn(u).name for u in config.options["dependencies"]}
    assert "citus-coord-2" in depends
    turn = {run.by_urn(u).name for u in run.named("citus-coord-2-turn").options["dependencies"]}
    assert "citus-passwords" in turn  # roles rotated before any member changes
    files = member_files(run, "citus-coord-2")
    # ~/.pgpass first: it must be there when Patroni starts on its configuration.
    assert list(files) == [conventions.PGPASS_PATH, conventions.PATRONI_CONFIG_PATH]
    patroni = yaml.safe_load(files[conventions.PATRONI_CONFIG_PATH])
    assert patroni["name"] == "citus-coord-2" and patroni["citus"]["group"] == 0
    assert (
        patroni["postgresql"]["authentication"]["superuser"]["password"]
        == f"{MOCK_PASSWORDS_PREFIX}citus-superuser-password"
    )
    assert list(member_files(runs["offline"], "offline-pg-1")) == list(files)


def test_passwords_reach_commands_only_as_secret_environment_or_stdin(runs):
    run = runs["dev"]
    passwords = run.named("citus-passwords")
    assert set(passwords.inputs["environment"]) == {
        "PC_SUPERUSER_PASSWORD",
        "PC_REPLICATION_PASSWORD",
    }
    for command in run.of_type(COMMAND):
        for key in ("create", "delete", "update"):
            assert MOCK_PASSWORDS_PREFIX not in command.inputs.get(key, ""), command.name


def test_each_member_is_gated_by_its_turn_and_readiness(runs):
    run = runs["offline"]
    for index in (1, 2, 3):
        member = f"offline-pg-{index}"
        container = run.named(member)
        turn = run.named(f"{member}-turn")
        ready = run.named(f"{member}-ready")
        revision = container.labels[conventions.LABEL_REVISION]
        assert turn.inputs["triggers"] == [revision]
        assert f"turn --member {member} --revisions" in turn.inputs["create"]
        assert turn.urn in container.options["dependencies"]
        assert ready.inputs["delete"].startswith("python3 scripts/rollout.py")
        assert f"handoff --member {member} " in ready.inputs["delete"]
    revisions = {c.labels[conventions.LABEL_REVISION] for c in containers(run, "patroni")}
    assert len(revisions) == 3  # each member's own arguments (address, volume) count
    dynamic = run.named("offline-pg-dynamic-config")
    desired = json.loads(dynamic.inputs["create"].split("--desired ", 1)[1].strip("'"))
    assert desired["loop_wait"] == 2 and desired["synchronous_mode"] is True
    depends = {run.by_urn(u).name for u in dynamic.options["dependencies"]}
    assert depends == {f"offline-pg-{i}-ready" for i in (1, 2, 3)}


def test_etcd_members_are_replaced_one_at_a_time(runs):
    run = runs["offline"]
    for index in (2, 3):
        member = run.named(f"offline-etcd-{index}")
        before = run.named(f"offline-etcd-{index - 1}-ready")
        assert before.urn in member.options["dependencies"]


def test_offline_citus_stack_is_the_seed_topology_on_debian_packages(runs):
    run = runs["offline-citus"]
    (image,) = run.of_type(IMAGE)
    assert image.inputs["build"]["target"] == "debian"
    groups: dict[str, list[str]] = {}
    for c in containers(run, "patroni"):
        groups.setdefault(c.labels["patroni-citus.group"], []).append(c.inputs["name"])
    assert {g: sorted(n) for g, n in groups.items()} == {
        "0": ["offcitus-coord-1", "offcitus-coord-2"],
        "1": ["offcitus-work1-1", "offcitus-work1-2"],
        "2": ["offcitus-work2-1", "offcitus-work2-2"],
    }
    assert sorted(c.inputs["name"] for c in containers(run, "vip-manager")) == [
        "offcitus-coord-1-vip",
        "offcitus-coord-2-vip",
    ]
    for etcd in containers(run, "etcd"):
        assert "--enable-v2=true" in etcd.inputs["command"]
    worker = member_files(run, "offcitus-work2-1")
    config = yaml.safe_load(worker[conventions.PATRONI_CONFIG_PATH])
    assert config["citus"] == {"group": 2, "database": "app"}
    assert "etcd" in config and "etcd3" not in config
    assert conventions.PGPASS_PATH in worker
    assert run.outputs["coordinator"]["host"] == run.outputs["vip"] == "172.27.254.254"


def test_worker_groups_join_and_drain_through_a_membership_command(runs):
    run = runs["dev"]
    commands = {r.name: r for r in run.of_type(COMMAND) if r.name.endswith("-membership")}
    assert sorted(commands) == ["citus-work1-membership", "citus-work2-membership"]
    work1 = commands["citus-work1-membership"]
    assert work1.inputs["create"].startswith("python3 scripts/citus_group.py join --group 1 ")
    assert work1.inputs["delete"].startswith("python3 scripts/citus_group.py drain --group 1 ")
    depends = {run.by_urn(u).name for u in work1.options["dependencies"]}
    assert {f"citus-{m}-ready" for m in ("work1-1", "work1-2", "coord-1", "coord-2")} <= depends
    assert not [r for r in runs["offline"].of_type(COMMAND) if r.name.endswith("-membership")]


def test_images_and_dependencies(runs):
    run = runs["dev"]
    (image,) = run.of_type(IMAGE)
    assert image.inputs["skipPush"] is True
    assert image.inputs["build"]["target"] == "upstream"
    assert image.inputs["build"]["context"] == "images/patroni"
    assert image.inputs["build"]["args"] == {
        "BASE_IMAGE": "debian:bookworm-slim",
        "PG_MAJOR": "18",
        "CITUS_VERSION": "14.0",
        "CITUS_PACKAGE_VERSION": "14.0.*",
        "PATRONI_VERSION": "",
        "PATRONI_MIN_VERSION": "4.0.7",
        "VIP_MANAGER_VERSION": "",
        "VIP_MANAGER_MIN_VERSION": "2.0.0",
    }
    (offline_image,) = runs["offline"].of_type(IMAGE)
    assert offline_image.inputs["build"]["args"] == {"BASE_IMAGE": "local/debian:bookworm"}
    digest = image.outputs["repoDigest"]
    etcd_urns = {c.urn for c in containers(run, conventions.ROLE_ETCD)}
    for c in run.of_type(CONTAINER):
        assert c.inputs["image"] == digest  # a rebuild replaces every container
    for c in containers(run, conventions.ROLE_PATRONI):
        assert etcd_urns <= set(c.options["dependencies"])
    for sidecar in containers(run, conventions.ROLE_VIP_MANAGER):
        member = run.named(sidecar.name.replace("citus-vip-", "citus-coord-"))
        assert member.urn in sidecar.options["dependencies"]
    probe = run.named("citus-group-leaders")
    ready = {run.named(f"{c.name}-ready").urn for c in containers(run, conventions.ROLE_PATRONI)}
    assert ready <= set(probe.options["dependencies"])
    assert probe.inputs["create"].startswith("python3 scripts/group_leaders.py --groups 0,1,2 ")


def test_prod_pulls_a_pinned_etcd_image(runs):
    run = runs["prod"]
    (remote,) = [
        r
        for r in run.of_type("docker:index/remoteImage:RemoteImage")
        if r.name == "citus-prod-etcd-image"
    ]
    assert remote.inputs["name"] == "quay.io/coreos/etcd:v3.5.16"
    for c in containers(run, conventions.ROLE_ETCD):
        assert c.inputs["image"] == remote.outputs["imageId"]
    assert len(containers(run, conventions.ROLE_ETCD)) == 5
    assert all(c.inputs["memory"] == 4096 for c in containers(run, conventions.ROLE_PATRONI))


def test_outputs(runs):
    dev = runs["dev"].outputs
    assert dev["vip"] == "172.30.254.254"
    # dev: ttl 30, loop_wait 10, so a dead server is given up within 15 s.
    fail_fast = {
        "target_session_attrs": "read-write",
        "connect_timeout": 7,
        "keepalives": 1,
        "keepalives_idle": 7,
        "keepalives_interval": 3,
        "keepalives_count": 2,
        "tcp_user_timeout": 15000,
    }
    assert dev["coordinator"] == {
        "host": "172.30.254.254",
        "port": conventions.POSTGRES_PORT,
        "database": "test",
        "user": "postgres",
        "targetSessionAttrs": "read-write",
        "parameters": fail_fast,
        "connectionString": "host=172.30.254.254 port=5432 dbname=test user=postgres "
        "target_session_attrs=read-write connect_timeout=7 keepalives=1 keepalives_idle=7 "
        "keepalives_interval=3 keepalives_count=2 tcp_user_timeout=15000",
    }
    assert dev["etcdEndpoints"] == [
        f"http://172.30.1.{i}:{conventions.ETCD_CLIENT_PORT}" for i in (1, 2, 3)
    ]
    assert dev["dcs"] == {
        "api": "v3",
        "prefix": "/service/citus",
        "leaderKeys": {str(g): f"/service/citus/{g}/leader" for g in (0, 1, 2)},
    }
    assert dev["citus"] is True
    assert runs["offline"].outputs["dcs"]["leaderKeys"] == {"0": "/service/offline/leader"}
    assert dev["members"]["1"] == [
        {"name": "citus-work1-1", "address": "172.30.1.33"},
        {"name": "citus-work1-2", "address": "172.30.1.34"},
    ]
    # The service layer is off: its outputs are null, the application password still secret.
    assert dev["endpoints"] is None and dev["pooler"] is None
    assert dev["applicationPassword"] is None
    assert runs["dev"].secret_outputs == {"coordinatorPassword", "applicationPassword"}
    offline = runs["offline"].outputs
    assert offline["vip"] is None
    assert offline["coordinator"]["host"] == "172.28.1.17,172.28.1.18,172.28.1.19"
    assert offline["coordinator"]["database"] == "postgres"


def test_group_leaders_output_parses_the_probe(runs):
    class LeaderMocks(EchoMocks):
        def new_resource(self, args):
            id_, outputs = super().new_resource(args)
            if args.typ == "command:local:Command":
                outputs["stdout"] = json.dumps({"0": "citus-coord-2", "1": "citus-work1-1"})
            return id_, outputs

    run = run_stack("dev", LeaderMocks())
    assert run.outputs["groupLeaders"] == {"0": "citus-coord-2", "1": "citus-work1-1"}


def test_supplied_passwords_are_used_and_stay_secret():
    run = run_stack("dev", secrets={"superuserPassword": "supplied-superuser-pw"})
    assert run.outputs["coordinatorPassword"] == "supplied-superuser-pw"
    assert "coordinatorPassword" in run.secret_outputs
    names = {r.name for r in run.of_type("random:index/randomPassword:RandomPassword")}
    assert names == {"citus-replication-password", "citus-rest-api-password"}


@pytest.mark.parametrize("stack", stack_names())
def test_no_secret_in_environment_labels_or_plain_outputs(runs, stack):
    run = runs[stack]
    secrets = [
        r.outputs["result"] for r in run.of_type("random:index/randomPassword:RandomPassword")
    ]
    # The cluster's three, and one per service role when its service is on.
    config = stack_config(stack)
    pooled = config.get("patroni-citus:pooler", {}).get("enabled", False)
    monitored = config.get("patroni-citus:monitoring", {}).get("enabled", False)
    assert len(secrets) == 3 + 2 * pooled + monitored
    for c in run.of_type(CONTAINER):
        exposed = json.dumps(
            [c.inputs.get("envs", []), c.inputs.get("labels", []), c.inputs.get("command", [])]
        )
        assert not any(s in exposed for s in secrets), c.name
    plain = json.dumps({k: v for k, v in run.outputs.items() if k not in run.secret_outputs})
    assert not any(s in plain for s in secrets)


@pytest.mark.parametrize("stack", stack_names())
def test_resource_graph_matches_snapshot(runs, stack):
    run = runs[stack]
    secret_values = {
        r.outputs["result"] for r in run.of_type("random:index/randomPassword:RandomPassword")
    }
    text = render_graph(run, secret_values)
    assert_matches_snapshot(SNAPSHOTS / f"{stack}.txt", text, f"the resource graph of {stack}")


def test_networks_docker_picks_a_pool_for_come_after_the_cluster_network(runs):
    """Docker hands a network without a subnet the next free pool, which may be the cluster's
    configured subnet while that network does not exist yet (seen in CI: the engine network
    took 172.28.0.0/16 first and the cluster's network could not be created)."""
    checked = 0
    for stack, run in runs.items():
        networks = run.of_type(NETWORK)
        (cluster,) = [n for n in networks if n.inputs.get("ipamConfigs")]
        for network in networks:
            if network is cluster:
                continue
            checked += 1
            depends = {run.by_urn(u).name for u in network.options["dependencies"]}
            assert cluster.name in depends, (stack, network.name)
    assert checked >= 3  # the engine network everywhere, the metrics network with monitoring
