"""patroni-citus: a Patroni + Citus cluster on Docker, one stack per environment.

Stack config -> validated settings (patroni_citus.config) -> a plain plan
(patroni_citus.plan) -> the resources that declare it (patroni_citus.resources)."""

import pulumi

from patroni_citus import PatroniCitusCluster, PatroniCitusClusterArgs
from patroni_citus.config.stack import read_settings
from patroni_citus.plan.cluster import plan_cluster

settings = read_settings()
cluster = PatroniCitusCluster(
    settings.cluster.scope, PatroniCitusClusterArgs(plan=plan_cluster(settings))
)

pulumi.export("vip", cluster.vip)
pulumi.export("coordinator", cluster.coordinator)
pulumi.export("coordinatorPassword", cluster.coordinator_password)
pulumi.export("etcdEndpoints", cluster.etcd_endpoints)
pulumi.export("dcs", cluster.dcs)
pulumi.export("citus", cluster.citus)
pulumi.export("members", cluster.members)
pulumi.export("groupLeaders", cluster.group_leaders)
pulumi.export("prometheusTargets", cluster.prometheus_targets)
pulumi.export("prometheusUrl", cluster.prometheus_url)
pulumi.export("cadvisorUrl", cluster.observability.cadvisor_url)
pulumi.export("fluentdAddress", cluster.observability.fluentd_address)
pulumi.export("adminerUrl", cluster.observability.adminer_url)
pulumi.export("endpoints", cluster.endpoints)
pulumi.export("pooler", cluster.pooler)
pulumi.export("applicationPassword", cluster.application_password)
