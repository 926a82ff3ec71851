"""Entry point Pulumi runs for `--policy-pack policies`: it only builds the PolicyPack.

The rules live in rules.py (plain functions), the pulumi-policy wrappers in pack.py.
"""

from pack import PACK_NAME, build_policies
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.ADVISORY,  # every policy sets its own level
    policies=build_policies(),
)
