"""The image and the documentation follow the shared conventions (policies/conventions.py) that
the program, the policy pack and the other tests import: the Dockerfile, pc-entrypoint and
docs/conventions.md cannot import them, so what they say is read here and compared; and the pack
can import them on its own."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import get_args

from policies import conventions
from tests.programrun import PROJECT_DIR

IMAGE = PROJECT_DIR / "images" / "patroni"
DOCKERFILE = (IMAGE / "Dockerfile").read_text()
ENTRYPOINT = (IMAGE / "pc-entrypoint").read_text()
DOC = (PROJECT_DIR / "docs" / "conventions.md").read_text()


def entrypoint_default(variable: str) -> str:
    """The value pc-entrypoint uses when `variable` is unset: `${VARIABLE:-default}`."""
    (default,) = re.findall(rf"\${{{variable}:-([^}}]*)}}", ENTRYPOINT)
    return default


def test_the_image_exposes_the_ports():
    (exposed,) = re.findall(r"^EXPOSE (.+)$", DOCKERFILE, re.MULTILINE)
    assert [int(port) for port in exposed.split()] == [
        conventions.POSTGRES_PORT,
        conventions.REST_API_PORT,
        conventions.ETCD_CLIENT_PORT,
        conventions.ETCD_PEER_PORT,
    ]


def test_the_image_sets_and_creates_the_paths():
    assert f"PGDATA={conventions.PGDATA} " in DOCKERFILE
    assert f"PATRONICTL_CONFIG_FILE={conventions.PATRONI_CONFIG_PATH}\n" in DOCKERFILE
    assert f"ARG POSTGRES_UID={conventions.POSTGRES_UID}\n" in DOCKERFILE
    created = {
        path
        for line in re.findall(r"install -d -o postgres -g postgres -m \d+ ([^;]+);", DOCKERFILE)
        for path in line.split()
    }
    config_dir = conventions.PATRONI_CONFIG_PATH.rsplit("/", 1)[0]
    assert {
        conventions.ETCD_DATA_MOUNT,
        conventions.PATRONI_DATA_MOUNT,
        config_dir,
        conventions.PG_SOCKET_DIR,
        conventions.PGBOUNCER_CONFIG_DIR,
    } <= created


def test_the_entrypoint_defaults_are_the_conventions():
    assert entrypoint_default("PATRONI_CONFIG") == conventions.PATRONI_CONFIG_PATH
    assert entrypoint_default("PG_SOCKET_DIR") == conventions.PG_SOCKET_DIR
    assert entrypoint_default("PC_MEMBER_STAMP") == conventions.MEMBER_STAMP_PATH
    assert entrypoint_default("HAPROXY_CONFIG") == conventions.HAPROXY_CONFIG_PATH
    assert entrypoint_default("PGBOUNCER_CONFIG") == conventions.PGBOUNCER_CONFIG_PATH
    # Its own `healthcheck` command (the image's HEALTHCHECK) probes what the program's do.
    assert (
        f"--endpoints={entrypoint_default('PC_ETCD_HEALTH_ENDPOINT')}"
        in conventions.ETCD_HEALTHCHECK
    )
    assert conventions.PATRONI_HEALTHCHECK[-1] == entrypoint_default("PC_PATRONI_HEALTH_URL")


def test_the_data_mounts_hold_what_lives_in_them():
    # Mounted at a parent of PGDATA, never PGDATA itself; the sidecar sees the member's stamp
    # through the same mount.
    for path in (conventions.PGDATA, conventions.MEMBER_STAMP_PATH):
        assert path.startswith(conventions.DATA_PATHS[conventions.ROLE_PATRONI] + "/")
    assert conventions.ETCD_DATA_DIR.startswith(conventions.DATA_PATHS[conventions.ROLE_ETCD] + "/")


def test_the_policy_pack_can_import_them_alone():
    """As the Pulumi CLI runs the pack: policies/ on sys.path, its modules by their plain names,
    nothing of the program."""
    probe = (
        "import sys; import rules; assert rules.conventions.__name__ == 'conventions'; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pulumi', 'pulumi_docker', 'pulumi_policy', 'patroni_citus', 'yaml')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PROJECT_DIR / "policies",
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"


def test_the_documentation_names_every_label_role_and_port():
    keys = [
        value
        for name, value in vars(conventions).items()
        if name.startswith("LABEL_") and name != "LABEL_PREFIX"
    ]
    assert len(keys) == 10
    for name in (*keys, *get_args(conventions.Role)):
        assert f"`{name}`" in DOC, name
    assert (
        f"Ports: PostgreSQL {conventions.POSTGRES_PORT}, Patroni REST "
        f"{conventions.REST_API_PORT}, etcd client {conventions.ETCD_CLIENT_PORT}, peer "
        f"{conventions.ETCD_PEER_PORT}."
    ) in DOC


def test_the_exporter_script_reads_what_the_program_writes():
    exporter = (IMAGE / "pc-exporter").read_text()

    def default(variable: str) -> str:
        (value,) = re.findall(rf"\${{{variable}:-([^}}]*)}}", exporter)
        return value

    assert default("PC_EXPORTER_USER_FILE") == conventions.POSTGRES_EXPORTER_USER_PATH
    assert default("PC_EXPORTER_PASSWORD_FILE") == conventions.POSTGRES_EXPORTER_PASSWORD_PATH
    assert default("PC_EXPORTER_LISTEN") == f":{conventions.POSTGRES_EXPORTER_PORT}"
    assert f"127.0.0.1:{conventions.POSTGRES_PORT}/" in exporter
    # Started beside Patroni, before it takes over as PID 1.
    assert "pc-exporter &\n        exec patroni" in ENTRYPOINT
    assert "pc-exporter" in DOCKERFILE


def test_the_image_pins_prometheus_user():
    assert f"ARG PROMETHEUS_UID={conventions.PROMETHEUS_UID}\n" in DOCKERFILE
    assert f"ARG PROMETHEUS_GID={conventions.PROMETHEUS_GID}\n" in DOCKERFILE
