"""Runs the operator CLI (`python -m pcctl`) against a deployed test cluster, as an operator
would: a subprocess reading a file of the stack's outputs (what `pulumi stack output --json
--show-secrets` prints)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

from tests.integration.cluster import Cluster, record_figures, wait_until
from tests.programrun import PROJECT_DIR


def outputs_file(cluster: Cluster, directory: Path) -> Path:
    path = directory / f"{cluster.stack}-outputs.json"
    path.write_text(json.dumps(cluster.run.outputs, indent=2))
    return path


def _argv(outputs: Path, *argv: str) -> list[str]:
    return [sys.executable, "-m", "pcctl", "--outputs", str(outputs), *argv]


def pcctl(outputs: Path, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            _argv(outputs, *argv),
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        # Its progress lines say where it was stuck (bytes here, even with text=True).
        printed = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        raise AssertionError(
            f"pcctl {' '.join(argv)} still running after {timeout:.0f} s; it printed:\n{printed}"
        ) from exc


def status(outputs: Path) -> tuple[int, dict[str, Any]]:
    done = pcctl(outputs, "status", "--json", timeout=60)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


class Watch:
    """`pcctl watch --json` in the background; every line kept with when it was read."""

    def __init__(self, outputs: Path):
        self.lines: list[tuple[float, dict[str, Any]]] = []
        self.process = subprocess.Popen(
            _argv(outputs, "watch", "--json"),
            cwd=PROJECT_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append((time.monotonic(), json.loads(line)))

    def first(self, group: str, leader: Optional[str], initial: bool) -> Optional[float]:
        return next(
            (at for at, c in self.lines
             if c["group"] == group and c["leader"] == leader and c["initial"] is initial),
            None,
        )  # fmt: skip

    def stop(self) -> tuple[int, str]:
        """Interrupts it as Ctrl-C does; returns the exit code and what it said on stderr."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=30)
        self._reader.join(timeout=10)
        assert self.process.stderr is not None
        return code, self.process.stderr.read()


def watch_a_switchover(cluster: Cluster, outputs: Path, scenario: str) -> None:
    """A switchover while `pcctl watch` runs and the test itself polls the leader key in etcd
    every 20 ms: the watch prints the new leader within a second of etcd holding it."""
    old = cluster.leader()
    candidate = cluster.sync_standby()
    watch = Watch(outputs)
    try:
        wait_until("the watch's first line", lambda: watch.first("0", old, True), 30)
        in_etcd: list[float] = []

        def poll() -> None:
            while not in_etcd and time.monotonic() < deadline:
                try:
                    if cluster.etcd_leader_keys().get("0") == candidate:
                        in_etcd.append(time.monotonic())
                except Exception:  # noqa: BLE001 - etcd answers again in a moment
                    pass
                time.sleep(0.02)

        deadline = time.monotonic() + 90
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        cluster.switchover("0", old, candidate)
        printed = wait_until("the watch printing the new leader",
                             lambda: watch.first("0", candidate, False), 60)  # fmt: skip
        poller.join(timeout=90)
    finally:
        code, said = watch.stop()
    assert in_etcd, "the poller never saw the new leader in etcd"
    assert code == 0, said
    changes = [c for _, c in watch.lines if not c["initial"]]
    # Released by the old leader, then taken by the new one; nothing printed twice.
    assert [(c["previous"], c["leader"]) for c in changes] in (
        [(old, None), (None, candidate)],
        [(old, candidate)],
    )
    delay = printed - in_etcd[0]
    record_figures(scenario, printed_after_etcd_s=round(delay, 3))
    assert delay < 1.0, f"printed {delay:.2f}s after etcd had the new leader"
