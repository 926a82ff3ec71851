"""pcctl: the operator's command line for a deployed patroni-citus stack: live status, a
leader watch and failover drills (`python -m pcctl --help`)."""
