"""A readable text rendering of a program's resource graph, for review in pull requests."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from tests.programrun import ProgramRun

# Values that differ between runs or machines, or must never be printed.
REDACTED = "[secret]"


def assert_matches_snapshot(path: Path, text: str, what: str) -> None:
    """`text` must equal the snapshot at `path`; with UPDATE_SNAPSHOTS=1 it becomes it."""
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no snapshot for {what}: run with UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(), (
        f"{what} changed; review the diff and regenerate with UPDATE_SNAPSHOTS=1"
    )


def render_graph(run: ProgramRun, secret_values: set[str]) -> str:
    names = {r.urn: r.name for r in run.resources}
    lines = [
        f"# Resource graph of stack '{run.stack}' under mocks; regenerate with UPDATE_SNAPSHOTS=1.",
        "",
    ]
    for resource in sorted(run.resources, key=lambda r: (r.type, r.name)):
        parent = names.get(resource.options["parent"], "stack")
        lines.append(f"{resource.type} {resource.name}  (parent: {parent})")
        deps = sorted(names[u] for u in resource.options["dependencies"] if u in names)
        if deps:
            lines.append(f"  dependsOn: {', '.join(deps)}")
        flags = [
            k for k in ("protect", "retainOnDelete", "deleteBeforeReplace") if resource.options[k]
        ]
        if flags:
            lines.append(f"  options: {', '.join(flags)}")
        if resource.custom and resource.inputs:
            body = yaml.safe_dump(
                _redact(resource.inputs, secret_values),
                sort_keys=True,
                default_flow_style=False,
                width=100,
            )
            lines.extend("    " + line for line in body.splitlines())
        lines.append("")
    lines.append("outputs:")
    outputs = {k: (REDACTED if k in run.secret_outputs else v) for k, v in run.outputs.items()}
    lines.extend("  " + line for line in yaml.safe_dump(outputs, sort_keys=True).splitlines())
    return "\n".join(lines) + "\n"


def _redact(value, secret_values: set[str]):
    if isinstance(value, dict):
        return {k: _redact(v, secret_values) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, secret_values) for v in value]
    if isinstance(value, str) and any(s in value for s in secret_values):
        return REDACTED
    return value
