"""Rules of the policy pack against hand-built resource graphs.

``cluster()`` builds a correct graph (3 etcd, Citus groups 0 and 1 with 2 Patroni members
each, 2 vip-manager, network, data volumes, one RemoteImage); each test breaks one thing and
expects exactly the violations that thing causes, messages included. The last part runs the
real pack (``policies/__main__.py`` over gRPC, see policy_harness.py) to check enforcement
levels, pack config and unknown values as the engine delivers them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from policies import rules as R
from policies.rules import UNKNOWN, Resource

STACK = "test"
CLUSTER = "demo"
NET_NAME = "demo-net"
IMAGE = "registry.example.com/patroni-citus:16-12.1"
IMAGE_ID = "sha256:" + "ab" * 32


# --------------------------------------------------------------------------------------------
# Factories
# --------------------------------------------------------------------------------------------


def urn(type_token: str, name: str) -> str:
    return f"urn:pulumi:{STACK}::patroni-citus::{type_token}::{name}"


def labels(**kv: Any) -> List[Dict[str, Any]]:
    return [{"label": "patroni-citus." + k.replace("_", "-"), "value": v} for k, v in kv.items()]


def res(type_token: str, name: str, props: Dict[str, Any], **opts: Any) -> Resource:
    return Resource(type=type_token, name=name, urn=urn(type_token, name), props=props, **opts)


def network() -> Resource:
    return res(R.NETWORK, "net", {
        "name": NET_NAME,
        "driver": "bridge",
        "ipamConfigs": [{"subnet": "172.30.0.0/24", "gateway": "172.30.0.1",
                         "ipRange": "172.30.0.128/26"}],
        "labels": labels(cluster=CLUSTER, member_range="172.30.0.16/28", vip="172.30.0.250"),
    })


def data_volume(member: str, role: str, **opts: Any) -> Resource:
    return res(R.VOLUME, f"{member}-data", {
        "name": f"{member}-data",
        "labels": labels(cluster=CLUSTER, role=role, member=member),
    }, **opts)


def _common(role: str, member: str, ip: Optional[str]) -> Dict[str, Any]:
    props: Dict[str, Any] = {
        "name": member,
        "image": IMAGE_ID,
        "restart": "unless-stopped",
        "logDriver": "fluentd",
        "logOpts": {"fluentd-address": "127.0.0.1:24224", "fluentd-async": "true",
                    "tag": "pc.{{.Name}}"},
    }
    if ip:
        props["networksAdvanced"] = [{"name": NET_NAME, "ipv4Address": ip, "aliases": [member]}]
    return props


def etcd(i: int) -> Resource:
    member = f"{CLUSTER}-etcd-{i}"
    props = _common("etcd", member, f"172.30.0.{17 + i}")
    props.update({
        "command": ["etcd", f"--name={member}", "--data-dir=/var/lib/etcd/data"],
        "envs": ["ETCDCTL_API=3"],
        "labels": labels(cluster=CLUSTER, role="etcd", member=member, data_path="/var/lib/etcd"),
        "volumes": [{"volumeName": f"{member}-data", "containerPath": "/var/lib/etcd"}],
        "healthcheck": {"tests": ["CMD", "etcdctl", "endpoint", "health"], "interval": "10s",
                        "timeout": "5s", "retries": 3},
        "capabilities": {"drops": ["NET_RAW"]},
    })
    return res(R.CONTAINER, member, props)


def patroni(group: int, suffix: str, ip_last: int) -> Resource:
    member = f"{CLUSTER}-g{group}-{suffix}"
    props = _common("patroni", member, f"172.30.0.{ip_last}")
    props.update({
        "command": ["patroni"],
        "envs": ["PGPASSFILE=/var/lib/postgresql/.pgpass", "PATRONI_LOG_LEVEL=INFO"],
        "labels": labels(cluster=CLUSTER, role="patroni", group=str(group), member=member,
                         data_path="/var/lib/postgresql/data"),
        "volumes": [{"volumeName": f"{member}-data", "containerPath": "/var/lib/postgresql/data"}],
        "uploads": [{"file": "/etc/patroni/patroni.yml", "content": "scope: demo\n"}],
        "healthcheck": {"tests": ["CMD", "curl", "-fsS", "http://localhost:8008/liveness"],
                        "interval": "10s", "timeout": "5s", "retries": 3},
        "capabilities": {"drops": ["NET_RAW"]},
    })
    if group == 0:
        props["ports"] = [{"internal": 5432, "external": 5432 + ord(suffix) - ord("a"),
                           "ip": "127.0.0.1", "protocol": "tcp"}]
    return res(R.CONTAINER, member, props)


def vip_manager(of: str) -> Resource:
    member = f"{of}-vip"
    props = _common("vip-manager", member, None)
    props.update({
        "networkMode": f"container:{of}",
        "command": ["vip-manager", "--ip=172.30.0.250", "--netmask=24", "--interface=eth0"],
        "labels": labels(cluster=CLUSTER, role="vip-manager", group="0", member=member),
        "capabilities": {"adds": ["NET_ADMIN", "NET_RAW"]},
        "restart": "always",
        "healthcheck": {"tests": ["CMD", "pgrep", "vip-manager"], "interval": "10s"},
    })
    return res(R.CONTAINER, member, props)


def cluster() -> List[Resource]:
    graph: List[Resource] = [
        network(),
        res(R.REMOTE_IMAGE, "patroni-image", {"name": IMAGE, "keepLocally": True}),
    ]
    for i in range(3):
        graph += [etcd(i), data_volume(f"{CLUSTER}-etcd-{i}", "etcd", protect=True)]
    ip = 20
    for group in (0, 1):
        for suffix in ("a", "b"):
            member = f"{CLUSTER}-g{group}-{suffix}"
            vol = data_volume(member, "patroni")
            vol = with_label(vol, "patroni-citus.retain", "true")  # retainOnDelete mirrored
            graph += [patroni(group, suffix, ip), vol]
            ip += 1
    graph += [vip_manager(f"{CLUSTER}-g0-a"), vip_manager(f"{CLUSTER}-g0-b")]
    return graph


# -- mutation helpers ---------------------------------------------------------------------------


def find(graph: List[Resource], name: str) -> Resource:
    return next(r for r in graph if r.name == name)


def with_props(r: Resource, **props: Any) -> Resource:
    merged = dict(r.props)
    for k, v in props.items():
        if v is None:
            merged.pop(k, None)
        else:
            merged[k] = v
    return dataclasses.replace(r, props=merged)


def with_label(r: Resource, key: str, value: Any) -> Resource:
    items = [dict(i) for i in r.props.get("labels", []) if i["label"] != key]
    if value is not None:
        items.append({"label": key, "value": value})
    return with_props(r, labels=items)


def change(graph: List[Resource], name: str, fn) -> List[Resource]:
    return [fn(r) if r.name == name else r for r in graph]


def without(graph: List[Resource], *names: str) -> List[Resource]:
    return [r for r in graph if r.name not in names]


def violations(graph: List[Resource], config: Optional[Dict[str, Any]] = None) -> Dict[str, List[str]]:
    """Non-empty findings per rule: {rule: [message, ...]}."""
    found = R.run_rules(graph, config)
    return {name: [v.message for v in vs] for name, vs in found.items() if vs}


def etcd_graph(n: int) -> List[Resource]:
    graph = [r for r in cluster() if "etcd" not in r.name]
    for i in range(n):
        graph += [etcd(i), data_volume(f"{CLUSTER}-etcd-{i}", "etcd", protect=True)]
    return graph


# --------------------------------------------------------------------------------------------
# The correct graph
# --------------------------------------------------------------------------------------------


def test_correct_cluster_has_no_violation():
    assert violations(cluster()) == {}


def test_every_rule_is_registered_once():
    names = [r.name for r in R.RULES]
    assert len(names) == len(set(names)) == 10
    assert R.RULES_BY_NAME["etcd-odd-quorum"].enforcement_level == R.MANDATORY


# --------------------------------------------------------------------------------------------
# etcd-odd-quorum
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, members, reason_fix", [
    (1, "demo-etcd-0",
     "fewer than 3 members cannot keep quorum when a member is lost. Fix: run 3 (or 5) etcd "
     "members"),
    (2, "demo-etcd-0, demo-etcd-1",
     "fewer than 3 members cannot keep quorum when a member is lost. Fix: run 3 (or 5) etcd "
     "members"),
    (4, "demo-etcd-0, demo-etcd-1, demo-etcd-2, demo-etcd-3",
     "4 members need 3 for quorum and survive 1 failure, no more than 3 would. Fix: run 3 or 5 "
     "etcd members"),
])
def test_etcd_member_count_must_be_odd_and_at_least_3(n, members, reason_fix):
    count = "1 etcd member" if n == 1 else f"{n} etcd members"
    assert violations(etcd_graph(n)) == {"etcd-odd-quorum": [
        f'cluster "demo" has {count} ({members}); etcd needs an odd count of at least 3: '
        f'{reason_fix} in cluster "demo" (containers labelled patroni-citus.role=etcd, '
        f"patroni-citus.cluster=demo)."]}


@pytest.mark.parametrize("n", [3, 5])
def test_etcd_odd_counts_pass(n):
    assert violations(etcd_graph(n)) == {}


def test_cluster_without_etcd_members():
    assert violations(etcd_graph(0)) == {"etcd-odd-quorum": [
        'cluster "demo" has 0 etcd members (none); etcd needs an odd count of at least 3: fewer '
        "than 3 members cannot keep quorum when a member is lost. Fix: run 3 (or 5) etcd members "
        'in cluster "demo" (containers labelled patroni-citus.role=etcd, '
        "patroni-citus.cluster=demo)."]}


def test_etcd_members_are_counted_per_cluster():
    other = [dataclasses.replace(
        with_label(etcd(i), "patroni-citus.cluster", "other"), name=f"other-etcd-{i}",
        urn=urn(R.CONTAINER, f"other-etcd-{i}")) for i in range(2)]
    graph = cluster() + other
    found = R.check_etcd_quorum(graph, {})
    assert [v.message[:48] for v in found] == ['cluster "other" has 2 etcd members (other-etcd-0']


def test_etcd_member_without_cluster_label():
    graph = change(cluster(), "demo-etcd-2", lambda r: with_label(r, "patroni-citus.cluster", None))
    found = R.check_etcd_quorum(graph, {})
    assert [(v.message, v.urn) for v in found] == [
        ('Container "demo-etcd-2" has patroni-citus.role=etcd but no patroni-citus.cluster '
         "label, so it counts towards no cluster's etcd quorum. Fix: label it "
         "patroni-citus.cluster=<cluster name> like the other members of its cluster.",
         urn(R.CONTAINER, "demo-etcd-2")),
        ('cluster "demo" has 2 etcd members (demo-etcd-0, demo-etcd-1); etcd needs an odd count '
         "of at least 3: fewer than 3 members cannot keep quorum when a member is lost. Fix: run "
         '3 (or 5) etcd members in cluster "demo" (containers labelled patroni-citus.role=etcd, '
         "patroni-citus.cluster=demo).", None),
    ]


def test_etcd_identified_by_labels_not_by_name_or_parent():
    # an etcd-looking container without the role label does not count; a differently named
    # container with the label does.
    graph = change(cluster(), "demo-etcd-2", lambda r: with_label(r, "patroni-citus.role", "adminer"))
    assert "etcd-odd-quorum" in violations(graph)
    renamed = change(cluster(), "demo-etcd-2", lambda r: dataclasses.replace(
        r, name="kv-store", parent=urn("patroni-citus:index:Other", "x")))
    assert violations(renamed) == {}


# --------------------------------------------------------------------------------------------
# patroni-group-size
# --------------------------------------------------------------------------------------------


def test_one_member_group():
    graph = without(cluster(), "demo-g1-b", "demo-g1-b-data")
    assert violations(graph) == {"patroni-group-size": [
        'Patroni group 1 of cluster "demo" has 1 member (demo-g1-a); at least 2 are required so '
        "that a replica can take over when the leader fails (3 recommended for production). Fix: "
        "add members to group 1, or lower patroni-group-size.minMembers in the pack config for a "
        "non-production stack."]}


def test_group_size_config():
    assert violations(cluster(), {"patroni-group-size": {"minMembers": 3}}) == {
        "patroni-group-size": [
            f'Patroni group {g} of cluster "demo" has 2 members (demo-g{g}-a, demo-g{g}-b); at '
            "least 3 are required so that a replica can take over when the leader fails (3 "
            f"recommended for production). Fix: add members to group {g}, or lower "
            "patroni-group-size.minMembers in the pack config for a non-production stack."
            for g in (0, 1)]}
    graph = without(cluster(), "demo-g1-b", "demo-g1-b-data")
    assert violations(graph, {"patroni-group-size": {"minMembers": 1.0}}) == {}


def test_patroni_member_without_group_label():
    graph = change(cluster(), "demo-g1-b", lambda r: with_label(r, "patroni-citus.group", None))
    found = violations(graph)
    assert found["patroni-group-size"][0] == (
        'Container "demo-g1-b" has patroni-citus.role=patroni but no patroni-citus.group label, '
        "so it belongs to no Citus group. Fix: label it patroni-citus.cluster=<cluster> and "
        "patroni-citus.group=<group number, 0 for the coordinator>.")
    assert len(found["patroni-group-size"]) == 2  # and group 1 is now a 1-member group
    assert list(found) == ["patroni-group-size"]


# --------------------------------------------------------------------------------------------
# pinned-images
# --------------------------------------------------------------------------------------------


def test_latest_tag_on_remote_image():
    graph = change(cluster(), "patroni-image",
                   lambda r: with_props(r, name="registry.example.com/patroni-citus:latest"))
    assert violations(graph) == {"pinned-images": [
        'RemoteImage "patroni-image": image "registry.example.com/patroni-citus:latest" uses the '
        'tag "latest"; such a reference is mutable, so a re-pull or a replacement can silently '
        "change the software. Fix: set name to a fixed version tag or a digest (e.g. repo:16.4 "
        "or repo@sha256:<digest>)."]}


def test_untagged_container_image():
    graph = change(cluster(), "demo-etcd-0",
                   lambda r: with_props(r, image="registry.example.com:5000/etcd"))
    assert violations(graph) == {"pinned-images": [
        'Container "demo-etcd-0": image "registry.example.com:5000/etcd" has no tag, so Docker '
        'uses "latest"; such a reference is mutable, so a re-pull or a replacement can silently '
        "change the software. Fix: set image to a fixed version tag or a digest (e.g. repo:16.4 "
        "or repo@sha256:<digest>)."]}


@pytest.mark.parametrize("ref, problem", [
    ("postgres", 'has no tag, so Docker uses "latest"'),
    ("postgres:latest", 'uses the tag "latest"'),
    ("localhost:5000/pg", 'has no tag, so Docker uses "latest"'),
    ("postgres:16.4", None),
    ("localhost:5000/pg:16", None),
    ("postgres@sha256:" + "0" * 64, None),
    ("postgres:latest@sha256:" + "0" * 64, None),
    (IMAGE_ID, None),
])
def test_image_reference_parsing(ref, problem):
    assert R.image_pin_problem(ref) == problem


# --------------------------------------------------------------------------------------------
# net-capabilities
# --------------------------------------------------------------------------------------------


def test_net_admin_on_patroni_member():
    graph = change(cluster(), "demo-g0-a", lambda r: with_props(
        r, capabilities={"adds": ["NET_ADMIN"], "drops": ["NET_RAW"]}))
    assert violations(graph) == {"net-capabilities": [
        'Container "demo-g0-a" (role patroni) adds capability NET_ADMIN, which gives it '
        "NET_ADMIN; only vip-manager containers may hold NET_ADMIN or NET_RAW. Fix: remove "
        "NET_ADMIN from capabilities.adds."]}


def test_cap_prefix_and_all_are_recognised():
    graph = change(cluster(), "demo-etcd-0", lambda r: with_props(
        r, capabilities={"adds": ["cap_net_raw"]}))
    assert violations(graph) == {"net-capabilities": [
        'Container "demo-etcd-0" (role etcd) adds capability NET_RAW, which gives it NET_RAW; '
        "only vip-manager containers may hold NET_ADMIN or NET_RAW. Fix: remove NET_RAW from "
        "capabilities.adds."]}
    graph = change(cluster(), "demo-etcd-0", lambda r: with_props(
        r, capabilities={"adds": ["ALL"], "drops": ["NET_RAW"]}))
    assert len(violations(graph)["net-capabilities"]) == 2


def test_net_raw_must_be_dropped_unless_configured():
    graph = change(cluster(), "demo-g1-a", lambda r: with_props(r, capabilities=None))
    assert violations(graph) == {"net-capabilities": [
        'Container "demo-g1-a" (role patroni) keeps NET_RAW, which Docker grants by default; '
        'only vip-manager containers may hold NET_ADMIN or NET_RAW. Fix: add "NET_RAW" to '
        "capabilities.drops."]}
    assert violations(graph, {"net-capabilities": {"requireNetRawDrop": False}}) == {}
    dropped_all = change(cluster(), "demo-g1-a", lambda r: with_props(
        r, capabilities={"drops": ["ALL"]}))
    assert violations(dropped_all) == {}


def test_privileged_non_vip_container():
    graph = change(cluster(), "demo-etcd-1", lambda r: with_props(r, privileged=True))
    assert violations(graph) == {"net-capabilities": [
        'Container "demo-etcd-1" (role etcd) is privileged, which grants every capability '
        "including NET_ADMIN and NET_RAW; only vip-manager containers may hold them. Fix: "
        "remove privileged=True and add the specific capabilities the container needs."]}


# --------------------------------------------------------------------------------------------
# data-volumes
# --------------------------------------------------------------------------------------------


def test_missing_data_volume():
    graph = change(cluster(), "demo-g1-a", lambda r: with_props(r, volumes=None))
    assert violations(graph) == {"data-volumes": [
        'Container "demo-g1-a" (role patroni) mounts nothing at its data path '
        "/var/lib/postgresql/data, so its data lives in the container and is lost when the "
        "container is replaced. Fix: mount a named docker.Volume there (volumes=[{volumeName: "
        '<volume name>, containerPath: "/var/lib/postgresql/data"}]).']}


def test_volume_at_the_wrong_path_and_bind_and_anonymous_mounts():
    wrong = change(cluster(), "demo-etcd-0", lambda r: with_props(
        r, volumes=[{"volumeName": "demo-etcd-0-data", "containerPath": "/data"}]))
    assert [m[:70] for m in violations(wrong)["data-volumes"]] == [
        'Container "demo-etcd-0" (role etcd) mounts nothing at its data path /v']
    bind = change(cluster(), "demo-etcd-0", lambda r: with_props(
        r, volumes=[{"hostPath": "/srv/etcd", "containerPath": "/var/lib/etcd/"}]))
    assert violations(bind) == {"data-volumes": [
        'Container "demo-etcd-0" (role etcd) mounts a bind mount ("/srv/etcd") at its data path '
        "/var/lib/etcd instead of a named volume. Fix: mount a named docker.Volume there "
        '(volumes=[{volumeName: <volume name>, containerPath: "/var/lib/etcd"}]).']}
    anon = change(cluster(), "demo-etcd-0", lambda r: with_props(
        r, volumes=[{"containerPath": "/var/lib/etcd"}]))
    assert violations(anon)["data-volumes"][0].startswith(
        'Container "demo-etcd-0" (role etcd) mounts an anonymous volume at its data path '
        "/var/lib/etcd; anonymous volumes are removed with the container.")


def test_mounts_form_of_a_named_volume_is_accepted():
    graph = change(cluster(), "demo-etcd-0", lambda r: with_props(r, volumes=None, mounts=[
        {"type": "volume", "source": "demo-etcd-0-data", "target": "/var/lib/etcd"}]))
    assert violations(graph) == {}


def test_data_volume_neither_protected_nor_retained():
    graph = change(cluster(), "demo-etcd-1-data", lambda r: dataclasses.replace(r, protect=False))
    graph = change(graph, "demo-g0-b-data", lambda r: with_label(r, "patroni-citus.retain", None))
    found = R.check_data_volumes(graph, {})
    assert [(v.message, v.urn) for v in found] == [
        ('Volume "demo-etcd-1-data" holds the data of Container "demo-etcd-1" but is neither '
         "protected nor retained, so pulumi destroy or a replacement deletes the data. Fix: "
         "create it with protect=True, or with retain_on_delete=True plus the label "
         "patroni-citus.retain=true (policies cannot see retainOnDelete).",
         urn(R.VOLUME, "demo-etcd-1-data")),
        ('Volume "demo-g0-b-data" holds the data of Container "demo-g0-b" but is neither '
         "protected nor retained, so pulumi destroy or a replacement deletes the data. Fix: "
         "create it with protect=True, or with retain_on_delete=True plus the label "
         "patroni-citus.retain=true (policies cannot see retainOnDelete).",
         urn(R.VOLUME, "demo-g0-b-data")),
    ]


def test_unmounted_labelled_data_volume_is_checked_too():
    orphan = data_volume("demo-old", "patroni")
    assert violations(cluster() + [orphan]) == {"data-volumes": [
        'Volume "demo-old-data" is a data volume (role patroni) but is neither protected nor '
        "retained, so pulumi destroy or a replacement deletes the data. Fix: create it with "
        "protect=True, or with retain_on_delete=True plus the label patroni-citus.retain=true "
        "(policies cannot see retainOnDelete)."]}


def test_missing_data_path_label():
    graph = change(cluster(), "demo-etcd-0", lambda r: with_label(r, "patroni-citus.data-path", None))
    assert violations(graph) == {"data-volumes": [
        'Container "demo-etcd-0" (role etcd) has no patroni-citus.data-path label, so its data '
        "mount cannot be checked. Fix: label it patroni-citus.data-path=/var/lib/etcd (the mount "
        "point of its data volume)."]}


# --------------------------------------------------------------------------------------------
# no-literal-secrets
# --------------------------------------------------------------------------------------------

SECRET_FIX = ("Fix: deliver the secret in a file instead (Patroni: in /etc/patroni/patroni.yml "
              "uploaded with `uploads`; other images: upload a file and set <NAME>_FILE to its "
              "path), or rename the entry if it is not a secret.")


def test_literal_password_in_environment():
    graph = change(cluster(), "demo-g0-a", lambda r: with_props(
        r, envs=list(r.props["envs"]) + ["PATRONI_SUPERUSER_PASSWORD=hunter2"]))
    found = violations(graph)
    assert found == {"no-literal-secrets": [
        'Container "demo-g0-a" sets environment variable PATRONI_SUPERUSER_PASSWORD to a literal '
        "value (not shown); the environment is readable by anyone who can run docker inspect and "
        f"is stored in the Pulumi state. {SECRET_FIX}"]}
    assert "hunter2" not in json.dumps(found)


def test_secret_like_label_and_allowed_forms():
    graph = change(cluster(), "net", lambda r: with_label(r, "acme.api-key", "abc"))
    assert violations(graph) == {"no-literal-secrets": [
        'Network "net" sets label "acme.api-key" to a literal value (not shown); labels are '
        "readable by anyone who can run docker inspect and are stored in the Pulumi state. "
        f"{SECRET_FIX}"]}
    allowed = change(cluster(), "demo-etcd-0", lambda r: with_props(r, envs=[
        "ETCD_PASSWORD_FILE=/run/secrets/etcd", "PGPASSWORD=", "POSTGRES_PASSWORD", "PGPASSFILE=/x"]))
    assert violations(allowed) == {}


def test_secret_name_pattern_config():
    graph = change(cluster(), "demo-etcd-0", lambda r: with_props(
        r, envs=["ETCD_INITIAL_CLUSTER_TOKEN=demo", "MY_PIN=1234"]))
    assert list(violations(graph)["no-literal-secrets"][0].split(" to ")[:1]) == [
        'Container "demo-etcd-0" sets environment variable ETCD_INITIAL_CLUSTER_TOKEN']
    found = violations(graph, {"no-literal-secrets": {"secretNamePattern": "(?i)pin$"}})
    assert [m.split(" to ")[0] for m in found["no-literal-secrets"]] == [
        'Container "demo-etcd-0" sets environment variable MY_PIN']
    with pytest.raises(ValueError, match="not a valid regular expression"):
        violations(graph, {"no-literal-secrets": {"secretNamePattern": "("}})


# --------------------------------------------------------------------------------------------
# restart-and-healthcheck
# --------------------------------------------------------------------------------------------


def test_restart_policy_and_healthcheck_missing():
    graph = change(cluster(), "demo-etcd-2", lambda r: with_props(r, restart=None, healthcheck=None))
    graph = change(graph, "demo-g0-a-vip", lambda r: with_props(r, restart="no",
                                                               healthcheck={"tests": ["NONE"]}))
    assert violations(graph) == {"restart-and-healthcheck": [
        'Container "demo-etcd-2" has no restart policy, so it stays down after a crash or a '
        'Docker daemon restart. Fix: set restart="unless-stopped" (or "always" / "on-failure").',
        'Container "demo-etcd-2" has no healthcheck, so Docker cannot report it unhealthy. Fix: '
        'set healthcheck={tests: ["CMD", "etcdctl", "endpoint", "health"], interval: "10s", '
        'timeout: "5s", retries: 3}.',
        'Container "demo-g0-a-vip" has restart="no", so it stays down after a crash or a Docker '
        'daemon restart. Fix: set restart="unless-stopped" (or "always" / "on-failure").',
        'Container "demo-g0-a-vip" disables its healthcheck, so Docker cannot report it '
        'unhealthy. Fix: set healthcheck={tests: ["CMD", ...], interval: "10s", timeout: "5s", '
        "retries: 3}.",
    ]}


def test_one_shot_containers_are_exempt():
    job = res(R.CONTAINER, "init-job", {"image": IMAGE_ID, "rm": True, "attach": True,
                                        "capabilities": {"drops": ["NET_RAW"]}})
    assert violations(cluster() + [job]) == {}


# --------------------------------------------------------------------------------------------
# vip-placement
# --------------------------------------------------------------------------------------------


def test_vip_in_member_range():
    graph = change(cluster(), "net", lambda r: with_label(r, "patroni-citus.vip", "172.30.0.20"))
    found = R.check_vip_placement(graph, {})
    assert [(v.message, v.urn) for v in found] == [
        ('Network "net": VIP 172.30.0.20 lies inside the member range 172.30.0.16/28, so a member '
         "can be given the VIP as its own address. Fix: choose a VIP outside 172.30.0.16/28 (but "
         "inside the subnet), or shrink patroni-citus.member-range.", urn(R.NETWORK, "net")),
        ('Container "demo-g0-a" takes the VIP 172.30.0.20 of Network "net" as its static address, '
         "so the VIP cannot move to the leader. Fix: give the container an address from "
         "172.30.0.16/28 instead.", urn(R.CONTAINER, "demo-g0-a")),
    ]


def test_vip_outside_subnet_in_ip_range_and_gateway():
    out = change(cluster(), "net", lambda r: with_label(r, "patroni-citus.vip", "10.0.0.5"))
    assert violations(out) == {"vip-placement": [
        'Network "net": VIP 10.0.0.5 lies outside the network\'s subnet 172.30.0.0/24, so members '
        "cannot reach it. Fix: choose a VIP inside the subnet and outside "
        "patroni-citus.member-range."]}
    in_range = change(cluster(), "net", lambda r: with_label(r, "patroni-citus.vip", "172.30.0.130"))
    assert violations(in_range) == {"vip-placement": [
        'Network "net": VIP 172.30.0.130 lies inside ipamConfigs ipRange 172.30.0.128/26, from '
        "which Docker hands out addresses to containers without a static one. Fix: choose a VIP "
        "outside 172.30.0.128/26."]}
    gateway = change(cluster(), "net", lambda r: with_label(r, "patroni-citus.vip", "172.30.0.1"))
    assert violations(gateway) == {"vip-placement": [
        'Network "net": VIP 172.30.0.1 is the network\'s gateway address. Fix: choose another VIP '
        "inside the subnet and outside patroni-citus.member-range."]}


def test_container_taking_the_vip():
    graph = change(cluster(), "demo-etcd-0", lambda r: with_props(
        r, networksAdvanced=[{"name": NET_NAME, "ipv4Address": "172.30.0.250"}]))
    assert violations(graph) == {"vip-placement": [
        'Container "demo-etcd-0" takes the VIP 172.30.0.250 of Network "net" as its static '
        "address, so the VIP cannot move to the leader. Fix: give the container an address from "
        "172.30.0.16/28 instead."]}


def test_vip_needs_subnet_and_member_range():
    graph = change(cluster(), "net", lambda r: with_label(
        with_props(r, ipamConfigs=None), "patroni-citus.member-range", None))
    assert violations(graph) == {"vip-placement": [
        'Network "net" has VIP 172.30.0.250 but no ipamConfigs subnet, so Docker picks the subnet '
        "and the VIP may lie outside it. Fix: set ipamConfigs=[{subnet: <CIDR containing "
        "172.30.0.250>}].",
        'Network "net" has VIP 172.30.0.250 but has no patroni-citus.member-range label, so the '
        "VIP cannot be checked against member addresses. Fix: label the network with the CIDR "
        "member addresses are taken from.",
    ]}


def test_no_vip_label_means_vip_off():
    graph = change(cluster(), "net", lambda r: with_label(r, "patroni-citus.vip", None))
    assert violations(graph) == {}


# --------------------------------------------------------------------------------------------
# published-ports
# --------------------------------------------------------------------------------------------


def test_port_published_on_all_interfaces():
    graph = change(cluster(), "demo-g0-b", lambda r: with_props(
        r, ports=[{"internal": 5432, "external": 5433}]))
    assert violations(graph) == {"published-ports": [
        'Container "demo-g0-b" publishes container port 5432/tcp on 0.0.0.0 (host port 5433); '
        'allowed host addresses: 127.0.0.1. Fix: set ip="127.0.0.1" on that port, or add the '
        "address to published-ports.allowedHostIps in the pack config."]}


def test_publish_all_ports_and_allowed_host_ips_config():
    graph = change(cluster(), "demo-g0-b", lambda r: with_props(
        r, publishAllPorts=True, ports=[{"internal": 8008, "ip": "10.1.2.3"}]))
    assert violations(graph) == {"published-ports": [
        'Container "demo-g0-b" sets publishAllPorts, which publishes every exposed port on all '
        "interfaces (0.0.0.0); allowed host addresses: 127.0.0.1. Fix: remove publishAllPorts "
        'and list the ports with ip="127.0.0.1".',
        'Container "demo-g0-b" publishes container port 8008/tcp on 10.1.2.3 (a random host '
        'port); allowed host addresses: 127.0.0.1. Fix: set ip="127.0.0.1" on that port, or add '
        "the address to published-ports.allowedHostIps in the pack config.",
    ]}
    graph = change(cluster(), "demo-g0-b", lambda r: with_props(
        r, ports=[{"internal": 8008, "ip": "10.1.2.3"}]))
    cfg = {"published-ports": {"allowedHostIps": ["127.0.0.1", "10.1.2.3"]}}
    assert violations(graph, cfg) == {}


# --------------------------------------------------------------------------------------------
# fluentd-async
# --------------------------------------------------------------------------------------------


def test_fluentd_without_async():
    graph = change(cluster(), "demo-etcd-0", lambda r: with_props(
        r, logOpts={"fluentd-address": "127.0.0.1:24224"}))
    graph = change(graph, "demo-etcd-1", lambda r: with_props(r, logOpts={"fluentd-async": "false"}))
    graph = change(graph, "demo-etcd-2", lambda r: with_props(
        r, logOpts={"fluentd-async-connect": "true"}))  # deprecated spelling, accepted
    msg = ('Container "{}" logs to fluentd without the asynchronous connection option, so Docker '
           "refuses to start it (or blocks it) while fluentd is unreachable. Fix: set "
           'logOpts={{"fluentd-async": "true"}} (fluentd-async-connect is the deprecated '
           "spelling).")
    assert violations(graph) == {"fluentd-async": [msg.format("demo-etcd-0"),
                                                   msg.format("demo-etcd-1")]}
    json_file = change(cluster(), "demo-etcd-0", lambda r: with_props(r, logDriver="json-file",
                                                                     logOpts=None))
    assert violations(json_file) == {}


# --------------------------------------------------------------------------------------------
# Unknown values (preview)
# --------------------------------------------------------------------------------------------


def unknown_cluster() -> List[Resource]:
    """The correct graph as a preview sees it: everything computed is unknown."""
    out = []
    for r in cluster():
        if r.type == R.CONTAINER:
            r = with_props(r, image=UNKNOWN, networkMode=UNKNOWN if "networkMode" in r.props else None)
            if "volumes" in r.props:
                r = with_props(r, volumes=[{"volumeName": UNKNOWN,
                                            "containerPath": r.props["volumes"][0]["containerPath"]}])
            if r.name == "demo-g1-a":
                r = with_props(r, envs=UNKNOWN, capabilities=UNKNOWN, ports=[{"internal": 5432,
                                                                                "ip": UNKNOWN}])
        if r.type == R.VOLUME:
            r = with_props(r, name=UNKNOWN)
        if r.type == R.REMOTE_IMAGE:
            r = with_props(r, name=UNKNOWN)
        out.append(r)
    return out


def test_unknown_values_skip_checks_without_crashing():
    assert violations(unknown_cluster()) == {}


def test_unknown_labels_do_not_produce_false_quorum_violations():
    graph = change(etcd_graph(3), "demo-etcd-2", lambda r: with_props(r, labels=UNKNOWN))
    assert violations(graph) == {}
    graph = change(etcd_graph(3), "demo-etcd-2",
                   lambda r: with_label(r, "patroni-citus.role", UNKNOWN))
    assert R.check_etcd_quorum(graph, {}) == []
    # but known problems elsewhere are still reported
    graph = change(etcd_graph(2), "net", lambda r: with_props(r, ipamConfigs=UNKNOWN))
    assert list(violations(graph)) == ["etcd-odd-quorum"]


# --------------------------------------------------------------------------------------------
# The real pack over the analyzer protocol: enforcement levels and pack config
# --------------------------------------------------------------------------------------------


def test_pack_metadata(pack_server):
    info = {p.name: p for p in pack_server.info.policies}
    assert list(info) == [r.name for r in R.RULES]
    levels = {name: pack_server.reconcile()[name]["level"] for name in info}
    assert levels == {
        "etcd-odd-quorum": "mandatory", "patroni-group-size": "mandatory",
        "pinned-images": "mandatory", "net-capabilities": "mandatory",
        "data-volumes": "mandatory", "no-literal-secrets": "mandatory",
        "restart-and-healthcheck": "mandatory", "vip-placement": "mandatory",
        "published-ports": "mandatory", "fluentd-async": "advisory"}
    defaults = {name: c["properties"] for name, c in pack_server.reconcile().items() if c["properties"]}
    assert defaults == {
        "patroni-group-size": {"minMembers": 2},
        "net-capabilities": {"requireNetRawDrop": True},
        "no-literal-secrets": {"secretNamePattern": R.DEFAULT_SECRET_NAME_PATTERN},
        "published-ports": {"allowedHostIps": ["127.0.0.1"]}}


def test_pack_passes_the_correct_graph(pack_server):
    assert pack_server.analyze(cluster()) == []


def test_pack_handles_preview_unknowns(pack_server):
    # no crash and no "can't run policy during preview" diagnostics
    assert pack_server.analyze(unknown_cluster()) == []


def test_pack_reports_with_default_levels(pack_server):
    graph = etcd_graph(2)
    graph = change(graph, "demo-g0-a", lambda r: with_props(
        r, capabilities={"adds": ["NET_ADMIN"], "drops": ["NET_RAW"]}))
    graph = change(graph, "demo-g1-a", lambda r: with_props(r, logOpts={}))
    found = sorted(pack_server.analyze(graph), key=lambda d: d.policy)
    expected = {name: msgs for name, msgs in violations(graph).items()}
    assert [(d.policy, d.level) for d in found] == [
        ("etcd-odd-quorum", "mandatory"), ("fluentd-async", "advisory"),
        ("net-capabilities", "mandatory")]
    for d in found:
        desc = R.RULES_BY_NAME[d.policy].description
        assert d.message == f"{desc}\n{expected[d.policy][0]}"
    assert {d.policy: d.urn for d in found} == {
        "etcd-odd-quorum": "",
        "fluentd-async": urn(R.CONTAINER, "demo-g1-a"),
        "net-capabilities": urn(R.CONTAINER, "demo-g0-a")}


def test_pack_config_changes_enforcement(pack_server):
    small = without(cluster(), "demo-g1-b", "demo-g1-b-data")
    small = change(small, "demo-g1-a", lambda r: with_props(r, logOpts={}))

    def levels(config=None):
        return sorted((d.policy, d.level) for d in pack_server.analyze(small, config))

    assert levels() == [("fluentd-async", "advisory"), ("patroni-group-size", "mandatory")]
    assert levels({"patroni-group-size": "advisory", "fluentd-async": "mandatory"}) == [
        ("fluentd-async", "mandatory"), ("patroni-group-size", "advisory")]
    assert levels({"patroni-group-size": {"enforcementLevel": "disabled"},
                   "fluentd-async": "disabled"}) == []
    assert levels({"patroni-group-size": {"minMembers": 1}}) == [("fluentd-async", "advisory")]
    assert levels({"all": "advisory"}) == [("fluentd-async", "advisory"),
                                           ("patroni-group-size", "advisory")]
    assert levels({"patroni-group-size": {"minMembers": 3}}) == [
        ("fluentd-async", "advisory"), ("patroni-group-size", "mandatory"),
        ("patroni-group-size", "mandatory")]


def test_pack_config_properties_reach_resource_policies(pack_server):
    graph = change(cluster(), "demo-g0-b", lambda r: with_props(
        r, ports=[{"internal": 8008, "ip": "0.0.0.0"}]))
    assert [d.policy for d in pack_server.analyze(graph)] == ["published-ports"]
    cfg = {"published-ports": {"allowedHostIps": ["127.0.0.1", "0.0.0.0"]}}
    assert pack_server.analyze(graph, cfg) == []


# --------------------------------------------------------------------------------------------
# Committed pack config files must not lower the etcd rule (documented as not lowerable)
# --------------------------------------------------------------------------------------------

CONFIG_DIR = Path(__file__).resolve().parents[2] / "policies" / "config"


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.json")) or [None])
def test_committed_pack_configs_keep_etcd_mandatory(path, pack_server):
    if path is None:
        pytest.skip("no committed pack config files")
    reconciled = pack_server.reconcile(json.loads(path.read_text()))
    assert reconciled["etcd-odd-quorum"]["level"] == "mandatory", path
