"""Random JSON at every config key: the outcome is a SettingsError whose every problem names a
key of this project, or settings the whole program deploys under mocks. Never another
exception, never a secret in a message."""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from patroni_citus.config import SettingsError, load_settings
from tests.programrun import PROJECT, run_stack
from tests.unit.test_settings import base

SECRET = "hypothesis-secret-0123456789"

KEYS = [
    "cluster.scope",
    "cluster.namespace",
    "network.name",
    "network.subnet",
    "network.memberRange",
    "network.gateway",
    "etcd.members",
    "etcd.apiVersion",
    "etcd.image",
    "etcd.clusterToken",
    "etcd.autoCompactionRetention",
    "citus.enabled",
    "citus.database",
    "citus.coordinatorMembers",
    "citus.workerGroups",
    "citus.membersPerGroup",
    "patroni.members",
    "patroni.ttl",
    "patroni.loopWait",
    "patroni.retryTimeout",
    "patroni.maximumLagOnFailover",
    "patroni.synchronousMode",
    "patroni.failsafeMode",
    "patroni.parameters",
    "patroni.resources",
    "patroni.superuser",
    "patroni.replicationUser",
    "patroni.restApiUser",
    "vip.enabled",
    "vip.address",
    "vip.netmask",
    "vip.interface",
    "vip.group",
    "vip.intervalMs",
    "image.name",
    "image.flavour",
    "image.baseImage",
    "image.postgresMajor",
    "image.citusVersion",
    "image.citusPackageVersion",
    "image.patroniVersion",
    "image.vipManagerVersion",
    "image.localDebs",
    "volumes.retainOnDelete",
    "observability.enabled",
    "observability.allowPublicPorts",
    "observability.cadvisor",
    "observability.fluentd",
    "observability.adminer",
]
SECTIONS = sorted({key.split(".")[0] for key in KEYS})
PASSWORDS = ["superuserPassword", "replicationPassword", "restApiPassword"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**20, max_value=10**400),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "-1",
            "0",
            "3",
            "v2",
            "v3",
            "debian",
            "upstream",
            "14.0",
            "4.1",
            "172.30.254.254",
            "10.0.0.0/8",
            "a" * 300,
            "9" * 5000,
            "x\ny",
            "'",
            "quay.io/coreos/etcd:v3.6.1",
            "etcd@sha256:",
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def with_value(key: str, value: object) -> dict:
    config = copy.deepcopy(base())
    section, name = key.split(".")
    config.setdefault(section, {})[name] = value
    return config


def assert_named(error: SettingsError) -> None:
    assert error.problems
    for problem in error.problems:
        assert problem.startswith("patroni-citus:"), problem
        assert SECRET not in problem, problem


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(KEYS), value=json_values)
def test_any_value_at_any_key_is_an_error_naming_a_key_or_valid_settings(key, value):
    try:
        load_settings(with_value(key, value), {})
    except SettingsError as error:
        assert_named(error)


@settings(max_examples=150, deadline=None)
@given(section=st.sampled_from(SECTIONS), value=json_values)
def test_a_secret_section_never_reaches_a_message(section, value):
    config = with_value(f"{section}.anything", [SECRET, value, {"k": SECRET}])
    config[section]["superuser"] = SECRET
    try:
        load_settings(config, {}, secret_sections=frozenset({section}))
    except SettingsError as error:
        assert_named(error)
    else:
        raise AssertionError("a secret section must be refused")


@settings(max_examples=150, deadline=None)
@given(
    key=st.sampled_from(PASSWORDS),
    value=st.one_of(json_values, st.text(min_size=0, max_size=64).map(lambda t: SECRET + t)),
)
def test_any_password_value_is_accepted_or_refused_unshown(key, value):
    try:
        load_settings(base(), {key: value if value is not None else SECRET})
    except SettingsError as error:
        assert_named(error)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(KEYS), value=json_values)
def test_accepted_settings_make_a_graph(key, value):
    config = with_value(key, value)
    try:
        load_settings(config, {})
    except SettingsError:
        event("refused")
        return
    event("deployed under mocks")
    run = run_stack("dev", config={f"{PROJECT}:{k}": v for k, v in config.items()})
    assert run.of_type("docker:index/container:Container")
