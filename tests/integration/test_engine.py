"""Tests of the deploying mock (tests/integration/engine/) against the real Docker engine."""

from __future__ import annotations

import base64
import ipaddress
import os
import random
import secrets
import textwrap
import time

import pulumi
import pytest

try:
    from tests.integration.engine import (
        DockerEngine,
        HarnessError,
        UntranslatedInputError,
        parse_go_duration,
        quiet_unretrieved_harness_errors,
    )
except ModuleNotFoundError:  # run with tests/integration as the rootdir-inserted path
    from engine import (
        DockerEngine,
        HarnessError,
        UntranslatedInputError,
        parse_go_duration,
        quiet_unretrieved_harness_errors,
    )

import pulumi_command as command
import pulumi_docker as docker_
import pulumi_random as random_

from tests.programrun import RecordingMonitor, RegistrationOptions

pytestmark = pytest.mark.integration
quiet_unretrieved_harness_errors()

BASE_IMAGE = os.environ.get("HARNESS_BASE_IMAGE", "local/debian:bookworm")
T_COMMAND = "command:local:Command"
MIB = 1024 * 1024

DOCKERFILE = textwrap.dedent(f"""\
    FROM {BASE_IMAGE} AS base
    ARG GREETING=unset
    RUN echo "$GREETING" > /greeting

    FROM base AS final
    RUN echo final > /stage

    FROM base AS other
    RUN echo other > /stage
    """)


def run(engine: DockerEngine, program):
    """Run an inline program under the deploying mock; returns the awaited value of its result."""
    pulumi.runtime.set_mocks(
        engine, project="harness", stack="test", preview=False, monitor=RecordingMonitor(engine)
    )
    box = {}

    @pulumi.runtime.test
    def _run():
        out = pulumi.Output.from_input(program())
        return out.apply(lambda v: box.setdefault("v", v))

    _run()
    return box.get("v")


def free_subnet(client) -> ipaddress.IPv4Network:
    used = []
    for net in client.api.networks():
        for cfg in (net.get("IPAM") or {}).get("Config") or []:
            try:
                used.append(ipaddress.ip_network(cfg.get("Subnet", ""), strict=False))
            except ValueError:
                pass
    for _ in range(200):
        cand = ipaddress.ip_network(f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.0/24")
        if not any(cand.overlaps(u) for u in used):
            return cand
    raise RuntimeError("no free /24 found")


@pytest.fixture
def tag():
    return f"harness-eng-{secrets.token_hex(3)}"


@pytest.fixture
def engine(docker_client, tmp_path, tag):
    eng = DockerEngine(program_dir=str(tmp_path), name_prefix="harness-")
    yield eng
    try:
        eng.teardown(remove_images=True)
    finally:
        # safety net: nothing named after this test may survive it
        for c in docker_client.containers.list(all=True, filters={"name": tag}):
            c.remove(force=True)
        for n in docker_client.networks.list(names=[f"{tag}-net", f"{tag}-net2"]):
            n.remove()
        for v in docker_client.volumes.list(filters={"name": tag}):
            v.remove(force=True)


def exec_out(container, cmd) -> str:
    res = container.exec_run(cmd)
    assert res.exit_code == 0, res.output
    return res.output.decode().strip()


# ---------------------------------------------------------------------------------------------
# Engine-level checks without a program


def test_go_durations():
    assert parse_go_duration("5s") == 5_000_000_000
    assert parse_go_duration("1m30s") == 90_000_000_000
    assert parse_go_duration("500ms") == 500_000_000
    assert parse_go_duration("1.5h") == 5_400_000_000_000
    assert parse_go_duration("0") == 0
    with pytest.raises(ValueError):
        parse_go_duration("5")


def test_secret_inputs_unwrapped_and_password_generated():
    eng = DockerEngine()
    sig, secret = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"
    args = pulumi.runtime.MockResourceArgs(
        "random:index/randomPassword:RandomPassword",
        "pw",
        {
            "length": 24.0,
            "special": {sig: secret, "value": True},
            "overrideSpecial": "-_",
            "minSpecial": 3.0,
            "minUpper": 2.0,
        },
        custom=True,
    )
    rid, out = eng.new_resource(args)
    res = out["result"]
    assert (
        len(res) == 24 and sum(c in "-_" for c in res) >= 3 and sum(c.isupper() for c in res) >= 2
    )
    assert set(res) <= set("-_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def test_image_must_skip_push_and_dockerfile_paths(docker_client, tmp_path, tag):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text(DOCKERFILE)
    eng = DockerEngine(program_dir=str(tmp_path), name_prefix="harness-")

    def mk(inputs):
        return pulumi.runtime.MockResourceArgs(
            "docker:index/image:Image", "img", inputs, custom=True
        )

    with pytest.raises(HarnessError, match="skipPush"):
        eng.new_resource(mk({"imageName": f"{tag}:1", "build": {"context": "app"}}))
    # pulumi-docker resolves `dockerfile` against the working directory, not the context
    with pytest.raises(HarnessError, match=r"Try setting `dockerfile` to 'app/Dockerfile'"):
        eng.new_resource(
            mk(
                {
                    "imageName": f"{tag}:1",
                    "skipPush": True,
                    "build": {"context": "app", "dockerfile": "Dockerfile"},
                }
            )
        )
    with pytest.raises(UntranslatedInputError, match="build.cacheFrom"):
        eng.new_resource(
            mk(
                {
                    "imageName": f"{tag}:1",
                    "skipPush": True,
                    "build": {"context": "app", "cacheFrom": {"images": ["x"]}},
                }
            )
        )
    assert eng.records == []


def test_local_command_semantics(tmp_path):
    eng = DockerEngine(program_dir=str(tmp_path))

    def mk(inputs):
        return pulumi.runtime.MockResourceArgs("command:local:Command", "cmd", inputs, custom=True)

    _, out = eng.new_resource(
        mk({"create": 'printf "%s\\n\\n" "$WHO"; pwd', "environment": {"WHO": "x"}})
    )
    assert out["stdout"] == f"x\n\n{tmp_path}"
    with pytest.raises(HarnessError, match="exited with 3"):
        eng.new_resource(mk({"create": "echo oops >&2; exit 3"}))


def test_a_second_run_is_an_update(tmp_path):
    """Unchanged: left alone; triggers changed: replaced, the new one created at once and the
    old one's delete run by finish_update; create changed: run again; no longer registered:
    deleted by finish_update, newest first (no dependencies recorded), or only dropped when
    registered with retainOnDelete; any other change: refused."""
    eng = DockerEngine(program_dir=str(tmp_path))
    log = tmp_path / "log"

    def command(name, tag, retain=False, **extra):
        inputs = {"create": f"echo create-{tag} >> {log}", "delete": f"echo delete-{tag} >> {log}",
                  **extra}  # fmt: skip
        eng.before_register(RegistrationOptions(T_COMMAND, name, retain_on_delete=retain))
        return eng.new_resource(
            pulumi.runtime.MockResourceArgs(T_COMMAND, name, inputs, custom=True)
        )

    def password(length):
        return eng.new_resource(pulumi.runtime.MockResourceArgs(
            "random:index/randomPassword:RandomPassword", "pw", {"length": length}, custom=True))  # fmt: skip

    same_id, _ = command("same", "same")
    command("trig", "trig1", triggers=["a"])
    command("edit", "edit1")
    for name in ("gone1", "gone2"):
        command(name, name)
    command("kept", "kept", retain=True)
    password(16)
    log.write_text("")

    eng.begin_update()
    assert command("same", "same")[0] == same_id
    command("trig", "trig2", triggers=["b"])
    command("edit", "edit2")
    password(16)
    assert log.read_text().split() == ["create-trig2", "create-edit2"]
    gone = eng.finish_update()
    assert log.read_text().split() == [
        "create-trig2", "create-edit2", "delete-gone2", "delete-gone1", "delete-trig1"]  # fmt: skip
    assert [r.name for r in gone] == ["kept", "gone2", "gone1", "trig"]
    assert eng.record("trig").inputs["triggers"] == ["b"] and not eng.record("trig").removed

    eng.begin_update()
    with pytest.raises(HarnessError, match=r"an update changing \['length'\] is not translated"):
        password(20)


# ---------------------------------------------------------------------------------------------
# Full programs on the real engine


def test_full_program_deploys_and_tears_down(engine, docker_client, tmp_path, tag):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text(DOCKERFILE)
    subnet = free_subnet(docker_client)
    subnet2 = free_subnet(docker_client)
    hosts = list(subnet.hosts())
    gateway, ip_a, ip_c = str(hosts[0]), str(hosts[9]), str(hosts[10])
    ip_c2 = str(list(subnet2.hosts())[20])
    script = "#!/bin/sh\necho from-script\n"

    def program():
        image = docker_.Image(
            "img",
            image_name=f"{tag}-img:latest",
            skip_push=True,
            build=docker_.DockerBuildArgs(
                context="app", target="final", args={"GREETING": "hi-there"}
            ),
        )
        net = docker_.Network(
            "net",
            name=f"{tag}-net",
            driver="bridge",
            ipam_configs=[docker_.NetworkIpamConfigArgs(subnet=str(subnet), gateway=gateway)],
            labels=[docker_.NetworkLabelArgs(label="harness.test", value=tag)],
        )
        net2 = docker_.Network(
            "net2",
            name=f"{tag}-net2",
            internal=True,
            ipam_configs=[docker_.NetworkIpamConfigArgs(subnet=str(subnet2))],
        )
        vol = docker_.Volume(
            "vol",
            name=f"{tag}-data",
            labels=[docker_.VolumeLabelArgs(label="harness.test", value=tag)],
        )
        pw = random_.RandomPassword("pw", length=20, special=False)
        a = docker_.Container(
            "a",
            name=f"{tag}-a",
            image=image.repo_digest,
            command=[
                "/bin/sh",
                "-c",
                "cat /etc/harness/hello.txt; /usr/local/bin/hello.sh; exec sleep infinity",
            ],
            envs=[pw.result.apply(lambda r: f"PASSWORD={r}"), "MODE=test"],
            hostname="member-a",
            init=True,
            labels=[
                docker_.ContainerLabelArgs(label="harness.test", value=tag),
                docker_.ContainerLabelArgs(label="harness.role", value="a"),
            ],
            networks_advanced=[
                docker_.ContainerNetworksAdvancedArgs(
                    name=net.name, ipv4_address=ip_a, aliases=["alpha"]
                )
            ],
            volumes=[docker_.ContainerVolumeArgs(volume_name=vol.name, container_path="/data")],
            uploads=[
                docker_.ContainerUploadArgs(
                    file="/etc/harness/hello.txt", content=pulumi.Output.secret("secret-hello\n")
                ),
                docker_.ContainerUploadArgs(
                    file="/usr/local/bin/hello.sh",
                    executable=True,
                    content_base64=base64.b64encode(script.encode()).decode(),
                ),
            ],
            healthcheck=docker_.ContainerHealthcheckArgs(
                tests=["CMD", "test", "-f", "/data/../greeting"],
                interval="1s",
                timeout="2s",
                retries=3,
                start_period="1s",
            ),
            wait=True,
            wait_timeout=60,
            restart="unless-stopped",
            stop_signal="SIGINT",
            stop_timeout=5,
            destroy_grace_seconds=2,
            capabilities=docker_.ContainerCapabilitiesArgs(adds=["NET_ADMIN"], drops=["MKNOD"]),
            memory=128,
            shm_size=16,
            cpu_shares=512,
            log_driver="json-file",
            log_opts={"max-size": "1m"},
            sysctls={"net.ipv4.ip_nonlocal_bind": "1"},
            tmpfs={"/run/harness": "size=1m"},
            ports=[docker_.ContainerPortArgs(internal=8080, ip="127.0.0.1")],
        )
        sidecar = docker_.Container(
            "sidecar",
            name=f"{tag}-sidecar",
            image=image.repo_digest,
            command=["sleep", "infinity"],
            init=True,
            network_mode=a.name.apply(lambda n: f"container:{n}"),
            restart="always",
        )
        c = docker_.Container(
            "c",
            name=f"{tag}-c",
            image=image.repo_digest,
            command=["sleep", "infinity"],
            init=True,
            networks_advanced=[
                docker_.ContainerNetworksAdvancedArgs(name=net.name, ipv4_address=ip_c),
                docker_.ContainerNetworksAdvancedArgs(name=net2.name, ipv4_address=ip_c2),
            ],
            mounts=[
                docker_.ContainerMountArgs(
                    type="volume", source=vol.name, target="/shared", read_only=True
                )
            ],
        )
        cmd = command.local.Command(
            "cmd", create='printf "hello %s\\n" "$WHO"', environment={"WHO": "harness"}
        )
        return pulumi.Output.all(
            image=image.repo_digest,
            image_name=image.image_name,
            stdout=cmd.stdout,
            a_net=a.network_datas,
            sidecar=sidecar.id,
            c_id=c.id,
            mountpoint=vol.mountpoint,
            pw=pw.result,
        )

    out = run(engine, program)

    # outputs mirror the provider's
    img = docker_client.images.get(f"{tag}-img:latest")
    assert out["image"] == img.id and out["image"].startswith("sha256:")
    assert out["stdout"] == "hello harness"
    assert out["a_net"][0]["ip_address"] == ip_a and out["a_net"][0]["network_name"] == f"{tag}-net"
    assert out["mountpoint"].startswith("/")

    # creation order is recorded: dependencies first
    order = [r.name for r in engine.records]
    assert order.index("img") < order.index("a") < order.index("sidecar")
    assert order.index("net") < order.index("a") and order.index("vol") < order.index("a")

    # image: target stage and build args
    probe = docker_client.containers.run(
        img.id, ["cat", "/greeting", "/stage"], remove=True, name=f"{tag}-probe"
    )
    assert probe.decode().split() == ["hi-there", "final"]

    # network and volume
    net = docker_client.networks.get(f"{tag}-net")
    assert net.attrs["IPAM"]["Config"][0]["Subnet"] == str(subnet)
    assert net.attrs["IPAM"]["Config"][0]["Gateway"] == gateway
    assert net.attrs["Labels"] == {"harness.test": tag}
    assert docker_client.networks.get(f"{tag}-net2").attrs["Internal"] is True
    assert docker_client.volumes.get(f"{tag}-data").attrs["Labels"] == {"harness.test": tag}

    # container a
    a = docker_client.containers.get(f"{tag}-a")
    st, hc, cfg = a.attrs["State"], a.attrs["HostConfig"], a.attrs["Config"]
    assert st["Running"] and st["Health"]["Status"] == "healthy"
    assert cfg["Labels"]["harness.role"] == "a" and cfg["Hostname"] == "member-a"
    assert cfg["StopSignal"] == "SIGINT" and cfg["StopTimeout"] == 5
    assert cfg["Healthcheck"] == {
        "Test": ["CMD", "test", "-f", "/data/../greeting"],
        "Interval": 1_000_000_000,
        "Timeout": 2_000_000_000,
        "StartPeriod": 1_000_000_000,
        "Retries": 3,
    }
    assert f"PASSWORD={out['pw']}" in cfg["Env"] and len(out["pw"]) == 20
    assert hc["RestartPolicy"]["Name"] == "unless-stopped"
    assert hc["CapAdd"] == ["NET_ADMIN"] and hc["CapDrop"] == ["MKNOD"]
    assert (
        hc["Memory"] == 128 * 1024 * 1024
        and hc["ShmSize"] == 16 * 1024 * 1024
        and hc["CpuShares"] == 512
    )
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
    assert hc["Sysctls"] == {"net.ipv4.ip_nonlocal_bind": "1"} and hc["Tmpfs"] == {
        "/run/harness": "size=1m"
    }
    assert hc["Init"] is True and hc["Binds"] == [f"{tag}-data:/data:rw"]
    assert hc["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    nets = a.attrs["NetworkSettings"]["Networks"]
    assert list(nets) == [f"{tag}-net"] and nets[f"{tag}-net"]["IPAddress"] == ip_a
    assert "alpha" in nets[f"{tag}-net"]["Aliases"]
    logs = a.logs().decode()
    assert "secret-hello" in logs and "from-script" in logs
    assert exec_out(a, ["stat", "-c", "%a %u %g", "/etc/harness/hello.txt"]) == "644 0 0"
    assert exec_out(a, ["stat", "-c", "%a", "/usr/local/bin/hello.sh"]) == "744"
    cap_eff = int(exec_out(a, ["sh", "-c", "grep CapEff /proc/1/status"]).split()[1], 16)
    assert cap_eff & (1 << 12) and not cap_eff & (1 << 27)  # CAP_NET_ADMIN added, CAP_MKNOD dropped

    # sidecar shares a's network namespace
    side = docker_client.containers.get(f"{tag}-sidecar")
    assert side.attrs["HostConfig"]["NetworkMode"].startswith("container:")
    assert side.attrs["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert exec_out(side, ["readlink", "/proc/self/ns/net"]) == exec_out(
        a, ["readlink", "/proc/self/ns/net"]
    )

    # c: first network at create, second connected before start, read-only volume mount
    c = docker_client.containers.get(f"{tag}-c")
    cn = c.attrs["NetworkSettings"]["Networks"]
    assert set(cn) == {f"{tag}-net", f"{tag}-net2"}
    assert cn[f"{tag}-net"]["IPAddress"] == ip_c and cn[f"{tag}-net2"]["IPAddress"] == ip_c2
    assert c.attrs["HostConfig"]["NetworkMode"] == f"{tag}-net"
    assert [(m["Type"], m["Name"], m["RW"]) for m in c.attrs["Mounts"]] == [
        ("volume", f"{tag}-data", False)
    ]
    assert exec_out(c, ["getent", "hosts", "alpha"]).split()[0] == ip_a

    # replacement keeps the data volume
    exec_out(a, ["sh", "-c", "echo keep-me > /data/marker"])
    old_id = a.id
    spec = engine.container_spec("a")
    new_id = engine.recreate_container("a")
    assert new_id != old_id and engine.container_spec("a") == spec
    a2 = docker_client.containers.get(f"{tag}-a")
    assert a2.id == new_id and a2.attrs["State"]["Health"]["Status"] == "healthy"
    assert exec_out(a2, ["cat", "/data/marker"]) == "keep-me"
    assert a2.attrs["NetworkSettings"]["Networks"][f"{tag}-net"]["IPAddress"] == ip_a
    engine.remove_container("sidecar")
    assert not docker_client.containers.list(all=True, filters={"name": f"{tag}-sidecar"})
    engine.recreate_container("sidecar")
    assert docker_client.containers.get(f"{tag}-sidecar").attrs["State"]["Running"]

    # teardown removes every container, network and volume it created; images only on request
    engine.teardown()
    assert not docker_client.containers.list(all=True, filters={"name": tag})
    assert not docker_client.networks.list(names=[f"{tag}-net", f"{tag}-net2"])
    assert not docker_client.volumes.list(filters={"name": tag})
    docker_client.images.get(f"{tag}-img:latest")  # kept as cache
    engine.teardown(remove_images=True)
    assert not docker_client.images.list(name=f"{tag}-img")


def test_unknown_input_key_fails_loudly(engine, docker_client, tag):
    def program():
        return docker_.Container(
            "odd", name=f"{tag}-odd", image=BASE_IMAGE, command=["true"], cpu_quota=50000
        ).id

    with pytest.raises(UntranslatedInputError) as err:
        run(engine, program)
    msg = str(err.value)
    assert "docker:index/container:Container" in msg and "'odd'" in msg and "'cpuQuota'" in msg
    assert engine.records == []
    assert not docker_client.containers.list(all=True, filters={"name": tag})


def test_nested_unknown_key_and_privileged_refused(engine, docker_client, tag):
    def nested():
        return docker_.Container(
            "n",
            name=f"{tag}-n",
            image=BASE_IMAGE,
            command=["true"],
            networks_advanced=[
                docker_.ContainerNetworksAdvancedArgs(
                    name="bridge", mac_address="02:42:ac:11:00:99"
                )
            ],
        ).id

    with pytest.raises(UntranslatedInputError, match=r"networksAdvanced\[0\]\.macAddress"):
        run(engine, nested)

    def privileged():
        return docker_.Container(
            "p", name=f"{tag}-p", image=BASE_IMAGE, command=["true"], privileged=True
        ).id

    with pytest.raises(UntranslatedInputError, match="privileged"):
        run(engine, privileged)
    assert not docker_client.containers.list(all=True, filters={"name": tag})


def test_must_run_container_that_exits_is_deleted_and_fails(engine, docker_client, tag):
    def program():
        return docker_.Container(
            "dies", name=f"{tag}-dies", image=BASE_IMAGE, command=["sh", "-c", "echo dying; exit 7"]
        ).id

    with pytest.raises(HarnessError, match="failed to be in running state") as err:
        run(engine, program)
    assert "dying" in str(err.value)
    assert not docker_client.containers.list(all=True, filters={"name": tag})


def test_remote_image_never_pulls(engine, docker_client, tag):
    def program():
        base = docker_.RemoteImage("base", name=BASE_IMAGE, keep_locally=True)
        missing = docker_.RemoteImage(
            "missing",
            name=f"{tag}-absent:1.0",
            keep_locally=True,
            opts=pulumi.ResourceOptions(depends_on=[base]),
        )
        return pulumi.Output.all(base.image_id, missing.image_id)

    with pytest.raises(HarnessError, match="never"):
        run(engine, program)
    rec = engine.record("base")
    assert rec.docker_id == docker_client.images.get(BASE_IMAGE).id
    engine.teardown(remove_images=True)  # keepLocally: the base image must survive
    docker_client.images.get(BASE_IMAGE)


# ---------------------------------------------------------------------------------------------
# Updates: a second program run over the same engine


def update(engine: DockerEngine, program):
    """`pulumi up` again: the program's registrations, then the deletes at the end."""
    engine.begin_update()
    out = run(engine, program)
    return out, engine.finish_update()


def container_events(client, since: float, names: set[str]) -> list[tuple[str, str, str]]:
    """(action, name, id) of the engine's create/destroy events of these containers, in order."""
    events = client.events(
        since=since,
        until=time.time() + 1,
        decode=True,
        filters={"type": "container", "event": ["create", "destroy"]},
    )
    found = []
    for event in events:
        name = event.get("Actor", {}).get("Attributes", {}).get("name")
        if name in names:
            found.append((event["Action"], name, event["id"]))
    return found


def test_container_update_in_place_keeps_the_container(engine, docker_client, tag):
    """memory and restart: one ContainerUpdate on the running container; destroyGraceSeconds:
    state only (a later delete uses it); the id, the process and the outputs' id stay."""

    def program(memory, restart, grace):
        return docker_.Container(
            "c",
            name=f"{tag}-c",
            image=BASE_IMAGE,
            command=["sleep", "infinity"],
            init=True,
            memory=memory,
            restart=restart,
            destroy_grace_seconds=grace,
        ).id

    first = run(engine, lambda: program(128, "no", 1))
    started = docker_client.containers.get(first).attrs["State"]["StartedAt"]
    second, gone = update(engine, lambda: program(96, "unless-stopped", 5))
    assert second == first and gone == []
    attrs = docker_client.containers.get(first).attrs
    assert attrs["HostConfig"]["Memory"] == 96 * MIB
    assert attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert attrs["State"]["StartedAt"] == started
    assert engine.container_spec("c")["destroy_grace_seconds"] == 5
    # an unchanged run is a no-op
    assert update(engine, lambda: program(96, "unless-stopped", 5)) == (first, [])


def test_delete_before_replace_deletes_dependents_first(engine, docker_client, tag, tmp_path):
    """A container change the provider cannot apply (envs) replaces it, delete-before-replace
    (the provider's default for containers): first its dependents that the replacement
    replaces (the sidecar in its network namespace, the Command triggered by its id, whose
    delete script runs while the old container still exists), then the container; then the
    new container and, as the program registers them, the dependents. A dependsOn-only
    Command is left alone; the named volume keeps its data."""
    log = tmp_path / "log"
    probe = f"docker inspect -f '{{{{.Id}}}}' {tag}-a"

    def program(version):
        vol = docker_.Volume("vol", name=f"{tag}-data")
        a = docker_.Container(
            "a",
            name=f"{tag}-a",
            image=BASE_IMAGE,
            command=["sleep", "infinity"],
            init=True,
            envs=[f"VERSION={version}"],
            volumes=[docker_.ContainerVolumeArgs(volume_name=vol.name, container_path="/data")],
        )
        side = docker_.Container(
            "side",
            name=f"{tag}-side",
            image=BASE_IMAGE,
            command=["sleep", "infinity"],
            init=True,
            network_mode=a.name.apply(lambda n: f"container:{n}"),
        )
        command.local.Command(
            "turn",
            create=f'echo "turn-create $({probe})" >> {log}',
            delete=f'echo "turn-delete $({probe})" >> {log}',
            triggers=[a.id],
        )
        command.local.Command(
            "after",
            create=f"echo after-create >> {log}",
            delete=f"echo after-delete >> {log}",
            opts=pulumi.ResourceOptions(depends_on=[a]),
        )
        return pulumi.Output.all(a=a.id, side=side.id)

    first = run(engine, lambda: program(1))
    a1 = docker_client.containers.get(first["a"])
    exec_out(a1, ["sh", "-c", "echo keep-me > /data/marker"])
    since = time.time()
    second, gone = update(engine, lambda: program(2))
    assert gone == []
    a2 = docker_client.containers.get(f"{tag}-a")
    assert second["a"] == a2.id != a1.id and second["side"] != first["side"]
    assert "VERSION=2" in a2.attrs["Config"]["Env"]
    assert exec_out(a2, ["cat", "/data/marker"]) == "keep-me"
    side = docker_client.containers.get(f"{tag}-side")
    assert exec_out(side, ["readlink", "/proc/self/ns/net"]) == exec_out(
        a2, ["readlink", "/proc/self/ns/net"]
    )
    lines = log.read_text().splitlines()
    assert [line for line in lines if line.startswith("turn")] == [
        f"turn-create {a1.id}", f"turn-delete {a1.id}", f"turn-create {a2.id}"]  # fmt: skip
    assert [line for line in lines if line.startswith("after")] == ["after-create"]
    # the old sidecar went before the old container, the old container before the new one
    assert container_events(docker_client, since, {f"{tag}-a", f"{tag}-side"}) == [
        ("destroy", f"{tag}-side", first["side"]),
        ("destroy", f"{tag}-a", a1.id),
        ("create", f"{tag}-a", a2.id),
        ("create", f"{tag}-side", second["side"]),
    ]


def test_command_update_runs_its_update_script(engine, tmp_path):
    """A Command whose environment changed runs `update` (not create or delete), with the
    previous stdout in PULUMI_COMMAND_STDOUT; its id stays."""
    log = tmp_path / "log"

    def program(who):
        cmd = command.local.Command(
            "cmd",
            create="echo created",
            update='echo "updated $WHO after [$PULUMI_COMMAND_STDOUT]"',
            delete=f"echo deleted >> {log}",
            environment={"WHO": who},
        )
        return pulumi.Output.all(id=cmd.id, stdout=cmd.stdout)

    first = run(engine, lambda: program("a"))
    assert first["stdout"] == "created"
    second, gone = update(engine, lambda: program("b"))
    assert second == {"id": first["id"], "stdout": "updated b after [created]"} and gone == []
    assert not log.exists()


def test_create_before_delete_with_a_fixed_name_collides(engine, docker_client, tag):
    """deleteBeforeReplace=false overrides the provider: the new container is created first,
    and Docker refuses its name while the old one exists, as it would for the provider."""

    def program(version):
        return docker_.Container(
            "c",
            name=f"{tag}-c",
            image=BASE_IMAGE,
            command=["sleep", "infinity"],
            envs=[f"VERSION={version}"],
            opts=pulumi.ResourceOptions(delete_before_replace=False),
        ).id

    first = run(engine, lambda: program(1))
    engine.begin_update()
    with pytest.raises(HarnessError, match="Conflict"):
        run(engine, lambda: program(2))
    assert docker_client.containers.get(f"{tag}-c").id == first


def test_named_network_is_replaced_delete_first_with_its_containers(engine, docker_client, tag):
    """A network label change replaces the network (every attribute is ForceNew); its name is
    set, so the provider asks for delete-before-replace: the container attached to it goes
    first and comes back on the new network."""
    subnet = free_subnet(docker_client)

    def program(label):
        net = docker_.Network(
            "net",
            name=f"{tag}-net",
            ipam_configs=[docker_.NetworkIpamConfigArgs(subnet=str(subnet))],
            labels=[docker_.NetworkLabelArgs(label="harness.test", value=label)],
        )
        c = docker_.Container(
            "c",
            name=f"{tag}-c",
            image=BASE_IMAGE,
            command=["sleep", "infinity"],
            init=True,
            networks_advanced=[docker_.ContainerNetworksAdvancedArgs(name=net.name)],
        )
        return pulumi.Output.all(net=net.id, c=c.id)

    first = run(engine, lambda: program("one"))
    second, gone = update(engine, lambda: program("two"))
    assert gone == [] and second["net"] != first["net"] and second["c"] != first["c"]
    net = docker_client.networks.get(f"{tag}-net")
    assert net.id == second["net"] and net.attrs["Labels"] == {"harness.test": "two"}
    attached = docker_client.containers.get(second["c"]).attrs["NetworkSettings"]["Networks"]
    assert attached[f"{tag}-net"]["NetworkID"] == second["net"]


def test_image_rebuild_replaces_the_containers_using_it(engine, docker_client, tmp_path, tag):
    """A changed build arg is an Image update: built again (new local id, new repoDigest);
    the container whose image is the repoDigest is replaced. Unchanged inputs and build
    context: nothing is built or replaced."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text(DOCKERFILE)

    def program(greeting):
        image = docker_.Image(
            "img",
            image_name=f"{tag}-img:latest",
            skip_push=True,
            build=docker_.DockerBuildArgs(
                context="app", target="final", args={"GREETING": greeting}
            ),
        )
        c = docker_.Container(
            "c",
            name=f"{tag}-c",
            image=image.repo_digest,
            command=["sleep", "infinity"],
            init=True,
        )
        return pulumi.Output.all(image=image.repo_digest, c=c.id)

    first = run(engine, lambda: program("hi"))
    assert update(engine, lambda: program("hi")) == (first, [])
    second, gone = update(engine, lambda: program("bye"))
    assert gone == [] and second["image"] != first["image"] and second["c"] != first["c"]
    assert docker_client.images.get(f"{tag}-img:latest").id == second["image"]
    assert exec_out(docker_client.containers.get(second["c"]), ["cat", "/greeting"]) == "bye"
    # an edited build context is a change too (provider.go Check adds its digest): built
    # again, the target stage unchanged gives the same image, so the container stays ...
    dockerfile = tmp_path / "app" / "Dockerfile"
    digest = engine.record("img").inputs["build"]["contextDigest"]
    dockerfile.write_text(DOCKERFILE.replace("echo other", "echo another"))
    assert update(engine, lambda: program("bye")) == (second, [])
    assert engine.record("img").inputs["build"]["contextDigest"] != digest
    # ... and a changed target stage a new image, so a new container
    dockerfile.write_text(DOCKERFILE.replace("echo final", "echo edited"))
    third, _ = update(engine, lambda: program("bye"))
    assert third["image"] != second["image"] and third["c"] != second["c"]


def test_finish_update_deletes_dependents_first_and_keeps_retained(engine, docker_client, tag):
    """Resources no longer registered go at the end, each after what depends on it (the
    container before its network, which Docker would refuse otherwise); a retainOnDelete
    volume stays in Docker."""
    subnet = free_subnet(docker_client)

    def program(full):
        if not full:
            return "none"
        net = docker_.Network(
            "net",
            name=f"{tag}-net",
            ipam_configs=[docker_.NetworkIpamConfigArgs(subnet=str(subnet))],
        )
        vol = docker_.Volume(
            "vol", name=f"{tag}-data", opts=pulumi.ResourceOptions(retain_on_delete=True)
        )
        return docker_.Container(
            "c",
            name=f"{tag}-c",
            image=BASE_IMAGE,
            command=["sleep", "infinity"],
            init=True,
            networks_advanced=[docker_.ContainerNetworksAdvancedArgs(name=net.name)],
            volumes=[docker_.ContainerVolumeArgs(volume_name=vol.name, container_path="/data")],
        ).id

    run(engine, lambda: program(True))
    _, gone = update(engine, lambda: program(False))
    names = [r.name for r in gone]
    assert set(names) == {"net", "vol", "c"} and names[0] == "c"
    assert not docker_client.containers.list(all=True, filters={"name": f"{tag}-c"})
    assert not docker_client.networks.list(names=[f"{tag}-net"])
    docker_client.volumes.get(f"{tag}-data")  # retained (the fixture removes it)


def test_untranslated_options_fail_loudly(engine, docker_client, tag):
    def container(version=1, **options):
        return docker_.Container(
            "c",
            name=f"{tag}-c",
            image=BASE_IMAGE,
            command=["sleep", "infinity"],
            envs=[f"VERSION={version}"],
            opts=pulumi.ResourceOptions(**options),
        ).id

    for options, match in (
        ({"ignore_changes": ["envs"]}, "ignoreChanges"),
        ({"replace_on_changes": ["envs[*]"]}, "replaceOnChanges"),
        ({"aliases": [pulumi.Alias(name="old")]}, "aliases"),
        ({"custom_timeouts": pulumi.CustomTimeouts(create="1m")}, "customTimeouts"),
    ):
        with pytest.raises(HarnessError, match=match):
            run(engine, lambda options=options: container(**options))
    assert engine.records == []

    # protect: neither replaced nor deleted
    run(engine, lambda: container(protect=True))
    engine.begin_update()
    with pytest.raises(HarnessError, match="marked for protection"):
        run(engine, lambda: container(2, protect=True))
    engine.begin_update()
    run(engine, lambda: "nothing")
    with pytest.raises(HarnessError, match="cannot be deleted because it is protected"):
        engine.finish_update()
    assert docker_client.containers.get(f"{tag}-c").attrs["State"]["Running"]


def test_replace_on_changes_turns_an_update_into_a_replacement(engine, tag):
    def program(memory):
        return docker_.Container(
            "c",
            name=f"{tag}-c",
            image=BASE_IMAGE,
            command=["sleep", "infinity"],
            memory=memory,
            opts=pulumi.ResourceOptions(replace_on_changes=["memory"]),
        ).id

    first = run(engine, lambda: program(128))
    second, gone = update(engine, lambda: program(96))
    assert second != first and gone == []
