"""Policy pack for the Patroni + Citus cluster (see policies/README.md). Importable as `policies` for tests."""
