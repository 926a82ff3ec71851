"""Runs the real policy pack the way the Pulumi CLI does, without the CLI.

``PackServer`` starts ``python -m pulumi.policy <addr> policies`` (the launcher the CLI's Python
analyzer uses: it runs ``policies/__main__.py``, which starts ``PolicyPack``'s gRPC server and
prints its port), then talks to it over the analyzer protocol:

* ``configure(config)`` reconciles a ``--policy-pack-config`` style dict like the CLI's
  ``ReconcilePolicyPackConfig`` (schema defaults, then ``"all"``, then per-policy level and
  properties) and sends ``Configure``;
* ``analyze(resources)`` sends ``Analyze`` for every resource (resource policies) and one
  ``AnalyzeStack`` (stack policies) and returns the diagnostics.

Unknown values (``rules.UNKNOWN``) travel as the engine's unknown sentinel strings, so the
pack's own unknown handling is exercised end to end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2 as pb
from pulumi.runtime.proto import analyzer_pb2_grpc as pbg
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policies import rules

REPO_ROOT = Path(__file__).resolve().parents[2]
POLICIES_DIR = REPO_ROOT / "policies"

LEVEL_NAMES = {
    pb.ADVISORY: "advisory",
    pb.MANDATORY: "mandatory",
    pb.DISABLED: "disabled",
    pb.REMEDIATE: "remediate",
}
LEVEL_VALUES = {v: k for k, v in LEVEL_NAMES.items()}


@dataclass(frozen=True)
class Diagnostic:
    policy: str
    level: str
    message: str
    urn: str


def wire(value: Any) -> Any:
    """Plain data -> JSON-able data with the engine's unknown sentinels."""
    if value is rules.UNKNOWN:
        return UNKNOWN_STRING_VALUE
    if isinstance(value, Mapping):
        return {str(k): wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [wire(v) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise TypeError(f"cannot send {type(value).__name__} to the analyzer: {value!r}")


def _ints(value: Any) -> Any:
    """Struct numbers are floats; give integral ones back as ints (as the CLI's JSON has them)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def _struct(data: Mapping[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(wire(data))
    return s


def load_config_file(path: Path) -> Dict[str, Any]:
    return json.loads(path.read_text())


class PackServer:
    def __init__(self, pack_dir: Path = POLICIES_DIR) -> None:
        env = dict(os.environ)
        env.pop("PULUMI_CONFIG", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pulumi.policy", "127.0.0.1:0", str(pack_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(REPO_ROOT),
            env=env,
        )
        line = self.proc.stdout.readline().decode().strip()
        if not line.isdigit():
            self.proc.kill()
            err = self.proc.stderr.read().decode()
            raise RuntimeError(f"policy pack did not start (stdout {line!r}):\n{err}")
        self.channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        self.stub = pbg.AnalyzerStub(self.channel)
        self.info = self.stub.GetAnalyzerInfo(empty_pb2.Empty())
        self.descriptions = {p.name: p.description for p in self.info.policies}

    def close(self) -> None:
        self.channel.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()

    # -- the CLI's config reconciliation ------------------------------------------------------
    def reconcile(self, config: Optional[Mapping[str, Any]] = None) -> Dict[str, Dict[str, Any]]:
        config = dict(config or {})
        result: Dict[str, Dict[str, Any]] = {}
        for p in self.info.policies:
            props = {}
            for key, schema in p.configSchema.properties.items():
                schema = _ints(json_format.MessageToDict(schema))
                if "default" in schema:
                    props[key] = schema["default"]
            result[p.name] = {"level": LEVEL_NAMES[p.enforcementLevel], "properties": props}
        given: Dict[str, Dict[str, Any]] = {}
        for name, value in config.items():
            if isinstance(value, str):
                given[name] = {"level": value, "properties": {}}
            else:
                value = dict(value)
                level = value.pop("enforcementLevel", None)
                given[name] = {"level": level, "properties": value}
        if "all" in given and given["all"]["level"]:
            for r in result.values():
                r["level"] = given["all"]["level"]
        for name, g in given.items():
            if name not in result:
                continue
            if g["level"]:
                result[name]["level"] = g["level"]
            result[name]["properties"].update(g["properties"])
        return result

    def configure(self, config: Optional[Mapping[str, Any]] = None) -> Dict[str, Dict[str, Any]]:
        reconciled = self.reconcile(config)
        request = pb.ConfigureAnalyzerRequest(
            policyConfig={
                name: pb.PolicyConfig(
                    enforcementLevel=LEVEL_VALUES[c["level"]], properties=_struct(c["properties"])
                )
                for name, c in reconciled.items()
            }
        )
        self.stub.Configure(request)
        return reconciled

    # -- analysis ------------------------------------------------------------------------------
    def analyze(
        self, resources: Iterable[rules.Resource], config: Optional[Mapping[str, Any]] = None
    ) -> List[Diagnostic]:
        resources = list(resources)
        self.configure(config)
        out: List[Diagnostic] = []

        def collect(response: Any, default_urn: str = "") -> None:
            for d in response.diagnostics:
                out.append(
                    Diagnostic(
                        d.policyName,
                        LEVEL_NAMES[d.enforcementLevel],
                        d.message,
                        d.urn or default_urn,
                    )
                )

        for r in resources:
            opts = pb.AnalyzerResourceOptions(protect=r.protect, parent=r.parent or "")
            collect(
                self.stub.Analyze(
                    pb.AnalyzeRequest(
                        type=r.type,
                        name=r.name,
                        urn=r.urn,
                        properties=_struct(r.props),
                        options=opts,
                    )
                ),
                r.urn,
            )
        stack = [
            pb.AnalyzerResource(
                type=r.type,
                name=r.name,
                urn=r.urn,
                properties=_struct(r.props),
                options=pb.AnalyzerResourceOptions(protect=r.protect, parent=r.parent or ""),
                parent=r.parent or "",
                dependencies=list(r.dependencies),
            )
            for r in resources
        ]
        collect(self.stub.AnalyzeStack(pb.AnalyzeStackRequest(resources=stack)))
        return out
