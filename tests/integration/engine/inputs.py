"""Inputs as the Pulumi engine sends them to a provider, made plain for the translators.

A registration's inputs arrive in the engine's wire form: secrets and output values wrapped in
signature objects, numbers as floats.  The harness runs with ``preview=False``, so an unknown
value can only mean a program bug; it is refused rather than guessed.  Zero values count as
unset, as ``d.GetOk`` does in the Terraform provider.
"""

from __future__ import annotations

import secrets
from typing import Any, Optional

from .errors import HarnessError, UntranslatedInputError, short

# pulumi/pulumi sdk/python/lib/pulumi/runtime/rpc.py
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_OUTPUT_VALUE_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def plain(value: Any, where: str) -> Any:
    """Unwrap secrets/output values, reject unknowns and assets, turn integral floats to int."""
    if isinstance(value, dict):
        return _plain_object(value, where)
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str) and value == _UNKNOWN:
        raise HarnessError(f"{where}: unknown value (the harness runs with preview=False)")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _plain_object(value: dict, where: str) -> Any:
    sig = value.get(_SIG_KEY)
    if sig == _SECRET_SIG:
        return plain(value.get("value"), where)
    if sig == _OUTPUT_VALUE_SIG:
        if "value" not in value:
            raise HarnessError(
                f"{where}: unknown output value (the harness runs with preview=False)"
            )
        return plain(value["value"], where)
    if sig is not None:
        raise HarnessError(
            f"{where}: unsupported special value (asset/archive/resource reference): {short(value)}"
        )
    return {k: plain(v, f"{where}.{k}") for k, v in value.items()}


def is_unset(value: Any) -> bool:
    """A zero value, which the Terraform provider's ``d.GetOk`` reads as not set."""
    return (
        value is None or value == "" or value is False or value == 0 or value == [] or value == {}
    )


def check_keys(typ: str, name: str, value: Any, table: dict, path: str = "") -> None:
    """Refuse every set input key `table` does not list (see keys.HANDLED_KEYS), at any depth."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            check_keys(typ, name, item, table, f"{path}[{i}]")
        return
    if not isinstance(value, dict):
        raise HarnessError(
            f"{typ} {name!r}: {path or 'inputs'} should be an object, got {short(value)}"
        )
    for key, sub in value.items():
        where = f"{path}.{key}" if path else key
        if key not in table:
            if is_unset(sub):
                continue
            raise UntranslatedInputError(typ, name, where, sub)
        if table[key] is not None and not is_unset(sub):
            check_keys(typ, name, sub, table[key], where)


def labels(items: Optional[list]) -> dict[str, str]:
    """The providers' ``labels`` list of {label, value} objects as Docker's label map."""
    return {str(i["label"]): str(i.get("value", "")) for i in (items or [])}


def str_map(value: Optional[dict]) -> dict[str, str]:
    """A map input as Docker's string-to-string map."""
    return {str(k): str(v) for k, v in (value or {}).items()}


def autoname(resource_name: str) -> str:
    """Pulumi auto-naming: the resource name plus a random 7-hex suffix."""
    return f"{resource_name}-{secrets.token_hex(4)[:7]}"
