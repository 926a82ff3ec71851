#!/usr/bin/env python3
"""pc-rest: one request to a Patroni REST API, authenticated with the credentials in this
member's configuration (restapi.authentication of /etc/patroni/patroni.yml).

  pc-rest METHOD PATH [BODY] [--host HOST:PORT]

Prints the response body and exits 0 on a 2xx answer; otherwise prints the status and the
body on stderr and exits 1 (2 when the API does not answer). The host scripts of the
deployment run it through `docker exec`, so the REST API need not be routable from them."""

from __future__ import annotations

import argparse
import base64
import os
import sys
import urllib.error
import urllib.request
from typing import Optional

import yaml

# Copies of policies/conventions.py's paths and port, which the image cannot import; tied to
# them by tests/unit/test_image_contracts.py.
PATRONI_CONFIG = "/etc/patroni/patroni.yml"
REST_API = "127.0.0.1:8008"


def credentials(path: str) -> Optional[tuple[str, str]]:
    with open(path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle) or {}
    auth = (config.get("restapi") or {}).get("authentication") or {}
    if not auth:
        return None
    return str(auth["username"]), str(auth["password"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method", choices=["GET", "PATCH", "PUT", "POST", "DELETE"])
    parser.add_argument("path", help="e.g. /cluster, /config, /switchover")
    parser.add_argument("body", nargs="?", help="JSON request body")
    parser.add_argument("--host", default=REST_API)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--config", default=os.environ.get("PATRONI_CONFIG", PATRONI_CONFIG))
    args = parser.parse_args()
    request = urllib.request.Request(
        f"http://{args.host}{args.path}",
        data=args.body.encode() if args.body is not None else None,
        method=args.method,
        headers={"Content-Type": "application/json"},
    )
    auth = credentials(args.config)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:
            sys.stdout.write(response.read().decode(errors="replace"))
            return 0
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        print(f"HTTP {exc.code} from {args.method} {args.path}: {body}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"no answer from {args.host}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
