"""Three Docker hosts on this machine for the multi-host suite: each a container running
Debian's engine (tests/integration/standins/docker-host), its API on TCP with TLS verified as
the `offline-hosts` stack names it, joined with the others into a Swarm of three managers.
Images reach them with `docker save`/`load` (no registry); the suite creates and removes them.

Faults: `kill` is a power loss (SIGKILL of the whole host, every container on it at once);
`partition` drops the host's traffic to and from the other hosts (iptables in its network
namespace), while the test machine still reaches it, as an operator's console would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import docker.tls

from tests.programrun import stack_config

STANDIN = Path(__file__).resolve().parent / "standins" / "docker-host"
IMAGE = "pc-test/docker-host:bookworm"
NETWORK = "pc-test-hosts"
LABEL = "patroni-citus.test-host"
STACK = "offline-hosts"
ENGINE_PORT = 2376


def tls_client(base_url: str, tls: docker.tls.TLSConfig, timeout: int) -> docker.DockerClient:
    """A client that verifies the engine with `tls` only: requests would otherwise replace
    the CA with REQUESTS_CA_BUNDLE from the environment (Session.trust_env). API 1.41 (engine
    20.10) is asked for explicitly, since asking for the version would already verify."""
    client = docker.DockerClient(base_url=base_url, tls=tls, version="1.41", timeout=timeout)
    client.api.trust_env = False
    return client


@dataclass(frozen=True)
class SwarmHost:
    name: str  # the engine's name in hosts.engines
    container: str  # the container that is this host
    address: str


def stack_hosts() -> tuple[str, str, list[SwarmHost]]:
    """The subnet, the client certificates' directory and the hosts, as the stack file names
    them: the suite builds exactly what `offline-hosts` expects to find."""
    hosts = stack_config(STACK)["patroni-citus:hosts"]
    engines = hosts["engines"]
    cert_paths = {e["certPath"] for e in engines}
    assert len(cert_paths) == 1, "the test hosts share one client certificate"
    addresses = [e["address"] for e in engines]
    subnet = ".".join(addresses[0].split(".")[:3]) + ".0/24"
    test_hosts = [SwarmHost(e["name"], f"pc-test-host-{e['name']}", e["address"]) for e in engines]
    return subnet, cert_paths.pop(), test_hosts


class SwarmHosts:
    def __init__(self, outer: docker.DockerClient, base_image: str):
        self.outer = outer
        self.base_image = base_image
        self.subnet, self.client_tls, self.hosts = stack_hosts()
        self.tls_root = Path(self.client_tls).parent
        self._clients: dict[str, docker.DockerClient] = {}

    def host(self, name: str) -> SwarmHost:
        return next(h for h in self.hosts if h.name == name)

    # --- lifecycle ------------------------------------------------------------------------

    def create(self) -> float:
        """Builds the host image, starts the hosts, loads the base image into each and joins
        them into a Swarm; returns the seconds it took."""
        started = time.monotonic()
        self.remove()
        self.outer.images.build(
            path=str(STANDIN), tag=IMAGE, buildargs={"BASE_IMAGE": self.base_image}, rm=True
        )
        self._certificates()
        self.outer.networks.create(
            NETWORK,
            driver="bridge",
            ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=self.subnet)]),
            labels={LABEL: "true"},
        )
        for host in self.hosts:
            self._run(host)
        for host in self.hosts:
            self.wait_engine(host.name)
        self._load(self.base_image)
        self._swarm()
        return time.monotonic() - started

    def remove(self) -> None:
        for container in self.outer.containers.list(all=True, filters={"label": LABEL}):
            container.remove(force=True, v=True)
        for network in self.outer.networks.list(filters={"label": LABEL}):
            network.remove()
        for volume in self.outer.volumes.list(filters={"label": LABEL}):
            volume.remove(force=True)
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def _run(self, host: SwarmHost) -> None:
        # --privileged asks for CAP_SYS_RESOURCE, which this machine's engine lacks: every
        # other capability, no seccomp/AppArmor confinement, writable /proc and /sys
        # (systempaths, a CLI option the SDK lacks), its own cgroup namespace (the entrypoint
        # mounts the hierarchies writable).
        self.outer.volumes.create(f"{host.container}-docker", labels={LABEL: host.name})
        subprocess.run(
            ["docker", "run", "--detach", "--name", host.container, "--hostname", host.container,
             "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
             "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
             "--security-opt", "systempaths=unconfined", "--cgroupns", "private",
             "--device", "/dev/net/tun", "--label", f"{LABEL}={host.name}",
             "--network", NETWORK, "--ip", host.address,
             "--mount", f"type=volume,source={host.container}-docker,target=/var/lib/docker",
             "--mount", f"type=bind,source={self.tls_root / 'server'},target=/tls,readonly",
             IMAGE],
            check=True, capture_output=True, text=True,
        )  # fmt: skip

    def _certificates(self) -> None:
        """A CA, one server certificate for every host address and a client certificate,
        laid out as Docker's DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem)."""
        shutil.rmtree(self.tls_root, ignore_errors=True)
        server, client = self.tls_root / "server", Path(self.client_tls)
        server.mkdir(parents=True)
        client.mkdir(parents=True)
        os.chmod(self.tls_root, 0o700)

        def openssl(*argv: str, cwd: Path = self.tls_root) -> None:
            subprocess.run(["openssl", *argv], cwd=cwd, check=True, capture_output=True)

        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", "/CN=patroni-citus test CA", "-keyout", "ca-key.pem",
                "-out", "ca.pem")  # fmt: skip
        sans = ",".join(f"IP:{h.address}" for h in self.hosts) + ",IP:127.0.0.1"
        for role, directory, usage, extra in (
            ("server", server, "serverAuth", f"subjectAltName={sans}"),
            ("client", client, "clientAuth", "basicConstraints=CA:FALSE"),
        ):
            key, cert = directory / f"{role}-key.pem", directory / f"{role}-cert.pem"
            openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=test {role}",
                    "-keyout", str(key), "-out", f"{role}.csr")  # fmt: skip
            (self.tls_root / f"{role}.ext").write_text(f"extendedKeyUsage={usage}\n{extra}\n")
            openssl("x509", "-req", "-in", f"{role}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                    "-CAcreateserial", "-days", "2", "-extfile", f"{role}.ext",
                    "-out", str(cert))  # fmt: skip
            shutil.copy(self.tls_root / "ca.pem", directory / "ca.pem")
        # The Docker client's names for its own key and certificate.
        (client / "client-key.pem").rename(client / "key.pem")
        (client / "client-cert.pem").rename(client / "cert.pem")
        for path in self.tls_root.rglob("*.pem"):
            os.chmod(path, 0o644 if path.parent == server else 0o600)

    def _load(self, image: str) -> None:
        """`docker save` here, `docker load` on every host."""
        data = b"".join(self.outer.images.get(image).save(named=True))
        for host in self.hosts:
            self.client(host.name).images.load(data)

    def _swarm(self) -> None:
        manager, *others = self.hosts
        self.client(manager.name).swarm.init(advertise_addr=manager.address)
        token = self.client(manager.name).swarm.attrs["JoinTokens"]["Manager"]
        for host in others:
            self.client(host.name).swarm.join(
                remote_addrs=[manager.address], join_token=token, advertise_addr=host.address
            )

    # --- access -----------------------------------------------------------------------------

    def client(self, name: str) -> docker.DockerClient:
        """The host's engine over TLS, as the stack's provider reaches it."""
        if name not in self._clients:
            tls = docker.tls.TLSConfig(
                client_cert=(f"{self.client_tls}/cert.pem", f"{self.client_tls}/key.pem"),
                ca_cert=f"{self.client_tls}/ca.pem",
                verify=True,
            )
            self._clients[name] = tls_client(
                f"https://{self.host(name).address}:{ENGINE_PORT}", tls, timeout=60
            )
        return self._clients[name]

    def wait_engine(self, name: str, timeout: float = 120) -> float:
        """Seconds until the host's engine answers over TLS."""
        started = time.monotonic()
        self._clients.pop(name, None)
        while True:
            try:
                self.client(name).ping()
                return time.monotonic() - started
            except Exception:
                if time.monotonic() - started > timeout:
                    raise
                self._clients.pop(name, None)
                time.sleep(0.5)

    def docker(self, name: str, *argv: str, timeout: float = 30) -> tuple[int, str]:
        """The docker CLI inside the host (its unix socket): works while the host is cut off
        from the other hosts, as an operator's console does."""
        container = self.outer.containers.get(self.host(name).container)
        result = container.exec_run(["timeout", str(timeout), "docker", *argv])
        return result.exit_code, result.output.decode(errors="replace").strip()

    # --- faults -------------------------------------------------------------------------------

    def kill(self, name: str) -> None:
        self.outer.containers.get(self.host(name).container).kill()

    def start(self, name: str) -> float:
        """Powers the host on again; returns the seconds until its engine answers."""
        self.outer.containers.get(self.host(name).container).start()
        return self.wait_engine(name)

    def is_cut(self, name: str) -> bool:
        """Whether `partition` has cut the (running) host off."""
        container = self.outer.containers.get(self.host(name).container)
        if container.status != "running":
            return False
        return "DROP" in container.exec_run(["iptables", "-S", "INPUT"]).output.decode()

    def is_running(self, name: str) -> bool:
        return self.outer.containers.get(self.host(name).container).status == "running"

    def partition(self, name: str, cut: bool = True) -> None:
        """Drops (or, with cut=False, lets through again) every packet between this host and
        the other hosts; the test machine keeps reaching it."""
        container = self.outer.containers.get(self.host(name).container)
        action = "-I" if cut else "-D"
        for other in self.hosts:
            if other.name == name:
                continue
            for chain, flag in (("INPUT", "-s"), ("OUTPUT", "-d")):
                result = container.exec_run(
                    ["iptables", action, chain, flag, other.address, "-j", "DROP"]
                )
                if result.exit_code != 0:
                    raise RuntimeError(f"iptables on {name}: {result.output.decode()}")
