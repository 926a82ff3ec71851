"""The Docker engines a deployment reaches: the default one and the explicit providers' ones.

Explicit ``pulumi:providers:docker`` instances name other engines, as pulumi-docker's provider
config does (``host``, ``certPath``: the Docker client's ``DOCKER_HOST`` and
``DOCKER_CERT_PATH`` with TLS verified); every resource registered with one is created, read
and deleted on that engine.  Registrations run on worker threads, so the engine a step works
on, and the clients, are per thread.  An ``ssh://`` host or any other provider key is not
translated and raises.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator, Optional

import docker

from .errors import HarnessError
from .inputs import check_keys, plain

# Engine id None: the default engine (the provider's default instance).
EngineId = Optional[str]

_PROVIDER_KEYS: dict[str, Any] = {"version": None, "pluginDownloadURL": None}
_DOCKER_PROVIDER_KEYS = {**_PROVIDER_KEYS, "host": None, "certPath": None}


class Engines:
    """The default engine and the explicit docker providers' engines, by provider id.

    :param client_factory: returns a client of the default engine.
    :param timeout: seconds for one API call (an image build is one).
    """

    def __init__(self, client_factory: Callable[[], docker.DockerClient], timeout: int):
        self._client_factory = client_factory
        self._timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        # Explicit providers' configs by id: their `host` and `certPath`.
        self.configs: dict[str, dict] = {}

    def register_provider(self, typ: str, name: str, raw_inputs: dict) -> tuple[str, dict]:
        """A ``pulumi:providers:*`` registration: its config, kept by the id returned."""
        inputs = plain(raw_inputs, f"{typ} {name!r}")
        keys = _DOCKER_PROVIDER_KEYS if typ == "pulumi:providers:docker" else _PROVIDER_KEYS
        check_keys(typ, name, inputs, keys)
        provider_id = f"{name}-provider"
        with self._lock:
            self.configs[provider_id] = inputs
        return provider_id, inputs

    def engine_of(self, typ: str, name: str, provider: Optional[str]) -> EngineId:
        """The explicit docker provider a registration names (its reference is URN::id),
        None for the default one; any other provider of a docker type raises."""
        if not typ.startswith("docker:") or not provider:
            return None
        provider_id = provider.rsplit("::", 1)[-1]
        if provider_id in self.configs:
            return provider_id
        if "::pulumi:providers:docker::default" in provider:
            return None
        raise HarnessError(f"{typ} {name!r}: provider {provider!r} was never registered")

    @property
    def current(self) -> EngineId:
        """The engine the current thread's step works on."""
        return getattr(self._local, "engine", None)

    @contextlib.contextmanager
    def on(self, engine: EngineId) -> Iterator[None]:
        """Steps inside work on `engine` (a record's, or a registration's provider)."""
        previous = self.current
        self._local.engine = engine
        try:
            yield
        finally:
            self._local.engine = previous

    @property
    def client(self) -> docker.DockerClient:
        """The client of the engine the current step works on."""
        return self.client_for(self.current)

    def client_for(self, engine: EngineId) -> docker.DockerClient:
        """A client of the default engine (None) or of the engine an explicit docker
        provider's id names; one per worker thread."""
        clients = getattr(self._local, "clients", None)
        if clients is None:
            clients = self._local.clients = {}
        if engine not in clients:
            clients[engine] = (
                self._client_factory() if engine is None else self._provider_client(engine)
            )
        return clients[engine]

    def _provider_client(self, engine: str) -> docker.DockerClient:
        config = self.configs[engine]
        host = config.get("host")
        if not host:
            return self._client_factory()
        cert_path = config.get("certPath")
        if host.startswith("tcp://") and cert_path:
            return self._tls_client(host, cert_path)
        if host.startswith("unix://") or host.startswith("tcp://"):
            return docker.DockerClient(base_url=host, version="auto", timeout=self._timeout)
        raise HarnessError(f"docker provider {engine!r}: host {host!r} is not translated")

    def _tls_client(self, host: str, cert_path: str) -> docker.DockerClient:
        """The Docker client's DOCKER_TLS_VERIFY with DOCKER_CERT_PATH, as the provider's."""
        tls = docker.tls.TLSConfig(
            client_cert=(f"{cert_path}/cert.pem", f"{cert_path}/key.pem"),
            ca_cert=f"{cert_path}/ca.pem",
            verify=True,
        )
        client = docker.DockerClient(
            base_url="https://" + host[len("tcp://") :],
            tls=tls,
            version="1.41",  # engine 20.10; asking for it would already verify
            timeout=self._timeout,
        )
        # Only these certificates: requests would take REQUESTS_CA_BUNDLE from the
        # environment instead (Session.trust_env), which the Docker CLI never reads.
        client.api.trust_env = False
        return client
