"""Reading one structured config object: typed values, problems recorded instead of raised,
values shown safely (never a secret, never a traceback on absurd input)."""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Optional, TypeVar

CONFIG_NAMESPACE = "patroni-citus"
SECRET_SHOWN = "[secret]"
MAX_SHOWN = 60
# Beyond this, a number in a string is refused rather than converted (Python limits int()).
MAX_INT_DIGITS = 18

Check = Callable[[Any], Optional[str]]
T = TypeVar("T")


class SettingsError(ValueError):
    """Every invalid config value, each naming the key, the value and the rule."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid stack configuration:\n  - " + "\n  - ".join(problems))


def config_key(path: str) -> str:
    return f"{CONFIG_NAMESPACE}:{path}"


def shown(value: Any, secret: bool = False) -> str:
    """A value as an error message may show it: redacted when secret, cut when long, and never
    raising (deep nesting and huge integers included)."""
    if secret:
        return SECRET_SHOWN
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        return "[not shown: too large]"
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


class Reader:
    """Reads one section (`cluster`, `patroni.resources`, ...). `secret` marks a section stored
    encrypted: its values are never shown."""

    def __init__(self, section: str, raw: Any, problems: list[str], secret: bool = False):
        self.section = section
        self.problems = problems
        self.secret = secret
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            self.fail("", raw, "must be an object")
            raw = {}
        self.raw = dict(raw)

    def key(self, name: str) -> str:
        return config_key(f"{self.section}.{name}" if name else self.section)

    def fail(self, name: str, value: Any, rule: str) -> None:
        self.problems.append(f"{self.key(name)} = {shown(value, self.secret)}: {rule}")

    def has(self, name: str) -> bool:
        return name in self.raw

    def section_reader(self, name: str) -> Reader:
        return Reader(
            f"{self.section}.{name}", self.raw.pop(name, None), self.problems, self.secret
        )

    def value(
        self, name: str, default: T, kind: type | tuple[type, ...], check: Optional[Check] = None
    ) -> T:
        value = self.raw.pop(name, default)
        if value is None:
            return default
        value = coerce(value, kind)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(name, value, f"must be {kind_name(kind)}")
            return default
        if check is not None:
            rule = check(value)
            if rule:
                self.fail(name, value, rule)
        return value  # type: ignore[return-value]

    def refuse(self, name: str, rule: str) -> None:
        """A key that does not apply in this configuration."""
        if self.has(name):
            self.fail(name, self.raw.pop(name), rule)

    def finish(self) -> None:
        for name in sorted(self.raw, key=str):
            self.fail(str(name), self.raw[name], "unknown key (see README, 'Configuration')")


def coerce(value: Any, kind: Any) -> Any:
    """`pulumi config set` and YAML hand over some values in another type than the key's:
    numbers and booleans as strings, versions and durations as numbers."""
    if (
        isinstance(value, str)
        and kind is int
        and re.fullmatch(rf"-?\d{{1,{MAX_INT_DIGITS}}}", value.strip())
    ):
        return int(value)
    if isinstance(value, str) and kind is bool and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, int) and abs(value) >= 10**MAX_INT_DIGITS:
            return value
        return repr(value)
    return value


def kind_name(kind: Any) -> str:
    names: dict[type, str] = {
        int: "an integer",
        bool: "true or false",
        str: "a string",
        dict: "an object",
    }
    kinds: tuple[type, ...] = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)
