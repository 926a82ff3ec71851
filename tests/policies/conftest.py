"""Makes `policies` (repo root) and the helpers next to this file importable, whatever the
pytest import mode, and shares one running policy-pack server per session."""

import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
for _p in (str(_HERE.parents[1]), str(_HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)


@pytest.fixture(scope="session")
def pack_server():
    from policy_harness import PackServer

    server = PackServer()
    try:
        yield server
    finally:
        server.close()
