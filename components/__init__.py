"""Component resources of the patroni-citus program."""

from .backups import Backups
from .cluster import PatroniCitusCluster
from .container_options import ContainerOptions
from .etcd_cluster import EtcdCluster
from .observability import Observability
from .patroni_citus_group import DeployedMember, PatroniCitusGroup
from .vip_manager import VipManager

__all__ = [
    "Backups",
    "PatroniCitusCluster",
    "ContainerOptions",
    "DeployedMember",
    "EtcdCluster",
    "Observability",
    "PatroniCitusGroup",
    "VipManager",
]
