"""The operator CLI without a cluster: reading stack outputs, the status assembled from
recorded answers (Patroni's GET /cluster of a real `offline` deployment, etcd, pg_dist_node,
the VIP), the leader changes a watch prints, and the command line's errors."""

from __future__ import annotations

import copy
import json
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from pcctl import __main__ as cli
from pcctl import outputs, status, watch
from pcctl.probe import DistNode, PatroniView, ProbeError

RECORDED = Path(__file__).parent / "recorded"


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


@pytest.fixture
def document() -> dict[str, Any]:
    """The outputs of a real `offline` deployment (password replaced)."""
    return recorded("offline-outputs.json")


@pytest.fixture
def offline(document) -> outputs.StackOutputs:
    return outputs.parse(document, "recorded")


def view(name: str, group: str = "0") -> PatroniView:
    return PatroniView(group, "offline-pg-2", tuple(recorded(name)["members"]))


def citus_stack(document: dict[str, Any]) -> outputs.StackOutputs:
    """The recorded stack as if it had a Citus worker group 1 with a VIP."""
    doc = copy.deepcopy(document)
    doc["citus"] = True
    doc["vip"] = "172.28.254.254"
    doc["members"]["1"] = [
        {"name": "offline-w1-1", "address": "172.28.1.33"},
        {"name": "offline-w1-2", "address": "172.28.1.34"},
    ]
    doc["dcs"]["leaderKeys"] = {"0": "/service/offline/0/leader", "1": "/service/offline/1/leader"}
    return outputs.parse(doc, "recorded")


WORKER_VIEW = PatroniView(
    "1",
    "offline-w1-1",
    (
        {"name": "offline-w1-1", "role": "leader", "state": "running", "timeline": 1},
        {"name": "offline-w1-2", "role": "sync_standby", "state": "streaming", "lag": 0},
    ),
)


# --- stack outputs ---------------------------------------------------------------------------


def test_recorded_outputs_parse(offline):
    assert offline.groups == ("0",)
    assert [m.name for m in offline.group_members("0")] == [
        "offline-pg-1",
        "offline-pg-2",
        "offline-pg-3",
    ]
    assert offline.dcs_api == "v3" and offline.leader_keys == {"0": "/service/offline/leader"}
    assert offline.coordinator.host == "172.28.1.17,172.28.1.18,172.28.1.19"
    assert offline.vip is None and offline.citus is False


@pytest.mark.parametrize(
    "edit, named",
    [
        (lambda d: d.pop("dcs"), "`dcs` is missing"),
        (lambda d: d["dcs"].pop("leaderKeys"), "`dcs.leaderKeys` is missing"),
        (lambda d: d["coordinator"].update(port="5432"), "`coordinator.port` should be a int"),
        (lambda d: d["members"]["0"][1].pop("address"), "`members.0[1].address` is missing"),
        (lambda d: d["dcs"].update(api="v4"), "`dcs.api` is 'v4', not v2 or v3"),
        (lambda d: d.update(coordinatorPassword="[secret]"), "--show-secrets"),
        (lambda d: d.pop("citus"), "run `pulumi up` first"),
        # A stack deployed before the outputs carried the client parameters.
        (lambda d: d["coordinator"].pop("parameters"), "`coordinator.parameters` is missing"),
    ],
)
def test_bad_outputs_name_the_key(document, edit, named):
    edit(document)
    with pytest.raises(outputs.OutputsError, match="recorded: .*") as raised:
        outputs.parse(document, "recorded")
    assert named in str(raised.value)


def test_an_outputs_file_that_is_not_there_or_not_json(tmp_path):
    with pytest.raises(outputs.OutputsError, match="cannot read the outputs file"):
        outputs.from_file(str(tmp_path / "absent.json"))
    garbage = tmp_path / "outputs.json"
    garbage.write_text("Current stack outputs (3):")
    with pytest.raises(outputs.OutputsError, match="is not JSON"):
        outputs.from_file(str(garbage))


def test_without_the_pulumi_cli_the_error_says_to_pass_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(outputs.OutputsError, match="--outputs FILE"):
        outputs.from_pulumi("dev")


def fake_pulumi(directory: Path, stdout: str, exit_code: int = 0) -> Path:
    """A `pulumi` on PATH that records its arguments and working directory."""
    script = directory / "pulumi"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$PWD $*" > {directory}/called\n'
        f"cat <<'JSON'\n{stdout}\nJSON\n"
        f"[ {exit_code} -eq 0 ] || echo 'error: no stack named dev found' >&2\n"
        f"exit {exit_code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return directory / "called"


def test_the_pulumi_cli_is_asked_for_the_secrets_too(tmp_path, monkeypatch, document):
    called = fake_pulumi(tmp_path, json.dumps(document))
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    stack = outputs.from_pulumi("dev")
    assert stack.coordinator.password == "recorded-not-a-secret"
    cwd, args = called.read_text().split(" ", 1)
    assert Path(cwd) == outputs.PROJECT_DIR
    assert args.split() == [
        "stack", "output", "--json", "--show-secrets", "--non-interactive", "--stack", "dev",
    ]  # fmt: skip


def test_a_failing_pulumi_cli_is_reported(tmp_path, monkeypatch):
    fake_pulumi(tmp_path, "", exit_code=255)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(outputs.OutputsError, match="no stack named dev found"):
        outputs.from_pulumi("dev")


# --- status ------------------------------------------------------------------------------------


def test_a_healthy_group_agrees_everywhere(offline):
    found = status.assemble(
        offline, {"0": view("offline-cluster-healthy.json")}, {"0": "offline-pg-2"}, None, None
    )
    assert found.healthy and found.problems == ()
    group = found.groups[0]
    assert group.leader == "offline-pg-2" and group.dcs_leader == "offline-pg-2"
    assert group.sync_standbys == ("offline-pg-3",)
    assert {m.name: (m.role, m.state, m.timeline, m.lag_bytes) for m in group.members} == {
        "offline-pg-1": ("replica", "streaming", 3, 0),
        "offline-pg-2": ("leader", "running", 3, None),
        "offline-pg-3": ("sync_standby", "streaming", 3, 0),
    }
    table = status.render_table(found)
    lines = table.splitlines()
    assert lines[0].split() == [
        "group", "member", "address", "role", "state", "TL", "lag", "pending", "restart",
    ]  # fmt: skip
    assert "offline-pg-3  172.28.1.19  sync standby  streaming  3     0 B" in table
    assert "leader key (etcd v3)" in table and "pg_dist_node" not in table
    assert table.endswith("healthy: every source agrees")
    document = status.to_json(found)
    assert document["healthy"] is True
    assert document["groups"][0]["members"][2] == {
        "name": "offline-pg-3",
        "address": "172.28.1.19",
        "role": "sync_standby",
        "state": "streaming",
        "timeline": 3,
        "lag_bytes": 0,
        "pending_restart": False,
    }
    json.dumps(document)  # serialisable as it is


def test_a_crashed_replica_is_missing_from_the_dcs(offline):
    found = status.assemble(
        offline, {"0": view("offline-cluster-replica-down.json")}, {"0": "offline-pg-2"}, None, None
    )
    assert found.problems == ("group 0: offline-pg-1 is not registered in the DCS",)
    rows = [line.split(maxsplit=4) for line in status.render_table(found).splitlines()]
    assert ["0", "offline-pg-1", "172.28.1.17", "-", "not in the DCS"] in rows


def test_a_leader_key_naming_another_member_is_a_problem(offline):
    found = status.assemble(
        offline, {"0": view("offline-cluster-healthy.json")}, {"0": None}, None, None
    )
    assert found.problems == (
        "group 0: the leader key /service/offline/leader names nobody, Patroni's running "
        "leader is offline-pg-2",
    )


def test_unreachable_sources_are_problems_not_crashes(offline):
    found = status.assemble(
        offline,
        {"0": ProbeError("no member of group 0 answers GET /cluster: timed out")},
        RuntimeError("no etcd endpoint answers"),
        None,
        None,
    )
    assert found.problems == (
        "group 0: no member of group 0 answers GET /cluster: timed out",
        "etcd: no etcd endpoint answers",
    )
    rows = [line.split(maxsplit=4) for line in status.render_table(found).splitlines()]
    assert ["0", "offline-pg-1", "172.28.1.17", "-", "unknown"] in rows
    assert ["0", "-", "-", "?"] in rows  # no leader, no sync standby, the key unknown


def test_pg_dist_node_and_the_vip_are_checked_under_citus(document):
    stack = citus_stack(document)
    views = {"0": view("offline-cluster-healthy.json"), "1": WORKER_VIEW}
    leaders = {"0": "offline-pg-2", "1": "offline-w1-1"}
    agreeing = (
        DistNode(0, "172.28.1.18", 5432, "primary", True),
        DistNode(1, "172.28.1.33", 5432, "primary", True),
        DistNode(1, "172.28.1.34", 5432, "secondary", True),
    )
    found = status.assemble(stack, views, leaders, agreeing, "offline-pg-2")
    assert found.problems == ()
    assert [g.dist_primary for g in found.groups] == ["offline-pg-2", "offline-w1-1"]
    table = status.render_table(found)
    assert "pg_dist_node primary" in table and "VIP 172.28.254.254: offline-pg-2" in table

    stale = (agreeing[0], DistNode(1, "172.28.1.34", 5432, "primary", True))
    found = status.assemble(stack, views, leaders, stale, "offline-pg-1")
    assert found.problems == (
        "group 1: pg_dist_node's primary is offline-w1-2, the leader is offline-w1-1",
        "the VIP 172.28.254.254 answers on offline-pg-1, the coordinator's leader is offline-pg-2",
    )


# --- watch -------------------------------------------------------------------------------------


def clock() -> Iterator[datetime]:
    start = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
    return (start + timedelta(milliseconds=250 * i) for i in range(100))


def test_only_a_different_value_is_a_leader_change():
    ticks = clock()
    events = [
        ("0", "pg-1"), ("1", "w-1"),  # the values when the watch starts
        ("0", "pg-1"), ("0", "pg-1"),  # etcd v2: the key rewritten by every HA loop
        ("0", None), ("0", "pg-2"),  # a switchover: released, then taken
        ("1", "w-1"), ("0", "pg-2"),  # a watch restarted on another endpoint repeats them
    ]  # fmt: skip
    changes = list(watch.leader_changes(events, ["0", "1"], lambda: next(ticks)))
    assert [(c.group, c.previous, c.leader, c.initial) for c in changes] == [
        ("0", None, "pg-1", True),
        ("1", None, "w-1", True),
        ("0", "pg-1", None, False),
        ("0", None, "pg-2", False),
    ]
    assert watch.render_line(changes[0]) == "2026-11-22T10:00:00.000+00:00  group 0  leader pg-1"
    assert watch.render_line(changes[2]) == (
        "2026-11-22T10:00:00.500+00:00  group 0  leader pg-1 -> (none)"
    )
    assert json.loads(watch.render_json(changes[3])) == {
        "at": "2026-11-22T10:00:00.750+00:00",
        "group": "0",
        "leader": "pg-2",
        "previous": None,
        "initial": False,
    }


# --- the command line --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, said",
    [
        ([], "required: COMMAND"),
        (["drill", "crash"], "the following arguments are required: --group"),
        (["drill", "crash", "--group", "coordinator"], "a group is a number"),
        (["drill", "explode", "--group", "0"], "invalid choice: 'explode'"),
        (["--stack", "dev", "--outputs", "x.json", "status"], "not allowed with argument"),
        (["status", "--yaml"], "unrecognized arguments: --yaml"),
    ],
)
def test_argument_errors(argv, said, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == cli.EXIT_USAGE
    assert said in capsys.readouterr().err


def test_an_unreadable_outputs_file_is_one_line_and_exit_1(tmp_path, capsys):
    code = cli.main(["--outputs", str(tmp_path / "none.json"), "status"])
    assert code == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("pcctl status: cannot read the outputs file") and err.count("\n") == 1


def test_a_cluster_that_cannot_be_reached_is_a_clear_error(document, tmp_path, capsys):
    # Loopback addresses where nothing listens: every connection is refused at once.
    document["members"]["0"] = [{"name": f"pg-{i}", "address": f"127.0.0.{i + 1}"} for i in (1, 2)]
    document["etcdEndpoints"] = ["http://127.0.0.4:9", "http://127.0.0.5:9"]
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(document))
    assert cli.main(["--outputs", str(path), "status"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("pcctl status: cannot reach the cluster")
    assert "127.0.0.4:9" in err and "network is routable" in err
    assert cli.main(["--outputs", str(path), "watch"]) == cli.EXIT_ERROR
    assert "no etcd endpoint answers" in capsys.readouterr().err
