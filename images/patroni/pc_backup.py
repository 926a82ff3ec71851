#!/usr/bin/env python3
"""pc-backup: the backup schedule of a Patroni member, and its pgBackRest stanza.

  pc-backup                  the loop pc-entrypoint starts beside Patroni: idle until the
                             member's schedule (/etc/pgbackrest/pc-backup.json, written with
                             its files when backups are on) exists; then, every
                             check_interval_s, only while this member leads its group (its
                             REST API's /primary answers 200): creates the stanza if the
                             repository has none, and takes a full backup when there is none
                             or the newest full is older than full_interval_s, else an
                             incremental one when the newest backup is older than
                             incremental_interval_s. On a Citus coordinator, after each of its
                             backups, it creates a Citus restore point (`pc-<UTC time>`) in
                             every group's WAL: the consistent target a restore names.
  pc-backup stanza-create    Patroni's post_bootstrap: the new cluster's stanza, so its first
                             WAL is archived. Never fails the bootstrap (Patroni would wipe
                             the new cluster and start over): the loop tries again.

A backup that fails (leadership moved, the repository is busy) is logged and retried at the
next check. pgBackRest's lock-path lies on the shared repository, so two members never back up
or expire the same stanza at once.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any, Optional

# Copies of the program's paths and port (policies/conventions.py, the backup plan), which the
# image cannot import; tied to them by tests/unit/test_image_contracts.py.
SCHEDULE = "/etc/pgbackrest/pc-backup.json"
PGBACKREST = "/usr/bin/pgbackrest"
PRIMARY_URL = "http://127.0.0.1:8008/primary"
# pgbackrest info's stanza status codes (pgBackRest 2.45 command/info/info.c).
STANZA_OK = 0
STANZA_MISSING = 1
STANZA_NO_BACKUP = 2
STANZA_MISSING_DATA = 3


def log(message: str) -> None:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"{now} pc-backup: {message}", file=sys.stderr, flush=True)


def due(stanza: dict[str, Any], now: float, full_s: int, incremental_s: int) -> Optional[str]:
    """The backup type due for a stanza as `pgbackrest info --output=json` describes it:
    "full", "incr" or None."""
    backups = stanza.get("backup") or []
    fulls = [b["timestamp"]["stop"] for b in backups if b.get("type") == "full"]
    if not fulls or now - max(fulls) >= full_s:
        return "full"
    newest = max(b["timestamp"]["stop"] for b in backups)
    return "incr" if now - newest >= incremental_s else None


def restore_point_name(now: float) -> str:
    stamp = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    return "pc-" + stamp.strftime("%Y%m%dT%H%M%SZ")


def run(*argv: str, timeout: Optional[float] = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def pgbackrest(stanza: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return run(PGBACKREST, f"--stanza={stanza}", "--log-level-console=info", *argv)


def leads() -> bool:
    try:
        with urllib.request.urlopen(PRIMARY_URL, timeout=3) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False  # a replica answers 503, which urllib raises


def stanza_info(stanza: str) -> Optional[dict[str, Any]]:
    result = run(PGBACKREST, f"--stanza={stanza}", "--output=json", "info", timeout=120)
    if result.returncode != 0:
        log(f"{stanza}: pgbackrest info failed: {result.stderr.strip() or result.stdout.strip()}")
        return None
    stanzas: list[dict[str, Any]] = json.loads(result.stdout)
    return stanzas[0] if stanzas else None


def create_stanza(stanza: str) -> bool:
    result = pgbackrest(stanza, "stanza-create")
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        log(f"{stanza}: stanza-create failed (rc {result.returncode}): {output}")
        return False
    log(f"{stanza}: stanza created")
    return True


def backup(schedule: dict[str, Any], kind: str) -> bool:
    stanza = schedule["stanza"]
    log(f"{stanza}: {kind} backup starting")
    started = time.monotonic()
    result = pgbackrest(stanza, f"--type={kind}", "backup")
    took = time.monotonic() - started
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        log(f"{stanza}: {kind} backup failed after {took:.1f}s (rc {result.returncode}): "
            + " | ".join(output[-3:]))  # fmt: skip
        return False
    log(f"{stanza}: {kind} backup done in {took:.1f}s")
    return True


def restore_point(schedule: dict[str, Any]) -> None:
    """A Citus restore point in its own transaction: inside another one it would not cover
    that transaction's writes."""
    name = restore_point_name(time.time())
    sql = f"SELECT citus_create_restore_point('{name}')"
    result = run("psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-U", schedule["superuser"],
                 "-d", schedule["restore_point_database"], "-c", sql, timeout=120)  # fmt: skip
    if result.returncode != 0:
        log(f"restore point {name} failed: {result.stderr.strip()}")
    else:
        log(f"restore point {name} created at {result.stdout.strip()}")


def check(schedule: dict[str, Any]) -> None:
    """One round: what the leader does, each decision logged."""
    stanza = schedule["stanza"]
    info = stanza_info(stanza)
    if info is None:
        return
    code = info.get("status", {}).get("code")
    if code in (STANZA_MISSING, STANZA_MISSING_DATA):
        if not create_stanza(stanza):
            return
        info = stanza_info(stanza)
        if info is None:
            return
        code = info.get("status", {}).get("code")
    if code not in (STANZA_OK, STANZA_NO_BACKUP):
        log(f"{stanza}: not backing up, stanza status {code}: {info.get('status')}")
        return
    kind = due(info, time.time(), schedule["full_interval_s"], schedule["incremental_interval_s"])
    if kind is None:
        return
    if backup(schedule, kind) and schedule.get("restore_point_database"):
        restore_point(schedule)


def read_schedule() -> Optional[dict[str, Any]]:
    try:
        with open(SCHEDULE, encoding="utf-8") as handle:
            schedule: dict[str, Any] = json.load(handle)
            return schedule
    except (OSError, ValueError):
        return None


def loop() -> None:
    announced = False
    while True:
        schedule = read_schedule()
        interval = 15
        if schedule is not None:
            interval = schedule["check_interval_s"]
            if not announced:
                log(f"schedule for stanza {schedule['stanza']}: full every "
                    f"{schedule['full_interval_s']}s, incremental every "
                    f"{schedule['incremental_interval_s']}s, on the leader only")  # fmt: skip
                announced = True
            if leads():
                try:
                    check(schedule)
                except Exception as exc:  # noqa: BLE001 - the schedule must outlive one bad round
                    log(f"round failed: {exc!r}")
        time.sleep(interval)


def main(argv: list[str]) -> int:
    if argv[:1] == ["stanza-create"]:
        schedule = read_schedule()
        if schedule is None:
            log(f"no {SCHEDULE}: nothing to create")
        else:
            create_stanza(schedule["stanza"])
        return 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    loop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
