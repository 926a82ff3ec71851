"""The engine proxy's plan and the crash watcher's, its main client."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Settings
from . import render


@dataclass(frozen=True)
class EngineProxyPlan:
    scope: str
    network_name: str
    container_name: str
    socket: str  # the engine's API socket on the host
    address: str  # where clients reach it: host:port on its network


@dataclass(frozen=True)
class CrashWatcherPlan:
    scope: str
    container_name: str
    address: str  # on the cluster network
    environment: tuple[str, ...]


def plan_engine_proxy(settings: Settings) -> EngineProxyPlan:
    scope = settings.cluster.scope
    return EngineProxyPlan(
        scope=scope,
        network_name=f"{scope}-engine",
        container_name=f"{scope}-engine-proxy",
        socket=settings.engine.socket,
        address=render.engine_proxy_address(settings),
    )


def plan_crash_watcher(settings: Settings) -> CrashWatcherPlan:
    scope = settings.cluster.scope
    return CrashWatcherPlan(
        scope=scope,
        container_name=f"{scope}-crash-watcher",
        address=str(settings.crash_watcher_address),
        environment=tuple(render.crash_watcher_environment(settings)),
    )
