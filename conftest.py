"""Root test configuration.

python-etcd3's generated protobuf modules predate protobuf 4's C implementation; they load
only with the pure-Python implementation, which must be chosen before protobuf is first
imported (Pulumi imports it too). The cost for the mock runs was measured negligible.
"""

import os

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
