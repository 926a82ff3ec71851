"""Component resources of the patroni-citus program."""

from .cluster import PatroniCitusCluster
from .container_options import ContainerOptions
from .etcd_cluster import EtcdCluster
from .patroni_citus_group import PatroniCitusGroup
from .observability import Observability
from .vip_manager import VipManager

__all__ = ["PatroniCitusCluster", "ContainerOptions", "EtcdCluster", "Observability",
           "PatroniCitusGroup", "VipManager"]
