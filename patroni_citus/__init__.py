"""Component resources of the patroni-citus program."""

from .resources.backups import Backups
from .resources.cluster import PatroniCitusCluster, PatroniCitusClusterArgs
from .resources.container_options import ContainerOptions
from .resources.etcd_cluster import EtcdCluster
from .resources.observability import Observability
from .resources.patroni_citus_group import DeployedMember, PatroniCitusGroup
from .resources.vip_manager import VipManager

__all__ = [
    "Backups",
    "PatroniCitusCluster",
    "PatroniCitusClusterArgs",
    "ContainerOptions",
    "DeployedMember",
    "EtcdCluster",
    "Observability",
    "PatroniCitusGroup",
    "VipManager",
]
