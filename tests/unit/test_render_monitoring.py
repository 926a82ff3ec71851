"""Prometheus' configuration, its alert rules and the exporters' files, rendered from settings
(pure; promtool runs them in tests/integration/test_promtool.py)."""

import json

from patroni_citus.config import load_settings
from patroni_citus.plan import monitoring as render_monitoring
from patroni_citus.plan import render
from policies import conventions

CREDENTIALS = render.Credentials(
    superuser="su-secret-123456",
    replication="repl-secret-123",
    rest_api="rest-secret-1234",
    monitoring="mon-secret-12345",
)


def settings(**overrides):
    config = {
        "citus": {"enabled": True, "database": "test", "workerGroups": 1},
        "monitoring": {"enabled": True},
    }
    config.update(overrides)
    return load_settings(config, {})


def jobs(s):
    return {
        job["job_name"]: job for job in render_monitoring.prometheus_config(s)["scrape_configs"]
    }


def rules(s):
    return {
        rule["alert"]: rule
        for group in render_monitoring.alert_rules(s)["groups"]
        for rule in group["rules"]
    }


def test_members_are_scraped_twice_with_their_group_and_name():
    by_job = jobs(settings())
    assert list(by_job) == ["patroni", "postgres", "etcd"]
    for job, port in (("patroni", conventions.REST_API_PORT), ("postgres", 9187)):
        assert by_job[job]["metrics_path"] == "/metrics"
        assert by_job[job]["static_configs"][0] == {
            "targets": [f"172.30.1.17:{port}"],
            "labels": {"cluster": "citus", "citus_group": "0", "member": "citus-coord-1"},
        }
        # coordinator of 2 + one worker group of 2
        assert [c["labels"]["citus_group"] for c in by_job[job]["static_configs"]] == [
            "0",
            "0",
            "1",
            "1",
        ]
    assert by_job["etcd"]["static_configs"][2] == {
        "targets": ["172.30.1.3:2379"],
        "labels": {"cluster": "citus", "member": "citus-etcd-3"},
    }


def test_optional_services_add_their_jobs():
    s = settings(
        endpoints={"enabled": True, "instances": 2},
        backups={"enabled": True},
        observability={"enabled": True},
    )
    by_job = jobs(s)
    assert list(by_job) == ["patroni", "postgres", "etcd", "cadvisor", "haproxy", "pgbackrest"]
    targets = {job: [c["targets"][0] for c in j["static_configs"]] for job, j in by_job.items()}
    assert targets["cadvisor"] == ["citus-cadvisor:8080"]
    assert targets["haproxy"] == [
        f"{s.service_address('haproxy', 0)}:8404",
        f"{s.service_address('haproxy', 1)}:8404",
    ]
    assert targets["pgbackrest"] == ["citus-backup-exporter:9854"]


def test_timing_follows_the_scrape_interval():
    config = render_monitoring.prometheus_config(settings(monitoring={"enabled": True}))
    assert config["global"] == {
        "scrape_interval": "15s",
        "scrape_timeout": "10s",
        "evaluation_interval": "15s",
    }
    assert config["rule_files"] == ["/etc/pc-prometheus/alerts.yml"]
    fast = settings(monitoring={"enabled": True, "scrapeInterval": "2s"})
    assert render_monitoring.prometheus_config(fast)["global"]["scrape_timeout"] == "2s"
    slow, quick = rules(settings()), rules(fast)
    assert slow["PatroniNoLeader"]["for"] == "60s" and quick["PatroniNoLeader"]["for"] == "8s"
    assert slow["PatroniMultipleLeaders"]["for"] == "30s"
    assert slow["PatroniReplicationLag"]["for"] == "120s"
    assert set(quick) <= set(render_monitoring.FOR_MULTIPLES)


def test_thresholds_come_from_the_settings():
    s = settings(
        monitoring={"enabled": True, "maxReplicationLagBytes": 1000, "diskUsageRatio": 0.5},
        etcd={"members": 5},
        observability={"enabled": True},
        backups={"enabled": True, "fullInterval": "2d", "incrementalInterval": "6h"},
    )
    r = rules(s)
    assert r["PatroniReplicationLag"]["expr"].endswith("== 1) > 1000")
    assert r["EtcdNoQuorum"]["expr"] == 'sum by (cluster) (up{job="etcd"}) < 3'
    assert r["DiskFilling"]["expr"].endswith("> 0.5")
    assert 'backup_type="full"} > 259200 or' in r["BackupTooOld"]["expr"]
    assert r["BackupTooOld"]["expr"].endswith('backup_type="incr"} > 32400')
    assert r["PostgresArchivingFailing"]["expr"] == (
        "increase(pg_stat_archiver_failed_count[300s]) > 0"
    )
    assert r["ScrapeTargetDown"]["expr"] == 'up{job=~"postgres|cadvisor|pgbackrest"} == 0'


def test_rules_of_services_that_are_off_are_left_out():
    r = rules(settings())
    assert "DiskFilling" not in r and "BackupTooOld" not in r
    assert "PostgresArchivingFailing" not in r
    assert r["ScrapeTargetDown"]["expr"] == 'up{job=~"postgres"} == 0'
    for rule in r.values():
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert set(rule["annotations"]) == {"summary", "description"}


def test_prometheus_targets_are_file_sd():
    targets = render_monitoring.prometheus_targets(settings())
    assert targets[0] == {
        "targets": ["172.30.1.17:8008"],
        "labels": {
            "job": "patroni",
            "cluster": "citus",
            "citus_group": "0",
            "member": "citus-coord-1",
        },
    }
    assert len(targets) == 4 + 4 + 3


def test_prometheus_runs_from_its_uploads_and_volume():
    command = render_monitoring.prometheus_command(
        settings(monitoring={"enabled": True, "retention": "30d"})
    )
    assert command == [
        "prometheus",
        "--config.file=/etc/pc-prometheus/prometheus.yml",
        "--storage.tsdb.path=/var/lib/prometheus/metrics2",
        "--storage.tsdb.retention.time=30d",
        "--web.listen-address=0.0.0.0:9090",
    ]


def test_exporter_files_name_the_role_then_its_password():
    files = json.loads(render_monitoring.exporter_files(settings(), CREDENTIALS))
    assert files == [
        [conventions.POSTGRES_EXPORTER_USER_PATH, "monitor"],
        [conventions.POSTGRES_EXPORTER_PASSWORD_PATH, "mon-secret-12345"],
    ]
    # Nothing else the component renders holds it.
    s = settings(backups={"enabled": True}, endpoints={"enabled": True})
    rendered = json.dumps(
        [render_monitoring.prometheus_config(s), render_monitoring.alert_rules(s)]
    )
    assert "mon-secret" not in rendered
