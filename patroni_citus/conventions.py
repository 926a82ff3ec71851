"""The contract the program shares with the policy pack: label keys, roles, ports, paths.

It is defined in `policies/conventions.py` because only `policies/` ships with the pack; the
program reaches it through this module alone."""

from policies.conventions import *  # noqa: F403
