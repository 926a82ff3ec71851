"""``command:local:Command``: pulumi/pulumi-command's local command, run on this machine.

Scripts run as the provider runs them (``local/commandOutputs.go``): ``/bin/sh -c`` (or
``interpreter``) in the program's working directory (or ``dir``), with ``os.Environ()`` plus
``environment``, and stdout/stderr with one trailing newline trimmed.  A failing script fails
the registration with everything it printed, as ``pulumi up`` shows it.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from typing import Optional

from .context import Provider
from .errors import HarnessError
from .inputs import str_map
from .keys import T_COMMAND
from .records import Record

# The previous outputs an update or delete script sees, unless addPreviousOutputInEnv is false.
_PREVIOUS_OUTPUT_ENV = (("stdout", "PULUMI_COMMAND_STDOUT"), ("stderr", "PULUMI_COMMAND_STDERR"))


class CommandProvider(Provider):
    typ = T_COMMAND

    def create(self, name: str, inputs: dict) -> tuple[str, dict]:
        stdout = stderr = ""
        if inputs.get("create"):
            stdout, stderr = self.run(name, inputs, inputs["create"], "create")
        outputs = {**inputs, "stdout": stdout, "stderr": stderr}
        self.ctx.add(Record(self.typ, name, inputs=inputs, outputs=outputs))
        return f"{name}-{secrets.token_hex(4)}", outputs

    def update(self, rec: Record, inputs: dict, changed: list[str]) -> None:
        """commandController.go Update: the new `update` script, else the new `create`, with
        the previous run's stdout/stderr; with neither, the outputs keep them."""
        outputs = {**inputs, "stdout": rec.outputs["stdout"], "stderr": rec.outputs["stderr"]}
        script = inputs.get("update") or inputs.get("create")
        if script:
            stdout, stderr = self.run(rec.name, inputs, script, "update", rec.outputs)
            outputs.update({"stdout": stdout, "stderr": stderr})
        rec.outputs = outputs

    def delete(self, rec: Record) -> None:
        """commandController.go Delete: the delete script as recorded, previous outputs too."""
        if rec.inputs.get("delete"):
            self.run(rec.name, rec.inputs, rec.inputs["delete"], "delete", rec.outputs)

    def run(
        self,
        name: str,
        inputs: dict,
        script: str,
        phase: str,
        previous_outputs: Optional[dict] = None,
    ) -> tuple[str, str]:
        """local/commandOutputs.go run: one script of the command; returns stdout, stderr."""
        argv = list(inputs.get("interpreter") or ["/bin/sh", "-c"]) + [script]
        cwd = os.path.join(self.ctx.cwd(), inputs["dir"]) if inputs.get("dir") else self.ctx.cwd()
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=_environment(inputs, previous_outputs),
            input=(inputs.get("stdin") or "").encode(),
            capture_output=True,
        )
        out = proc.stdout.decode(errors="replace")
        err = proc.stderr.decode(errors="replace")
        if proc.returncode != 0:
            raise HarnessError(
                f"{self.typ} {name!r}: {phase} command exited with {proc.returncode}\n"
                f"--- command ---\n{script}\n--- stdout ---\n{out}\n--- stderr ---\n{err}"
            )
        return out.removesuffix("\n"), err.removesuffix("\n")


def _environment(inputs: dict, previous_outputs: Optional[dict]) -> dict[str, str]:
    """``os.Environ()`` plus `environment` and, unless addPreviousOutputInEnv is false, the
    previous stdout/stderr (update and delete)."""
    env = dict(os.environ)
    env.update(str_map(inputs.get("environment")))
    if previous_outputs and inputs.get("addPreviousOutputInEnv") is not False:
        for key, var in _PREVIOUS_OUTPUT_ENV:
            if previous_outputs.get(key):
                env[var] = previous_outputs[key]
    return env
