"""Rules of the patroni-citus policy pack, as plain functions over plain data.

Nothing here imports Pulumi. Every rule takes ``Resource`` values (what the engine sends
the analyzer: type token, logical name, URN, camelCase properties, the ``protect`` and
``parent`` options) plus its normalised config, and returns ``Violation`` values. The pack
(``policies/pack.py``) adapts pulumi-policy's arguments into this data; tests build it by hand.

Unknown values. At preview a property computed by another resource (an image id, a volume
name, ...) is unknown. The adapter replaces it by the ``UNKNOWN`` singleton. A rule that meets
``UNKNOWN`` where it needs a value skips that one check: it neither reports nor crashes.
The same rule runs again at ``pulumi up``, when the value is known.

Identification (see docs/conventions.md): members are identified by the labels the components
set, never by values computed at deploy time nor by their parent component (component names
and URNs are free to change; labels are plain inputs, known at preview, and present on the
resource both as resource-policy inputs and as stack-policy outputs):

* a ``docker:index/container:Container`` whose label ``patroni-citus.role`` is ``etcd`` is an
  etcd member of the cluster named by its ``patroni-citus.cluster`` label;
* role ``patroni`` plus ``patroni-citus.group`` makes a Patroni member of that Citus group;
* role ``vip-manager`` marks the only containers allowed NET_ADMIN / NET_RAW;
* ``patroni-citus.data-path`` on etcd/Patroni containers names where the data volume goes;
* the ``docker:index/network:Network`` carries ``patroni-citus.member-range`` and
  ``patroni-citus.vip``; ``docker:index/volume:Volume`` resources labelled with role ``etcd``
  or ``patroni`` are data volumes.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

# --------------------------------------------------------------------------------------------
# Plain data
# --------------------------------------------------------------------------------------------


class _Unknown:
    """A value the engine does not know yet (preview). Compare with ``is UNKNOWN``."""

    _instance: Optional["_Unknown"] = None

    def __new__(cls) -> "_Unknown":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:  # never mistake an unknown for a real (truthy) value
        return False


UNKNOWN = _Unknown()


def is_unknown(value: Any) -> bool:
    return value is UNKNOWN


@dataclass(frozen=True)
class Resource:
    """One resource as the policy engine sees it."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any] = field(default_factory=dict)
    protect: bool = False
    parent: Optional[str] = None  # parent URN
    dependencies: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Violation:
    message: str
    urn: Optional[str] = None  # only used by stack rules to point at a resource


# --------------------------------------------------------------------------------------------
# Conventions
# --------------------------------------------------------------------------------------------

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
NETWORK = "docker:index/network:Network"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"

L_CLUSTER = "patroni-citus.cluster"
L_ROLE = "patroni-citus.role"
L_GROUP = "patroni-citus.group"
L_MEMBER = "patroni-citus.member"
L_DATA_PATH = "patroni-citus.data-path"
L_MEMBER_RANGE = "patroni-citus.member-range"
L_VIP = "patroni-citus.vip"
# retainOnDelete never reaches a policy (pulumi-policy 1.21 / the analyzer protocol only
# carry protect, ignoreChanges, deleteBeforeReplace, aliases, customTimeouts,
# additionalSecretOutputs and parent), so the component mirrors it in this volume label.
L_RETAIN = "patroni-citus.retain"

ROLE_ETCD = "etcd"
ROLE_PATRONI = "patroni"
ROLE_VIP_MANAGER = "vip-manager"
DATA_ROLES = (ROLE_ETCD, ROLE_PATRONI)

DEFAULT_DATA_PATHS = {ROLE_ETCD: "/var/lib/etcd", ROLE_PATRONI: "/var/lib/postgresql/data"}

DEFAULT_SECRET_NAME_PATTERN = (
    r"(?i)(passw(or)?d|passphrase|pwd|secret|token|api[_-]?key|private[_-]?key|credential)"
)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def short_type(type_token: str) -> str:
    return type_token.rsplit(":", 1)[-1] if ":" in type_token else type_token


def where(res: Resource) -> str:
    return f'{short_type(res.type)} "{res.name}"'


def label(res: Resource, key: str) -> Any:
    """Value of a pulumi-docker label (``labels: [{label, value}]``).

    ``None`` when the label is certainly absent, ``UNKNOWN`` when it may be present but
    cannot be read yet.
    """
    raw = res.props.get("labels")
    if raw is None:
        return None
    if is_unknown(raw):
        return UNKNOWN
    if isinstance(raw, Mapping):  # tolerate the map form, too
        return raw.get(key)
    if not isinstance(raw, (list, tuple)):
        return None
    maybe = False
    for item in raw:
        if is_unknown(item):
            maybe = True
            continue
        if not isinstance(item, Mapping):
            continue
        k = item.get("label")
        if is_unknown(k):
            maybe = True
            continue
        if k == key:
            return item.get("value")
    return UNKNOWN if maybe else None


def label_items(res: Resource) -> List[Tuple[Any, Any]]:
    raw = res.props.get("labels")
    if raw is None or is_unknown(raw):
        return []
    if isinstance(raw, Mapping):
        return list(raw.items())
    out = []
    for item in raw if isinstance(raw, (list, tuple)) else []:
        if isinstance(item, Mapping):
            out.append((item.get("label"), item.get("value")))
    return out


def as_list(value: Any) -> List[Any]:
    """A list property; ``[]`` when absent or unknown (callers check UNKNOWN first if needed)."""
    if value is None or is_unknown(value) or not isinstance(value, (list, tuple)):
        return []
    return list(value)


def is_true(value: Any) -> bool:
    """Go's strconv.ParseBool truthy spellings (what Docker accepts for log options)."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value in ("1", "t", "T", "TRUE", "true", "True")


def containers(resources: Iterable[Resource]) -> List[Resource]:
    return [r for r in resources if r.type == CONTAINER]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _names(rs: Sequence[Resource]) -> str:
    return ", ".join(r.name for r in rs) if rs else "none"


def _group_sort_key(value: str) -> Tuple[int, Any]:
    return (0, int(value)) if value.isdigit() else (1, value)


# --------------------------------------------------------------------------------------------
# Rule: etcd-odd-quorum (stack, mandatory)
# --------------------------------------------------------------------------------------------


def check_etcd_quorum(resources: Sequence[Resource], config: Mapping[str, Any]) -> List[Violation]:
    out: List[Violation] = []
    members: Dict[str, List[Resource]] = {}
    clusters: List[str] = []  # clusters that have etcd or Patroni members, in first-seen order
    undecided_clusters: set = set()
    undecided_all = False

    for c in containers(resources):
        role, cluster = label(c, L_ROLE), label(c, L_CLUSTER)
        if is_unknown(role) or (role in (ROLE_ETCD, ROLE_PATRONI) and is_unknown(cluster)):
            # cannot tell (yet) whether / where this container counts
            if is_unknown(cluster):
                undecided_all = True
            else:
                undecided_clusters.add(cluster)
            continue
        if role not in (ROLE_ETCD, ROLE_PATRONI):
            continue
        if not cluster:
            if role == ROLE_ETCD:
                out.append(Violation(
                    f"{where(c)} has {L_ROLE}=etcd but no {L_CLUSTER} label, so it counts towards "
                    f"no cluster's etcd quorum. Fix: label it {L_CLUSTER}=<cluster name> like the "
                    f"other members of its cluster.", c.urn))
            continue
        if cluster not in clusters:
            clusters.append(cluster)
        if role == ROLE_ETCD:
            members.setdefault(cluster, []).append(c)

    if undecided_all:
        return out
    for cluster in clusters:
        if cluster in undecided_clusters:
            continue
        ms = members.get(cluster, [])
        n = len(ms)
        if n >= 3 and n % 2 == 1:
            continue
        if n < 3:
            why = "fewer than 3 members cannot keep quorum when a member is lost"
            fix = "run 3 (or 5) etcd members"
        else:
            why = (f"{n} members need {n // 2 + 1} for quorum and survive "
                   f"{_plural((n - 1) // 2, 'failure')}, no more than {n - 1} would")
            fix = f"run {n - 1} or {n + 1} etcd members"
        out.append(Violation(
            f'cluster "{cluster}" has {_plural(n, "etcd member")} ({_names(ms)}); etcd needs an '
            f"odd count of at least 3: {why}. Fix: {fix} in cluster \"{cluster}\" (containers "
            f"labelled {L_ROLE}=etcd, {L_CLUSTER}={cluster})."))
    return out


# --------------------------------------------------------------------------------------------
# Rule: patroni-group-size (stack)
# --------------------------------------------------------------------------------------------


def check_group_size(resources: Sequence[Resource], config: Mapping[str, Any]) -> List[Violation]:
    minimum = int(config.get("minMembers", 2))
    out: List[Violation] = []
    groups: Dict[Tuple[str, str], List[Resource]] = {}
    undecided: set = set()
    undecided_all = False
    for c in containers(resources):
        role, cluster, group = label(c, L_ROLE), label(c, L_CLUSTER), label(c, L_GROUP)
        if is_unknown(role):
            if is_unknown(cluster):
                undecided_all = True
            else:
                undecided.add(cluster)
            continue
        if role != ROLE_PATRONI:
            continue
        if is_unknown(cluster) or is_unknown(group):
            if is_unknown(cluster):
                undecided_all = True
            else:
                undecided.add(cluster)
            continue
        if not cluster or group in (None, ""):
            missing = " and ".join(k for k, v in ((L_CLUSTER, cluster), (L_GROUP, group)) if not v)
            out.append(Violation(
                f"{where(c)} has {L_ROLE}=patroni but no {missing} label, so it belongs to no "
                f"Citus group. Fix: label it {L_CLUSTER}=<cluster> and {L_GROUP}=<group number, "
                f"0 for the coordinator>.", c.urn))
            continue
        groups.setdefault((cluster, str(group)), []).append(c)
    if undecided_all:
        return out
    for (cluster, group) in sorted(groups, key=lambda k: (k[0], _group_sort_key(k[1]))):
        if cluster in undecided:
            continue
        ms = groups[(cluster, group)]
        if len(ms) >= minimum:
            continue
        out.append(Violation(
            f'Patroni group {group} of cluster "{cluster}" has {_plural(len(ms), "member")} '
            f"({_names(ms)}); at least {minimum} are required so that a replica can take over "
            f"when the leader fails (3 recommended for production). Fix: add members to group "
            f"{group}, or lower patroni-group-size.minMembers in the pack config for a "
            f"non-production stack.", ms[0].urn))
    return out


# --------------------------------------------------------------------------------------------
# Rule: pinned-images (resource)
# --------------------------------------------------------------------------------------------


def image_pin_problem(ref: str) -> Optional[str]:
    """Why an image reference is not pinned, or None when it is."""
    ref = ref.strip()
    if not ref:
        return "is empty"
    if ref.startswith("sha256:"):
        return None  # an image id
    if "@" in ref:
        return None  # pinned by digest
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last:
        return 'has no tag, so Docker uses "latest"'
    tag = last.rsplit(":", 1)[1]
    if tag == "latest":
        return 'uses the tag "latest"'
    if not tag:
        return "has an empty tag"
    return None


def check_pinned_images(res: Resource, config: Mapping[str, Any]) -> List[Violation]:
    if res.type == REMOTE_IMAGE:
        prop = "name"
    elif res.type == CONTAINER:
        prop = "image"
    else:
        return []
    ref = res.props.get(prop)
    if not isinstance(ref, str):  # absent or unknown (e.g. another image's id at preview)
        return []
    problem = image_pin_problem(ref)
    if problem is None:
        return []
    return [Violation(
        f'{where(res)}: image "{ref}" {problem}; such a reference is mutable, so a re-pull or '
        f"a replacement can silently change the software. Fix: set {prop} to a fixed version "
        f"tag or a digest (e.g. repo:16.4 or repo@sha256:<digest>).")]


# --------------------------------------------------------------------------------------------
# Rule: net-capabilities (resource)
# --------------------------------------------------------------------------------------------

_NET_CAPS = ("NET_ADMIN", "NET_RAW")


def _cap(value: Any) -> Optional[str]:
    if not isinstance(value, str):
        return None
    v = value.strip().upper()
    return v[4:] if v.startswith("CAP_") else v


def check_net_capabilities(res: Resource, config: Mapping[str, Any]) -> List[Violation]:
    if res.type != CONTAINER:
        return []
    role = label(res, L_ROLE)
    if is_unknown(role) or role == ROLE_VIP_MANAGER:
        return []
    who = f"{where(res)} (role {role})" if role else f"{where(res)} (no {L_ROLE} label)"
    out: List[Violation] = []
    privileged = res.props.get("privileged")
    if privileged is True:
        out.append(Violation(
            f"{who} is privileged, which grants every capability including NET_ADMIN and "
            f"NET_RAW; only vip-manager containers may hold them. Fix: remove privileged=True "
            f"and add the specific capabilities the container needs."))
    caps = res.props.get("capabilities")
    if is_unknown(caps):
        return out
    caps = caps if isinstance(caps, Mapping) else {}
    adds_raw, drops_raw = caps.get("adds"), caps.get("drops")
    adds = [_cap(a) for a in as_list(adds_raw)]
    drops = [_cap(d) for d in as_list(drops_raw)]
    for cap in _NET_CAPS:
        if cap in adds or "ALL" in adds:
            via = cap if cap in adds else "ALL"
            out.append(Violation(
                f"{who} adds capability {via}, which gives it {cap}; only vip-manager containers "
                f"may hold NET_ADMIN or NET_RAW. Fix: remove {via} from capabilities.adds."))
    if config.get("requireNetRawDrop", True) and not is_unknown(drops_raw) \
            and "NET_RAW" not in adds and "ALL" not in adds \
            and not any(is_unknown(d) for d in as_list(drops_raw)) \
            and "NET_RAW" not in drops and "ALL" not in drops:
        out.append(Violation(
            f"{who} keeps NET_RAW, which Docker grants by default; only vip-manager containers "
            f'may hold NET_ADMIN or NET_RAW. Fix: add "NET_RAW" to capabilities.drops.'))
    return out


# --------------------------------------------------------------------------------------------
# Rule: data-volumes (stack)
# --------------------------------------------------------------------------------------------


def _norm_path(p: str) -> str:
    return p.rstrip("/") or "/"


def _data_mount(c: Resource, path: str) -> Tuple[str, Any]:
    """How ``path`` is mounted: ('volume', name) | ('bind', host) | ('anonymous', None) |
    ('none', None) | ('unknown', None)."""
    vols, mounts = c.props.get("volumes"), c.props.get("mounts")
    uncertain = is_unknown(vols) or is_unknown(mounts)
    for v in as_list(vols):
        if is_unknown(v) or not isinstance(v, Mapping):
            uncertain = True
            continue
        cp = v.get("containerPath")
        if is_unknown(cp):
            uncertain = True
            continue
        if not isinstance(cp, str) or _norm_path(cp) != path:
            continue
        if v.get("hostPath"):
            return ("bind", v.get("hostPath"))
        name = v.get("volumeName")
        if is_unknown(name) or name:
            return ("volume", name)
        return ("anonymous", None)
    for m in as_list(mounts):
        if is_unknown(m) or not isinstance(m, Mapping):
            uncertain = True
            continue
        target = m.get("target")
        if is_unknown(target):
            uncertain = True
            continue
        if not isinstance(target, str) or _norm_path(target) != path:
            continue
        kind, source = m.get("type"), m.get("source")
        if is_unknown(kind):
            return ("unknown", None)
        if kind == "volume":
            return ("volume", source) if (is_unknown(source) or source) else ("anonymous", None)
        return ("bind" if kind == "bind" else kind or "bind", source)
    return ("unknown", None) if uncertain else ("none", None)


def check_data_volumes(resources: Sequence[Resource], config: Mapping[str, Any]) -> List[Violation]:
    out: List[Violation] = []
    volumes = [r for r in resources if r.type == VOLUME]
    by_name = {v.props.get("name"): v for v in volumes if isinstance(v.props.get("name"), str)}
    data_volumes: Dict[str, Tuple[Resource, Optional[Resource]]] = {}  # urn -> (volume, user)

    for c in containers(resources):
        role = label(c, L_ROLE)
        if role not in DATA_ROLES:
            continue
        path = label(c, L_DATA_PATH)
        if is_unknown(path):
            continue
        if not path:
            out.append(Violation(
                f"{where(c)} (role {role}) has no {L_DATA_PATH} label, so its data mount cannot "
                f"be checked. Fix: label it {L_DATA_PATH}={DEFAULT_DATA_PATHS[role]} (the mount "
                f"point of its data volume).", c.urn))
            continue
        path = _norm_path(path)
        kind, source = _data_mount(c, path)
        fix = (f'Fix: mount a named docker.Volume there (volumes=[{{volumeName: <volume name>, '
               f'containerPath: "{path}"}}]).')
        if kind == "none":
            out.append(Violation(
                f"{where(c)} (role {role}) mounts nothing at its data path {path}, so its data "
                f"lives in the container and is lost when the container is replaced. {fix}",
                c.urn))
        elif kind == "anonymous":
            out.append(Violation(
                f"{where(c)} (role {role}) mounts an anonymous volume at its data path {path}; "
                f"anonymous volumes are removed with the container. {fix}", c.urn))
        elif kind not in ("volume", "unknown"):
            out.append(Violation(
                f'{where(c)} (role {role}) mounts a {kind} mount ("{source}") at its data path '
                f"{path} instead of a named volume. {fix}", c.urn))
        elif kind == "volume" and isinstance(source, str) and source in by_name:
            vol = by_name[source]
            data_volumes.setdefault(vol.urn, (vol, c))

    for vol in volumes:
        if label(vol, L_ROLE) in DATA_ROLES:
            data_volumes.setdefault(vol.urn, (vol, None))

    for vol, user in data_volumes.values():
        retain = label(vol, L_RETAIN)
        if vol.protect or is_unknown(retain) or is_true(retain):
            continue
        holds = f"holds the data of {where(user)}" if user else \
            f"is a data volume (role {label(vol, L_ROLE)})"
        out.append(Violation(
            f"{where(vol)} {holds} but is neither protected nor retained, so pulumi destroy or a "
            f"replacement deletes the data. Fix: create it with protect=True, or with "
            f"retain_on_delete=True plus the label {L_RETAIN}=true (policies cannot see "
            f"retainOnDelete).", vol.urn))
    return out


# --------------------------------------------------------------------------------------------
# Rule: no-literal-secrets (resource)
# --------------------------------------------------------------------------------------------


def _secret_re(config: Mapping[str, Any]) -> "re.Pattern[str]":
    pattern = config.get("secretNamePattern") or DEFAULT_SECRET_NAME_PATTERN
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ValueError(
            f"no-literal-secrets.secretNamePattern {pattern!r} is not a valid regular "
            f"expression: {e}") from e


def _is_file_reference(name: str) -> bool:
    return bool(re.search(r"(?i)[_.-]file$", name))


def check_literal_secrets(res: Resource, config: Mapping[str, Any]) -> List[Violation]:
    if not res.type.startswith("docker:"):
        return []
    rx = _secret_re(config)
    out: List[Violation] = []
    fix = ("Fix: deliver the secret in a file instead (Patroni: in /etc/patroni/patroni.yml "
           "uploaded with `uploads`; other images: upload a file and set <NAME>_FILE to its "
           "path), or rename the entry if it is not a secret.")
    if res.type == CONTAINER:
        for env in as_list(res.props.get("envs")):
            if not isinstance(env, str) or "=" not in env:
                continue  # unknown entries are checked again at update
            name, value = env.split("=", 1)
            if value and rx.search(name) and not _is_file_reference(name):
                out.append(Violation(
                    f"{where(res)} sets environment variable {name} to a literal value (not "
                    f"shown); the environment is readable by anyone who can run docker inspect "
                    f"and is stored in the Pulumi state. {fix}"))
    for key, value in label_items(res):
        if not isinstance(key, str) or is_unknown(value) or not value:
            continue
        if rx.search(key) and not _is_file_reference(key):
            out.append(Violation(
                f'{where(res)} sets label "{key}" to a literal value (not shown); labels are '
                f"readable by anyone who can run docker inspect and are stored in the Pulumi "
                f"state. {fix}"))
    return out


# --------------------------------------------------------------------------------------------
# Rule: restart-and-healthcheck (resource)
# --------------------------------------------------------------------------------------------

_HEALTHCHECK_HINTS = {
    ROLE_ETCD: '["CMD", "etcdctl", "endpoint", "health"]',
    ROLE_PATRONI: '["CMD", "curl", "-fsS", "http://localhost:8008/liveness"]',
}


def check_restart_and_healthcheck(res: Resource, config: Mapping[str, Any]) -> List[Violation]:
    if res.type != CONTAINER:
        return []
    if res.props.get("rm") is True or res.props.get("attach") is True:
        return []  # a one-shot container, not long-running
    out: List[Violation] = []
    restart = res.props.get("restart")
    if not is_unknown(restart) and restart in (None, "", "no"):
        shown = "no restart policy" if restart in (None, "") else 'restart="no"'
        out.append(Violation(
            f"{where(res)} has {shown}, so it stays down after a crash or a Docker daemon "
            f'restart. Fix: set restart="unless-stopped" (or "always" / "on-failure").'))
    hc = res.props.get("healthcheck")
    if not is_unknown(hc):
        tests = hc.get("tests") if isinstance(hc, Mapping) else None
        if not is_unknown(tests):
            tests = as_list(tests)
            disabled = bool(tests) and tests[0] == "NONE"
            if not tests or disabled:
                role = label(res, L_ROLE)
                hint = _HEALTHCHECK_HINTS.get(role if isinstance(role, str) else "",
                                              '["CMD", ...]')
                what = "disables its healthcheck" if disabled else "has no healthcheck"
                out.append(Violation(
                    f"{where(res)} {what}, so Docker cannot report it unhealthy. Fix: "
                    f"set healthcheck={{tests: {hint}, interval: \"10s\", timeout: \"5s\", "
                    f"retries: 3}}."))
    return out


# --------------------------------------------------------------------------------------------
# Rule: vip-placement (stack)
# --------------------------------------------------------------------------------------------


def _net(value: Any, strict: bool = False):
    try:
        return ipaddress.ip_network(value, strict=strict)
    except (TypeError, ValueError):
        return None


def _addr(value: Any):
    try:
        return ipaddress.ip_address(value)
    except (TypeError, ValueError):
        return None


def check_vip_placement(resources: Sequence[Resource], config: Mapping[str, Any]) -> List[Violation]:
    out: List[Violation] = []
    for net in (r for r in resources if r.type == NETWORK):
        vip_raw = label(net, L_VIP)
        if vip_raw is None or is_unknown(vip_raw) or vip_raw == "":
            continue
        w = where(net)
        vip = _addr(vip_raw)
        if vip is None:
            out.append(Violation(
                f'{w}: the VIP label {L_VIP}="{vip_raw}" is not an IP address. Fix: set it to '
                f"an address inside the network's subnet and outside {L_MEMBER_RANGE}.", net.urn))
            continue
        ipams = net.props.get("ipamConfigs")
        if not is_unknown(ipams):
            ipams = [i for i in as_list(ipams) if isinstance(i, Mapping)]
            subnets = [i.get("subnet") for i in ipams]
            if any(is_unknown(s) for s in subnets):
                pass
            else:
                nets = [n for n in (_net(s) for s in subnets) if n is not None]
                if not nets:
                    out.append(Violation(
                        f"{w} has VIP {vip} but no ipamConfigs subnet, so Docker picks the subnet "
                        f"and the VIP may lie outside it. Fix: set ipamConfigs=[{{subnet: "
                        f"<CIDR containing {vip}>}}].", net.urn))
                elif not any(vip.version == n.version and vip in n for n in nets):
                    out.append(Violation(
                        f"{w}: VIP {vip} lies outside the network's subnet "
                        f"{', '.join(map(str, nets))}, so members cannot reach it. Fix: choose a "
                        f"VIP inside the subnet and outside {L_MEMBER_RANGE}.", net.urn))
            for i in ipams:
                rng, gw = _net(i.get("ipRange")), _addr(i.get("gateway"))
                if rng is not None and vip.version == rng.version and vip in rng:
                    out.append(Violation(
                        f"{w}: VIP {vip} lies inside ipamConfigs ipRange {rng}, from which Docker "
                        f"hands out addresses to containers without a static one. Fix: choose a "
                        f"VIP outside {rng}.", net.urn))
                if gw is not None and gw == vip:
                    out.append(Violation(
                        f"{w}: VIP {vip} is the network's gateway address. Fix: choose another "
                        f"VIP inside the subnet and outside {L_MEMBER_RANGE}.", net.urn))
        mr_raw = label(net, L_MEMBER_RANGE)
        if not is_unknown(mr_raw):
            member_range = _net(mr_raw)
            if member_range is None:
                what = "has no" if not mr_raw else f'has an invalid ("{mr_raw}")'
                out.append(Violation(
                    f"{w} has VIP {vip} but {what} {L_MEMBER_RANGE} label, so the VIP cannot be "
                    f"checked against member addresses. Fix: label the network with the CIDR "
                    f"member addresses are taken from.", net.urn))
            elif vip.version == member_range.version and vip in member_range:
                out.append(Violation(
                    f"{w}: VIP {vip} lies inside the member range {member_range}, so a member can "
                    f"be given the VIP as its own address. Fix: choose a VIP outside "
                    f"{member_range} (but inside the subnet), or shrink {L_MEMBER_RANGE}.",
                    net.urn))
        cluster = label(net, L_CLUSTER)
        net_name = net.props.get("name")
        for c in containers(resources):
            c_cluster = label(c, L_CLUSTER)
            for na in as_list(c.props.get("networksAdvanced")):
                if not isinstance(na, Mapping):
                    continue
                ip = na.get("ipv4Address")
                if is_unknown(ip) or _addr(ip) != vip:
                    continue
                same = (isinstance(net_name, str) and na.get("name") == net_name) or \
                       (cluster is not None and not is_unknown(cluster) and c_cluster == cluster)
                if same:
                    out.append(Violation(
                        f"{where(c)} takes the VIP {vip} of {w} as its static address, so the "
                        f"VIP cannot move to the leader. Fix: give the container an address "
                        f"from {mr_raw if isinstance(mr_raw, str) else L_MEMBER_RANGE} instead.",
                        c.urn))
    return out


# --------------------------------------------------------------------------------------------
# Rule: published-ports (resource)
# --------------------------------------------------------------------------------------------


def check_published_ports(res: Resource, config: Mapping[str, Any]) -> List[Violation]:
    if res.type != CONTAINER:
        return []
    allowed = [str(a) for a in (config.get("allowedHostIps") or ["127.0.0.1"])]
    shown_allowed = ", ".join(allowed)
    fix_cfg = "or add the address to published-ports.allowedHostIps in the pack config"
    out: List[Violation] = []
    if res.props.get("publishAllPorts") is True:
        out.append(Violation(
            f"{where(res)} sets publishAllPorts, which publishes every exposed port on all "
            f"interfaces (0.0.0.0); allowed host addresses: {shown_allowed}. Fix: remove "
            f"publishAllPorts and list the ports with ip=\"{allowed[0]}\"."))
    for p in as_list(res.props.get("ports")):
        if not isinstance(p, Mapping):
            continue
        ip = p.get("ip")
        if is_unknown(ip):
            continue
        ip = ip or "0.0.0.0"  # the provider's default
        if ip in allowed:
            continue
        internal, external = p.get("internal"), p.get("external")
        proto = p.get("protocol") or "tcp"
        host = f"host port {external}" if external not in (None, "") and not is_unknown(external) \
            else "a random host port"
        out.append(Violation(
            f"{where(res)} publishes container port {internal}/{proto} on {ip} ({host}); "
            f"allowed host addresses: {shown_allowed}. Fix: set ip=\"{allowed[0]}\" on that "
            f"port, {fix_cfg}."))
    return out


# --------------------------------------------------------------------------------------------
# Rule: fluentd-async (resource)
# --------------------------------------------------------------------------------------------


def check_fluentd_async(res: Resource, config: Mapping[str, Any]) -> List[Violation]:
    if res.type != CONTAINER or res.props.get("logDriver") != "fluentd":
        return []
    opts = res.props.get("logOpts")
    if is_unknown(opts):
        return []
    opts = opts if isinstance(opts, Mapping) else {}
    values = [opts.get("fluentd-async"), opts.get("fluentd-async-connect")]
    if any(is_unknown(v) for v in values) or any(is_true(v) for v in values):
        return []
    return [Violation(
        f"{where(res)} logs to fluentd without the asynchronous connection option, so Docker "
        f"refuses to start it (or blocks it) while fluentd is unreachable. Fix: set "
        f'logOpts={{"fluentd-async": "true"}} (fluentd-async-connect is the deprecated '
        f"spelling).")]


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

MANDATORY, ADVISORY, DISABLED = "mandatory", "advisory", "disabled"


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    kind: str  # "resource" | "stack"
    check: Callable[..., List[Violation]]
    enforcement_level: str
    config_schema: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    locked: bool = False  # documented as not to be lowered by pack config

    def config(self, given: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """Schema defaults overlaid with the given config (JSON numbers may arrive as floats)."""
        cfg = {k: v["default"] for k, v in self.config_schema.items() if "default" in v}
        for k, v in (given or {}).items():
            if k == "enforcementLevel":
                continue
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            cfg[k] = v
        return cfg


RULES: List[Rule] = [
    Rule("etcd-odd-quorum",
         "The etcd members of each cluster number an odd count of at least 3.",
         "stack", check_etcd_quorum, MANDATORY, locked=True),
    Rule("patroni-group-size",
         "Every Patroni group (Citus coordinator or worker group) has enough members to fail over.",
         "stack", check_group_size, MANDATORY,
         {"minMembers": {"type": "integer", "minimum": 1, "default": 2,
                         "description": "Minimum members per Patroni group (3 recommended for "
                                        "production)."}}),
    Rule("pinned-images",
         "Remote images are pinned to a version tag or digest (no `latest`, no untagged).",
         "resource", check_pinned_images, MANDATORY),
    Rule("net-capabilities",
         "NET_ADMIN / NET_RAW only on vip-manager containers.",
         "resource", check_net_capabilities, MANDATORY,
         {"requireNetRawDrop": {"type": "boolean", "default": True,
                                "description": "Docker grants NET_RAW by default; require other "
                                               "containers to drop it."}}),
    Rule("data-volumes",
         "Every etcd and Patroni container mounts a named volume at its data path, and data "
         "volumes are protected or retained.",
         "stack", check_data_volumes, MANDATORY),
    Rule("no-literal-secrets",
         "No environment variable or label whose name suggests a secret carries a literal value.",
         "resource", check_literal_secrets, MANDATORY,
         {"secretNamePattern": {"type": "string", "default": DEFAULT_SECRET_NAME_PATTERN,
                                "description": "Python regular expression (searched, not "
                                               "anchored) matched against env/label names."}}),
    Rule("restart-and-healthcheck",
         "Every long-running container has a restart policy and a healthcheck.",
         "resource", check_restart_and_healthcheck, MANDATORY),
    Rule("vip-placement",
         "The VIP lies inside the network's subnet, outside the member range, and no container "
         "takes it.",
         "stack", check_vip_placement, MANDATORY),
    Rule("published-ports",
         "Ports are published on allowed host addresses only (127.0.0.1 by default).",
         "resource", check_published_ports, MANDATORY,
         {"allowedHostIps": {"type": "array", "items": {"type": "string"},
                             "default": ["127.0.0.1"],
                             "description": "Host addresses ports may be published on."}}),
    Rule("fluentd-async",
         "A container logging to fluentd uses the asynchronous connection option.",
         "resource", check_fluentd_async, ADVISORY),
]

RULES_BY_NAME: Dict[str, Rule] = {r.name: r for r in RULES}


def run_rules(resources: Sequence[Resource],
              config: Optional[Mapping[str, Mapping[str, Any]]] = None) -> Dict[str, List[Violation]]:
    """Every rule over a whole graph, ignoring enforcement levels (for tests and tooling)."""
    config = config or {}
    out: Dict[str, List[Violation]] = {}
    for rule in RULES:
        cfg = rule.config(config.get(rule.name))
        if rule.kind == "stack":
            found = rule.check(resources, cfg)
        else:
            found = [Violation(v.message, v.urn or r.urn) for r in resources
                     for v in rule.check(r, cfg)]
        out[rule.name] = found
    return out
