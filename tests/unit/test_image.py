"""The image's package plan: what each stack's settings make the Dockerfile stage install.

The upstream stage cannot be built on machines without the PostgreSQL project's and Citus'
repositories, so the part of it that can be checked is checked here: the build arguments the
program passes are exactly the ARGs the target stage declares, and the stage's own script
(`images/patroni/pc-packages`, run with those arguments) names the packages, version patterns
and repository lines expected for every stack. Its post-install check runs against a fake
package database. The debian stage runs the same script for real in the integration suite.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from patroni_citus.config import load_settings, versions
from patroni_citus.plan.render import image_build_args
from tests.imagetools import IMAGE_DIR, tool_module_path
from tests.programrun import PROJECT, stack_config, stack_names

DOCKERFILE = IMAGE_DIR / "Dockerfile"
PC_PACKAGES = IMAGE_DIR / "pc-packages"
# The commands the program runs that are the image's Python modules (pc_backup.py).
PYTHON_TOOLS = ["pc-backup", "pc-crash-watch", "pc-replication-passfile", "pc-rest"]
TAIL = ["python3-etcd", "python3-psycopg2"]
SERVICES = [
    "pgbouncer",
    "pgbackrest",
    "prometheus",
    "prometheus-postgres-exporter",
    "prometheus-pgbackrest-exporter",
]
TOOLS = ["etcd-server", "etcd-client", "curl", "procps", "iproute2", "haproxy", *SERVICES]
DEBIAN_PLAN = [
    "postgresql-15",
    "patroni=4.0.*",
    *TAIL,
    "etcd-server",
    "etcd-client",
    "vip-manager",
    "curl",
    "procps",
    "iproute2",
    "haproxy",
    *SERVICES,
]


def stack_settings(stack: str):
    raw = {key[len(PROJECT) + 1 :]: value for key, value in stack_config(stack).items()}
    return load_settings(raw, {})


def stage_args(stage: str) -> dict[str, str]:
    """The ARGs one stage of the Dockerfile declares, with their defaults."""
    args: dict[str, str] = {}
    current = None
    for line in DOCKERFILE.read_text().splitlines():
        if match := re.match(r"^FROM \S+ AS (\S+)", line):
            current = match.group(1)
        elif current == stage and (match := re.match(r"^ARG (\w+)(?:=(.*))?$", line)):
            args[match.group(1)] = match.group(2) or ""
    return args


def pc_packages(
    *argv: str, env: dict[str, str], path: str | None = None
) -> subprocess.CompletedProcess:
    environment = {"PATH": path or os.environ["PATH"], **env}
    return subprocess.run(
        ["sh", str(PC_PACKAGES), *argv], env=environment, capture_output=True, text=True, timeout=30
    )


def stage_env(settings) -> dict[str, str]:
    """What the stage's script sees: the stage's ARG defaults, overridden by the program."""
    stage = settings.image.flavour
    return {**stage_args(stage), **image_build_args(settings)}


@pytest.mark.parametrize("stack", stack_names())
def test_program_passes_exactly_the_args_its_target_stage_declares(stack):
    settings = stack_settings(stack)
    declared = stage_args(settings.image.flavour)
    # BASE_IMAGE is declared before the first FROM and used by it.
    passed = set(image_build_args(settings)) - {"BASE_IMAGE"}
    assert passed <= set(declared), passed - set(declared)
    if settings.image.flavour == "upstream":
        versions_declared = {k for k in declared if "VERSION" in k or k == "PG_MAJOR"}
        assert versions_declared <= passed, "the stage would fall back to its own defaults"


def test_dockerfile_defaults_build_what_the_program_builds_by_default():
    defaults = load_settings({}, {})
    assert {
        k: stage_args("upstream")[k] for k in image_build_args(defaults) if k != "BASE_IMAGE"
    } == {k: v for k, v in image_build_args(defaults).items() if k != "BASE_IMAGE"}


@pytest.mark.parametrize(
    "stack, expected",
    [
        (
            "dev",
            [
                "postgresql-18",
                "postgresql-18-citus-14.0=14.0.*",
                "patroni",
                *TAIL,
                "vip-manager2",
                *TOOLS,
            ],
        ),
        (
            "prod",
            [
                "postgresql-18",
                "postgresql-18-citus-14.0=14.0.*",
                "patroni",
                *TAIL,
                "vip-manager2",
                *TOOLS,
            ],
        ),
        # The debian stage's plan is the same with or without Citus: a local package comes
        # from debs/ (image.localDebs), checked by `pc-packages check debian`.
        *[
            (stack, DEBIAN_PLAN)
            for stack in ("offline", "offline-vip", "offline-citus", "offline-hosts")
        ],
    ],
)
def test_each_stack_installs_the_expected_packages(stack, expected):
    settings = stack_settings(stack)
    result = pc_packages("plan", settings.image.flavour, env=stage_env(settings))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == expected


def test_every_stack_file_has_an_expected_package_plan():
    covered = {"dev", "prod", "offline", "offline-vip", "offline-citus", "offline-hosts"}
    assert set(stack_names()) <= covered, "add the new stack to the test above"


def test_repository_lines_are_the_projects_official_ones():
    settings = stack_settings("dev")
    result = pc_packages("sources", "bookworm", env=stage_env(settings))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] "
        "https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main",
        "deb [signed-by=/etc/apt/keyrings/citusdata_community.asc] "
        "https://packagecloud.io/citusdata/community/debian/ bookworm main",
        # Only for the pgBackRest exporter (pinned low by the stage).
        "deb http://deb.debian.org/debian trixie main",
    ]


def test_trixie_is_added_only_to_bookworm_for_the_backup_exporter():
    env = stage_env(stack_settings("dev"))
    for codename in ("trixie", "noble"):
        result = pc_packages("sources", codename, env=env)
        assert result.returncode == 0, result.stderr
        assert "debian" not in result.stdout.replace("citusdata/community/debian", "")
    # The stage pins what it adds low, so only the exporter (found nowhere else) comes from it.
    dockerfile = DOCKERFILE.read_text()
    assert "grep -q ' trixie main$' /etc/apt/sources.list.d/pc-upstream.list" in dockerfile


def test_every_python_tool_is_installed_as_the_command_the_program_runs():
    dockerfile = DOCKERFILE.read_text()
    (chmod,) = re.findall(r"^RUN chmod 0755 ((?:.*\\\n)*.*)$", dockerfile, re.MULTILINE)
    assert sorted(IMAGE_DIR.glob("pc_*.py")) == [tool_module_path(c) for c in PYTHON_TOOLS]
    for command in PYTHON_TOOLS:
        module = tool_module_path(command)
        assert f"\nCOPY {module.name} /usr/local/bin/{command}\n" in dockerfile
        assert f"/usr/local/bin/{command}" in chmod.split()
        assert module.read_text().startswith("#!/usr/bin/env python3\n")


def upstream(**image) -> dict:
    return {"image": {"flavour": "upstream", **image}}


def test_exact_pins_reach_apt_exactly():
    settings = load_settings(
        upstream(
            patroniVersion="4.1.4-1.pgdg120+1",
            citusPackageVersion="14.0.1.citus-1",
            vipManagerVersion="5.0.0-1.pgdg120+1",
        ),
        {},
    )
    result = pc_packages("plan", "upstream", env=stage_env(settings))
    assert "patroni=4.1.4-1.pgdg120+1" in result.stdout.split()
    assert "postgresql-18-citus-14.0=14.0.1.citus-1" in result.stdout.split()
    assert "vip-manager2=5.0.0-1.pgdg120+1" in result.stdout.split()


def test_releases_and_lines_become_apt_globs():
    settings = load_settings(
        upstream(
            postgresMajor=17,
            citusVersion="13.2",
            patroniVersion="4.1",
            citusPackageVersion="13.2.1",
            vipManagerVersion="5",
        ),
        {},
    )
    plan = pc_packages("plan", "upstream", env=stage_env(settings)).stdout.split()
    assert plan[:3] == ["postgresql-17", "postgresql-17-citus-13.2=13.2.1.citus-*", "patroni=4.1.*"]
    assert "vip-manager2=5.*" in plan


def test_without_citus_the_image_has_no_citus_package_nor_repository():
    settings = load_settings({**upstream(), "citus": {"enabled": False}}, {})
    env = stage_env(settings)
    assert "citus" not in pc_packages("plan", "upstream", env=env).stdout
    assert "citus" not in pc_packages("sources", "bookworm", env=env).stdout


@pytest.fixture
def fake_dpkg(tmp_path):
    """A PATH where `dpkg-query` answers from PC_FAKE_<package> variables and the real
    `dpkg --compare-versions` compares."""
    if shutil.which("dpkg") is None:
        pytest.fail("dpkg is needed (Debian machines have it)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    query = bin_dir / "dpkg-query"
    query.write_text(
        "#!/bin/sh\nfor a; do p=$a; done\n"
        'v=$(printenv "PC_FAKE_$(echo "$p" | tr -c "A-Za-z0-9\\n" _)") || exit 1\n'
        'printf %s "$v"\n'
    )
    query.chmod(0o755)
    server = tmp_path / "lib" / "18" / "bin" / "postgres"
    server.parent.mkdir(parents=True)
    server.write_text("#!/bin/sh\n")
    server.chmod(0o755)
    return {"path": f"{bin_dir}:{os.environ['PATH']}", "lib": str(tmp_path / "lib")}


def check_upstream(fake_dpkg, **installed):
    settings = load_settings(upstream(), {})
    env = {**stage_env(settings), "PC_POSTGRES_LIB": fake_dpkg["lib"]}
    for package, version in installed.items():
        env[f"PC_FAKE_{package}"] = version
    return pc_packages("check", "upstream", env=env, path=fake_dpkg["path"])


GOOD = {
    "postgresql_18": "18.1-1.pgdg120+2",
    "patroni": "4.1.4-1.pgdg120+1",
    "vip_manager2": "5.0.0-1.pgdg120+1",
    "etcd_server": "3.4.23-4+b4",
    "postgresql_18_citus_14_0": "14.0.1.citus-1",
}


def test_build_check_prints_what_was_installed(fake_dpkg):
    result = check_upstream(fake_dpkg, **GOOD)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^patroni\s+4\.1\.4-1\.pgdg120\+1$", result.stdout, re.M)
    assert re.search(r"^postgresql-18-citus-14\.0\s+14\.0\.1\.citus-1$", result.stdout, re.M)


@pytest.mark.parametrize(
    "package, version, message",
    [
        (
            "patroni",
            "4.0.6-1.pgdg120+1",
            "patroni 4.0.6-1.pgdg120+1 installed, 4.0.7 or newer needed",
        ),
        ("vip_manager2", "1.0.2-1", "vip-manager2 1.0.2-1 installed, 2.0.0 or newer needed"),
    ],
)
def test_build_check_stops_a_build_below_the_floors(fake_dpkg, package, version, message):
    result = check_upstream(fake_dpkg, **{**GOOD, package: version})
    assert result.returncode != 0
    assert message in result.stderr


def test_build_check_stops_a_build_without_citus(fake_dpkg):
    missing = {k: v for k, v in GOOD.items() if "citus" not in k}
    result = check_upstream(fake_dpkg, **missing)
    assert result.returncode != 0
    assert "postgresql-18-citus-14.0 is not installed" in result.stderr


@pytest.mark.parametrize(
    "text, separator, pattern, release",
    [
        (None, "-", "", None),
        ("4", "-", "4.*", None),
        ("4.1", "-", "4.1.*", None),
        ("4.1.4", "-", "4.1.4-*", "4.1.4"),
        ("14.0.1", ".citus-", "14.0.1.citus-*", "14.0.1"),
        ("4.1.4-1.pgdg120+1", "-", "4.1.4-1.pgdg120+1", "4.1.4"),
        ("14.0.1.citus-1", ".citus-", "14.0.1.citus-1", "14.0.1"),
    ],
)
def test_apt_pins(text, separator, pattern, release):
    assert versions.apt_pin(text, separator) == versions.Pin(pattern, release)


@pytest.mark.parametrize(
    "line, floor, allowed",
    [
        ("4", "4.0.7", True),
        ("4.0", "4.0.7", True),
        ("4.0.6", "4.0.7", False),
        ("4.0.7", "4.0.7", True),
        ("3", "4.0.0", False),
        ("3.3", "4.0.0", False),
        ("4.1.4-1.pgdg120+1", "4.0.7", True),
        ("5", "2.0.0", True),
        ("1", "2.0.0", False),
    ],
)
def test_line_allows(line, floor, allowed):
    assert versions.line_allows(line, floor) is allowed
