"""The pack against the resource graph the program itself registers, for every stack file.

HOOK: ``tests/programrun.py`` (written separately) must provide

* ``stack_names() -> list[str]``: every ``Pulumi.<stack>.yaml`` in the repo;
* ``run_stack(stack) -> obj`` whose ``obj.resources`` items have ``.type``, ``.name``,
  ``.urn``, ``.inputs`` (camelCase dict as the engine sees it) and ``.options`` (dict with
  ``protect``, ``retainOnDelete``, ``parent``, ``dependencies``).

Until it exists this module fails to import; that is expected.

Only what the engine really sends reaches the pack: ``protect`` and ``parent`` (and
dependencies for stack policies). ``retainOnDelete`` is deliberately NOT passed on, because
the analyzer protocol does not carry it; the program must mirror it in the volume label
``patroni-citus.retain=true`` (checked for consistency below).

A stack may relax the pack with ``policies/config/<stack>.json`` (the file CI passes as
``--policy-pack-config``); without one the defaults apply.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from policies import conventions
from policies import rules as R
from policies.pack import to_plain
from tests.programrun import (  # HOOK: provided by tests/programrun.py
    run_stack,
    stack_config,
    stack_names,
)

CONFIG_DIR = Path(__file__).resolve().parents[2] / "policies" / "config"
STACKS = list(stack_names())

_graphs: Dict[str, Any] = {}


def graph(stack: str) -> Any:
    if stack not in _graphs:
        _graphs[stack] = run_stack(stack)
    return _graphs[stack]


def _urn(value: Any) -> str:
    return value if isinstance(value, str) else getattr(value, "urn", str(value))


def to_resource(r: Any) -> R.Resource:
    opts = dict(getattr(r, "options", None) or {})
    parent = opts.get("parent")
    return R.Resource(
        type=r.type,
        name=r.name,
        urn=r.urn,
        props=to_plain(dict(r.inputs or {})),
        protect=bool(opts.get("protect")),
        parent=_urn(parent) if parent else None,
        dependencies=tuple(_urn(d) for d in (opts.get("dependencies") or ())),
    )


def pack_config(stack: str) -> Optional[Dict[str, Any]]:
    path = CONFIG_DIR / f"{stack}.json"
    return json.loads(path.read_text()) if path.exists() else None


def test_there_are_stacks():
    assert STACKS, "no Pulumi.<stack>.yaml found"


@pytest.mark.parametrize("stack", STACKS)
def test_no_mandatory_violation(stack, pack_server):
    resources = [to_resource(r) for r in graph(stack).resources]
    etcd = [
        r
        for r in resources
        if r.type == R.CONTAINER and R.label(r, conventions.LABEL_ROLE) == conventions.ROLE_ETCD
    ]
    assert etcd, f"stack {stack}: no etcd container found; are the labels set?"
    diagnostics = pack_server.analyze(resources, pack_config(stack))
    mandatory = [d for d in diagnostics if d.level == "mandatory"]
    assert not mandatory, f"stack {stack}:\n" + "\n\n".join(
        f"[{d.policy}] {d.urn}\n{d.message}" for d in mandatory
    )
    for d in diagnostics:  # advisory findings are shown, not failed on
        print(f"advisory [{d.policy}] {d.urn}: {d.message}")


@pytest.mark.parametrize("stack", STACKS)
def test_retain_label_mirrors_retain_on_delete(stack):
    wrong: List[str] = []
    for r in graph(stack).resources:
        if r.type != R.VOLUME:
            continue
        res = to_resource(r)
        labelled = R.is_true(R.label(res, conventions.LABEL_RETAIN))
        retained = bool((getattr(r, "options", None) or {}).get("retainOnDelete"))
        if labelled != retained:
            wrong.append(
                f"{r.name}: label {conventions.LABEL_RETAIN}={labelled}, retainOnDelete={retained}"
            )
    assert not wrong, f"stack {stack}: " + "; ".join(wrong)


# The stack files leave the service layer off: its graphs are checked here, with backups on
# and restored.
BACKUPS = {
    "backups": {"backups": {"enabled": True}},
    "restore": {
        "backups": {
            "enabled": True,
            "repositoryVolume": "old-backups",
            "restore": {"source": "old", "type": "latest"},
        }
    },
}


@pytest.mark.parametrize("stack", ["offline", "offline-citus"])
@pytest.mark.parametrize("variant", sorted(BACKUPS))
def test_no_mandatory_violation_with_backups(stack, variant, pack_server):
    config = stack_config(stack)
    config.update({f"patroni-citus:{key}": value for key, value in BACKUPS[variant].items()})
    resources = [to_resource(r) for r in run_stack(stack, config=config).resources]
    exporter = conventions.ROLE_BACKUP_EXPORTER
    assert any(R.label(r, conventions.LABEL_ROLE) == exporter for r in resources)
    diagnostics = pack_server.analyze(resources, pack_config(stack))
    mandatory = [d for d in diagnostics if d.level == "mandatory"]
    assert not mandatory, "\n\n".join(f"[{d.policy}] {d.urn}\n{d.message}" for d in mandatory)


def test_an_unretained_repository_is_refused(pack_server):
    config = stack_config("offline")
    config["patroni-citus:backups"] = {"enabled": True}
    resources = []
    for r in run_stack("offline", config=config).resources:
        res = to_resource(r)
        if r.type == R.VOLUME and R.label(res, conventions.LABEL_ROLE) == "backup-exporter":
            labels = [x for x in res.props["labels"] if x["label"] != conventions.LABEL_RETAIN]
            res = R.Resource(**{**res.__dict__, "props": {**res.props, "labels": labels}})
            repository = res.urn
        resources.append(res)
    mandatory = [d for d in pack_server.analyze(resources, None) if d.level == "mandatory"]
    assert [(d.policy, d.urn) for d in mandatory] == [("data-volumes", repository)]


def test_no_mandatory_violation_with_endpoints_and_pooler(pack_server):
    """The service layer's HAProxy and PgBouncer containers pass the pack too."""
    config = stack_config("offline-vip")
    config["patroni-citus:endpoints"] = {"enabled": True}
    config["patroni-citus:pooler"] = {"enabled": True}
    resources = [to_resource(r) for r in run_stack("offline-vip", config=config).resources]
    roles = {R.label(r, conventions.LABEL_ROLE) for r in resources if r.type == R.CONTAINER}
    assert {conventions.ROLE_HAPROXY, conventions.ROLE_PGBOUNCER} <= roles
    diagnostics = pack_server.analyze(resources, pack_config("offline-vip"))
    assert not diagnostics, diagnostics


@pytest.mark.parametrize("stack", ["dev", "offline"])
def test_no_mandatory_violation_with_monitoring(stack, pack_server):
    """Prometheus, the exporters' commands and cadvisor's metrics network pass the pack."""
    config = stack_config(stack)
    config["patroni-citus:monitoring"] = {"enabled": True}
    config["patroni-citus:observability"] = {"enabled": True}
    resources = [to_resource(r) for r in run_stack(stack, config=config).resources]
    assert any(R.label(r, conventions.LABEL_ROLE) == conventions.ROLE_PROMETHEUS for r in resources)
    diagnostics = pack_server.analyze(resources, pack_config(stack))
    assert not diagnostics, "\n\n".join(f"[{d.policy}] {d.urn}\n{d.message}" for d in diagnostics)
