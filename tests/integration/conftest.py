"""Shared fixtures for the integration tests (tests that drive a real Docker engine)."""

from __future__ import annotations

import os

import pytest

BASE_IMAGE = os.environ.get("HARNESS_BASE_IMAGE", "local/debian:bookworm")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "integration: needs a running Docker engine (fails in CI when absent)"
    )


def _unavailable(reason: str):
    # In CI a missing engine is a failure, never a skip; elsewhere skipping is acceptable.
    if os.environ.get("CI") == "true":
        pytest.fail(f"Docker engine required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_client():
    """A docker SDK client for a reachable engine that has the base image (never pulled)."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover
        _unavailable(f"docker SDK not installed: {exc}")
    try:
        client = docker.from_env(version="auto")
        client.ping()
    except Exception as exc:
        _unavailable(f"no Docker engine reachable: {exc}")
    try:
        client.images.get(BASE_IMAGE)
    except Exception as exc:
        _unavailable(
            f"base image {BASE_IMAGE} missing (build it locally, nothing is pulled): {exc}"
        )
    yield client
    client.close()


FIGURES_FILE = os.path.join(os.path.dirname(__file__), "figures.json")


def pytest_terminal_summary(terminalreporter):
    """Prints the drills' figures as a table and keeps them in figures.json for comparison."""
    from tests.integration.cluster import FIGURES

    if not FIGURES:
        return
    import json

    with open(FIGURES_FILE, "w") as handle:
        json.dump(FIGURES, handle, indent=2, sort_keys=True)
    terminalreporter.section("integration figures")
    for scenario, figures in FIGURES.items():
        values = ", ".join(f"{k}={v}" for k, v in figures.items())
        terminalreporter.write_line(f"{scenario:<32} {values}")
    terminalreporter.write_line(f"(also written to {FIGURES_FILE})")
