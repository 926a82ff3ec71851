"""``docker:index/network:Network``, as kreuzwerker/terraform-provider-docker
(``internal/provider``) creates one, through the Docker SDK.

A name left unset is autonamed as Pulumi does; the outputs are read back from the engine, as
the provider's Read fills its state.
"""

from __future__ import annotations

from typing import Optional

import docker
import docker.errors
import docker.types

from .context import Provider
from .inputs import autoname, labels, str_map
from .keys import T_NETWORK
from .records import Record


class NetworkProvider(Provider):
    typ = T_NETWORK

    def create(self, name: str, inputs: dict) -> tuple[str, dict]:
        net_name = inputs.get("name") or autoname(name)
        self.ctx.check_prefix(self.typ, name, "network name", net_name)
        api = self.ctx.client.api
        res = api.create_network(
            net_name,
            driver=inputs.get("driver") or None,
            options=str_map(inputs.get("options")) or None,
            ipam=_ipam(inputs),
            internal=bool(inputs.get("internal")),
            labels=labels(inputs.get("labels")) or None,
            enable_ipv6=bool(inputs.get("ipv6")),
            attachable=bool(inputs.get("attachable")) or None,
            check_duplicate=True,
        )
        net_id = res["Id"]
        # recorded before reading it back, so that teardown removes it if the read fails
        rec = self.ctx.add(Record(self.typ, name, net_id, net_name, inputs=inputs))
        rec.outputs = {**inputs, **_read_outputs(api.inspect_network(net_id), net_name)}
        return net_id, rec.outputs

    def delete(self, rec: Record) -> None:
        try:
            self.ctx.client.api.remove_network(rec.docker_id)
        except docker.errors.NotFound:
            pass


def _ipam(inputs: dict) -> Optional[docker.types.IPAMConfig]:
    """The IPAM config when any IPAM input is set, else the engine's default."""
    if not (inputs.get("ipamDriver") or inputs.get("ipamOptions") or inputs.get("ipamConfigs")):
        return None
    pools = [
        docker.types.IPAMPool(
            subnet=c.get("subnet") or None,
            iprange=c.get("ipRange") or None,
            gateway=c.get("gateway") or None,
            aux_addresses=str_map(c.get("auxAddress")) or None,
        )
        for c in inputs.get("ipamConfigs") or []
    ]
    return docker.types.IPAMConfig(
        driver=inputs.get("ipamDriver") or "default",
        pool_configs=pools,
        options=str_map(inputs.get("ipamOptions")) or None,
    )


def _read_outputs(info: dict, net_name: str) -> dict:
    """The network's outputs as the provider's Read takes them from the engine."""
    ipam = info.get("IPAM") or {}
    return {
        "name": net_name,
        "driver": info.get("Driver"),
        "scope": info.get("Scope"),
        "internal": bool(info.get("Internal")),
        "attachable": bool(info.get("Attachable")),
        "ipv6": bool(info.get("EnableIPv6")),
        "options": info.get("Options") or {},
        "ipamDriver": ipam.get("Driver") or "default",
        "ipamConfigs": [
            {
                "subnet": c.get("Subnet", ""),
                "gateway": c.get("Gateway", ""),
                "ipRange": c.get("IPRange", ""),
                "auxAddress": c.get("AuxiliaryAddresses") or {},
            }
            for c in ipam.get("Config") or []
        ],
    }
