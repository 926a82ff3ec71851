"""``random:index/randomPassword:RandomPassword``: terraform-provider-random's string generator.

The min_* characters are drawn first, the rest from the enabled classes, then all shuffled,
with ``secrets`` (the passwords guard a real cluster during the tests).  Nothing is created in
Docker.
"""

from __future__ import annotations

import secrets

from .context import Provider
from .errors import HarnessError
from .keys import T_PASSWORD
from .records import Record

_DEFAULT_SPECIAL = "!@#$%&*()-_=+[]{}<>:?"
_MINIMUMS = ("minNumeric", "minLower", "minUpper", "minSpecial")


class PasswordProvider(Provider):
    typ = T_PASSWORD

    def create(self, name: str, inputs: dict) -> tuple[str, dict]:
        length = inputs.get("length")
        if not isinstance(length, int) or length < 1:
            raise HarnessError(
                f"{self.typ} {name!r}: length must be a positive integer, got {length!r}"
            )
        flags = {
            k: (True if inputs.get(k) is None else bool(inputs[k]))
            for k in ("special", "upper", "lower")
        }
        numeric = self._numeric(name, inputs)
        result = self._generate(name, inputs, length, numeric, flags)
        outputs = {
            **inputs,
            "result": result,
            "length": length,
            "numeric": numeric,
            "number": numeric,
            **flags,
            **{k: int(inputs.get(k) or 0) for k in _MINIMUMS},
        }
        self.ctx.add(Record(self.typ, name, inputs=inputs, outputs=outputs))
        return "none", outputs

    def _numeric(self, name: str, inputs: dict) -> bool:
        """`numeric`, or its deprecated twin `number`: true unless set otherwise."""
        values = {inputs[k] for k in ("numeric", "number") if inputs.get(k) is not None}
        if len(values) > 1:
            raise HarnessError(f"{self.typ} {name!r}: numeric and number disagree")
        return values.pop() if values else True

    def _generate(
        self, name: str, inputs: dict, length: int, numeric: bool, flags: dict[str, bool]
    ) -> str:
        special_chars = inputs.get("overrideSpecial") or _DEFAULT_SPECIAL
        classes = [
            ("0123456789", numeric, int(inputs.get("minNumeric") or 0)),
            ("abcdefghijklmnopqrstuvwxyz", flags["lower"], int(inputs.get("minLower") or 0)),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZ", flags["upper"], int(inputs.get("minUpper") or 0)),
            (special_chars, flags["special"], int(inputs.get("minSpecial") or 0)),
        ]
        minimum = sum(m for _, _, m in classes)
        if length < minimum:
            raise HarnessError(
                f"{self.typ} {name!r}: length ({length}) must be >= the sum of the min_* values ({minimum})"
            )
        pool = "".join(chars for chars, on, _ in classes if on)
        if not pool and length > minimum:
            raise HarnessError(f"{self.typ} {name!r}: every character class is disabled")
        chosen = [secrets.choice(chars) for chars, _, m in classes for _ in range(m)]
        chosen += [secrets.choice(pool) for _ in range(length - len(chosen))]
        secrets.SystemRandom().shuffle(chosen)
        return "".join(chosen)
