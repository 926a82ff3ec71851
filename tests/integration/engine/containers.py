"""``docker:index/container:Container``: a translated plan (container_plan.py) carried out on
the engine, and the container's in-place update and delete.

Follows kreuzwerker/terraform-provider-docker ``internal/provider/resource_docker_container_funcs.go``:
``resourceDockerContainerCreate`` (create, connect the other networks, upload, start, wait for
health), ``resourceDockerContainerRead`` (a must-run container that exited is deleted and the
create fails), ``resourceDockerContainerUpdate`` and ``resourceDockerContainerDelete``.
"""

from __future__ import annotations

import copy
import io
import tarfile
import time
from typing import NoReturn

import docker.errors

from .container_plan import container_plan, swap_bytes
from .context import Provider
from .diff import CONTAINER_UPDATE_API
from .errors import HarnessError
from .keys import T_CONTAINER
from .records import Record

_MIB = 1024 * 1024
# How long a removed container may take to disappear (an auto-remove one may be on its way).
_REMOVAL_TIMEOUT = 30


class ContainerProvider(Provider):
    typ = T_CONTAINER

    def create(self, name: str, inputs: dict) -> tuple[str, dict]:
        spec = container_plan(name, inputs, self.ctx.cwd())
        self.ctx.check_prefix(self.typ, name, "container name", spec["name"])
        rec = Record(self.typ, name, None, spec["name"], inputs=inputs, spec=spec)
        rec.engine = self.ctx.engines.current
        container_id = self.execute(spec, rec)
        rec.outputs = self.read_outputs(inputs, container_id)
        return container_id, rec.outputs

    def update(self, rec: Record, inputs: dict, changed: list[str]) -> None:
        """resourceDockerContainerUpdate on the running container (see diff.py's
        CONTAINER_UPDATE_API); the recorded plan becomes the new one, which a later delete or
        replacement uses."""
        spec = container_plan(rec.name, {**inputs, "name": rec.docker_name}, self.ctx.cwd())
        api = self.ctx.client.api
        if CONTAINER_UPDATE_API.intersection(changed):
            # The provider sends zeros for unset values, which the daemon reads as "unchanged"
            # (moby container.UpdateContainer): the SDK leaving them out sends the same.
            api.update_container(
                rec.docker_id,
                restart_policy=spec["body"]["HostConfig"]["RestartPolicy"],
                cpu_shares=int(inputs.get("cpuShares") or 0),
                mem_limit=int(inputs.get("memory") or 0) * _MIB,
                mem_reservation=int(inputs.get("memoryReservation") or 0) * _MIB,
                cpuset_cpus=inputs.get("cpuSet") or None,
                memswap_limit=swap_bytes(int(inputs.get("memorySwap") or 0)),
            )
        was_kept_running = (rec.spec or {}).get("must_run", True)
        if not was_kept_running and spec["must_run"] and spec["start"]:
            api.start(rec.docker_id)  # must_run false -> true
        rec.spec = spec
        rec.outputs = self.read_outputs(inputs, rec.docker_id)

    def delete(self, rec: Record) -> None:
        """resourceDockerContainerDelete: stop with destroyGraceSeconds, force-remove (with its
        anonymous volumes unless removeVolumes is false), then wait until it is gone."""
        api = self.ctx.engines.client_for(rec.engine).api
        spec = rec.spec or {}
        try:
            grace = spec.get("destroy_grace_seconds") or 0
            if grace > 0:
                api.stop(rec.docker_id, timeout=grace)
            api.remove_container(rec.docker_id, force=True, v=spec.get("remove_volumes", True))
        except docker.errors.NotFound:
            pass
        deadline = time.time() + _REMOVAL_TIMEOUT
        while time.time() < deadline:
            try:
                api.inspect_container(rec.docker_id)
            except docker.errors.NotFound:
                break
            time.sleep(0.1)
        rec.removed = True

    def execute(self, spec: dict, rec: Record) -> str:
        """Creates the container `spec` plans (recording it), connects, uploads and starts it;
        returns its id."""
        api = self.ctx.client.api
        self._require_local_image(rec.name, spec["body"]["Image"])
        container_id = api.create_container_from_config(
            copy.deepcopy(spec["body"]), name=spec["name"]
        )["Id"]
        rec.docker_id, rec.docker_name, rec.removed = container_id, spec["name"], False
        self.ctx.records.add_once(rec)
        self._connect_networks(container_id, spec["connects"])
        for upload in spec["uploads"]:
            api.put_archive(container_id, "/", _upload_tar(upload))
        if spec["start"]:
            api.start(container_id)
            if spec["wait"]:
                self._wait_healthy(rec.name, container_id, spec["wait_timeout"])
            self._wait_running(rec, container_id, spec)
        return container_id

    def _require_local_image(self, name: str, image: str) -> None:
        try:
            self.ctx.client.api.inspect_image(image)
        except docker.errors.ImageNotFound:
            raise HarnessError(
                f"{self.typ} {name!r}: image {image!r} is not present locally and the harness "
                f"never pulls"
            ) from None

    def _connect_networks(self, container_id: str, connects: list[tuple[str, dict]]) -> None:
        """The networksAdvanced entries after the first, each with its endpoint config."""
        for network, endpoint in connects:
            ipam = endpoint.get("IPAMConfig") or {}
            self.ctx.client.api.connect_container_to_network(
                container_id,
                network,
                aliases=endpoint.get("Aliases"),
                ipv4_address=ipam.get("IPv4Address"),
                ipv6_address=ipam.get("IPv6Address"),
                link_local_ips=ipam.get("LinkLocalIPs"),
            )

    def _wait_healthy(self, name: str, container_id: str, timeout: int) -> None:
        """wait=true: healthy within waitTimeout seconds, else the create fails."""
        deadline = time.time() + timeout
        while True:
            state = self.ctx.client.api.inspect_container(container_id)["State"]
            health = state.get("Health")
            if health is None:
                raise HarnessError(
                    f"{self.typ} {name!r}: wait=true but the container has no healthcheck"
                )
            if health.get("Status") == "healthy":
                return
            if time.time() >= deadline:
                log = (health.get("Log") or [])[-3:]
                raise HarnessError(
                    f"{self.typ} {name!r}: container failed to be in healthy state in "
                    f"{timeout}s (status {health.get('Status')!r}, last checks {log})"
                )
            time.sleep(0.5)

    def _wait_running(self, rec: Record, container_id: str, spec: dict) -> None:
        """resourceDockerContainerRead's refresh: a must_run container that exited is deleted, error."""
        if not spec["must_run"]:
            return
        api = self.ctx.client.api
        deadline = time.time() + spec["read_refresh_timeout_ms"] / 1000.0
        time.sleep(0.1)
        while True:
            try:
                state = api.inspect_container(container_id)["State"]
            except docker.errors.NotFound:
                raise HarnessError(
                    f"{self.typ} {rec.name!r}: container vanished after start (rm=true and it exited?)"
                ) from None
            if state.get("Running"):
                return
            if state.get("Status") == "exited" or time.time() >= deadline:
                self._fail_not_running(rec, container_id, state)
            time.sleep(0.1)

    def _fail_not_running(self, rec: Record, container_id: str, state: dict) -> NoReturn:
        """Deletes the container that is not running and raises with its last logs."""
        logs = self.ctx.client.api.logs(container_id, tail=40).decode(errors="replace")
        try:
            self.delete(rec)
        finally:
            raise HarnessError(
                f"{self.typ} {rec.name!r}: container failed to be in running state "
                f"(status {state.get('Status')!r}, exit code {state.get('ExitCode')})\n"
                f"--- logs ---\n{logs}"
            )

    def read_outputs(self, inputs: dict, container_id: str) -> dict:
        """The outputs as resourceDockerContainerRead takes them from the engine."""
        info = self.ctx.client.api.inspect_container(container_id)
        settings = info.get("NetworkSettings") or {}
        outputs = {
            **inputs,
            "id": container_id,
            "name": info["Name"].lstrip("/"),
            "hostname": info["Config"].get("Hostname", ""),
            "networkMode": info["HostConfig"].get("NetworkMode", ""),
            "bridge": settings.get("Bridge", ""),
            "restart": info["HostConfig"]["RestartPolicy"].get("Name") or "no",
            "networkDatas": [
                _network_data(network, data)
                for network, data in sorted((settings.get("Networks") or {}).items())
            ],
        }
        if not info["State"].get("Running"):
            outputs["exitCode"] = info["State"].get("ExitCode")
        return outputs


def _network_data(network: str, data: dict) -> dict:
    """One attached network's addresses, as the networkDatas output lists them."""
    return {
        "networkName": network,
        "ipAddress": data.get("IPAddress", ""),
        "ipPrefixLength": data.get("IPPrefixLen", 0),
        "gateway": data.get("Gateway", ""),
        "globalIpv6Address": data.get("GlobalIPv6Address", ""),
        "globalIpv6PrefixLength": data.get("GlobalIPv6PrefixLen", 0),
        "ipv6Gateway": data.get("IPv6Gateway", ""),
        "macAddress": data.get("MacAddress", ""),
    }


def _upload_tar(upload: dict) -> bytes:
    """A one-file tar of an upload, extracted at "/" (so the entry name is the file path)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tw:
        info = tarfile.TarInfo(name=upload["file"])
        info.size, info.mode, info.mtime = len(upload["data"]), upload["mode"], int(time.time())
        info.uid, info.gid, info.type = upload["uid"], upload["gid"], tarfile.REGTYPE
        tw.addfile(info, io.BytesIO(upload["data"]))
    return buf.getvalue()
