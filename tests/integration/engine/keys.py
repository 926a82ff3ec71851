"""The resource types the harness translates and, per type, the input keys it translates.

The tables are the harness's contract with the program: a set input key missing here is
refused (inputs.check_keys), so the program cannot come to rely on something the harness
silently drops.  The update rules (diff.py) read the same tables for the keys a provider
replaces on.
"""

from __future__ import annotations

# Per-type tables of the input keys the harness translates.  A nested table applies to an
# object value or to every object of a list value.  Anything else fails loudly.
_LABEL = {"label": None, "value": None}
_IMAGE_BUILD = {
    "context": None,
    "dockerfile": None,
    "args": None,
    "target": None,
    "platform": None,
    "builderVersion": None,
    "addHosts": None,
    "network": None,
}
_IMAGE = {
    "imageName": None,
    "build": _IMAGE_BUILD,
    "skipPush": None,
    "buildOnPreview": None,
    "registry": None,
}
_REMOTE_IMAGE = {
    "name": None,
    "keepLocally": None,
    "forceRemove": None,
    "triggers": None,
    "pullTriggers": None,
}
_NETWORK = {
    "name": None,
    "driver": None,
    "labels": _LABEL,
    "internal": None,
    "attachable": None,
    "options": None,
    "ipamDriver": None,
    "ipamOptions": None,
    "ipv6": None,
    "ipamConfigs": {"subnet": None, "gateway": None, "ipRange": None, "auxAddress": None},
}
_VOLUME = {"name": None, "driver": None, "driverOpts": None, "labels": _LABEL}
_CONTAINER = {
    "name": None,
    "image": None,
    "command": None,
    "entrypoints": None,
    "envs": None,
    "user": None,
    "hostname": None,
    "domainname": None,
    "workingDir": None,
    "labels": _LABEL,
    "networksAdvanced": {
        "name": None,
        "ipv4Address": None,
        "ipv6Address": None,
        "aliases": None,
        "linkLocalIps": None,
    },
    "networkMode": None,
    "volumes": {
        "volumeName": None,
        "containerPath": None,
        "readOnly": None,
        "hostPath": None,
        "fromContainer": None,
    },
    "mounts": {
        "type": None,
        "target": None,
        "source": None,
        "readOnly": None,
        "bindOptions": {"propagation": None},
        "volumeOptions": {
            "noCopy": None,
            "labels": _LABEL,
            "driverName": None,
            "driverOptions": None,
        },
        "tmpfsOptions": {"sizeBytes": None, "mode": None},
    },
    "capabilities": {"adds": None, "drops": None},
    "uploads": {
        "file": None,
        "content": None,
        "contentBase64": None,
        "executable": None,
        "source": None,
        "permissions": None,
        "owner": None,
        "group": None,
        "sourceHash": None,
    },
    "healthcheck": {
        "tests": None,
        "interval": None,
        "timeout": None,
        "retries": None,
        "startPeriod": None,
        "startInterval": None,
    },
    "restart": None,
    "maxRetryCount": None,
    "stopSignal": None,
    "stopTimeout": None,
    "destroyGraceSeconds": None,
    "memory": None,
    "memorySwap": None,
    "memoryReservation": None,
    "cpuShares": None,
    "cpuSet": None,
    "cpus": None,
    "shmSize": None,
    "ports": {"internal": None, "external": None, "ip": None, "protocol": None},
    "publishAllPorts": None,
    "logDriver": None,
    "logOpts": None,
    "init": None,
    "sysctls": None,
    "mustRun": None,
    "wait": None,
    "waitTimeout": None,
    "containerReadRefreshTimeoutMilliseconds": None,
    "start": None,
    "rm": None,
    "removeVolumes": None,
    "privileged": None,
    "tmpfs": None,
    "readOnly": None,
    "tty": None,
    "stdinOpen": None,
    "dns": None,
    "dnsOpts": None,
    "dnsSearches": None,
    "hosts": {"host": None, "ip": None},
    "ulimits": {"name": None, "soft": None, "hard": None},
    "pidMode": None,
    "ipcMode": None,
    "securityOpts": None,
    "groupAdds": None,
    "cgroupnsMode": None,
    "attach": None,
    "logs": None,
}
_COMMAND = {
    "create": None,
    "delete": None,
    "update": None,
    "dir": None,
    "environment": None,
    "interpreter": None,
    "stdin": None,
    "triggers": None,
    "logging": None,
    "addPreviousOutputInEnv": None,
}
_PASSWORD = {
    "length": None,
    "special": None,
    "overrideSpecial": None,
    "upper": None,
    "lower": None,
    "numeric": None,
    "number": None,
    "minUpper": None,
    "minLower": None,
    "minNumeric": None,
    "minSpecial": None,
    "keepers": None,
}

T_IMAGE = "docker:index/image:Image"
T_REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
T_NETWORK = "docker:index/network:Network"
T_VOLUME = "docker:index/volume:Volume"
T_CONTAINER = "docker:index/container:Container"
T_COMMAND = "command:local:Command"
T_PASSWORD = "random:index/randomPassword:RandomPassword"

HANDLED_KEYS: dict[str, dict] = {
    T_IMAGE: _IMAGE,
    T_REMOTE_IMAGE: _REMOTE_IMAGE,
    T_NETWORK: _NETWORK,
    T_VOLUME: _VOLUME,
    T_CONTAINER: _CONTAINER,
    T_COMMAND: _COMMAND,
    T_PASSWORD: _PASSWORD,
}
