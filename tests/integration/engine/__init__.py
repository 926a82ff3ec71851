"""A deploying Pulumi mock: ``DockerEngine`` creates what a program declares on a real Docker engine.

Usage (with any runner; the monitor hands each registration's resource options to the engine)::

    engine = DockerEngine(program_dir="/path/to/program", name_prefix="harness-")
    pulumi.runtime.set_mocks(engine, preview=False, monitor=RecordingMonitor(engine))
    ... run the program ...
    engine.teardown()

``new_resource`` receives the inputs as the Pulumi engine would send them to a provider
(camelCase property names, nested objects camelCase too, secrets wrapped in the secret
signature object) and performs what the real provider's Create does, through the Docker SDK
for Python.  Every input key a type does not translate raises :class:`UntranslatedInputError`
naming the type, the resource and the key (zero values -- None, "", 0, False, [], {} -- count
as unset, as ``d.GetOk`` does in the Terraform provider).  The engine never pulls and never
pushes.  A second program run over the same engine is an update (``begin_update`` /
``finish_update``), as ``pulumi up`` on an existing stack; options the harness does not
translate (ignoreChanges, deletedWith, aliases, ...) raise :class:`HarnessError`.

One module per concern, each citing the provider sources it follows:

* ``mocks``: ``DockerEngine``, the Mocks interface and the public API tests use;
* ``inputs`` and ``keys``: the wire form of inputs, and the keys translated per type;
* ``engines``: the default engine and those explicit ``pulumi:providers:docker`` name;
* ``context`` and ``providers``: one provider (Create/Update/Delete) per resource type, in
  ``images`` (Image, RemoteImage), ``networks``, ``volumes``, ``container_plan`` and
  ``containers`` (Container), ``commands`` (command:local:Command) and ``passwords``
  (RandomPassword);
* ``diff``, ``graph`` and ``updates``: a resource registered again (same, update, replace),
  dependency order, and the deletes an update ends with;
* ``records``, ``errors`` and ``durations``: the state, the failures, Go durations.
"""

from .diff import planned_diff
from .durations import parse_go_duration
from .errors import HarnessError, UntranslatedInputError, quiet_unretrieved_harness_errors
from .keys import HANDLED_KEYS
from .mocks import DockerEngine
from .records import Record

__all__ = [
    "DockerEngine",
    "HarnessError",
    "UntranslatedInputError",
    "Record",
    "parse_go_duration",
    "planned_diff",
    "HANDLED_KEYS",
    "quiet_unretrieved_harness_errors",
]
