"""Every settings rule, valid and invalid; messages must name the key, value and rule."""

import ipaddress

import pytest

from patroni_citus.config import SettingsError, load_settings


def base(**sections):
    config = {
        "cluster": {"scope": "citus", "namespace": "/service"},
        "network": {"subnet": "172.30.0.0/16", "memberRange": "172.30.1.0/24"},
        "citus": {
            "enabled": True,
            "database": "test",
            "coordinatorMembers": 2,
            "workerGroups": 2,
            "membersPerGroup": 2,
        },
        "vip": {"enabled": True, "address": "172.30.254.254", "netmask": 16},
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value}
    return config


def plain(**sections):
    """A stack with Citus off: the Citus group keys do not apply there."""
    config = base(**sections)
    config["citus"] = {"enabled": False, **sections.get("citus", {})}
    return config


def problems(config, secrets=None, plaintext=frozenset(), secret_sections=frozenset()):
    with pytest.raises(SettingsError) as info:
        load_settings(config, secrets or {}, plaintext, secret_sections)
    return info.value.problems


def only_problem(config, **kwargs):
    found = problems(config, **kwargs)
    assert len(found) == 1, found
    return found[0]


def test_defaults_give_the_seed_topology():
    s = load_settings(base(), {})
    assert [g.role for g in s.groups] == ["coordinator", "worker", "worker"]
    assert [[m.name for m in g.members] for g in s.groups] == [
        ["citus-coord-1", "citus-coord-2"],
        ["citus-work1-1", "citus-work1-2"],
        ["citus-work2-1", "citus-work2-2"],
    ]
    assert [str(m.address) for m in s.etcd_members] == ["172.30.1.1", "172.30.1.2", "172.30.1.3"]
    assert [str(m.address) for m in s.groups[2].members] == ["172.30.1.49", "172.30.1.50"]
    assert s.leader_key(0) == "/service/citus/0/leader"
    assert s.cluster.namespace == "/service/"
    assert s.etcd.api == "v3" and s.image.flavour == "upstream" and s.image.postgres_major == 18
    assert s.image.citus_version == "14.0" and s.image.patroni_version is None
    assert s.retain_volumes is True


def test_addresses_are_stable_when_groups_grow():
    small = load_settings(base(), {})
    grown = load_settings(base(citus={"workerGroups": 4, "membersPerGroup": 3}), {})
    for before, after in zip(small.groups, grown.groups):
        assert [m.address for m in before.members] == [m.address for m in after.members[:2]]


def test_plain_patroni_cluster_when_citus_is_off():
    s = load_settings(plain(patroni={"members": 3}), {})
    assert [m.name for m in s.groups[0].members] == ["citus-pg-1", "citus-pg-2", "citus-pg-3"]
    assert s.leader_key(0) == "/service/citus/leader"


def test_strings_from_pulumi_config_set_are_coerced():
    s = load_settings(base(etcd={"members": "5"}, patroni={"synchronousMode": "false"}), {})
    assert s.etcd.members == 5 and s.patroni.synchronous_mode is False


@pytest.mark.parametrize("members", [2, 4, 1, 17])
def test_etcd_count_must_be_odd_and_at_least_three(members):
    message = only_problem(base(etcd={"members": members}))
    assert message.startswith(f"patroni-citus:etcd.members = {members}:")
    assert "odd" in message


def test_etcd_api_must_be_known():
    assert "patroni-citus:etcd.apiVersion = 'v4': must be one of v3, v2" in problems(
        base(etcd={"apiVersion": "v4"})
    )


def test_vip_manager_1_needs_the_etcd_v2_api():
    message = only_problem(base(image={"flavour": "debian", "localDebs": True}))
    assert message.startswith("patroni-citus:etcd.apiVersion = 'v3'")
    assert "vip-manager 1.0.2 speaks only the etcd v2 API" in message
    load_settings(
        base(image={"flavour": "debian", "localDebs": True}, etcd={"apiVersion": "v2"}), {}
    )


def test_debian_flavour_has_no_citus_without_local_debs():
    message = only_problem(base(image={"flavour": "debian"}, etcd={"apiVersion": "v2"}))
    assert message.startswith("patroni-citus:citus.enabled = True")
    assert "image.localDebs" in message


def test_debian_flavour_pins_postgres_and_vip_manager():
    found = problems(
        base(
            image={
                "flavour": "debian",
                "localDebs": True,
                "postgresMajor": 16,
                "vipManagerVersion": "2.5.0",
            },
            etcd={"apiVersion": "v2"},
        )
    )
    assert any(
        p.startswith(
            "patroni-citus:image.postgresMajor = 16: the debian flavour has only PostgreSQL 15"
        )
        for p in found
    )
    assert any(p.startswith("patroni-citus:image.vipManagerVersion = '2.5.0'") for p in found)


@pytest.mark.parametrize(
    "image, key, rule",
    [
        ({"postgresMajor": 14}, "postgresMajor", "must be one of 15, 16, 17, 18"),
        ({"postgresMajor": 19}, "postgresMajor", "must be one of 15, 16, 17, 18"),
        ({"citusVersion": "11.3"}, "citusVersion", "must be a Citus package line: 12.1, 13.0"),
        (
            {"citusVersion": "12.1"},
            "citusVersion",
            "Citus 12.1 builds against PostgreSQL 14, 15, 16, not image.postgresMajor 18; "
            "packagecloud has no postgresql-18-citus-12.1",
        ),
        (
            {"postgresMajor": 15, "citusVersion": "14.0"},
            "citusVersion",
            "Citus 14.0 builds against PostgreSQL 16, 17, 18, not image.postgresMajor 15",
        ),
        (
            {"patroniVersion": "4.0.6"},
            "patroniVersion",
            "PostgreSQL 18 with this program needs Patroni 4.0.7 or newer",
        ),
        (
            {"postgresMajor": 17, "citusVersion": "13.2", "patroniVersion": "3.3"},
            "patroniVersion",
            "PostgreSQL 17 with this program needs Patroni 4.0.0 or newer",
        ),
        ({"patroniVersion": "latest"}, "patroniVersion", "must be a version line (4.1), a release"),
        (
            {"vipManagerVersion": "1.0.2"},
            "vipManagerVersion",
            "vip-manager 1.x is Debian's: use image.flavour debian",
        ),
        (
            {"citusPackageVersion": "13.2.1"},
            "citusPackageVersion",
            "must be a release of the Citus line image.citusVersion (14.0)",
        ),
        ({"citusPackageVersion": "14"}, "citusPackageVersion", "the line is image.citusVersion"),
        ({"localDebs": True}, "localDebs", "applies to the debian flavour only"),
    ],
)
def test_upstream_versions_must_have_packages(image, key, rule):
    message = only_problem(base(image=image))
    assert message.startswith(f"patroni-citus:image.{key} = ") and rule in message, message


@pytest.mark.parametrize(
    "image",
    [
        {},
        {"postgresMajor": 16, "citusVersion": "12.1"},
        {"postgresMajor": 17, "citusVersion": "13.0"},
        {"patroniVersion": "4"},
        {"patroniVersion": "4.0"},
        {"patroniVersion": "4.1.4-1.pgdg120+1"},
        {"vipManagerVersion": "5"},
        {"vipManagerVersion": "5.0.0"},
        {"citusPackageVersion": "14.0.1"},
        {"citusPackageVersion": "14.0.1.citus-1"},
    ],
)
def test_upstream_versions_with_packages_pass(image):
    load_settings(base(image=image), {})


def test_citus_line_is_not_checked_when_citus_is_off():
    load_settings(plain(image={"postgresMajor": 15, "citusVersion": "14.0"}), {})


def test_upstream_vip_manager_needs_the_etcd_v3_api():
    message = only_problem(base(etcd={"apiVersion": "v2"}))
    assert message.startswith(
        "patroni-citus:etcd.apiVersion = 'v2': the upstream flavour's "
        "vip-manager (2.0 and newer) reads the leader key through the "
        "etcd v3 API only"
    )


@pytest.mark.parametrize(
    "key, value",
    [("citusVersion", "14.0"), ("patroniVersion", "4.1"), ("citusPackageVersion", "14.0.1")],
)
def test_upstream_only_keys_are_refused_on_the_debian_flavour(key, value):
    message = only_problem(
        base(image={"flavour": "debian", "localDebs": True, key: value}, etcd={"apiVersion": "v2"})
    )
    assert message.startswith(
        f"patroni-citus:image.{key} = {value!r}: does not apply to the debian flavour"
    )


@pytest.mark.parametrize(
    "address, rule",
    [
        ("10.0.0.5", "must lie inside network.subnet 172.30.0.0/16"),
        ("172.30.1.200", "must lie outside network.memberRange 172.30.1.0/24"),
        ("172.30.0.1", "must not be the network, broadcast or gateway address"),
        ("172.30.255.255", "must not be the network, broadcast or gateway address"),
        ("not-an-ip", "must be an IPv4 address"),
    ],
)
def test_vip_address_rules(address, rule):
    found = problems(base(vip={"address": address}))
    assert any(p.startswith("patroni-citus:vip.address") and rule in p for p in found), found


def test_vip_address_required_when_enabled():
    assert only_problem(base(vip={"address": None})).startswith(
        "patroni-citus:vip.address = None: is required"
    )


def test_vip_netmask_must_match_the_subnet():
    assert only_problem(base(vip={"netmask": 24})) == (
        "patroni-citus:vip.netmask = 24: must equal the prefix length of network.subnet (16)"
    )


def test_vip_group_must_exist():
    assert only_problem(base(vip={"group": 3})).startswith(
        "patroni-citus:vip.group = 3: no such group"
    )


def test_member_range_must_lie_in_the_subnet_and_avoid_the_gateway():
    assert any(
        "patroni-citus:network.memberRange = '10.1.0.0/24': must lie inside" in p
        for p in problems(base(network={"memberRange": "10.1.0.0/24"}))
    )
    message = only_problem(base(network={"memberRange": "172.30.0.0/24"}))
    assert message.startswith(
        "patroni-citus:network.memberRange = '172.30.0.0/24': must not "
        "contain the gateway 172.30.0.1"
    )


def test_member_range_must_hold_every_group():
    message = only_problem(base(network={"memberRange": "172.30.1.0/27"}))
    assert message.startswith("patroni-citus:network.memberRange = '172.30.1.0/27': too small")


def test_duplicate_addresses_are_rejected():
    # A gateway placed inside the member range at an etcd slot collides with that member.
    found = problems(base(network={"gateway": "172.30.1.2"}))
    assert any("must not contain the gateway 172.30.1.2" in p for p in found)


def test_bad_cidr_is_named():
    assert any(
        p.startswith("patroni-citus:network.subnet = '172.30.0.1/16': must be an IPv4 network")
        for p in problems(base(network={"subnet": "172.30.0.1/16"}))
    )


@pytest.mark.parametrize(
    "timing, key",
    [
        ({"ttl": 19, "loopWait": 5, "retryTimeout": 5}, "ttl"),
        ({"loopWait": 0}, "loopWait"),
        ({"retryTimeout": 2}, "retryTimeout"),
        ({"ttl": 25, "loopWait": 10, "retryTimeout": 10}, "ttl"),
    ],
)
def test_patroni_timing_rules(timing, key):
    message = only_problem(base(patroni=timing))
    assert message.startswith(f"patroni-citus:patroni.{key} = ")


def test_timing_rule_message_shows_the_sum():
    assert "(10 + 2*10 = 30)" in only_problem(base(patroni={"ttl": 25}))


def test_wrong_types_and_unknown_keys_are_named():
    found = problems(base(etcd={"members": "three", "colour": "blue"}, nonsense={"x": 1}))
    assert "patroni-citus:etcd.members = 'three': must be an integer" in found
    assert any(p.startswith("patroni-citus:etcd.colour = 'blue': unknown key") for p in found)
    assert any(p.startswith("patroni-citus:nonsense: unknown key") for p in found)


def test_all_errors_are_collected_not_just_the_first():
    found = problems(
        base(
            etcd={"members": 4},
            patroni={"ttl": 10},
            vip={"netmask": 8},
            cluster={"scope": "Bad Scope"},
        )
    )
    keys = {p.split(" = ")[0] for p in found}
    assert {
        "patroni-citus:etcd.members",
        "patroni-citus:patroni.ttl",
        "patroni-citus:vip.netmask",
        "patroni-citus:cluster.scope",
    } <= keys


def test_unpinned_images_are_rejected():
    found = problems(
        base(etcd={"image": "quay.io/coreos/etcd:latest"}, image={"baseImage": "debian"})
    )
    assert any(
        p.startswith("patroni-citus:etcd.image = 'quay.io/coreos/etcd:latest': must be pinned")
        for p in found
    )
    assert any(
        p.startswith("patroni-citus:image.baseImage = 'debian': must be pinned") for p in found
    )
    load_settings(base(etcd={"image": "quay.io/coreos/etcd@sha256:" + "a" * 64}), {})


@pytest.mark.parametrize(
    "key, value",
    [
        ("workerGroups", 2),
        ("coordinatorMembers", 3),
        ("membersPerGroup", 2),
        ("database", "app"),
        ("rebalanceOnJoin", True),
    ],
)
def test_citus_group_keys_do_not_apply_without_citus(key, value):
    assert only_problem(plain(citus={key: value})) == (
        f"patroni-citus:citus.{key} = {value!r}: does not apply with citus.enabled false "
        "(the single group is patroni.members)"
    )


def test_patroni_members_does_not_apply_with_citus():
    assert only_problem(base(patroni={"members": 3})).startswith(
        "patroni-citus:patroni.members = 3: does not apply with Citus on"
    )


def test_postgres_parameters_are_checked():
    found = problems(base(patroni={"parameters": {"Bad Name": 1, "work_mem": ["x"]}}))
    assert any(p.startswith("patroni-citus:patroni.parameters.Bad Name") for p in found)
    assert any(p.startswith("patroni-citus:patroni.parameters.work_mem") for p in found)


def test_resource_limits():
    assert only_problem(base(patroni={"resources": {"memoryMb": 100}})).startswith(
        "patroni-citus:patroni.resources.memoryMb = 100"
    )
    s = load_settings(base(patroni={"resources": {"memoryMb": 0, "cpus": "1.5"}}), {})
    assert s.patroni.resources.memory_mb == 0 and s.patroni.resources.cpus == "1.5"


def test_passwords_must_be_secret_and_long_and_are_never_echoed():
    short = "short"
    found = problems(base(), secrets={"superuserPassword": short})
    assert found == ["patroni-citus:superuserPassword = [secret]: must be at least 12 characters"]
    found = problems(
        base(),
        secrets={"restApiPassword": "a-long-enough-password"},
        plaintext=frozenset({"restApiPassword"}),
    )
    assert "a-long-enough-password" not in found[0]
    assert "pulumi config set --secret restApiPassword" in found[0]
    s = load_settings(base(), {"replicationPassword": "r" * 20})
    assert s.passwords.replication == "r" * 20 and "r" * 20 not in repr(s)


def test_settings_are_frozen():
    s = load_settings(base(), {})
    with pytest.raises(AttributeError):
        s.etcd.members = 5  # type: ignore[misc]
    assert isinstance(s.vip.address, ipaddress.IPv4Address)
