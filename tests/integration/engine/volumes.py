"""``docker:index/volume:Volume``, as kreuzwerker/terraform-provider-docker
(``internal/provider``) creates one, through the Docker SDK.

Docker's volume create is idempotent, so a volume that already exists is adopted: its record
says it was not created here, and teardown leaves it alone.
"""

from __future__ import annotations

import docker.errors

from .context import Provider
from .inputs import autoname, labels, str_map
from .keys import T_VOLUME
from .records import Record


class VolumeProvider(Provider):
    typ = T_VOLUME

    def create(self, name: str, inputs: dict) -> tuple[str, dict]:
        vol_name = inputs.get("name") or autoname(name)
        self.ctx.check_prefix(self.typ, name, "volume name", vol_name)
        api = self.ctx.client.api
        try:
            api.inspect_volume(vol_name)
            pre_existing = True
        except docker.errors.NotFound:
            pre_existing = False
        info = api.create_volume(
            vol_name,
            driver=inputs.get("driver") or None,
            driver_opts=str_map(inputs.get("driverOpts")) or None,
            labels=labels(inputs.get("labels")) or None,
        )
        outputs = {
            **inputs,
            "name": info["Name"],
            "driver": info.get("Driver"),
            "mountpoint": info.get("Mountpoint"),
            "driverOpts": info.get("Options") or {},
        }
        created = not pre_existing
        self.ctx.add(
            Record(
                self.typ, name, info["Name"], info["Name"], created, inputs=inputs, outputs=outputs
            )
        )
        return info["Name"], outputs

    def delete(self, rec: Record) -> None:
        try:
            self.ctx.client.api.remove_volume(rec.docker_name)
        except docker.errors.NotFound:
            pass
