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

from policies import conventions as C
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


LABELS = {
    "cluster": C.LABEL_CLUSTER,
    "role": C.LABEL_ROLE,
    "group": C.LABEL_GROUP,
    "member": C.LABEL_MEMBER,
    "data_path": C.LABEL_DATA_PATH,
    "member_range": C.LABEL_MEMBER_RANGE,
    "vip": C.LABEL_VIP,
}


def labels(**kv: Any) -> List[Dict[str, Any]]:
    return [{"label": LABELS[k], "value": v} for k, v in kv.items()]


def res(type_token: str, name: str, props: Dict[str, Any], **opts: Any) -> Resource:
    return Resource(type=type_token, name=name, urn=urn(type_token, name), props=props, **opts)


def network() -> Resource:
    return res(
        R.NETWORK,
        "net",
        {
            "name": NET_NAME,
            "driver": "bridge",
            "ipamConfigs": [
                {"subnet": "172.30.0.0/24", "gateway": "172.30.0.1", "ipRange": "172.30.0.128/26"}
            ],
            "labels": labels(cluster=CLUSTER, member_range="172.30.0.16/28", vip="172.30.0.250"),
        },
    )


def data_volume(member: str, role: str, **opts: Any) -> Resource:
    return res(
        R.VOLUME,
        f"{member}-data",
        {
            "name": f"{member}-data",
            "labels": labels(cluster=CLUSTER, role=role, member=member),
        },
        **opts,
    )


def _common(role: str, member: str, ip: Optional[str]) -> Dict[str, Any]:
    props: Dict[str, Any] = {
        "name": member,
        "image": IMAGE_ID,
        "restart": "unless-stopped",
        "logDriver": "fluentd",
        "logOpts": {
            "fluentd-address": "127.0.0.1:24224",
            "fluentd-async": "true",
            "tag": "pc.{{.Name}}",
        },
    }
    if ip:
        props["networksAdvanced"] = [{"name": NET_NAME, "ipv4Address": ip, "aliases": [member]}]
    return props


def initial_cluster(n: int) -> str:
    """``--initial-cluster`` as patroni_citus/plan/render.py's etcd_command writes it, for n members."""
    return "--initial-cluster=" + ",".join(
        f"{CLUSTER}-etcd-{i}=http://172.30.0.{17 + i}:{C.ETCD_PEER_PORT}" for i in range(n)
    )


def etcd(i: int, members: int = 3) -> Resource:
    member = f"{CLUSTER}-etcd-{i}"
    props = _common(C.ROLE_ETCD, member, f"172.30.0.{17 + i}")
    props.update(
        {
            "command": [
                "etcd",
                f"--name={member}",
                f"--data-dir={C.ETCD_DATA_DIR}",
                f"--initial-advertise-peer-urls=http://172.30.0.{17 + i}:{C.ETCD_PEER_PORT}",
                initial_cluster(members),
                "--initial-cluster-state=new",
                f"--initial-cluster-token={CLUSTER}-etcd",
            ],
            "envs": ["ETCDCTL_API=3"],
            "labels": labels(
                cluster=CLUSTER, role=C.ROLE_ETCD, member=member, data_path=C.ETCD_DATA_MOUNT
            ),
            "volumes": [{"volumeName": f"{member}-data", "containerPath": C.ETCD_DATA_MOUNT}],
            "healthcheck": {
                "tests": list(C.ETCD_HEALTHCHECK),
                "interval": "10s",
                "timeout": "5s",
                "retries": 3,
            },
            "capabilities": {"drops": ["NET_RAW"]},
        }
    )
    return res(R.CONTAINER, member, props)


def patroni(group: int, suffix: str, ip_last: int) -> Resource:
    member = f"{CLUSTER}-g{group}-{suffix}"
    props = _common(C.ROLE_PATRONI, member, f"172.30.0.{ip_last}")
    props.update(
        {
            "command": ["patroni"],
            "envs": [f"PGPASSFILE={C.PGPASS_PATH}", "PATRONI_LOG_LEVEL=INFO"],
            "labels": labels(
                cluster=CLUSTER,
                role=C.ROLE_PATRONI,
                group=str(group),
                member=member,
                data_path=C.PATRONI_DATA_MOUNT,
            ),
            "volumes": [{"volumeName": f"{member}-data", "containerPath": C.PATRONI_DATA_MOUNT}],
            "uploads": [{"file": C.PATRONI_CONFIG_PATH, "content": "scope: demo\n"}],
            "healthcheck": {
                "tests": list(C.PATRONI_HEALTHCHECK),
                "interval": "10s",
                "timeout": "5s",
                "retries": 3,
            },
            "capabilities": {"drops": ["NET_RAW"]},
        }
    )
    if group == 0:
        props["ports"] = [
            {
                "internal": C.POSTGRES_PORT,
                "external": C.POSTGRES_PORT + ord(suffix) - ord("a"),
                "ip": "127.0.0.1",
                "protocol": "tcp",
            }
        ]
    return res(R.CONTAINER, member, props)


def vip_manager(of: str) -> Resource:
    member = f"{of}-vip"
    props = _common(C.ROLE_VIP_MANAGER, member, None)
    props.update(
        {
            "networkMode": f"container:{of}",
            "command": ["vip-manager", "--ip=172.30.0.250", "--netmask=24", "--interface=eth0"],
            "labels": labels(cluster=CLUSTER, role=C.ROLE_VIP_MANAGER, group="0", member=member),
            "capabilities": {"adds": ["NET_ADMIN", "NET_RAW"]},
            "restart": "always",
            "healthcheck": {"tests": list(C.vip_manager_healthcheck("eth0")), "interval": "10s"},
        }
    )
    return res(R.CONTAINER, member, props)


def cluster() -> List[Resource]:
    graph: List[Resource] = [
        network(),
        res(R.REMOTE_IMAGE, "patroni-image", {"name": IMAGE, "keepLocally": True}),
    ]
    for i in range(3):
        graph += [etcd(i), data_volume(f"{CLUSTER}-etcd-{i}", C.ROLE_ETCD, protect=True)]
    ip = 20
    for group in (0, 1):
        for suffix in ("a", "b"):
            member = f"{CLUSTER}-g{group}-{suffix}"
            vol = data_volume(member, C.ROLE_PATRONI)
            vol = with_label(vol, C.LABEL_RETAIN, "true")  # retainOnDelete mirrored
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


def violations(
    graph: List[Resource], config: Optional[Dict[str, Any]] = None
) -> Dict[str, List[str]]:
    """Non-empty findings per rule: {rule: [message, ...]}."""
    found = R.run_rules(graph, config)
    return {name: [v.message for v in vs] for name, vs in found.items() if vs}


def etcd_graph(n: int) -> List[Resource]:
    graph = [r for r in cluster() if "etcd" not in r.name]
    for i in range(n):
        graph += [etcd(i, n), data_volume(f"{CLUSTER}-etcd-{i}", C.ROLE_ETCD, protect=True)]
    return graph


# --------------------------------------------------------------------------------------------
# The correct graph
# --------------------------------------------------------------------------------------------


def test_correct_cluster_has_no_violation():
    assert violations(cluster()) == {}


def test_every_rule_is_registered_once():
    names = [r.name for r in R.RULES]
    assert len(names) == len(set(names)) == 13
    assert R.RULES_BY_NAME["etcd-odd-quorum"].enforcement_level == R.MANDATORY


# --------------------------------------------------------------------------------------------
# etcd-odd-quorum
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, members, reason_fix",
    [
        (
            1,
            "demo-etcd-0",
            "fewer than 3 members cannot keep quorum when a member is lost. Fix: run 3 (or 5) etcd "
            "members",
        ),
        (
            2,
            "demo-etcd-0, demo-etcd-1",
            "fewer than 3 members cannot keep quorum when a member is lost. Fix: run 3 (or 5) etcd "
            "members",
        ),
        (
            4,
            "demo-etcd-0, demo-etcd-1, demo-etcd-2, demo-etcd-3",
            "4 members need 3 for quorum and survive 1 failure, no more than 3 would. Fix: run 3 or 5 "
            "etcd members",
        ),
    ],
)
def test_etcd_member_count_must_be_odd_and_at_least_3(n, members, reason_fix):
    count = "1 etcd member" if n == 1 else f"{n} etcd members"
    assert violations(etcd_graph(n)) == {
        "etcd-odd-quorum": [
            f'cluster "demo" has {count} ({members}); etcd needs an odd count of at least 3: '
            f'{reason_fix} in cluster "demo" (containers labelled patroni-citus.role=etcd, '
            f"patroni-citus.cluster=demo)."
        ]
    }


@pytest.mark.parametrize("n", [3, 5])
def test_etcd_odd_counts_pass(n):
    assert violations(etcd_graph(n)) == {}


def test_cluster_without_etcd_members():
    assert violations(etcd_graph(0)) == {
        "etcd-odd-quorum": [
            'cluster "demo" has 0 etcd members (none); etcd needs an odd count of at least 3: fewer '
            "than 3 members cannot keep quorum when a member is lost. Fix: run 3 (or 5) etcd members "
            'in cluster "demo" (containers labelled patroni-citus.role=etcd, '
            "patroni-citus.cluster=demo)."
        ]
    }


def test_etcd_members_are_counted_per_cluster():
    other = [
        dataclasses.replace(
            with_label(etcd(i, 2), C.LABEL_CLUSTER, "other"),
            name=f"other-etcd-{i}",
            urn=urn(R.CONTAINER, f"other-etcd-{i}"),
        )
        for i in range(2)
    ]
    graph = cluster() + other
    found = R.check_etcd_quorum(graph, {})
    assert [v.message[:48] for v in found] == ['cluster "other" has 2 etcd members (other-etcd-0']


def test_etcd_member_without_cluster_label():
    graph = change(cluster(), "demo-etcd-2", lambda r: with_label(r, C.LABEL_CLUSTER, None))
    found = R.check_etcd_quorum(graph, {})
    assert [(v.message, v.urn) for v in found] == [
        (
            'Container "demo-etcd-2" has patroni-citus.role=etcd but no patroni-citus.cluster '
            "label, so it counts towards no cluster's etcd quorum. Fix: label it "
            "patroni-citus.cluster=<cluster name> like the other members of its cluster.",
            urn(R.CONTAINER, "demo-etcd-2"),
        ),
        (
            'cluster "demo" has 2 etcd members (demo-etcd-0, demo-etcd-1); etcd needs an odd count '
            "of at least 3: fewer than 3 members cannot keep quorum when a member is lost. Fix: run "
            '3 (or 5) etcd members in cluster "demo" (containers labelled patroni-citus.role=etcd, '
            "patroni-citus.cluster=demo).",
            None,
        ),
        # the remaining members' --initial-cluster still names the unlabelled one
        (
            'cluster "demo": --initial-cluster of demo-etcd-0, demo-etcd-1 lists 3 etcd members '
            "(demo-etcd-0, demo-etcd-1, demo-etcd-2) but 2 containers are labelled "
            "patroni-citus.role=etcd, patroni-citus.cluster=demo (demo-etcd-0, demo-etcd-1); etcd "
            "forms its quorum from --initial-cluster, not from the labels. Fix: list exactly the "
            'etcd members of cluster "demo" (an odd count of at least 3) in --initial-cluster on '
            "every member, and label each of them patroni-citus.role=etcd, "
            "patroni-citus.cluster=demo.",
            None,
        ),
    ]


def test_etcd_identified_by_labels_not_by_name_or_parent():
    # an etcd-looking container without the role label does not count; a differently named
    # container with the label does.
    graph = change(cluster(), "demo-etcd-2", lambda r: with_label(r, C.LABEL_ROLE, C.ROLE_ADMINER))
    assert "etcd-odd-quorum" in violations(graph)
    renamed = change(
        cluster(),
        "demo-etcd-2",
        lambda r: dataclasses.replace(
            r, name="kv-store", parent=urn("patroni-citus:index:Other", "x")
        ),
    )
    assert violations(renamed) == {}


def with_command(r: Resource, old: str, new: Any) -> Resource:
    """r with the command item starting with ``old`` replaced by ``new`` (an item, a list of
    items, or None to remove it)."""
    items: List[Any] = []
    for item in r.props["command"]:
        if isinstance(item, str) and item.startswith(old):
            items += [] if new is None else list(new) if isinstance(new, list) else [new]
        else:
            items.append(item)
    return with_props(r, command=items)


def test_initial_cluster_count_must_match_labels_and_agree():
    # demo-etcd-2 is started with a 2-member --initial-cluster while 3 containers are labelled
    graph = change(
        cluster(),
        "demo-etcd-2",
        lambda r: with_command(r, "--initial-cluster=", initial_cluster(2)),
    )
    full, short = initial_cluster(3).split("=", 1)[1], initial_cluster(2).split("=", 1)[1]
    assert violations(graph) == {
        "etcd-odd-quorum": [
            'cluster "demo": its etcd members disagree on --initial-cluster, from which etcd derives '
            "the cluster id, so they cannot form one cluster: demo-etcd-0, demo-etcd-1 have "
            f'"{full}"; demo-etcd-2 has "{short}". Fix: give every etcd member of cluster "demo" the '
            "same --initial-cluster, listing all of its members.",
            'cluster "demo": --initial-cluster of demo-etcd-2 lists 2 etcd members (demo-etcd-0, '
            "demo-etcd-1) but 3 containers are labelled patroni-citus.role=etcd, "
            "patroni-citus.cluster=demo (demo-etcd-0, demo-etcd-1, demo-etcd-2); etcd forms its "
            "quorum from --initial-cluster, not from the labels; moreover etcd needs an odd count of "
            "at least 3: fewer than 3 members cannot keep quorum when a member is lost. Fix: list "
            'exactly the etcd members of cluster "demo" (an odd count of at least 3) in '
            "--initial-cluster on every member, and label each of them patroni-citus.role=etcd, "
            "patroni-citus.cluster=demo.",
        ]
    }


def test_initial_cluster_naming_more_members_than_labelled():
    # every member agrees on 4 (even) or 5 (odd) members, but only 3 containers exist
    for n, quorum in (
        (
            4,
            "; moreover etcd needs an odd count of at least 3: 4 members need 3 "
            "for quorum and survive 1 failure, no more than 3 would",
        ),
        (5, ""),
    ):
        graph = cluster()
        for i in range(3):
            graph = change(
                graph,
                f"demo-etcd-{i}",
                lambda r, n=n: with_command(r, "--initial-cluster=", initial_cluster(n)),
            )
        names = ", ".join(f"demo-etcd-{i}" for i in range(n))
        assert violations(graph) == {
            "etcd-odd-quorum": [
                f'cluster "demo": --initial-cluster of demo-etcd-0, demo-etcd-1, demo-etcd-2 lists {n} '
                f"etcd members ({names}) but 3 containers are labelled patroni-citus.role=etcd, "
                "patroni-citus.cluster=demo (demo-etcd-0, demo-etcd-1, demo-etcd-2); etcd forms its "
                f"quorum from --initial-cluster, not from the labels{quorum}. Fix: list exactly the "
                'etcd members of cluster "demo" (an odd count of at least 3) in --initial-cluster on '
                "every member, and label each of them patroni-citus.role=etcd, "
                "patroni-citus.cluster=demo."
            ]
        }, n


def test_etcd_member_without_initial_cluster():
    graph = change(cluster(), "demo-etcd-1", lambda r: with_command(r, "--initial-cluster=", None))
    found = R.check_etcd_quorum(graph, {})
    assert [(v.message, v.urn) for v in found] == [
        (
            'Container "demo-etcd-1" (etcd member of cluster "demo") has no --initial-cluster flag in '
            "its command (nor ETCD_INITIAL_CLUSTER), so etcd bootstraps it as a one-member cluster of "
            "its own instead of joining the other members. Fix: pass "
            "--initial-cluster=<name>=http://<address>:2380,... listing every etcd member of cluster "
            '"demo", the same on every member.',
            urn(R.CONTAINER, "demo-etcd-1"),
        )
    ]


def test_peer_urls_that_differ_are_a_disagreement():
    other = initial_cluster(3).replace("172.30.0.19:2380", "172.30.0.99:2380")
    graph = change(cluster(), "demo-etcd-0", lambda r: with_command(r, "--initial-cluster=", other))
    assert [m[:79] for m in violations(graph)["etcd-odd-quorum"]] == [
        'cluster "demo": its etcd members disagree on --initial-cluster, from which etcd'
    ]


@pytest.mark.parametrize(
    "form",
    [
        "two tokens",
        "single dash",
        "environment",
        "shell",
        "several peer urls",
        "discovery",
        "unknown command",
        "unknown item",
    ],
)
def test_initial_cluster_forms_etcd_accepts(form):
    value = initial_cluster(3).split("=", 1)[1]

    def rewrite(r: Resource) -> Resource:
        if form == "two tokens":
            return with_command(r, "--initial-cluster=", ["--initial-cluster", value])
        if form == "single dash":
            return with_command(r, "--initial-cluster=", "-initial-cluster=" + value)
        if form == "environment":
            return with_props(
                with_command(r, "--initial-cluster=", None),
                envs=["ETCDCTL_API=3", "ETCD_INITIAL_CLUSTER=" + value],
            )
        if form == "shell":
            return with_props(r, command=["sh", "-c", "exec " + " ".join(r.props["command"])])
        if form == "several peer urls":  # one member with two peer URLs is still one member
            return with_command(
                r, "--initial-cluster=", initial_cluster(3) + ",demo-etcd-0=http://10.0.0.1:2380"
            )
        if form == "discovery":  # bootstrapped by discovery: nothing to cross-check
            return with_command(r, "--initial-cluster=", "--discovery-srv=example.com")
        if form == "unknown command":
            return with_props(r, command=UNKNOWN)
        return with_command(r, "--initial-cluster=", UNKNOWN)

    graph = change(cluster(), "demo-etcd-1", rewrite)
    if form == "several peer urls":  # every member must then say the same
        graph = [
            rewrite(r) if r.name.startswith("demo-etcd-") and r.type == R.CONTAINER else r
            for r in graph
        ]
    assert violations(graph) == {}


def test_initial_cluster_parsing():
    assert R.initial_cluster_names("a=http://1:2380,b=http://2:2380,a=http://3:2380,") == ["a", "b"]
    assert (
        R.flag_value(
            ["etcd", "--initial-cluster-state=new", "--initial-cluster", "x=y"], "initial-cluster"
        )
        == "x=y"
    )
    assert R.flag_value(["etcd", "--initial-cluster-token=t"], "initial-cluster") is None


# --------------------------------------------------------------------------------------------
# patroni-group-size
# --------------------------------------------------------------------------------------------


def test_one_member_group():
    graph = without(cluster(), "demo-g1-b", "demo-g1-b-data")
    assert violations(graph) == {
        "patroni-group-size": [
            'Patroni group 1 of cluster "demo" has 1 member (demo-g1-a); at least 2 are required so '
            "that a replica can take over when the leader fails (3 recommended for production). Fix: "
            "add members to group 1, or lower patroni-group-size.minMembers in the pack config for a "
            "non-production stack."
        ]
    }


def test_group_size_config():
    assert violations(cluster(), {"patroni-group-size": {"minMembers": 3}}) == {
        "patroni-group-size": [
            f'Patroni group {g} of cluster "demo" has 2 members (demo-g{g}-a, demo-g{g}-b); at '
            "least 3 are required so that a replica can take over when the leader fails (3 "
            f"recommended for production). Fix: add members to group {g}, or lower "
            "patroni-group-size.minMembers in the pack config for a non-production stack."
            for g in (0, 1)
        ]
    }
    graph = without(cluster(), "demo-g1-b", "demo-g1-b-data")
    assert violations(graph, {"patroni-group-size": {"minMembers": 1.0}}) == {}


def test_patroni_member_without_group_label():
    graph = change(cluster(), "demo-g1-b", lambda r: with_label(r, C.LABEL_GROUP, None))
    found = violations(graph)
    assert found["patroni-group-size"][0] == (
        'Container "demo-g1-b" has patroni-citus.role=patroni but no patroni-citus.group label, '
        "so it belongs to no Citus group. Fix: label it patroni-citus.cluster=<cluster> and "
        "patroni-citus.group=<group number, 0 for the coordinator>."
    )
    assert len(found["patroni-group-size"]) == 2  # and group 1 is now a 1-member group
    assert list(found) == ["patroni-group-size"]


# --------------------------------------------------------------------------------------------
# pinned-images
# --------------------------------------------------------------------------------------------


def test_latest_tag_on_remote_image():
    graph = change(
        cluster(),
        "patroni-image",
        lambda r: with_props(r, name="registry.example.com/patroni-citus:latest"),
    )
    assert violations(graph) == {
        "pinned-images": [
            'RemoteImage "patroni-image": image "registry.example.com/patroni-citus:latest" uses the '
            'tag "latest"; such a reference is mutable, so a re-pull or a replacement can silently '
            "change the software. Fix: set name to a fixed version tag or a digest (e.g. repo:16.4 "
            "or repo@sha256:<digest>)."
        ]
    }


def test_untagged_container_image():
    graph = change(
        cluster(), "demo-etcd-0", lambda r: with_props(r, image="registry.example.com:5000/etcd")
    )
    assert violations(graph) == {
        "pinned-images": [
            'Container "demo-etcd-0": image "registry.example.com:5000/etcd" has no tag, so Docker '
            'uses "latest"; such a reference is mutable, so a re-pull or a replacement can silently '
            "change the software. Fix: set image to a fixed version tag or a digest (e.g. repo:16.4 "
            "or repo@sha256:<digest>)."
        ]
    }


@pytest.mark.parametrize(
    "ref, problem",
    [
        ("postgres", 'has no tag, so Docker uses "latest"'),
        ("postgres:latest", 'uses the tag "latest"'),
        ("localhost:5000/pg", 'has no tag, so Docker uses "latest"'),
        ("postgres:16.4", None),
        ("localhost:5000/pg:16", None),
        ("postgres@sha256:" + "0" * 64, None),
        ("postgres:latest@sha256:" + "0" * 64, None),
        (IMAGE_ID, None),
        # digests and image ids must be complete: sha256: and 64 lowercase hex digits
        (
            "postgres@sha256:",
            'has an invalid digest "sha256:" (a digest is sha256: followed by 64 '
            "lowercase hex digits)",
        ),
        (
            "postgres@sha256:" + "0" * 63,
            f'has an invalid digest "sha256:{"0" * 63}" (a digest is '
            "sha256: followed by 64 lowercase hex digits)",
        ),
        (
            "postgres@sha256:" + "AB" * 32,
            f'has an invalid digest "sha256:{"AB" * 32}" (a digest is '
            "sha256: followed by 64 lowercase hex digits)",
        ),
        (
            "postgres@sha512:" + "0" * 64,
            f'has an invalid digest "sha512:{"0" * 64}" (a digest is '
            "sha256: followed by 64 lowercase hex digits)",
        ),
        (
            "postgres@",
            'has an invalid digest "" (a digest is sha256: followed by 64 lowercase hex digits)',
        ),
        ("@sha256:" + "0" * 64, "has a digest but no repository"),
        (
            "sha256:",
            "is not a full image id (a digest is sha256: followed by 64 lowercase hex digits)",
        ),
        (
            "sha256:abc123",
            "is not a full image id (a digest is sha256: followed by 64 lowercase hex digits)",
        ),
        # a tag must be a real one
        ("postgres:", "has an empty tag"),
        ("postgres:LATEST", 'uses the tag "LATEST"'),
        (
            "postgres:-16",
            'has an invalid tag "-16" (a tag is 1 to 128 letters, digits, "_", "." or '
            '"-", not starting with "." or "-")',
        ),
        (
            "postgres:16 4",
            'has an invalid tag "16 4" (a tag is 1 to 128 letters, digits, "_", "." or '
            '"-", not starting with "." or "-")',
        ),
        ("postgres:v16.4_1-bookworm", None),
    ],
)
def test_image_reference_parsing(ref, problem):
    assert R.image_pin_problem(ref) == problem


def test_incomplete_digest_on_container_and_remote_image():
    graph = change(
        cluster(), "demo-etcd-0", lambda r: with_props(r, image="quay.io/coreos/etcd@sha256:")
    )
    graph = change(graph, "patroni-image", lambda r: with_props(r, name="sha256:abcd"))
    assert violations(graph) == {
        "pinned-images": [
            'RemoteImage "patroni-image": image "sha256:abcd" is not a full image id (a digest is '
            "sha256: followed by 64 lowercase hex digits); such a reference pins no image (Docker "
            "refuses it, or resolves a partial id to whatever image matches). Fix: set name to a "
            "fixed version tag or a full digest (e.g. repo:16.4 or repo@sha256:<64 hex digits>).",
            'Container "demo-etcd-0": image "quay.io/coreos/etcd@sha256:" has an invalid digest '
            '"sha256:" (a digest is sha256: followed by 64 lowercase hex digits); such a reference '
            "pins no image (Docker refuses it, or resolves a partial id to whatever image matches). "
            "Fix: set image to a fixed version tag or a full digest (e.g. repo:16.4 or "
            "repo@sha256:<64 hex digits>).",
        ]
    }
    pinned = change(
        cluster(),
        "demo-etcd-0",
        lambda r: with_props(
            r, image="quay.io/coreos/etcd:v3.5.16@sha256:" + "0123456789abcdef" * 4
        ),
    )
    assert violations(pinned) == {}


# --------------------------------------------------------------------------------------------
# net-capabilities
# --------------------------------------------------------------------------------------------


def test_net_admin_on_patroni_member():
    graph = change(
        cluster(),
        "demo-g0-a",
        lambda r: with_props(r, capabilities={"adds": ["NET_ADMIN"], "drops": ["NET_RAW"]}),
    )
    assert violations(graph) == {
        "net-capabilities": [
            'Container "demo-g0-a" (role patroni) adds capability NET_ADMIN, which gives it '
            "NET_ADMIN; only vip-manager containers may hold NET_ADMIN or NET_RAW. Fix: remove "
            "NET_ADMIN from capabilities.adds."
        ]
    }


def test_cap_prefix_and_all_are_recognised():
    graph = change(
        cluster(), "demo-etcd-0", lambda r: with_props(r, capabilities={"adds": ["cap_net_raw"]})
    )
    assert violations(graph) == {
        "net-capabilities": [
            'Container "demo-etcd-0" (role etcd) adds capability NET_RAW, which gives it NET_RAW; '
            "only vip-manager containers may hold NET_ADMIN or NET_RAW. Fix: remove NET_RAW from "
            "capabilities.adds."
        ]
    }
    graph = change(
        cluster(),
        "demo-etcd-0",
        lambda r: with_props(r, capabilities={"adds": ["ALL"], "drops": ["NET_RAW"]}),
    )
    assert len(violations(graph)["net-capabilities"]) == 2


def test_net_raw_must_be_dropped_unless_configured():
    graph = change(cluster(), "demo-g1-a", lambda r: with_props(r, capabilities=None))
    assert violations(graph) == {
        "net-capabilities": [
            'Container "demo-g1-a" (role patroni) keeps NET_RAW, which Docker grants by default; '
            'only vip-manager containers may hold NET_ADMIN or NET_RAW. Fix: add "NET_RAW" to '
            "capabilities.drops."
        ]
    }
    assert violations(graph, {"net-capabilities": {"requireNetRawDrop": False}}) == {}
    dropped_all = change(
        cluster(), "demo-g1-a", lambda r: with_props(r, capabilities={"drops": ["ALL"]})
    )
    assert violations(dropped_all) == {}


def test_privileged_non_vip_container():
    graph = change(cluster(), "demo-etcd-1", lambda r: with_props(r, privileged=True))
    assert violations(graph) == {
        "net-capabilities": [
            'Container "demo-etcd-1" (role etcd) is privileged, which grants every capability '
            "including NET_ADMIN and NET_RAW; only vip-manager containers may hold them. Fix: "
            "remove privileged=True and add the specific capabilities the container needs."
        ],
        "dangerous-capabilities": [
            'Container "demo-etcd-1" (role etcd) is privileged, which grants every capability '
            "(SYS_ADMIN, SYS_MODULE, SYS_PTRACE, ...) and every host device, so a process in it can "
            "take over the host. Fix: remove privileged=True and add only the capabilities the "
            "container needs."
        ],
    }


# --------------------------------------------------------------------------------------------
# dangerous-capabilities
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cap, allows",
    [
        (
            "SYS_ADMIN",
            "mount, namespace and device administration, the usual way out of a container",
        ),
        ("SYS_PTRACE", "tracing and injecting code into other processes"),
        ("SYS_MODULE", "loading modules into the host kernel"),
        (
            "DAC_READ_SEARCH",
            "reading any file and opening host files by handle (open_by_handle_at)",
        ),
        ("SYS_RAWIO", "raw access to host devices, memory and I/O ports"),
        ("SYS_BOOT", "rebooting the host and loading a new kernel"),
        ("SYS_TIME", "setting the host clock, on which etcd leases and Patroni's ttl depend"),
        (
            "cap_sys_admin",
            "mount, namespace and device administration, the usual way out of a container",
        ),
    ],
)
def test_dangerous_capability_on_a_member(cap, allows):
    graph = change(
        cluster(),
        "demo-g1-a",
        lambda r: with_props(r, capabilities={"adds": [cap], "drops": ["NET_RAW"]}),
    )
    name = cap.upper().replace("CAP_", "")
    assert violations(graph) == {
        "dangerous-capabilities": [
            f'Container "demo-g1-a" (role patroni) adds capability {name}, which allows {allows}; no '
            f"container of the cluster may hold it. Fix: remove {name} from capabilities.adds."
        ]
    }


def test_vip_manager_keeps_net_caps_but_nothing_more():
    graph = change(
        cluster(),
        "demo-g0-a-vip",
        lambda r: with_props(
            r, capabilities={"adds": ["NET_ADMIN", "NET_RAW", "SYS_ADMIN", "ALL"]}
        ),
    )
    graph = change(graph, "demo-g0-b-vip", lambda r: with_props(r, privileged=True))
    assert violations(graph) == {
        "dangerous-capabilities": [
            'Container "demo-g0-a-vip" (role vip-manager) adds capability SYS_ADMIN, which allows '
            "mount, namespace and device administration, the usual way out of a container; no "
            "container of the cluster may hold it. Fix: remove SYS_ADMIN from capabilities.adds.",
            'Container "demo-g0-a-vip" (role vip-manager) adds capability ALL, which allows every '
            "capability, SYS_ADMIN and SYS_MODULE included; no container of the cluster may hold it. "
            "Fix: remove ALL from capabilities.adds.",
            'Container "demo-g0-b-vip" (role vip-manager) is privileged, which grants every '
            "capability (SYS_ADMIN, SYS_MODULE, SYS_PTRACE, ...) and every host device, so a process "
            "in it can take over the host. Fix: remove privileged=True and add only the capabilities "
            "the container needs.",
        ]
    }


def test_only_added_capabilities_outside_the_default_set_count():
    # Docker grants these by default (MKNOD included): adding them back changes nothing
    assert not R.DOCKER_DEFAULT_CAPABILITIES & set(R.DANGEROUS_CAPABILITIES)
    graph = change(
        cluster(),
        "demo-g1-a",
        lambda r: with_props(
            r,
            capabilities={
                "drops": ["ALL"],
                "adds": [
                    "CHOWN",
                    "MKNOD",
                    "SETUID",
                    "SETGID",
                    "NET_BIND_SERVICE",
                    "AUDIT_WRITE",
                    "IPC_LOCK",
                ],
            },
        ),
    )
    assert violations(graph) == {}
    # dropping a dangerous capability is fine; an unknown capability list is skipped
    graph = change(
        cluster(),
        "demo-g1-a",
        lambda r: with_props(r, capabilities={"drops": ["NET_RAW", "SYS_ADMIN"]}),
    )
    assert violations(graph) == {}
    graph = change(
        cluster(),
        "demo-g1-a",
        lambda r: with_props(r, capabilities={"adds": UNKNOWN, "drops": ["NET_RAW"]}),
    )
    assert violations(graph) == {}


# --------------------------------------------------------------------------------------------
# engine-socket-only-on-the-engine-proxy
# --------------------------------------------------------------------------------------------

SOCKET = "/var/run/docker.sock"


def bind(source: Any, target: Any, read_only: bool = False) -> Dict[str, Any]:
    m: Dict[str, Any] = {"type": "bind", "source": source, "target": target}
    if read_only:
        m["readOnly"] = True
    return m


def sidecar(name: str, role: str, **props: Any) -> Resource:
    """A compliant non-member container (engine proxy, cadvisor) as patroni_citus/ creates them."""
    base: Dict[str, Any] = {
        "name": f"{CLUSTER}-{name}",
        "image": IMAGE_ID,
        "restart": "unless-stopped",
        "labels": labels(cluster=CLUSTER, role=role),
        "healthcheck": {"tests": ["CMD", "true"], "interval": "10s"},
        "capabilities": {"drops": ["ALL"]},
    }
    base.update(props)
    return res(R.CONTAINER, f"{CLUSTER}-{name}", base)


def engine_proxy(*mounts: Dict[str, Any]) -> Resource:
    return sidecar(
        "engine-proxy", C.ROLE_ENGINE_PROXY, mounts=list(mounts or [bind(SOCKET, SOCKET)])
    )


def cadvisor(*mounts: Dict[str, Any]) -> Resource:
    return sidecar("cadvisor", C.ROLE_CADVISOR, mounts=list(mounts))


def socket_msg(who: str, mount: str, what: str, read_only: bool = False) -> str:
    """``who`` is ``name (role r)`` or ``name (no patroni-citus.role label)``."""
    name, _, role = who.partition(" ")
    ro = (
        " A read-only bind does not help: it does not stop connect() on a Unix socket, so every "
        "API call still goes through."
        if read_only
        else ""
    )
    return (
        f'Container "{name}" {role} bind-mounts {mount}, which {what}: whoever can connect to it '
        f"controls the engine, and through it the host (root-equivalent).{ro} Only the engine "
        f"proxy (role engine-proxy) may mount it. Fix: remove the mount and reach the engine "
        f"through the engine proxy (tcp://<proxy>:2375, read-only requests only), or bind a "
        f"narrower host path that does not contain the socket."
    )


def proxy_msg(mount: str, sockets: str = "/var/run/docker.sock, /run/docker.sock") -> str:
    return (
        f'Container "demo-engine-proxy" (role engine-proxy) bind-mounts {mount}; the engine proxy '
        f"may mount nothing from the host but the engine's API socket itself ({sockets}), so that "
        f"the socket is all a compromised proxy holds. Fix: remove that mount (bind only the "
        f"socket file, at /var/run/docker.sock), or add the path to "
        f"engine-socket-only-on-the-engine-proxy.socketPaths in the pack config if it is where "
        f"the engine's socket lives."
    )


IS_SOCKET = "is the Docker engine's API socket"
HOLDS_VAR_RUN = "holds the Docker engine's API socket (/var/run/docker.sock)"
HOLDS_BOTH = "holds the Docker engine's API socket (/var/run/docker.sock, /run/docker.sock)"


def test_the_engine_proxy_may_mount_the_socket():
    graph = cluster() + [
        engine_proxy(),
        cadvisor(
            bind("/sys", "/sys", read_only=True),
            bind("/var/lib/docker", "/rootfs/var/lib/docker", read_only=True),
        ),
    ]
    assert violations(graph) == {}
    # either spelling of the socket, read-only or not, in mounts or volumes
    for proxy in (
        engine_proxy(bind("/run/docker.sock", SOCKET, read_only=True)),
        with_props(
            engine_proxy(), mounts=None, volumes=[{"hostPath": SOCKET, "containerPath": SOCKET}]
        ),
    ):
        assert R.check_engine_socket(proxy, {}) == []


def test_the_socket_on_a_patroni_member():
    graph = change(
        cluster(), "demo-g1-a", lambda r: with_props(r, mounts=[bind(SOCKET, "/docker.sock")])
    )
    assert violations(graph) == {
        "engine-socket-only-on-the-engine-proxy": [
            socket_msg(
                "demo-g1-a (role patroni)",
                'host path "/var/run/docker.sock" at /docker.sock (mounts[0])',
                IS_SOCKET,
            )
        ]
    }


def test_read_only_directories_above_the_socket_on_cadvisor():
    # what cadvisor's documentation suggests: / as /rootfs and /var/run, read-only
    found = R.check_engine_socket(
        cadvisor(
            bind("/", "/rootfs", read_only=True),
            bind("/var/run", "/var/run", read_only=True),
            bind("/sys", "/sys", read_only=True),
            bind("/var/lib/docker", "/var/lib/docker", read_only=True),
        ),
        {},
    )
    assert [v.message for v in found] == [
        socket_msg(
            "demo-cadvisor (role cadvisor)",
            'host path "/" at /rootfs (mounts[0], read-only)',
            HOLDS_BOTH,
            read_only=True,
        ),
        socket_msg(
            "demo-cadvisor (role cadvisor)",
            'host path "/var/run" at /var/run (mounts[1], read-only)',
            HOLDS_VAR_RUN,
            read_only=True,
        ),
    ]


def test_the_socket_as_a_host_path_volume_and_other_spellings():
    vol = with_props(
        cadvisor(),
        mounts=None,
        volumes=[
            {"volumeName": "demo-cache", "containerPath": "/cache"},
            {"hostPath": SOCKET, "containerPath": SOCKET, "readOnly": True},
            {"hostPath": "//var/./run/", "containerPath": "/host-run"},
            {"hostPath": "/run", "containerPath": "/host-run2"},
            {"hostPath": "/var", "containerPath": "/host-var"},
        ],
    )
    who = "demo-cadvisor (role cadvisor)"
    assert [v.message for v in R.check_engine_socket(vol, {})] == [
        socket_msg(
            who,
            'host path "/var/run/docker.sock" at /var/run/docker.sock (volumes[1], read-only)',
            IS_SOCKET,
            read_only=True,
        ),
        socket_msg(who, 'host path "/var/run" at /host-run (volumes[2])', HOLDS_VAR_RUN),
        socket_msg(
            who,
            'host path "/run" at /host-run2 (volumes[3])',
            "holds the Docker engine's API socket (/run/docker.sock)",
        ),
        socket_msg(who, 'host path "/var" at /host-var (volumes[4])', HOLDS_VAR_RUN),
    ]
    # a container without a role label is no engine proxy either
    unlabelled = with_label(with_props(vol, volumes=vol.props["volumes"][:2]), C.LABEL_ROLE, None)
    assert [v.message for v in R.check_engine_socket(unlabelled, {})] == [
        socket_msg(
            "demo-cadvisor (no patroni-citus.role label)",
            'host path "/var/run/docker.sock" at /var/run/docker.sock (volumes[1], read-only)',
            IS_SOCKET,
            read_only=True,
        )
    ]


def test_mounts_that_do_not_reach_the_socket():
    c = cadvisor(
        bind("/var/runner", "/a"),  # a sibling sharing a prefix, not a parent
        bind("/var/run/docker.sock.d", "/b"),
        bind("/run/user", "/c"),
        {"type": "volume", "source": "run", "target": "/var/run"},  # a named volume
        {"type": "tmpfs", "target": "/run"},
        bind("relative/var/run", "/d"),
    )
    assert R.check_engine_socket(c, {}) == []


def test_unknown_values_are_not_flagged():
    for c in (
        cadvisor(bind(UNKNOWN, "/var/run")),
        cadvisor({"type": UNKNOWN, "source": "/var/run", "target": "/var/run"}),
        cadvisor(UNKNOWN),
        with_props(cadvisor(), mounts=UNKNOWN),
        with_props(cadvisor(), mounts=None, volumes=[{"hostPath": UNKNOWN, "containerPath": "/x"}]),
        with_label(cadvisor(bind("/", "/rootfs")), C.LABEL_ROLE, UNKNOWN),
        with_props(engine_proxy(bind("/", "/rootfs")), labels=UNKNOWN),
    ):
        assert R.check_engine_socket(c, {}) == [], c.props
    # a known mount is still checked next to an unknown one
    found = R.check_engine_socket(cadvisor(UNKNOWN, bind("/run", "/run")), {})
    assert len(found) == 1 and '"/run" at /run (mounts[1])' in found[0].message


def test_the_engine_proxy_mounts_nothing_else_from_the_host():
    proxy = engine_proxy(
        bind(SOCKET, SOCKET),
        bind("/", "/rootfs", read_only=True),
        bind("/etc/haproxy", "/etc/haproxy"),
        {"type": "volume", "source": "demo-cache", "target": "/cache"},  # not a host path
    )
    assert violations(cluster() + [proxy]) == {
        "engine-socket-only-on-the-engine-proxy": [
            proxy_msg('host path "/" at /rootfs (mounts[1], read-only)'),
            proxy_msg('host path "/etc/haproxy" at /etc/haproxy (mounts[2])'),
        ]
    }


def test_socket_paths_config():
    rootless = "/run/user/1000/docker.sock"
    cfg = {"socketPaths": [rootless]}
    proxy = engine_proxy(bind(rootless, SOCKET))
    user_dir = cadvisor(bind("/run/user/1000", "/host-user"))
    assert R.check_engine_socket(proxy, cfg) == []
    assert [v.message for v in R.check_engine_socket(user_dir, cfg)] == [
        socket_msg(
            "demo-cadvisor (role cadvisor)",
            'host path "/run/user/1000" at /host-user (mounts[0])',
            "holds the Docker engine's API socket (/run/user/1000/docker.sock)",
        )
    ]
    # a given list replaces the defaults; without it the rootless socket is just another path
    assert R.check_engine_socket(cadvisor(bind("/var/run", "/var/run")), cfg) == []
    assert R.check_engine_socket(user_dir, {}) == []
    assert [v.message for v in R.check_engine_socket(proxy, {})] == [
        proxy_msg('host path "/run/user/1000/docker.sock" at /var/run/docker.sock (mounts[0])')
    ]
    # and through run_rules / the schema defaults
    graph = cluster() + [proxy, user_dir]
    assert list(violations(graph)) == ["engine-socket-only-on-the-engine-proxy"]
    assert violations(graph, {"engine-socket-only-on-the-engine-proxy": cfg}) == {
        "engine-socket-only-on-the-engine-proxy": [
            socket_msg(
                "demo-cadvisor (role cadvisor)",
                'host path "/run/user/1000" at /host-user (mounts[0])',
                "holds the Docker engine's API socket (/run/user/1000/docker.sock)",
            )
        ]
    }


def test_pack_reports_the_socket_and_reads_socket_paths(pack_server):
    rootless = "/run/user/1000/docker.sock"
    graph = cluster() + [engine_proxy(), cadvisor(bind("/var/run", "/var/run", read_only=True))]
    found = pack_server.analyze(graph)
    assert [(d.policy, d.level, d.urn) for d in found] == [
        (
            "engine-socket-only-on-the-engine-proxy",
            "mandatory",
            urn(R.CONTAINER, "demo-cadvisor"),
        )
    ]
    graph = cluster() + [engine_proxy(bind(rootless, SOCKET))]
    assert [d.policy for d in pack_server.analyze(graph)] == [
        "engine-socket-only-on-the-engine-proxy"
    ]
    cfg = {"engine-socket-only-on-the-engine-proxy": {"socketPaths": [rootless]}}
    assert pack_server.analyze(graph, cfg) == []


# --------------------------------------------------------------------------------------------
# data-volumes
# --------------------------------------------------------------------------------------------


def test_missing_data_volume():
    graph = change(cluster(), "demo-g1-a", lambda r: with_props(r, volumes=None))
    assert violations(graph) == {
        "data-volumes": [
            'Container "demo-g1-a" (role patroni) mounts nothing at its data path '
            "/var/lib/postgresql/data, so its data lives in the container and is lost when the "
            "container is replaced. Fix: mount a named docker.Volume there (volumes=[{volumeName: "
            '<volume name>, containerPath: "/var/lib/postgresql/data"}]).'
        ]
    }


def test_volume_at_the_wrong_path_and_bind_and_anonymous_mounts():
    wrong = change(
        cluster(),
        "demo-etcd-0",
        lambda r: with_props(
            r, volumes=[{"volumeName": "demo-etcd-0-data", "containerPath": "/data"}]
        ),
    )
    assert [m[:70] for m in violations(wrong)["data-volumes"]] == [
        'Container "demo-etcd-0" (role etcd) mounts nothing at its data path /v'
    ]
    bind = change(
        cluster(),
        "demo-etcd-0",
        lambda r: with_props(
            r, volumes=[{"hostPath": "/srv/etcd", "containerPath": f"{C.ETCD_DATA_MOUNT}/"}]
        ),
    )
    assert violations(bind) == {
        "data-volumes": [
            'Container "demo-etcd-0" (role etcd) mounts a bind mount ("/srv/etcd") at its data path '
            "/var/lib/etcd instead of a named volume. Fix: mount a named docker.Volume there "
            '(volumes=[{volumeName: <volume name>, containerPath: "/var/lib/etcd"}]).'
        ]
    }
    anon = change(
        cluster(),
        "demo-etcd-0",
        lambda r: with_props(r, volumes=[{"containerPath": C.ETCD_DATA_MOUNT}]),
    )
    assert violations(anon)["data-volumes"][0].startswith(
        'Container "demo-etcd-0" (role etcd) mounts an anonymous volume at its data path '
        "/var/lib/etcd; anonymous volumes are removed with the container."
    )


def test_mounts_form_of_a_named_volume_is_accepted():
    graph = change(
        cluster(),
        "demo-etcd-0",
        lambda r: with_props(
            r,
            volumes=None,
            mounts=[{"type": "volume", "source": "demo-etcd-0-data", "target": C.ETCD_DATA_MOUNT}],
        ),
    )
    assert violations(graph) == {}


def test_data_volume_neither_protected_nor_retained():
    graph = change(cluster(), "demo-etcd-1-data", lambda r: dataclasses.replace(r, protect=False))
    graph = change(graph, "demo-g0-b-data", lambda r: with_label(r, C.LABEL_RETAIN, None))
    found = R.check_data_volumes(graph, {})
    assert [(v.message, v.urn) for v in found] == [
        (
            'Volume "demo-etcd-1-data" holds the data of Container "demo-etcd-1" but is neither '
            "protected nor retained, so pulumi destroy or a replacement deletes the data. Fix: "
            "create it with protect=True, or with retain_on_delete=True plus the label "
            "patroni-citus.retain=true (policies cannot see retainOnDelete).",
            urn(R.VOLUME, "demo-etcd-1-data"),
        ),
        (
            'Volume "demo-g0-b-data" holds the data of Container "demo-g0-b" but is neither '
            "protected nor retained, so pulumi destroy or a replacement deletes the data. Fix: "
            "create it with protect=True, or with retain_on_delete=True plus the label "
            "patroni-citus.retain=true (policies cannot see retainOnDelete).",
            urn(R.VOLUME, "demo-g0-b-data"),
        ),
    ]


def test_unmounted_labelled_data_volume_is_checked_too():
    orphan = data_volume("demo-old", C.ROLE_PATRONI)
    assert violations(cluster() + [orphan]) == {
        "data-volumes": [
            'Volume "demo-old-data" is a data volume (role patroni) but is neither protected nor '
            "retained, so pulumi destroy or a replacement deletes the data. Fix: create it with "
            "protect=True, or with retain_on_delete=True plus the label patroni-citus.retain=true "
            "(policies cannot see retainOnDelete)."
        ]
    }


def test_missing_data_path_label():
    graph = change(cluster(), "demo-etcd-0", lambda r: with_label(r, C.LABEL_DATA_PATH, None))
    assert violations(graph) == {
        "data-volumes": [
            'Container "demo-etcd-0" (role etcd) has no patroni-citus.data-path label, so its data '
            "mount cannot be checked. Fix: label it patroni-citus.data-path=/var/lib/etcd (the mount "
            "point of its data volume)."
        ]
    }


# --------------------------------------------------------------------------------------------
# no-literal-secrets
# --------------------------------------------------------------------------------------------

SECRET_FIX = (
    "Fix: deliver the secret in a file instead (Patroni: in /etc/patroni/patroni.yml "
    "written into the running container from a secret, as the member's config command "
    "does; other images: upload a file and set <NAME>_FILE to its "
    "path), or rename the entry if it is not a secret."
)


def test_literal_password_in_environment():
    graph = change(
        cluster(),
        "demo-g0-a",
        lambda r: with_props(
            r, envs=list(r.props["envs"]) + ["PATRONI_SUPERUSER_PASSWORD=hunter2"]
        ),
    )
    found = violations(graph)
    assert found == {
        "no-literal-secrets": [
            'Container "demo-g0-a" sets environment variable PATRONI_SUPERUSER_PASSWORD to a literal '
            "value (not shown); the environment is readable by anyone who can run docker inspect and "
            f"is stored in the Pulumi state. {SECRET_FIX}"
        ]
    }
    assert "hunter2" not in json.dumps(found)


def test_secret_like_label_and_allowed_forms():
    graph = change(cluster(), "net", lambda r: with_label(r, "acme.api-key", "abc"))
    assert violations(graph) == {
        "no-literal-secrets": [
            'Network "net" sets label "acme.api-key" to a literal value (not shown); labels are '
            "readable by anyone who can run docker inspect and are stored in the Pulumi state. "
            f"{SECRET_FIX}"
        ]
    }
    allowed = change(
        cluster(),
        "demo-etcd-0",
        lambda r: with_props(
            r,
            envs=[
                "ETCD_PASSWORD_FILE=/run/secrets/etcd",
                "PGPASSWORD=",
                "POSTGRES_PASSWORD",
                "PGPASSFILE=/x",
            ],
        ),
    )
    assert violations(allowed) == {}


def test_secret_name_pattern_config():
    graph = change(
        cluster(),
        "demo-etcd-0",
        lambda r: with_props(r, envs=["ETCD_INITIAL_CLUSTER_TOKEN=demo", "MY_PIN=1234"]),
    )
    assert list(violations(graph)["no-literal-secrets"][0].split(" to ")[:1]) == [
        'Container "demo-etcd-0" sets environment variable ETCD_INITIAL_CLUSTER_TOKEN'
    ]
    found = violations(graph, {"no-literal-secrets": {"secretNamePattern": "(?i)pin$"}})
    assert [m.split(" to ")[0] for m in found["no-literal-secrets"]] == [
        'Container "demo-etcd-0" sets environment variable MY_PIN'
    ]
    with pytest.raises(ValueError, match="not a valid regular expression"):
        violations(graph, {"no-literal-secrets": {"secretNamePattern": "("}})


ARG_FIX = (
    "Fix: deliver the secret in a file instead (Patroni: in /etc/patroni/patroni.yml "
    "written into the running container from a secret, as the member's config command "
    "does; PostgreSQL clients: a .pgpass file named by PGPASSFILE; other "
    "programs: their password-file option), or add the name to "
    "no-literal-secrets.allowedArgumentNames if it is not a secret."
)
URL_FIX = (
    "Fix: drop the password from the URL (scheme://user@host/... is fine) and deliver it "
    "in a file (PostgreSQL clients: a .pgpass file named by PGPASSFILE; Patroni: "
    "/etc/patroni/patroni.yml written into the container from a secret)."
)
ARGV_SEEN = (
    "a command line is readable by anyone who can run docker inspect or ps on the host, "
    "and is stored in the Pulumi state"
)


@pytest.mark.parametrize(
    "prop, value, shown, where_",
    [
        ("command", ["patroni", "--password=hunter2"], "--password", "command"),
        ("command", ["vip-manager", "--dcs-password", "hunter2"], "--dcs-password", "command"),
        (
            "command",
            ["sh", "-c", "PGPASSWORD=hunter2 psql -h demo-g0-a -c 'select 1'"],
            "PGPASSWORD",
            "command",
        ),
        ("command", ["patroni", "--api-key=hunter2"], "--api-key", "command"),
        ("entrypoints", ["env", "PGPASSWORD=hunter2"], "PGPASSWORD", "entrypoints"),
        (
            "entrypoints",
            ["/bin/sh", "-c", "exec etcd --client-secret 'hunter2' \"$@\""],
            "--client-secret",
            "entrypoints",
        ),
        (
            "healthcheck",
            {"tests": ["CMD", "etcdctl", "--password", "hunter2", "endpoint", "health"]},
            "--password",
            "healthcheck.tests",
        ),
    ],
)
def test_literal_password_in_command_entrypoints_and_healthcheck(prop, value, shown, where_):
    graph = change(cluster(), "demo-g0-a", lambda r: with_props(r, **{prop: value}))
    found = violations(graph)
    assert found == {
        "no-literal-secrets": [
            f'Container "demo-g0-a" passes {shown} with a literal value (not shown) in {where_}; '
            f"{ARGV_SEEN}. {ARG_FIX}"
        ]
    }
    assert "hunter2" not in json.dumps(found)


def test_argument_forms_that_carry_no_secret():
    graph = change(
        cluster(),
        "demo-g0-a",
        lambda r: with_props(
            r,
            command=[
                "patroni",
                "--password-file=/run/secrets/pw",
                "--password_file",
                "/run/secrets/pw",
                "--password=",
                "PGPASSFILE=/var/lib/postgresql/.pgpass",
                "--no-password",
                "db",
                "-p",
                "5432",
                "--password",
                "--verbose",
                "sh -c 'unbalanced quote",
            ],
        ),
    )
    assert violations(graph) == {}
    # the program's own etcd flag (--initial-cluster-token) is allowed by default ...
    assert violations(cluster()) == {}
    # ... and only by the allowedArgumentNames default
    found = violations(cluster(), {"no-literal-secrets": {"allowedArgumentNames": []}})
    assert found == {
        "no-literal-secrets": [
            f'Container "demo-etcd-{i}" passes --initial-cluster-token with a literal value (not '
            f"shown) in command; {ARGV_SEEN}. {ARG_FIX}"
            for i in range(3)
        ]
    }


def test_allowed_argument_names_config():
    graph = change(
        cluster(),
        "demo-g0-a",
        lambda r: with_props(r, command=["patroni", "--auth-token=abc", "--TOKEN_TTL", "300"]),
    )
    assert [m.split(" with ")[0] for m in violations(graph)["no-literal-secrets"]] == [
        'Container "demo-g0-a" passes --auth-token',
        'Container "demo-g0-a" passes --TOKEN_TTL',
    ]
    # the list replaces the default, so it keeps etcd's initial-cluster-token
    cfg = {
        "no-literal-secrets": {
            "allowedArgumentNames": ["initial-cluster-token", "auth-token", "token-ttl"]
        }
    }
    assert violations(graph, cfg) == {}


@pytest.mark.parametrize(
    "props, where_, seen",
    [
        (
            {"envs": ["DATABASE_URL=postgres://app:hunter2@demo-g0-a:5432/demo"]},
            "sets environment variable DATABASE_URL to a postgres:// URL",
            "the environment is readable by anyone who can run docker inspect and is stored in the "
            "Pulumi state",
        ),
        (
            {
                "envs": [
                    "PATRONI_DSN=postgresql://postgres:hunter2@127.0.0.1/postgres?sslmode=disable"
                ]
            },
            "sets environment variable PATRONI_DSN to a postgresql:// URL",
            "the environment is readable by anyone who can run docker inspect and is stored in the "
            "Pulumi state",
        ),
        (
            {"command": ["patroni", "--dcs-url=http://root:hunter2@172.30.0.17:2379"]},
            "has a http:// URL with a password in it (not shown) in command",
            ARGV_SEEN,
        ),
        (
            {"command": ["sh", "-c", "psql postgres://app:hunter2@demo-g0-a/demo -c 'select 1'"]},
            "has a postgres:// URL with a password in it (not shown) in command",
            ARGV_SEEN,
        ),
        (
            {"entrypoints": ["/x", "redis://:hunter2@cache:6379/0"]},
            "has a redis:// URL with a password in it (not shown) in entrypoints",
            ARGV_SEEN,
        ),
        (
            {
                "healthcheck": {
                    "tests": ["CMD", "curl", "-f", "https://u:hunter2@demo-g0-a:8008/health"]
                }
            },
            "has a https:// URL with a password in it (not shown) in healthcheck.tests",
            ARGV_SEEN,
        ),
    ],
)
def test_connection_url_with_credentials(props, where_, seen):
    graph = change(cluster(), "demo-g0-a", lambda r: with_props(r, **props))
    found = violations(graph)
    shown = "" if where_.startswith("has ") else " with a password in it (not shown)"
    assert found == {
        "no-literal-secrets": [f'Container "demo-g0-a" {where_}{shown}; {seen}. {URL_FIX}']
    }
    assert "hunter2" not in json.dumps(found)


def test_connection_url_in_a_label_and_urls_without_password():
    graph = change(
        cluster(),
        "net",
        lambda r: with_label(r, "acme.backup-target", "s3://AKIA:hunter2@bucket/x"),
    )
    assert violations(graph) == {
        "no-literal-secrets": [
            'Network "net" sets label "acme.backup-target" to a s3:// URL with a password in it (not '
            "shown); labels are readable by anyone who can run docker inspect and are stored in the "
            f"Pulumi state. {URL_FIX}"
        ]
    }
    fine = change(
        cluster(),
        "demo-g0-a",
        lambda r: with_props(
            r,
            envs=[
                "DATABASE_URL=postgres://app@demo-g0-a:5432/demo",
                "EMPTY=postgres://app:@h/db",
                "PEERS=http://172.30.0.17:2380,http://172.30.0.18:2380",
            ],
            command=["patroni", "--url=http://demo-g0-a:8008/a@b", "user:pw@host"],
        ),
    )
    assert violations(fine) == {}
    # a password-like name with a URL value is reported once, by its name
    both = change(
        cluster(),
        "demo-g0-a",
        lambda r: with_props(
            r,
            envs=["DB_PASSWORD=postgres://app:hunter2@h/db"],
            command=["patroni", "--password=postgres://app:hunter2@h/db"],
        ),
    )
    assert [m.split(" (not shown)")[0] for m in violations(both)["no-literal-secrets"]] == [
        'Container "demo-g0-a" sets environment variable DB_PASSWORD to a literal value',
        'Container "demo-g0-a" passes --password with a literal value',
    ]
    assert R.credential_url_scheme("x=postgresql+psycopg://u:p@h/db") == "postgresql+psycopg"


# --------------------------------------------------------------------------------------------
# restart-and-healthcheck
# --------------------------------------------------------------------------------------------


def test_restart_policy_and_healthcheck_missing():
    graph = change(
        cluster(), "demo-etcd-2", lambda r: with_props(r, restart=None, healthcheck=None)
    )
    graph = change(
        graph,
        "demo-g0-a-vip",
        lambda r: with_props(r, restart="no", healthcheck={"tests": ["NONE"]}),
    )
    assert violations(graph) == {
        "restart-and-healthcheck": [
            'Container "demo-etcd-2" has no restart policy, so it stays down after a crash or a '
            'Docker daemon restart. Fix: set restart="unless-stopped" (or "always" / "on-failure").',
            'Container "demo-etcd-2" has no healthcheck, so Docker cannot report it unhealthy. Fix: '
            f'set healthcheck={{tests: {json.dumps(list(C.ETCD_HEALTHCHECK))}, interval: "10s", '
            'timeout: "5s", retries: 3}.',
            'Container "demo-g0-a-vip" has restart="no", so it stays down after a crash or a Docker '
            'daemon restart. Fix: set restart="unless-stopped" (or "always" / "on-failure").',
            'Container "demo-g0-a-vip" disables its healthcheck, so Docker cannot report it '
            'unhealthy. Fix: set healthcheck={tests: ["CMD", ...], interval: "10s", timeout: "5s", '
            "retries: 3}.",
        ]
    }


def test_one_shot_containers_are_exempt():
    job = res(
        R.CONTAINER,
        "init-job",
        {"image": IMAGE_ID, "rm": True, "attach": True, "capabilities": {"drops": ["NET_RAW"]}},
    )
    assert violations(cluster() + [job]) == {}


# --------------------------------------------------------------------------------------------
# vip-placement
# --------------------------------------------------------------------------------------------


def test_vip_in_member_range():
    graph = change(cluster(), "net", lambda r: with_label(r, C.LABEL_VIP, "172.30.0.20"))
    found = R.check_vip_placement(graph, {})
    assert [(v.message, v.urn) for v in found] == [
        (
            'Network "net": VIP 172.30.0.20 lies inside the member range 172.30.0.16/28, so a member '
            "can be given the VIP as its own address. Fix: choose a VIP outside 172.30.0.16/28 (but "
            "inside the subnet), or shrink patroni-citus.member-range.",
            urn(R.NETWORK, "net"),
        ),
        (
            'Container "demo-g0-a" takes the VIP 172.30.0.20 of Network "net" as its static address, '
            "so the VIP cannot move to the leader. Fix: give the container an address from "
            "172.30.0.16/28 instead.",
            urn(R.CONTAINER, "demo-g0-a"),
        ),
    ]


def test_vip_outside_subnet_in_ip_range_and_gateway():
    out = change(cluster(), "net", lambda r: with_label(r, C.LABEL_VIP, "10.0.0.5"))
    assert violations(out) == {
        "vip-placement": [
            'Network "net": VIP 10.0.0.5 lies outside the network\'s subnet 172.30.0.0/24, so members '
            "cannot reach it. Fix: choose a VIP inside the subnet and outside "
            "patroni-citus.member-range."
        ]
    }
    in_range = change(cluster(), "net", lambda r: with_label(r, C.LABEL_VIP, "172.30.0.130"))
    assert violations(in_range) == {
        "vip-placement": [
            'Network "net": VIP 172.30.0.130 lies inside ipamConfigs ipRange 172.30.0.128/26, from '
            "which Docker hands out addresses to containers without a static one. Fix: choose a VIP "
            "outside 172.30.0.128/26."
        ]
    }
    gateway = change(cluster(), "net", lambda r: with_label(r, C.LABEL_VIP, "172.30.0.1"))
    assert violations(gateway) == {
        "vip-placement": [
            'Network "net": VIP 172.30.0.1 is the network\'s gateway address. Fix: choose another VIP '
            "inside the subnet and outside patroni-citus.member-range."
        ]
    }


def test_container_taking_the_vip():
    graph = change(
        cluster(),
        "demo-etcd-0",
        lambda r: with_props(
            r, networksAdvanced=[{"name": NET_NAME, "ipv4Address": "172.30.0.250"}]
        ),
    )
    assert violations(graph) == {
        "vip-placement": [
            'Container "demo-etcd-0" takes the VIP 172.30.0.250 of Network "net" as its static '
            "address, so the VIP cannot move to the leader. Fix: give the container an address from "
            "172.30.0.16/28 instead."
        ]
    }


def test_vip_needs_subnet_and_member_range():
    graph = change(
        cluster(),
        "net",
        lambda r: with_label(with_props(r, ipamConfigs=None), C.LABEL_MEMBER_RANGE, None),
    )
    assert violations(graph) == {
        "vip-placement": [
            'Network "net" has VIP 172.30.0.250 but no ipamConfigs subnet, so Docker picks the subnet '
            "and the VIP may lie outside it. Fix: set ipamConfigs=[{subnet: <CIDR containing "
            "172.30.0.250>}].",
            'Network "net" has VIP 172.30.0.250 but has no patroni-citus.member-range label, so the '
            "VIP cannot be checked against member addresses. Fix: label the network with the CIDR "
            "member addresses are taken from.",
        ]
    }


def test_no_vip_label_means_vip_off():
    graph = change(cluster(), "net", lambda r: with_label(r, C.LABEL_VIP, None))
    assert violations(graph) == {}


# --------------------------------------------------------------------------------------------
# published-ports
# --------------------------------------------------------------------------------------------


def test_port_published_on_all_interfaces():
    graph = change(
        cluster(),
        "demo-g0-b",
        lambda r: with_props(r, ports=[{"internal": 5432, "external": 5433}]),
    )
    assert violations(graph) == {
        "published-ports": [
            'Container "demo-g0-b" publishes container port 5432/tcp on 0.0.0.0 (host port 5433); '
            'allowed host addresses: 127.0.0.1. Fix: set ip="127.0.0.1" on that port, or add the '
            "address to published-ports.allowedHostIps in the pack config."
        ]
    }


def test_publish_all_ports_and_allowed_host_ips_config():
    graph = change(
        cluster(),
        "demo-g0-b",
        lambda r: with_props(r, publishAllPorts=True, ports=[{"internal": 8008, "ip": "10.1.2.3"}]),
    )
    assert violations(graph) == {
        "published-ports": [
            'Container "demo-g0-b" sets publishAllPorts, which publishes every exposed port on all '
            "interfaces (0.0.0.0); allowed host addresses: 127.0.0.1. Fix: remove publishAllPorts "
            'and list the ports with ip="127.0.0.1".',
            'Container "demo-g0-b" publishes container port 8008/tcp on 10.1.2.3 (a random host '
            'port); allowed host addresses: 127.0.0.1. Fix: set ip="127.0.0.1" on that port, or add '
            "the address to published-ports.allowedHostIps in the pack config.",
        ]
    }
    graph = change(
        cluster(),
        "demo-g0-b",
        lambda r: with_props(r, ports=[{"internal": 8008, "ip": "10.1.2.3"}]),
    )
    cfg = {"published-ports": {"allowedHostIps": ["127.0.0.1", "10.1.2.3"]}}
    assert violations(graph, cfg) == {}


HOST_NET = (
    ' uses networkMode "host", so it shares the host\'s network stack: every port it '
    "listens on is open on every host interface whatever its ports say, and it reaches "
    "services bound to the host's loopback. Fix: attach it to the cluster's bridge "
    'network (networksAdvanced) and publish only the ports it needs with ip="127.0.0.1" '
    '(a sidecar may join a member\'s namespace with networkMode="container:<member>").'
)


@pytest.mark.parametrize("name", ["demo-etcd-0", "demo-g1-a", "demo-g0-a-vip"])
def test_host_network_mode_is_rejected(name):
    graph = change(
        cluster(), name, lambda r: with_props(r, networkMode="host", networksAdvanced=None)
    )
    assert violations(graph) == {"published-ports": [f'Container "{name}"{HOST_NET}']}
    # allowing every address for published ports does not allow host networking
    cfg = {"published-ports": {"allowedHostIps": ["127.0.0.1", "0.0.0.0"]}}
    assert violations(graph, cfg) == {"published-ports": [f'Container "{name}"{HOST_NET}']}


@pytest.mark.parametrize("mode", ["container:demo-g0-a", "bridge", "none", "demo-net", UNKNOWN])
def test_other_network_modes_stay_allowed(mode):
    # vip-manager sidecars join their member's namespace (container:<member>), as in cluster()
    graph = change(cluster(), "demo-g1-a", lambda r: with_props(r, networkMode=mode))
    assert violations(graph) == {}


# --------------------------------------------------------------------------------------------
# fluentd-async
# --------------------------------------------------------------------------------------------


def test_fluentd_without_async():
    graph = change(
        cluster(),
        "demo-etcd-0",
        lambda r: with_props(r, logOpts={"fluentd-address": "127.0.0.1:24224"}),
    )
    graph = change(
        graph, "demo-etcd-1", lambda r: with_props(r, logOpts={"fluentd-async": "false"})
    )
    graph = change(
        graph, "demo-etcd-2", lambda r: with_props(r, logOpts={"fluentd-async-connect": "true"})
    )  # deprecated spelling, accepted
    msg = (
        'Container "{}" logs to fluentd without the asynchronous connection option, so Docker '
        "refuses to start it (or blocks it) while fluentd is unreachable. Fix: set "
        'logOpts={{"fluentd-async": "true"}} (fluentd-async-connect is the deprecated '
        "spelling)."
    )
    assert violations(graph) == {
        "fluentd-async": [msg.format("demo-etcd-0"), msg.format("demo-etcd-1")]
    }
    json_file = change(
        cluster(), "demo-etcd-0", lambda r: with_props(r, logDriver="json-file", logOpts=None)
    )
    assert violations(json_file) == {}


# --------------------------------------------------------------------------------------------
# Unknown values (preview)
# --------------------------------------------------------------------------------------------


def unknown_cluster() -> List[Resource]:
    """The correct graph as a preview sees it: everything computed is unknown."""
    out = []
    for r in cluster():
        if r.type == R.CONTAINER:
            r = with_props(
                r, image=UNKNOWN, networkMode=UNKNOWN if "networkMode" in r.props else None
            )
            if "volumes" in r.props:
                r = with_props(
                    r,
                    volumes=[
                        {
                            "volumeName": UNKNOWN,
                            "containerPath": r.props["volumes"][0]["containerPath"],
                        }
                    ],
                )
            if r.name == "demo-g1-a":
                r = with_props(
                    r, envs=UNKNOWN, capabilities=UNKNOWN, ports=[{"internal": 5432, "ip": UNKNOWN}]
                )
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
    graph = change(etcd_graph(3), "demo-etcd-2", lambda r: with_label(r, C.LABEL_ROLE, UNKNOWN))
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
        "etcd-odd-quorum": "mandatory",
        "patroni-group-size": "mandatory",
        "spread-across-hosts": "mandatory",
        "pinned-images": "mandatory",
        "net-capabilities": "mandatory",
        "dangerous-capabilities": "mandatory",
        "engine-socket-only-on-the-engine-proxy": "mandatory",
        "data-volumes": "mandatory",
        "no-literal-secrets": "mandatory",
        "restart-and-healthcheck": "mandatory",
        "vip-placement": "mandatory",
        "published-ports": "mandatory",
        "fluentd-async": "advisory",
    }
    defaults = {
        name: c["properties"] for name, c in pack_server.reconcile().items() if c["properties"]
    }
    assert defaults == {
        "patroni-group-size": {"minMembers": 2},
        "net-capabilities": {"requireNetRawDrop": True},
        "engine-socket-only-on-the-engine-proxy": {
            "socketPaths": ["/var/run/docker.sock", "/run/docker.sock"]
        },
        "no-literal-secrets": {
            "secretNamePattern": R.DEFAULT_SECRET_NAME_PATTERN,
            "allowedArgumentNames": ["initial-cluster-token"],
        },
        "published-ports": {"allowedHostIps": ["127.0.0.1"]},
    }


def test_pack_passes_the_correct_graph(pack_server):
    assert pack_server.analyze(cluster()) == []


def test_pack_handles_preview_unknowns(pack_server):
    # no crash and no "can't run policy during preview" diagnostics
    assert pack_server.analyze(unknown_cluster()) == []


def test_pack_reports_with_default_levels(pack_server):
    graph = etcd_graph(2)
    graph = change(
        graph,
        "demo-g0-a",
        lambda r: with_props(r, capabilities={"adds": ["NET_ADMIN"], "drops": ["NET_RAW"]}),
    )
    graph = change(graph, "demo-g1-a", lambda r: with_props(r, logOpts={}))
    found = sorted(pack_server.analyze(graph), key=lambda d: d.policy)
    expected = {name: msgs for name, msgs in violations(graph).items()}
    assert [(d.policy, d.level) for d in found] == [
        ("etcd-odd-quorum", "mandatory"),
        ("fluentd-async", "advisory"),
        ("net-capabilities", "mandatory"),
    ]
    for d in found:
        desc = R.RULES_BY_NAME[d.policy].description
        assert d.message == f"{desc}\n{expected[d.policy][0]}"
    assert {d.policy: d.urn for d in found} == {
        "etcd-odd-quorum": "",
        "fluentd-async": urn(R.CONTAINER, "demo-g1-a"),
        "net-capabilities": urn(R.CONTAINER, "demo-g0-a"),
    }


def test_pack_reports_new_checks_as_mandatory(pack_server):
    graph = change(
        cluster(),
        "demo-g0-a",
        lambda r: with_props(r, networkMode="host", command=["patroni", "--password=hunter2"]),
    )
    graph = change(
        graph,
        "demo-g0-a-vip",
        lambda r: with_props(r, capabilities={"adds": ["NET_ADMIN", "NET_RAW", "SYS_ADMIN"]}),
    )
    graph = change(graph, "demo-etcd-0", lambda r: with_props(r, image="etcd@sha256:"))
    graph = change(
        graph, "demo-etcd-2", lambda r: with_command(r, "--initial-cluster=", initial_cluster(5))
    )
    found = sorted((d.policy, d.level, d.urn) for d in pack_server.analyze(graph))
    assert found == [
        ("dangerous-capabilities", "mandatory", urn(R.CONTAINER, "demo-g0-a-vip")),
        ("etcd-odd-quorum", "mandatory", ""),
        ("etcd-odd-quorum", "mandatory", ""),
        ("no-literal-secrets", "mandatory", urn(R.CONTAINER, "demo-g0-a")),
        ("pinned-images", "mandatory", urn(R.CONTAINER, "demo-etcd-0")),
        ("published-ports", "mandatory", urn(R.CONTAINER, "demo-g0-a")),
    ]


def test_pack_config_changes_enforcement(pack_server):
    small = without(cluster(), "demo-g1-b", "demo-g1-b-data")
    small = change(small, "demo-g1-a", lambda r: with_props(r, logOpts={}))

    def levels(config=None):
        return sorted((d.policy, d.level) for d in pack_server.analyze(small, config))

    assert levels() == [("fluentd-async", "advisory"), ("patroni-group-size", "mandatory")]
    assert levels({"patroni-group-size": "advisory", "fluentd-async": "mandatory"}) == [
        ("fluentd-async", "mandatory"),
        ("patroni-group-size", "advisory"),
    ]
    assert (
        levels(
            {"patroni-group-size": {"enforcementLevel": "disabled"}, "fluentd-async": "disabled"}
        )
        == []
    )
    assert levels({"patroni-group-size": {"minMembers": 1}}) == [("fluentd-async", "advisory")]
    assert levels({"all": "advisory"}) == [
        ("fluentd-async", "advisory"),
        ("patroni-group-size", "advisory"),
    ]
    assert levels({"patroni-group-size": {"minMembers": 3}}) == [
        ("fluentd-async", "advisory"),
        ("patroni-group-size", "mandatory"),
        ("patroni-group-size", "mandatory"),
    ]


def test_pack_config_properties_reach_resource_policies(pack_server):
    graph = change(
        cluster(), "demo-g0-b", lambda r: with_props(r, ports=[{"internal": 8008, "ip": "0.0.0.0"}])
    )
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
