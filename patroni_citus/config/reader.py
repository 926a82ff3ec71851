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


class Values:
    """Every value read so far by its full path (`patroni.ttl`, `hosts.engines[0].name`), with
    what rules need besides: the values as given, which broke a rule, and where to report."""

    def __init__(self, problems: list[str], secret_sections: frozenset[str] = frozenset()):
        self.problems = problems
        self.secret_sections = secret_sections
        self.read: dict[str, Any] = {}
        # As set in the stack config, before coercion: only keys that were set.
        self.given: dict[str, Any] = {}
        # Every path a problem was reported at.
        self.invalid: set[str] = set()

    def __getitem__(self, path: str) -> Any:
        return self.read[path]

    def __contains__(self, path: str) -> bool:
        return path in self.read

    def get(self, path: str, default: Any = None) -> Any:
        return self.read.get(path, default)

    def valid(self, *paths: str) -> bool:
        return self.invalid.isdisjoint(paths)

    def section_valid(self, section: str, *ignoring: str) -> bool:
        """Whether no key under `section` broke a rule (unknown keys included)."""
        prefix = section + "."
        return not any(p.startswith(prefix) for p in self.invalid.difference(ignoring))

    def fail(self, path: str, value: Any, rule: str) -> None:
        section = re.split(r"[.\[]", path, maxsplit=1)[0]
        self.problems.append(
            f"{config_key(path)} = {shown(value, section in self.secret_sections)}: {rule}"
        )
        self.invalid.add(path)

    def report(self, path: str, rule: str) -> None:
        """A problem with no single value to show (a key missing, a list as a whole)."""
        self.problems.append(f"{config_key(path)}: {rule}")


class Reader:
    """Reads one section (`cluster`, `patroni.resources`, ...). `secret` marks a section stored
    encrypted: its values are never shown."""

    def __init__(self, section: str, raw: Any, values: Values, secret: bool = False):
        self.section = section
        self.values = values
        self.secret = secret
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            self.fail("", raw, "must be an object")
            raw = {}
        self.raw = dict(raw)

    def path(self, name: str) -> str:
        return f"{self.section}.{name}" if name else self.section

    def fail(self, name: str, value: Any, rule: str) -> None:
        path = self.path(name)
        self.values.problems.append(f"{config_key(path)} = {shown(value, self.secret)}: {rule}")
        self.values.invalid.add(path)

    def has(self, name: str) -> bool:
        return name in self.raw

    def section_reader(self, name: str) -> Reader:
        return Reader(self.path(name), self.raw.pop(name, None), self.values, self.secret)

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
            self.fail(str(name), self.raw[name], "unknown key (see docs/configuration.md)")


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
