"""``docker:index/container:Container`` inputs translated into a plan: the Docker create body
plus the steps after create (network connects, uploads, start, waits) and what Delete reads.

The translation follows kreuzwerker/terraform-provider-docker
``internal/provider/resource_docker_container_funcs.go`` (``resourceDockerContainerCreate``)
and ``resource_docker_container_structures.go`` (``portSetToDockerPorts``,
``volumeSetToDockerVolumes``), one step per concern below.  The plan is pure data, kept on the
record, so that a replacement or a test can create the very same container again.
"""

from __future__ import annotations

import base64
import os
from typing import Any, Optional

from .durations import parse_go_duration
from .errors import HarnessError, UntranslatedInputError
from .inputs import autoname, labels, str_map
from .keys import T_CONTAINER

_MIB = 1024 * 1024

# Inputs copied to the body as they are, by Docker name.
_PROCESS_STRINGS = (
    ("hostname", "Hostname"),
    ("domainname", "Domainname"),
    ("user", "User"),
    ("workingDir", "WorkingDir"),
    ("stopSignal", "StopSignal"),
)
_PROCESS_FLAGS = (("tty", "Tty"), ("stdinOpen", "OpenStdin"))
_HOST_LISTS = (
    ("dns", "Dns"),
    ("dnsOpts", "DnsOptions"),
    ("dnsSearches", "DnsSearch"),
    ("securityOpts", "SecurityOpt"),
    ("groupAdds", "GroupAdd"),
)
_NAMESPACE_MODES = (
    ("pidMode", "PidMode"),
    ("ipcMode", "IpcMode"),
    ("cgroupnsMode", "CgroupnsMode"),
)
_HEALTHCHECK_DURATIONS = (
    ("interval", "Interval"),
    ("timeout", "Timeout"),
    ("startPeriod", "StartPeriod"),
    ("startInterval", "StartInterval"),
)
_ENDPOINT_ADDRESSES = (
    ("ipv4Address", "IPv4Address"),
    ("ipv6Address", "IPv6Address"),
    ("linkLocalIps", "LinkLocalIPs"),
)
_UPLOAD_SOURCES = ("content", "contentBase64", "source")


def container_plan(name: str, inputs: dict, cwd: str) -> dict:
    """Translate Container inputs into a Docker create body plus the post-create steps.
    `cwd` is where upload sources resolve."""
    _refuse_unsupported(name, inputs)
    container_name = inputs.get("name") or autoname(name)
    config: dict[str, Any] = {"Image": inputs["image"], **_process(inputs)}
    exposed_ports, host = _ports(inputs)
    anonymous_volumes, volume_binds = _volumes(name, inputs)
    host.update(volume_binds)
    host.update(_mounts(name, inputs))
    healthcheck = _healthcheck(name, inputs.get("healthcheck"))
    host.update(_host_settings(inputs))
    network_mode, networking, connects = _networks(name, inputs)
    host.update(network_mode)
    if exposed_ports:
        config["ExposedPorts"] = exposed_ports
    if anonymous_volumes:
        config["Volumes"] = anonymous_volumes
    if healthcheck:
        config["Healthcheck"] = healthcheck
    config["HostConfig"] = host  # never empty: it always has the restart policy
    if networking:
        config["NetworkingConfig"] = networking
    return {
        "name": container_name,
        "body": config,
        "connects": connects,
        "uploads": _uploads(name, inputs, cwd),
        **_lifecycle(inputs),
    }


def _refuse_unsupported(name: str, inputs: dict) -> None:
    """What the provider itself refuses, and what the harness will not run."""

    def untranslated(key: str, why: str) -> UntranslatedInputError:
        return UntranslatedInputError(T_CONTAINER, name, key, inputs.get(key), why)

    if not inputs.get("image"):
        raise HarnessError(f"{T_CONTAINER} {name!r}: image is required")
    if inputs.get("privileged"):
        raise untranslated("privileged", "privileged containers are refused by the harness")
    if inputs.get("attach") or inputs.get("logs"):
        key = "attach" if inputs.get("attach") else "logs"
        raise untranslated(key, "attach/logs are not supported")
    if any(c == "" for c in inputs.get("command") or []):
        raise HarnessError(f"{T_CONTAINER} {name!r}: values for command may not be empty")


def _process(inputs: dict) -> dict[str, Any]:
    """The container's process: identity, environment, command and labels."""
    config: dict[str, Any] = {}
    for key, docker_key in _PROCESS_STRINGS:
        if inputs.get(key):
            config[docker_key] = inputs[key]
    for key, docker_key in _PROCESS_FLAGS:
        if inputs.get(key):
            config[docker_key] = True
    if inputs.get("stopTimeout") is not None:
        config["StopTimeout"] = int(inputs["stopTimeout"])
    if inputs.get("envs"):
        config["Env"] = list(inputs["envs"])
    if inputs.get("command"):
        config["Cmd"] = list(inputs["command"])
    if inputs.get("entrypoints"):
        config["Entrypoint"] = list(inputs["entrypoints"])
    if inputs.get("labels"):
        config["Labels"] = labels(inputs["labels"])
    return config


def _ports(inputs: dict) -> tuple[dict[str, dict], dict[str, Any]]:
    """portSetToDockerPorts (schema defaults protocol=tcp, ip=0.0.0.0): the exposed ports and
    the host config's bindings."""
    exposed: dict[str, dict] = {}
    host: dict[str, Any] = {}
    if inputs.get("ports"):
        bindings: dict[str, list] = {}
        for port in inputs["ports"]:
            key = f"{int(port['internal'])}/{port.get('protocol') or 'tcp'}"
            exposed[key] = {}
            external = port.get("external")
            bindings.setdefault(key, []).append(
                {
                    "HostIp": port.get("ip") or "0.0.0.0",
                    "HostPort": str(int(external)) if external else "",
                }
            )
        host["PortBindings"] = bindings
    if inputs.get("publishAllPorts"):
        host["PublishAllPorts"] = True
    return exposed, host


def _volumes(name: str, inputs: dict) -> tuple[dict[str, dict], dict[str, list]]:
    """volumeSetToDockerVolumes: anonymous volumes for the body; binds (named volumes and
    host paths) and volumes-from for the host config."""
    binds: list[str] = []
    volumes_from: list[str] = []
    anonymous: dict[str, dict] = {}
    for volume in inputs.get("volumes") or []:
        from_container = volume.get("fromContainer") or ""
        container_path = volume.get("containerPath") or ""
        source = _volume_source(name, volume, from_container, container_path)
        if from_container:
            volumes_from.append(from_container)
        elif source:
            binds.append(f"{source}:{container_path}:{'ro' if volume.get('readOnly') else 'rw'}")
        else:
            anonymous[container_path] = {}
    host: dict[str, list] = {}
    if binds:
        host["Binds"] = binds
    if volumes_from:
        host["VolumesFrom"] = volumes_from
    return anonymous, host


def _volume_source(name: str, volume: dict, from_container: str, container_path: str) -> str:
    """A volumes entry's named volume or host path, after the provider's consistency checks."""
    if volume.get("volumeName") and volume.get("hostPath"):
        raise HarnessError(
            f"{T_CONTAINER} {name!r}: volumes entry sets both volumeName and hostPath (ambiguous)"
        )
    source = volume.get("volumeName") or volume.get("hostPath") or ""
    if not from_container and not container_path:
        raise HarnessError(
            f"{T_CONTAINER} {name!r}: volume entry without container path or source container"
        )
    if from_container and container_path:
        raise HarnessError(
            f"{T_CONTAINER} {name!r}: both a container and a path specified in a volume entry"
        )
    return source


def _mounts(name: str, inputs: dict) -> dict[str, list]:
    """The ``mounts`` entries as the host config's Mounts (bind, volume or tmpfs)."""
    mounts = [_mount(name, m) for m in inputs.get("mounts") or []]
    return {"Mounts": mounts} if mounts else {}


def _mount(name: str, m: dict) -> dict[str, Any]:
    mount_type = m.get("type")
    if mount_type not in ("bind", "volume", "tmpfs"):
        raise HarnessError(f"{T_CONTAINER} {name!r}: mounts type {mount_type!r} is not supported")
    mount: dict[str, Any] = {
        "Type": mount_type,
        "Target": m.get("target"),
        "Source": m.get("source") or "",
    }
    if m.get("readOnly"):
        mount["ReadOnly"] = True
    if mount_type == "bind" and m.get("bindOptions"):
        mount["BindOptions"] = {"Propagation": m["bindOptions"].get("propagation") or ""}
    if mount_type == "volume" and m.get("volumeOptions"):
        mount["VolumeOptions"] = _volume_options(m["volumeOptions"])
    if mount_type == "tmpfs" and m.get("tmpfsOptions"):
        tmpfs = m["tmpfsOptions"]
        mount["TmpfsOptions"] = {
            docker_key: int(tmpfs[key])
            for key, docker_key in (("sizeBytes", "SizeBytes"), ("mode", "Mode"))
            if tmpfs.get(key)
        }
    return mount


def _volume_options(options: dict) -> dict[str, Any]:
    translated: dict[str, Any] = {}
    if options.get("noCopy"):
        translated["NoCopy"] = True
    if options.get("labels"):
        translated["Labels"] = labels(options["labels"])
    if options.get("driverName") or options.get("driverOptions"):
        translated["DriverConfig"] = {
            "Name": options.get("driverName") or "",
            "Options": str_map(options.get("driverOptions")),
        }
    return translated


def _healthcheck(name: str, healthcheck: Optional[dict]) -> Optional[dict[str, Any]]:
    """The healthcheck with its Go durations in nanoseconds, as the provider sends them."""
    if not healthcheck:
        return None
    health: dict[str, Any] = {"Test": list(healthcheck.get("tests") or [])}
    for key, docker_key in _HEALTHCHECK_DURATIONS:
        if healthcheck.get(key):
            try:
                health[docker_key] = parse_go_duration(healthcheck[key])
            except ValueError as exc:
                raise HarnessError(f"{T_CONTAINER} {name!r}: healthcheck.{key}: {exc}") from None
    if healthcheck.get("retries"):
        health["Retries"] = int(healthcheck["retries"])
    return health


def _host_settings(inputs: dict) -> dict[str, Any]:
    """The host config besides ports, volumes, mounts and networks, in the provider's order."""
    return {
        "RestartPolicy": {
            "Name": inputs.get("restart") or "no",
            "MaximumRetryCount": int(inputs.get("maxRetryCount") or 0),
        },
        **_filesystem(inputs),
        **_logging(inputs),
        **({"Tmpfs": str_map(inputs["tmpfs"])} if inputs.get("tmpfs") else {}),
        **_capabilities(inputs),
        **_name_resolution_and_security(inputs),
        **_resource_limits(inputs),
        **({"Sysctls": str_map(inputs["sysctls"])} if inputs.get("sysctls") else {}),
        **_namespaces(inputs),
    }


def _filesystem(inputs: dict) -> dict[str, Any]:
    host: dict[str, Any] = {}
    if inputs.get("rm"):
        host["AutoRemove"] = True
    if inputs.get("readOnly"):
        host["ReadonlyRootfs"] = True
    return host


def _logging(inputs: dict) -> dict[str, Any]:
    if not (inputs.get("logDriver") or inputs.get("logOpts")):
        return {}
    return {
        "LogConfig": {
            "Type": inputs.get("logDriver") or "",
            "Config": str_map(inputs.get("logOpts")),
        }
    }


def _capabilities(inputs: dict) -> dict[str, list]:
    """Added and dropped capabilities, passed through as given, like the provider."""
    caps = inputs.get("capabilities") or {}
    host: dict[str, list] = {}
    if caps.get("adds"):
        host["CapAdd"] = list(caps["adds"])
    if caps.get("drops"):
        host["CapDrop"] = list(caps["drops"])
    return host


def _name_resolution_and_security(inputs: dict) -> dict[str, list]:
    """DNS settings, security options, extra groups and /etc/hosts entries."""
    host: dict[str, list] = {}
    for key, docker_key in _HOST_LISTS:
        if inputs.get(key):
            host[docker_key] = list(inputs[key])
    if inputs.get("hosts"):
        host["ExtraHosts"] = [f"{h['host']}:{h['ip']}" for h in inputs["hosts"]]
    return host


def _resource_limits(inputs: dict) -> dict[str, Any]:
    """Ulimits, memory (MiB in the provider's schema; a negative swap means unlimited) and
    CPU."""
    host: dict[str, Any] = {}
    if inputs.get("ulimits"):
        host["Ulimits"] = [
            {"Name": u["name"], "Soft": int(u["soft"]), "Hard": int(u["hard"])}
            for u in inputs["ulimits"]
        ]
    if inputs.get("memory"):
        host["Memory"] = int(inputs["memory"]) * _MIB
    if inputs.get("memorySwap"):
        host["MemorySwap"] = swap_bytes(int(inputs["memorySwap"]))
    if inputs.get("memoryReservation"):
        host["MemoryReservation"] = int(inputs["memoryReservation"]) * _MIB
    if inputs.get("shmSize"):
        host["ShmSize"] = int(inputs["shmSize"]) * _MIB
    if inputs.get("cpuShares"):
        host["CpuShares"] = int(inputs["cpuShares"])
    if inputs.get("cpuSet"):
        host["CpusetCpus"] = inputs["cpuSet"]
    if inputs.get("cpus"):
        host["NanoCpus"] = int(round(float(inputs["cpus"]) * 1e9))
    return host


def swap_bytes(swap_mib: int) -> int:
    """memorySwap in bytes; -1 (unlimited) and other negatives pass through."""
    return swap_mib * _MIB if swap_mib > 0 else swap_mib


def _namespaces(inputs: dict) -> dict[str, Any]:
    """The pid, ipc and cgroup namespace modes, and whether an init process runs."""
    host: dict[str, Any] = {}
    for key, docker_key in _NAMESPACE_MODES:
        if inputs.get(key):
            host[docker_key] = inputs[key]
    if inputs.get("init") is not None:
        host["Init"] = bool(inputs["init"])
    return host


def _networks(
    name: str, inputs: dict
) -> tuple[dict[str, str], Optional[dict], list[tuple[str, dict]]]:
    """networkMode, or the first networksAdvanced entry at create and the rest connected after
    create (before uploads and start): the host config's NetworkMode, the body's
    NetworkingConfig and the connects."""
    networks = inputs.get("networksAdvanced") or []
    mode = inputs.get("networkMode") or ""
    if not networks:
        return ({"NetworkMode": mode} if mode else {}), None, []
    if mode and mode not in ("bridge", "default"):
        raise HarnessError(
            f"{T_CONTAINER} {name!r}: networkMode {mode!r} cannot be combined with networksAdvanced"
        )
    first, rest = networks[0], networks[1:]
    if not first.get("name"):
        raise HarnessError(f"{T_CONTAINER} {name!r}: networksAdvanced[0].name is required")
    networking = {"EndpointsConfig": {first["name"]: _endpoint(first)}}
    connects = [(n["name"], _endpoint(n)) for n in rest]
    return {"NetworkMode": first["name"]}, networking, connects


def _endpoint(network: dict) -> dict[str, Any]:
    """A networksAdvanced entry as an endpoint config: fixed addresses and aliases."""
    endpoint: dict[str, Any] = {}
    addresses = {
        docker_key: network[key] for key, docker_key in _ENDPOINT_ADDRESSES if network.get(key)
    }
    if addresses:
        endpoint["IPAMConfig"] = addresses
    if network.get("aliases"):
        endpoint["Aliases"] = list(network["aliases"])
    return endpoint


def _uploads(name: str, inputs: dict, cwd: str) -> list[dict]:
    """One tar entry per upload, named by the file path and extracted at "/" before start."""
    return [_upload(name, i, u, cwd) for i, u in enumerate(inputs.get("uploads") or [])]


def _upload(name: str, i: int, upload: dict, cwd: str) -> dict:
    data = _upload_data(name, i, upload, cwd)
    mode_bits = _upload_mode(name, i, upload)
    ids = _upload_owner(name, i, upload)
    if not upload.get("file"):
        raise HarnessError(f"{T_CONTAINER} {name!r}: uploads[{i}].file is required")
    return {
        "file": upload["file"],
        "data": data,
        "mode": mode_bits,
        "uid": ids.get("owner", 0),
        "gid": ids.get("group", 0),
    }


def _upload_data(name: str, i: int, upload: dict, cwd: str) -> bytes:
    """The content: exactly one of content, contentBase64, or a source file under `cwd`."""
    given = [k for k in _UPLOAD_SOURCES if upload.get(k)]
    if len(given) != 1:
        raise HarnessError(
            f"{T_CONTAINER} {name!r}: uploads[{i}]: exactly one of 'content', 'content_base64' or "
            f"'source' must be set (got {given})"
        )
    if given[0] == "content":
        return upload["content"].encode()
    if given[0] == "contentBase64":
        return base64.b64decode(upload["contentBase64"])
    with open(os.path.join(cwd, upload["source"]), "rb") as fh:
        return fh.read()


def _upload_mode(name: str, i: int, upload: dict) -> int:
    """`permissions` (octal), else 0744 when executable, else 0644."""
    if not upload.get("permissions"):
        return 0o744 if upload.get("executable") else 0o644
    try:
        return int(str(upload["permissions"]), 8)
    except ValueError:
        raise HarnessError(
            f"{T_CONTAINER} {name!r}: uploads[{i}].permissions {upload['permissions']!r} is not octal"
        ) from None


def _upload_owner(name: str, i: int, upload: dict) -> dict[str, int]:
    """Numeric owner and group ids (uid/gid 0 when unset); names are not translated."""
    ids = {}
    for key in ("owner", "group"):
        if upload.get(key):
            if not str(upload[key]).isdigit():
                raise UntranslatedInputError(
                    T_CONTAINER,
                    name,
                    f"uploads[{i}].{key}",
                    upload[key],
                    "only numeric ids are translated",
                )
            ids[key] = int(upload[key])
    return ids


def _lifecycle(inputs: dict) -> dict[str, Any]:
    """What the steps after create and the provider's Delete read, with the schema defaults."""
    wait_timeout = inputs.get("waitTimeout")
    refresh_ms = inputs.get("containerReadRefreshTimeoutMilliseconds")
    return {
        "start": inputs.get("start") is not False,
        "wait": bool(inputs.get("wait")),
        "wait_timeout": int(wait_timeout) if wait_timeout else 60,
        "must_run": inputs.get("mustRun") is not False,
        "read_refresh_timeout_ms": int(refresh_ms) if refresh_ms else 15000,
        "destroy_grace_seconds": int(inputs.get("destroyGraceSeconds") or 0),
        "remove_volumes": inputs.get("removeVolumes") is not False,
    }
