"""The Docker engines a stack deploys to, as pulumi-docker providers, and the image on each."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_docker as docker

from ..plan.cluster import EnginesPlan

IMAGE_CONTEXT = "images/patroni"  # relative to the project directory, where Pulumi runs


class Engines:
    """One explicit provider per engine of `hosts.engines`, none without that config (the
    default provider: the engine of the machine running Pulumi, as before). The project
    image is built on every engine from the same context, so no registry is involved, and
    each container takes the image of its own engine."""

    def __init__(self, name: str, plan: EnginesPlan, parent: pulumi.Resource):
        self._hosts = plan.hosts
        self.providers: dict[str, docker.Provider] = {
            e.name: docker.Provider(
                f"{name}-{e.name}",
                host=e.endpoint,
                cert_path=e.cert_path,
                ssh_opts=list(e.ssh_opts) or None,
                opts=pulumi.ResourceOptions(parent=parent),
            )
            for e in plan.hosts.engines
        }
        hosts: list[Optional[str]] = list(self.providers) or [None]
        self.images: dict[Optional[str], docker.Image] = {
            host: docker.Image(
                f"{name}-image" if host is None else f"{name}-image-{host}",
                image_name=plan.image_name,
                build=docker.DockerBuildArgs(
                    context=IMAGE_CONTEXT,
                    dockerfile=f"{IMAGE_CONTEXT}/Dockerfile",
                    target=plan.image_target,
                    args=dict(plan.build_args),
                ),
                skip_push=True,
                opts=pulumi.ResourceOptions(parent=parent, provider=self.provider(host)),
            )
            for host in hosts
        }

    @property
    def several(self) -> bool:
        return self._hosts.several

    def provider(self, host: Optional[str]) -> Optional[docker.Provider]:
        return self.providers[host] if host is not None else None

    def host_of(self, container: str) -> Optional[str]:
        return self._hosts.host_of(container)

    def provider_of(self, container: str) -> Optional[docker.Provider]:
        """The provider of the engine `container` is placed on (None: the default)."""
        return self.provider(self.host_of(container))

    def image_of(self, container: str) -> pulumi.Output[str]:
        """The local image id on the container's engine: a rebuild changes it, so the
        containers using it are replaced."""
        return self.images[self.host_of(container)].repo_digest

    @property
    def only_image(self) -> pulumi.Output[str]:
        """The image of a stack on one engine (what the one-engine services use)."""
        if len(self.images) != 1:
            raise ValueError("several engines: take each container's image with image_of")
        return next(iter(self.images.values())).repo_digest

    @property
    def inherited(self) -> list[pulumi.ProviderResource]:
        """Providers every child of the cluster inherits: the engine of a one-engine stack."""
        return list(self.providers.values()) if len(self.providers) == 1 else []

    @property
    def network_provider(self) -> Optional[docker.Provider]:
        """Where the cluster network is created: the Swarm manager with several engines."""
        manager = self._hosts.manager
        return self.providers[manager.name] if manager is not None else None
