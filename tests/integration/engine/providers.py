"""The resource types the harness translates, each through its provider (see context.py).

Creating and deleting go through here so that every registration's state is kept the same
way: the id and outputs the engine got back, and the options it was registered with, which a
later run's update and deletes read.
"""

from __future__ import annotations

from tests.programrun import RegistrationOptions

from .commands import CommandProvider
from .containers import ContainerProvider
from .context import Context, Provider
from .images import ImageProvider, RemoteImageProvider
from .networks import NetworkProvider
from .passwords import PasswordProvider
from .records import Record
from .volumes import VolumeProvider


class Providers:
    """Every translated type's provider, by type token."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.containers = ContainerProvider(ctx)
        self.commands = CommandProvider(ctx)
        self._by_type: dict[str, Provider] = {
            provider.typ: provider
            for provider in (
                ImageProvider(ctx),
                RemoteImageProvider(ctx),
                NetworkProvider(ctx),
                VolumeProvider(ctx),
                self.containers,
                self.commands,
                PasswordProvider(ctx),
            )
        }

    def translates(self, typ: str) -> bool:
        return typ in self._by_type

    def __getitem__(self, typ: str) -> Provider:
        return self._by_type[typ]

    def create(
        self, typ: str, name: str, inputs: dict, options: RegistrationOptions
    ) -> tuple[str, dict]:
        """Creates a resource on the current step's engine; its record keeps what the engine
        got back (an unchanged resource in a later run returns the same) and its options."""
        resource_id, outputs = self[typ].create(name, inputs)
        created = self.ctx.records.latest(typ, name)
        created.resource_id, created.outputs, created.options = resource_id, outputs, options
        return resource_id, outputs

    def delete(self, rec: Record) -> None:
        """Deletes what `rec` names, on the engine it was created on."""
        with self.ctx.engines.on(rec.engine):
            self[rec.typ].delete(rec)
        rec.removed = True
