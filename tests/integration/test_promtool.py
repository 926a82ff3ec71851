"""The rendered Prometheus configuration and alert rules checked by promtool from the project
image (promtool is not on the machine running the tests): `check config`, `check rules`, and
`test rules` with tests/promtool/alerts_test.yml, which shows every alert firing and not."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from patroni_citus.config import load_settings
from patroni_citus.plan import monitoring as render_monitoring
from patroni_citus.plan import render
from tests.integration.conftest import BASE_IMAGE
from tests.programrun import PROJECT_DIR

pytestmark = pytest.mark.integration
IMAGE = "patroni-citus:promtool"
RULE_TESTS = PROJECT_DIR / "tests" / "promtool" / "alerts_test.yml"
# What alerts_test.yml assumes (its header): every optional scrape job on, production timing.
RULES_SETTINGS = {
    "cluster": {"scope": "t"},
    "citus": {"enabled": False},
    "monitoring": {"enabled": True, "scrapeInterval": "15s"},
    "endpoints": {"enabled": True},
    "backups": {"enabled": True, "fullInterval": "7d", "incrementalInterval": "1d"},
    "observability": {"enabled": True},
}


@pytest.fixture(scope="module")
def image(docker_client):
    docker_client.images.build(
        path=str(PROJECT_DIR / "images" / "patroni"),
        target="debian",
        buildargs={"BASE_IMAGE": BASE_IMAGE},
        tag=IMAGE,
        rm=True,
    )
    return IMAGE


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    settings = load_settings(RULES_SETTINGS, {})
    (tmp_path / "prometheus.yml").write_text(
        render.to_yaml(render_monitoring.prometheus_config(settings))
    )
    (tmp_path / "alerts.yml").write_text(render.to_yaml(render_monitoring.alert_rules(settings)))
    (tmp_path / "alerts_test.yml").write_text(RULE_TESTS.read_text())
    tmp_path.chmod(0o755)
    for path in tmp_path.iterdir():
        path.chmod(0o644)
    return tmp_path


def promtool(client, image: str, folder: Path, *args: str) -> str:
    # Mounted where the configuration names its rule file, as in the Prometheus container.
    output = client.containers.run(
        image,
        ["promtool", *args],
        volumes={str(folder): {"bind": render_monitoring.CONFIG_DIR, "mode": "ro"}},
        working_dir=render_monitoring.CONFIG_DIR,
        remove=True,
        stderr=True,
    )
    return output.decode()


def test_config_and_rules_are_valid(docker_client, image, rendered):
    out = promtool(docker_client, image, rendered, "check", "config", "prometheus.yml")
    assert "SUCCESS: 1 rule files found" in out and "is valid prometheus config" in out, out
    rules = len(render_monitoring.FOR_MULTIPLES)
    out = promtool(docker_client, image, rendered, "check", "rules", "alerts.yml")
    assert f"SUCCESS: {rules} rules found" in out, out


def test_every_alert_fires_and_stays_quiet_in_the_rule_tests(docker_client, image, rendered):
    rendered_alerts = {
        rule["alert"]
        for group in yaml.safe_load((rendered / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    assert rendered_alerts == set(render_monitoring.FOR_MULTIPLES)
    cases = [
        case
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
    ]
    assert {c["alertname"] for c in cases if c["exp_alerts"]} == rendered_alerts
    assert {c["alertname"] for c in cases if not c["exp_alerts"]} == rendered_alerts
    # A failing case makes promtool exit non-zero, which the SDK raises as ContainerError.
    out = promtool(docker_client, image, rendered, "test", "rules", "alerts_test.yml")
    assert "SUCCESS" in out, out
