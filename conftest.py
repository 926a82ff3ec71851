"""Root test configuration.

python-etcd3's generated protobuf modules predate protobuf 4's C implementation; they load
only with the pure-Python implementation, which must be chosen before protobuf is first
imported (Pulumi imports it too). The cost for the mock runs was measured negligible.

At the end of a run, a table gives each test module's wall time: the setup, call and teardown
of its tests summed, so a module-scoped fixture (a deployment, its teardown) counts in the
module that used it. It shows where a CI run's time went, module by module.
"""

from __future__ import annotations

import os
from collections import defaultdict

import pytest

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")

_module_seconds: defaultdict[str, float] = defaultdict(float)
_module_tests: defaultdict[str, set[str]] = defaultdict(set)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    module = report.nodeid.split("::", 1)[0]
    _module_seconds[module] += report.duration
    _module_tests[module].add(report.nodeid)


def module_time_table(seconds: dict[str, float], tests: dict[str, set[str]]) -> list[str]:
    """The lines of the table, slowest module first, with the total last."""
    if not seconds:
        return []
    width = max(len(m) for m in seconds)
    lines = [f"{'module':<{width}}  {'tests':>5}  {'seconds':>8}"]
    for module, spent in sorted(seconds.items(), key=lambda item: (-item[1], item[0])):
        lines.append(f"{module:<{width}}  {len(tests.get(module, ())):>5}  {spent:>8.1f}")
    total = sum(seconds.values())
    count = sum(len(t) for t in tests.values())
    lines.append(f"{'total':<{width}}  {count:>5}  {total:>8.1f}")
    return lines


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = module_time_table(_module_seconds, _module_tests)
    if lines:
        terminalreporter.write_sep("=", "wall time per module (setup + call + teardown)")
        for line in lines:
            terminalreporter.write_line(line)
