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
* role ``engine-proxy`` marks the only container allowed to bind-mount the engine's API socket
  (and nothing else from the host);
* ``patroni-citus.data-path`` on etcd/Patroni/backup-exporter containers names where the data
  volume goes (the backup exporter's is pgBackRest's repository);
* the ``docker:index/network:Network`` carries ``patroni-citus.member-range`` and
  ``patroni-citus.vip``; ``docker:index/volume:Volume`` resources labelled with role ``etcd``,
  ``patroni`` or ``backup-exporter`` are data volumes.
"""

from __future__ import annotations

import ipaddress
import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

try:  # imported as the package ``policies`` (tests, the program)
    from . import conventions
except ImportError:  # run by Pulumi: runpy puts policies/ itself on sys.path
    import conventions  # type: ignore[no-redef,import-not-found]

# --------------------------------------------------------------------------------------------
# Plain data
# --------------------------------------------------------------------------------------------


class _Unknown:
    """A value the engine does not know yet (preview). Compare with ``is UNKNOWN``."""

    _instance: Optional[_Unknown] = None

    def __new__(cls) -> _Unknown:
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
# Resource types and pack defaults (labels, roles, ports and paths: conventions.py)
# --------------------------------------------------------------------------------------------

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
NETWORK = "docker:index/network:Network"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"

DEFAULT_SECRET_NAME_PATTERN = (
    r"(?i)(passw(or)?d|passphrase|pwd|secret|token|api[_-]?key|private[_-]?key|credential)"
)
# Argument names the secret pattern matches but that carry no secret: etcd's
# --initial-cluster-token only keeps clusters from joining each other by mistake.
DEFAULT_ALLOWED_ARGUMENT_NAMES = ("initial-cluster-token",)


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


# Container properties holding an argument vector (healthcheck.tests: inside healthcheck).
_ARGV_PROPS = ("command", "entrypoints", "healthcheck.tests")


def _argv_prop(res: Resource, prop: str) -> Any:
    if prop == "healthcheck.tests":
        hc = res.props.get("healthcheck")
        if is_unknown(hc):
            return UNKNOWN
        return hc.get("tests") if isinstance(hc, Mapping) else None
    return res.props.get(prop)


def _split_item(item: str) -> List[str]:
    """One argv item as tokens: shell-split when it holds whitespace (``sh -c "..."``)."""
    if not any(ch.isspace() for ch in item):
        return [item]
    try:
        return shlex.split(item)
    except ValueError:  # unbalanced quotes: split on whitespace instead
        return item.split()


def argv_tokens(res: Resource, prop: str) -> Tuple[List[str], bool]:
    """Tokens of a container's argv property, and whether some of it is unknown."""
    raw = _argv_prop(res, prop)
    if is_unknown(raw):
        return [], True
    tokens: List[str] = []
    uncertain = False
    for item in as_list(raw):
        if is_unknown(item):
            uncertain = True
        elif isinstance(item, str):
            tokens.extend(_split_item(item))
    return tokens, uncertain


def flag_value(tokens: Sequence[str], flag: str) -> Optional[str]:
    """Value of ``--flag=v``, ``-flag=v``, ``--flag v`` or ``-flag v`` (Go flag syntax); the
    last occurrence wins, as in Go's flag package. None when absent."""
    found: Optional[str] = None
    for i, tok in enumerate(tokens):
        if not tok.startswith("-"):
            continue
        name, eq, value = tok.lstrip("-").partition("=")
        if name != flag or tok.startswith("---"):
            continue
        if eq:
            found = value
        elif i + 1 < len(tokens):
            found = tokens[i + 1]
    return found


# --------------------------------------------------------------------------------------------
# Rule: etcd-odd-quorum (stack, mandatory)
# --------------------------------------------------------------------------------------------


def check_etcd_quorum(resources: Sequence[Resource], config: Mapping[str, Any]) -> List[Violation]:
    out: List[Violation] = []
    members: Dict[str, List[Resource]] = {}
    clusters: List[str] = []  # clusters that have etcd or Patroni members, in first-seen order
    undecided_clusters: set[str] = set()
    undecided_all = False

    member_roles = (conventions.ROLE_ETCD, conventions.ROLE_PATRONI)
    for c in containers(resources):
        role, cluster = label(c, conventions.LABEL_ROLE), label(c, conventions.LABEL_CLUSTER)
        if is_unknown(role) or (role in member_roles and is_unknown(cluster)):
            # cannot tell (yet) whether / where this container counts
            if is_unknown(cluster):
                undecided_all = True
            else:
                undecided_clusters.add(cluster)
            continue
        if role not in member_roles:
            continue
        if not cluster:
            if role == conventions.ROLE_ETCD:
                out.append(
                    Violation(
                        f"{where(c)} has {conventions.LABEL_ROLE}={conventions.ROLE_ETCD} but no "
                        f"{conventions.LABEL_CLUSTER} label, so it counts towards no cluster's etcd "
                        f"quorum. Fix: label it {conventions.LABEL_CLUSTER}=<cluster name> like the "
                        f"other members of its cluster.",
                        c.urn,
                    )
                )
            continue
        if cluster not in clusters:
            clusters.append(cluster)
        if role == conventions.ROLE_ETCD:
            members.setdefault(cluster, []).append(c)

    if undecided_all:
        return out
    for cluster in clusters:
        if cluster in undecided_clusters:
            continue
        ms = members.get(cluster, [])
        n = len(ms)
        problem = _quorum_problem(n)
        if problem is not None:
            why, fix = problem
            out.append(
                Violation(
                    f'cluster "{cluster}" has {_plural(n, "etcd member")} ({_names(ms)}); etcd needs '
                    f'an odd count of at least 3: {why}. Fix: {fix} in cluster "{cluster}" '
                    f"(containers labelled {conventions.LABEL_ROLE}={conventions.ROLE_ETCD}, "
                    f"{conventions.LABEL_CLUSTER}={cluster})."
                )
            )
        out.extend(_check_initial_cluster(cluster, ms))
    return out


def _quorum_problem(n: int) -> Optional[Tuple[str, str]]:
    """(why, fix) when ``n`` etcd members are not an odd count of at least 3."""
    if n >= 3 and n % 2 == 1:
        return None
    if n < 3:
        return (
            "fewer than 3 members cannot keep quorum when a member is lost",
            "run 3 (or 5) etcd members",
        )
    return (
        f"{n} members need {n // 2 + 1} for quorum and survive "
        f"{_plural((n - 1) // 2, 'failure')}, no more than {n - 1} would",
        f"run {n - 1} or {n + 1} etcd members",
    )


InitialClusterSource = Literal["flag", "env", "other", "unknown", "none"]


def etcd_initial_cluster(c: Resource) -> Tuple[InitialClusterSource, Optional[str]]:
    """Where an etcd member's initial cluster comes from, and its value.

    ('flag', v): ``--initial-cluster`` in entrypoints + command (what patroni_citus/plan/render.py
    emits); ('env', v): ``ETCD_INITIAL_CLUSTER``; ('other', None): bootstrapped by discovery or
    a config file, which the pack cannot read; ('unknown', None): part of the argv or the
    environment is unknown (preview); ('none', None): none of these, so etcd bootstraps a
    one-member cluster named after ``--name``.
    """
    ep, ep_unknown = argv_tokens(c, "entrypoints")
    cmd, cmd_unknown = argv_tokens(c, "command")
    tokens = ep + cmd
    value = flag_value(tokens, "initial-cluster")
    if value is not None:
        return ("flag", value)
    envs = c.props.get("envs")
    env: Dict[str, str] = {}
    env_unknown = is_unknown(envs)
    for e in as_list(envs):
        if is_unknown(e):
            env_unknown = True
        elif isinstance(e, str) and "=" in e:
            k, v = e.split("=", 1)
            env[k] = v
    if "ETCD_INITIAL_CLUSTER" in env:
        return ("env", env["ETCD_INITIAL_CLUSTER"])
    if ep_unknown or cmd_unknown or env_unknown:
        return ("unknown", None)
    flags = ("discovery", "discovery-srv", "config-file")
    if any(flag_value(tokens, f) is not None for f in flags) or any(
        "ETCD_" + f.upper().replace("-", "_") in env for f in flags
    ):
        return ("other", None)
    return ("none", None)


def initial_cluster_names(value: str) -> List[str]:
    """Distinct member names of an ``--initial-cluster`` value (``name=peer-url,...``; a name
    may repeat with several peer URLs and is one member)."""
    names: List[str] = []
    for entry in value.split(","):
        name = entry.split("=", 1)[0].strip()
        if entry.strip() and name not in names:
            names.append(name)
    return names


def _check_initial_cluster(cluster: str, ms: Sequence[Resource]) -> List[Violation]:
    """Cross-check the labelled etcd members of a cluster with their ``--initial-cluster``."""
    out: List[Violation] = []
    where_labelled = (
        f"{conventions.LABEL_ROLE}={conventions.ROLE_ETCD}, {conventions.LABEL_CLUSTER}={cluster}"
    )
    # canonical value -> (value as written by the first member, its names, members declaring it)
    variants: Dict[Tuple[str, ...], Tuple[str, List[str], List[Resource]]] = {}
    for c in ms:
        how, value = etcd_initial_cluster(c)
        if how in ("unknown", "other"):
            continue
        if value is None:
            out.append(
                Violation(
                    f'{where(c)} (etcd member of cluster "{cluster}") has no --initial-cluster flag '
                    f"in its command (nor ETCD_INITIAL_CLUSTER), so etcd bootstraps it as a "
                    f"one-member cluster of its own instead of joining the other members. Fix: pass "
                    f"--initial-cluster=<name>=http://<address>:{conventions.ETCD_PEER_PORT},... "
                    f'listing every etcd member of cluster "{cluster}", the same on every member.',
                    c.urn,
                )
            )
            continue
        key = tuple(sorted({e.strip() for e in value.split(",") if e.strip()}))
        variants.setdefault(key, (value, initial_cluster_names(value), []))[2].append(c)
    if len(variants) > 1:
        desc = "; ".join(
            f'{_names(decl)} {"has" if len(decl) == 1 else "have"} "{raw}"'
            for raw, _, decl in variants.values()
        )
        out.append(
            Violation(
                f'cluster "{cluster}": its etcd members disagree on --initial-cluster, from which etcd '
                f"derives the cluster id, so they cannot form one cluster: {desc}. Fix: give every "
                f'etcd member of cluster "{cluster}" the same --initial-cluster, listing all of its '
                f"members."
            )
        )
    n = len(ms)
    for _raw, names, decl in variants.values():
        k = len(names)
        if k == n:
            continue  # the label count was checked above
        problem = _quorum_problem(k)
        quorum = (
            f"; moreover etcd needs an odd count of at least 3: {problem[0]}" if problem else ""
        )
        out.append(
            Violation(
                f'cluster "{cluster}": --initial-cluster of {_names(decl)} lists '
                f"{_plural(k, 'etcd member')} ({', '.join(names) or 'none'}) but "
                f"{_plural(n, 'container')} {'is' if n == 1 else 'are'} labelled {where_labelled} "
                f"({_names(ms)}); etcd forms its quorum from --initial-cluster, not from the "
                f'labels{quorum}. Fix: list exactly the etcd members of cluster "{cluster}" (an odd '
                f"count of at least 3) in --initial-cluster on every member, and label each of them "
                f"{where_labelled}."
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# Rule: patroni-group-size (stack)
# --------------------------------------------------------------------------------------------


def check_group_size(resources: Sequence[Resource], config: Mapping[str, Any]) -> List[Violation]:
    minimum = int(config.get("minMembers", 2))
    out: List[Violation] = []
    groups: Dict[Tuple[str, str], List[Resource]] = {}
    undecided: set[str] = set()
    undecided_all = False
    for c in containers(resources):
        role, cluster, group = (
            label(c, conventions.LABEL_ROLE),
            label(c, conventions.LABEL_CLUSTER),
            label(c, conventions.LABEL_GROUP),
        )
        if is_unknown(role):
            if is_unknown(cluster):
                undecided_all = True
            else:
                undecided.add(cluster)
            continue
        if role != conventions.ROLE_PATRONI:
            continue
        if is_unknown(cluster) or is_unknown(group):
            if is_unknown(cluster):
                undecided_all = True
            else:
                undecided.add(cluster)
            continue
        if not cluster or group in (None, ""):
            missing = " and ".join(
                k
                for k, v in ((conventions.LABEL_CLUSTER, cluster), (conventions.LABEL_GROUP, group))
                if not v
            )
            out.append(
                Violation(
                    f"{where(c)} has {conventions.LABEL_ROLE}={conventions.ROLE_PATRONI} but no "
                    f"{missing} label, so it belongs to no Citus group. Fix: label it "
                    f"{conventions.LABEL_CLUSTER}=<cluster> and {conventions.LABEL_GROUP}=<group "
                    f"number, 0 for the coordinator>.",
                    c.urn,
                )
            )
            continue
        groups.setdefault((cluster, str(group)), []).append(c)
    if undecided_all:
        return out
    for cluster, group in sorted(groups, key=lambda k: (k[0], _group_sort_key(k[1]))):
        if cluster in undecided:
            continue
        ms = groups[(cluster, group)]
        if len(ms) >= minimum:
            continue
        out.append(
            Violation(
                f'Patroni group {group} of cluster "{cluster}" has {_plural(len(ms), "member")} '
                f"({_names(ms)}); at least {minimum} are required so that a replica can take over "
                f"when the leader fails (3 recommended for production). Fix: add members to group "
                f"{group}, or lower patroni-group-size.minMembers in the pack config for a "
                f"non-production stack.",
                ms[0].urn,
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# Rule: spread-across-hosts (stack)
# --------------------------------------------------------------------------------------------


def check_spread_across_hosts(
    resources: Sequence[Resource], config: Mapping[str, Any]
) -> List[Violation]:
    """With containers on several engines (the host label), losing one engine must not take a
    whole Patroni group or etcd's quorum with it, wherever the engines could avoid that."""
    placed: Dict[str, List[Tuple[Resource, str, str, str]]] = {}
    for c in containers(resources):
        values = [
            label(c, k)
            for k in (
                conventions.LABEL_CLUSTER,
                conventions.LABEL_HOST,
                conventions.LABEL_ROLE,
                conventions.LABEL_GROUP,
            )
        ]
        if any(is_unknown(v) for v in values) or not values[0] or not values[1]:
            continue
        cluster, host, role, group = (str(v) if v is not None else "" for v in values)
        placed.setdefault(cluster, []).append((c, host, role, group))
    out: List[Violation] = []
    for cluster, items in sorted(placed.items()):
        hosts = {host for _, host, _, _ in items}
        sets: Dict[str, List[Tuple[Resource, str]]] = {}
        for c, host, role, group in items:
            if role == conventions.ROLE_ETCD:
                sets.setdefault("etcd", []).append((c, host))
            elif role == conventions.ROLE_PATRONI:
                sets.setdefault(f"Patroni group {group}", []).append((c, host))
        for what, members in sorted(sets.items()):
            n = len(members)
            per_host: Dict[str, List[Resource]] = {}
            for c, host in members:
                per_host.setdefault(host, []).append(c)
            host, crowd = max(per_host.items(), key=lambda kv: (len(kv[1]), kv[0]))
            best = -(-n // len(hosts))  # the fewest per host that the engines allow
            if what == "etcd":
                quorum = n // 2 + 1
                bad = len(crowd) >= quorum and best < quorum
                loss = "etcd's quorum, so every group's leader demotes itself"
            else:
                bad = len(crowd) > best
                loss = f"{len(crowd)} of the {n} members at once"
            if bad:
                out.append(
                    Violation(
                        f'{what} of cluster "{cluster}" has {_names(crowd)} on host "{host}": '
                        f"losing that host loses {loss}, though the {len(hosts)} hosts allow at "
                        f"most {best} per host. Fix: remove the hosts.pin entries that crowd "
                        "them, or add engines.",
                        crowd[0].urn,
                    )
                )
    return out


# --------------------------------------------------------------------------------------------
# Rule: pinned-images (resource)
# --------------------------------------------------------------------------------------------


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST_RULE = "a digest is sha256: followed by 64 lowercase hex digits"
_TAG_RULE = 'a tag is 1 to 128 letters, digits, "_", "." or "-", not starting with "." or "-"'


def _image_pin_problem(ref: str) -> Optional[Tuple[str, bool]]:
    """(why the reference is not pinned, whether it is malformed), or None when pinned."""
    ref = ref.strip()
    if not ref:
        return ("is empty", True)
    if ref.startswith("sha256:"):  # an image id
        if _DIGEST.fullmatch(ref):
            return None
        return (f"is not a full image id ({_DIGEST_RULE})", True)
    if "@" in ref:  # pinned by digest; a tag before it is ignored by Docker
        name, digest = ref.split("@", 1)
        if not name:
            return ("has a digest but no repository", True)
        if not _DIGEST.fullmatch(digest):
            shown = digest if len(digest) <= 80 else digest[:77] + "..."
            return (f'has an invalid digest "{shown}" ({_DIGEST_RULE})', True)
        return None
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last:
        return ('has no tag, so Docker uses "latest"', False)
    tag = last.rsplit(":", 1)[1]
    if tag.lower() == "latest":
        return (f'uses the tag "{tag}"', False)
    if not tag:
        return ("has an empty tag", True)
    if not _TAG.fullmatch(tag):
        return (f'has an invalid tag "{tag}" ({_TAG_RULE})', True)
    return None


def image_pin_problem(ref: str) -> Optional[str]:
    """Why an image reference is not pinned, or None when it is."""
    found = _image_pin_problem(ref)
    return found[0] if found else None


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
    found = _image_pin_problem(ref)
    if found is None:
        return []
    problem, malformed = found
    if malformed:
        return [
            Violation(
                f'{where(res)}: image "{ref}" {problem}; such a reference pins no image (Docker '
                f"refuses it, or resolves a partial id to whatever image matches). Fix: set {prop} "
                f"to a fixed version tag or a full digest (e.g. repo:16.4 or "
                f"repo@sha256:<64 hex digits>)."
            )
        ]
    return [
        Violation(
            f'{where(res)}: image "{ref}" {problem}; such a reference is mutable, so a re-pull or '
            f"a replacement can silently change the software. Fix: set {prop} to a fixed version "
            f"tag or a digest (e.g. repo:16.4 or repo@sha256:<digest>)."
        )
    ]


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
    role = label(res, conventions.LABEL_ROLE)
    if is_unknown(role) or role == conventions.ROLE_VIP_MANAGER:
        return []
    who = (
        f"{where(res)} (role {role})"
        if role
        else f"{where(res)} (no {conventions.LABEL_ROLE} label)"
    )
    out: List[Violation] = []
    privileged = res.props.get("privileged")
    if privileged is True:
        out.append(
            Violation(
                f"{who} is privileged, which grants every capability including NET_ADMIN and "
                f"NET_RAW; only vip-manager containers may hold them. Fix: remove privileged=True "
                f"and add the specific capabilities the container needs."
            )
        )
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
            out.append(
                Violation(
                    f"{who} adds capability {via}, which gives it {cap}; only vip-manager containers "
                    f"may hold NET_ADMIN or NET_RAW. Fix: remove {via} from capabilities.adds."
                )
            )
    if (
        config.get("requireNetRawDrop", True)
        and not is_unknown(drops_raw)
        and "NET_RAW" not in adds
        and "ALL" not in adds
        and not any(is_unknown(d) for d in as_list(drops_raw))
        and "NET_RAW" not in drops
        and "ALL" not in drops
    ):
        out.append(
            Violation(
                f"{who} keeps NET_RAW, which Docker grants by default; only vip-manager containers "
                f'may hold NET_ADMIN or NET_RAW. Fix: add "NET_RAW" to capabilities.drops.'
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# Rule: dangerous-capabilities (resource)
# --------------------------------------------------------------------------------------------

# What Docker grants every container unless dropped (moby's default capability set): adding
# one of these changes nothing, so only capabilities outside this set count as added.
DOCKER_DEFAULT_CAPABILITIES = frozenset(
    (
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "NET_RAW",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    )
)

# Capabilities no container of the cluster may add (vip-manager included), with what each
# gives. NET_ADMIN / NET_RAW are net-capabilities' business (allowed on vip-manager only).
DANGEROUS_CAPABILITIES: Dict[str, str] = {
    "ALL": "every capability, SYS_ADMIN and SYS_MODULE included",
    "SYS_ADMIN": "mount, namespace and device administration, the usual way out of a container",
    "SYS_PTRACE": "tracing and injecting code into other processes",
    "SYS_MODULE": "loading modules into the host kernel",
    "SYS_RAWIO": "raw access to host devices, memory and I/O ports",
    "SYS_BOOT": "rebooting the host and loading a new kernel",
    "SYS_TIME": "setting the host clock, on which etcd leases and Patroni's ttl depend",
    "DAC_READ_SEARCH": "reading any file and opening host files by handle (open_by_handle_at)",
    "MAC_ADMIN": "changing the host's AppArmor/SELinux policy",
    "MAC_OVERRIDE": "bypassing the host's AppArmor/SELinux policy",
    "AUDIT_CONTROL": "changing the host kernel's audit rules",
    "BPF": "loading BPF programs into the host kernel",
    "PERFMON": "reading performance data of the whole host",
    "SYSLOG": "reading and clearing the host kernel log (kernel addresses included)",
}


def check_dangerous_capabilities(res: Resource, config: Mapping[str, Any]) -> List[Violation]:
    if res.type != CONTAINER:
        return []
    role = label(res, conventions.LABEL_ROLE)
    if is_unknown(role):
        who = where(res)
    else:
        who = (
            f"{where(res)} (role {role})"
            if role
            else f"{where(res)} (no {conventions.LABEL_ROLE} label)"
        )
    out: List[Violation] = []
    if res.props.get("privileged") is True:
        out.append(
            Violation(
                f"{who} is privileged, which grants every capability (SYS_ADMIN, SYS_MODULE, "
                f"SYS_PTRACE, ...) and every host device, so a process in it can take over the host. "
                f"Fix: remove privileged=True and add only the capabilities the container needs."
            )
        )
    caps = res.props.get("capabilities")
    if is_unknown(caps) or not isinstance(caps, Mapping):
        return out
    seen: List[str] = []
    for raw in as_list(caps.get("adds")):
        cap = _cap(raw)
        if cap is None or cap in seen or cap not in DANGEROUS_CAPABILITIES:
            continue
        seen.append(cap)
        out.append(
            Violation(
                f"{who} adds capability {cap}, which allows {DANGEROUS_CAPABILITIES[cap]}; no "
                f"container of the cluster may hold it. Fix: remove {cap} from capabilities.adds."
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# Rule: engine-socket-only-on-the-engine-proxy (resource)
# --------------------------------------------------------------------------------------------

# A stack whose engine.socket is elsewhere adds its path to the rule's socketPaths.
DEFAULT_ENGINE_SOCKET_PATHS = conventions.HOST_ENGINE_SOCKETS


def _host_path(value: Any) -> Optional[str]:
    """An absolute host path, normalised (``//x/./y/`` is ``/x/y``); None for anything else
    (a volume name, a relative path, a non-string)."""
    if not isinstance(value, str) or not value.startswith("/"):
        return None
    return _norm_path("/" + posixpath.normpath(value).lstrip("/"))


def _exposes(source: str, socket: str) -> bool:
    """Whether a bind of host path ``source`` makes ``socket`` reachable in the container."""
    return source == socket or source == "/" or socket.startswith(source + "/")


def _host_binds(res: Resource) -> List[Tuple[str, str, Any, bool]]:
    """A container's host bind mounts, known ones only: (which entry, e.g. ``mounts[0]``,
    normalised host path, container path, read-only). ``mounts`` of type ``bind`` (an absent
    type counts as bind, as in ``_data_mount``) and ``volumes`` with a ``hostPath``; an unknown
    entry, type or source is left out (checked again at update)."""
    out: List[Tuple[str, str, Any, bool]] = []
    for i, m in enumerate(as_list(res.props.get("mounts"))):
        if not isinstance(m, Mapping):
            continue  # unknown entries
        kind = m.get("type")
        if is_unknown(kind) or (kind or "bind") != "bind":
            continue  # unknown types, volume and tmpfs mounts
        source = _host_path(m.get("source"))
        if source is not None:
            out.append((f"mounts[{i}]", source, m.get("target"), m.get("readOnly") is True))
    for i, v in enumerate(as_list(res.props.get("volumes"))):
        if not isinstance(v, Mapping):
            continue
        source = _host_path(v.get("hostPath"))
        if source is not None:
            out.append((f"volumes[{i}]", source, v.get("containerPath"), v.get("readOnly") is True))
    return out


def _socket_paths(config: Mapping[str, Any]) -> List[str]:
    given = as_list(config.get("socketPaths")) or list(DEFAULT_ENGINE_SOCKET_PATHS)
    paths = [p for p in (_host_path(s) for s in given) if p is not None]
    return list(dict.fromkeys(paths))


def check_engine_socket(res: Resource, config: Mapping[str, Any]) -> List[Violation]:
    if res.type != CONTAINER:
        return []
    role = label(res, conventions.LABEL_ROLE)
    if is_unknown(role):
        return []  # cannot tell (yet) whether it is the engine proxy
    sockets = _socket_paths(config)
    shown_sockets = ", ".join(sockets)
    proxy = conventions.ROLE_ENGINE_PROXY
    who = (
        f"{where(res)} (role {role})"
        if role
        else f"{where(res)} (no {conventions.LABEL_ROLE} label)"
    )
    out: List[Violation] = []
    for entry, source, target, read_only in _host_binds(res):
        at = f" at {target}" if isinstance(target, str) and target else ""
        mount = f'host path "{source}"{at} ({entry}{", read-only" if read_only else ""})'
        if role == proxy:
            if source in sockets:
                continue
            out.append(
                Violation(
                    f"{who} bind-mounts {mount}; the engine proxy may mount nothing from the host "
                    f"but the engine's API socket itself ({shown_sockets}), so that the socket "
                    f"is all a compromised proxy holds. Fix: remove that mount (bind only the "
                    f"socket file, at {conventions.ENGINE_SOCKET_PATH}), or add the path to "
                    f"engine-socket-only-on-the-engine-proxy.socketPaths in the pack config if it "
                    f"is where the engine's socket lives."
                )
            )
            continue
        exposed = [s for s in sockets if _exposes(source, s)]
        if not exposed:
            continue
        what = (
            "is the Docker engine's API socket"
            if source in exposed
            else f"holds the Docker engine's API socket ({', '.join(exposed)})"
        )
        ro = (
            " A read-only bind does not help: it does not stop connect() on a Unix socket, so "
            "every API call still goes through."
            if read_only
            else ""
        )
        out.append(
            Violation(
                f"{who} bind-mounts {mount}, which {what}: whoever can connect to it controls the "
                f"engine, and through it the host (root-equivalent).{ro} Only the engine proxy "
                f"(role {proxy}) may mount it. Fix: remove the mount and reach the engine through "
                f"the engine proxy (tcp://<proxy>:{conventions.ENGINE_PROXY_PORT}, read-only "
                f"requests only), or bind a narrower host path that does not contain the socket."
            )
        )
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
        role = label(c, conventions.LABEL_ROLE)
        if role not in conventions.DATA_ROLES:
            continue
        path = label(c, conventions.LABEL_DATA_PATH)
        if is_unknown(path):
            continue
        if not path:
            out.append(
                Violation(
                    f"{where(c)} (role {role}) has no {conventions.LABEL_DATA_PATH} label, so its "
                    f"data mount cannot be checked. Fix: label it "
                    f"{conventions.LABEL_DATA_PATH}={conventions.DATA_PATHS[role]} (the mount point "
                    f"of its data volume).",
                    c.urn,
                )
            )
            continue
        path = _norm_path(path)
        kind, source = _data_mount(c, path)
        fix = (
            f"Fix: mount a named docker.Volume there (volumes=[{{volumeName: <volume name>, "
            f'containerPath: "{path}"}}]).'
        )
        if kind == "none":
            out.append(
                Violation(
                    f"{where(c)} (role {role}) mounts nothing at its data path {path}, so its data "
                    f"lives in the container and is lost when the container is replaced. {fix}",
                    c.urn,
                )
            )
        elif kind == "anonymous":
            out.append(
                Violation(
                    f"{where(c)} (role {role}) mounts an anonymous volume at its data path {path}; "
                    f"anonymous volumes are removed with the container. {fix}",
                    c.urn,
                )
            )
        elif kind not in ("volume", "unknown"):
            out.append(
                Violation(
                    f'{where(c)} (role {role}) mounts a {kind} mount ("{source}") at its data path '
                    f"{path} instead of a named volume. {fix}",
                    c.urn,
                )
            )
        elif kind == "volume" and isinstance(source, str) and source in by_name:
            vol = by_name[source]
            data_volumes.setdefault(vol.urn, (vol, c))

    for vol in volumes:
        if label(vol, conventions.LABEL_ROLE) in conventions.DATA_ROLES:
            data_volumes.setdefault(vol.urn, (vol, None))

    for vol, user in data_volumes.values():
        retain = label(vol, conventions.LABEL_RETAIN)
        if vol.protect or is_unknown(retain) or is_true(retain):
            continue
        holds = (
            f"holds the data of {where(user)}"
            if user
            else f"is a data volume (role {label(vol, conventions.LABEL_ROLE)})"
        )
        out.append(
            Violation(
                f"{where(vol)} {holds} but is neither protected nor retained, so pulumi destroy or a "
                f"replacement deletes the data. Fix: create it with protect=True, or with "
                f"retain_on_delete=True plus the label {conventions.LABEL_RETAIN}=true (policies "
                f"cannot see retainOnDelete).",
                vol.urn,
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# Rule: no-literal-secrets (resource)
# --------------------------------------------------------------------------------------------


def _secret_re(config: Mapping[str, Any]) -> re.Pattern[str]:
    pattern = config.get("secretNamePattern") or DEFAULT_SECRET_NAME_PATTERN
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ValueError(
            f"no-literal-secrets.secretNamePattern {pattern!r} is not a valid regular "
            f"expression: {e}"
        ) from e


def _is_file_reference(name: str) -> bool:
    return bool(re.search(r"(?i)[_.-]file$", name))


# scheme://user:password@ (the user may be empty, as in redis://:password@host)
_CREDENTIAL_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*)://[^\s/?#@:]*:[^\s/?#@]+@")


def credential_url_scheme(text: Any) -> Optional[str]:
    """The scheme of the first URL in ``text`` that carries a password, or None."""
    if not isinstance(text, str):
        return None
    m = _CREDENTIAL_URL.search(text)
    return m.group(1) if m else None


def _arg_name(name: str) -> str:
    return name.lstrip("-").lower().replace("_", "-")


def secret_arguments(
    tokens: Sequence[str], rx: re.Pattern[str], allowed: Iterable[str] = ()
) -> List[Tuple[str, str]]:
    """Literal secrets in argv tokens, in order, at most one finding per token:

    * ``("name", NAME)`` for ``NAME=value``, ``--name=value`` or ``--name value`` whose name
      matches ``rx`` (the no-literal-secrets name pattern), is not a file reference
      (``--password-file``) nor in ``allowed`` (compared without leading dashes, case and
      ``_``/``-`` differences), and whose value is not empty;
    * ``("url", scheme)`` for a token holding a ``scheme://user:password@`` URL.
    """
    allowed_names = {_arg_name(a) for a in allowed if isinstance(a, str)}
    found: List[Tuple[str, str]] = []
    skip = False
    for i, tok in enumerate(tokens):
        if skip:  # the value of a flag reported just before
            skip = False
            continue
        name, eq, value = tok.partition("=")
        bare = name.lstrip("-")
        secretish = (
            bool(bare)
            and bool(rx.search(bare))
            and not _is_file_reference(bare)
            and _arg_name(bare) not in allowed_names
        )
        if secretish and eq and value:
            found.append(("name", name))
            continue
        if (
            secretish
            and not eq
            and tok.startswith("-")
            and i + 1 < len(tokens)
            and tokens[i + 1]
            and not tokens[i + 1].startswith("-")
            and not _arg_name(bare).startswith("no-")
        ):
            found.append(("name", name))
            skip = True
            continue
        scheme = credential_url_scheme(tok)
        if scheme:
            found.append(("url", scheme))
    return found


def check_literal_secrets(res: Resource, config: Mapping[str, Any]) -> List[Violation]:
    if not res.type.startswith("docker:"):
        return []
    rx = _secret_re(config)
    allowed = config.get("allowedArgumentNames")
    if allowed is None:
        allowed = DEFAULT_ALLOWED_ARGUMENT_NAMES
    out: List[Violation] = []
    fix = (
        "Fix: deliver the secret in a file instead (Patroni: in "
        f"{conventions.PATRONI_CONFIG_PATH} "
        "written into the running container from a secret, as the member's config command "
        "does; other images: upload a file and set <NAME>_FILE to its "
        "path), or rename the entry if it is not a secret."
    )
    arg_fix = (
        "Fix: deliver the secret in a file instead (Patroni: in "
        f"{conventions.PATRONI_CONFIG_PATH} "
        "written into the running container from a secret, as the member's config command "
        "does; PostgreSQL clients: a .pgpass file named by PGPASSFILE; "
        "other programs: their password-file option), or add the name to "
        "no-literal-secrets.allowedArgumentNames if it is not a secret."
    )
    url_fix = (
        "Fix: drop the password from the URL (scheme://user@host/... is fine) and deliver "
        "it in a file (PostgreSQL clients: a .pgpass file named by PGPASSFILE; Patroni: "
        f"{conventions.PATRONI_CONFIG_PATH} written into the container from a secret)."
    )
    env_seen = (
        "the environment is readable by anyone who can run docker inspect and is stored "
        "in the Pulumi state"
    )
    argv_seen = (
        "a command line is readable by anyone who can run docker inspect or ps on the "
        "host, and is stored in the Pulumi state"
    )
    label_seen = (
        "labels are readable by anyone who can run docker inspect and are stored in "
        "the Pulumi state"
    )
    if res.type == CONTAINER:
        for env in as_list(res.props.get("envs")):
            if not isinstance(env, str) or "=" not in env:
                continue  # unknown entries are checked again at update
            name, value = env.split("=", 1)
            if value and rx.search(name) and not _is_file_reference(name):
                out.append(
                    Violation(
                        f"{where(res)} sets environment variable {name} to a literal value (not "
                        f"shown); {env_seen}. {fix}"
                    )
                )
            elif credential_url_scheme(value):
                out.append(
                    Violation(
                        f"{where(res)} sets environment variable {name} to a "
                        f"{credential_url_scheme(value)}:// URL with a password in it (not shown); "
                        f"{env_seen}. {url_fix}"
                    )
                )
        for prop in _ARGV_PROPS:
            tokens, _ = argv_tokens(res, prop)  # unknown items are checked again at update
            for kind, what in secret_arguments(tokens, rx, allowed):
                if kind == "name":
                    msg = (
                        f"{where(res)} passes {what} with a literal value (not shown) in "
                        f"{prop}; {argv_seen}. {arg_fix}"
                    )
                else:
                    msg = (
                        f"{where(res)} has a {what}:// URL with a password in it (not shown) "
                        f"in {prop}; {argv_seen}. {url_fix}"
                    )
                if all(v.message != msg for v in out):
                    out.append(Violation(msg))
    for key, value in label_items(res):
        if not isinstance(key, str) or is_unknown(value) or not value:
            continue
        if rx.search(key) and not _is_file_reference(key):
            out.append(
                Violation(
                    f'{where(res)} sets label "{key}" to a literal value (not shown); {label_seen}. '
                    f"{fix}"
                )
            )
        elif credential_url_scheme(value):
            out.append(
                Violation(
                    f'{where(res)} sets label "{key}" to a {credential_url_scheme(value)}:// URL '
                    f"with a password in it (not shown); {label_seen}. {url_fix}"
                )
            )
    return out


# --------------------------------------------------------------------------------------------
# Rule: restart-and-healthcheck (resource)
# --------------------------------------------------------------------------------------------

# The healthchecks the program gives these roles, suggested as the fix.
_HEALTHCHECK_HINTS: Dict[str, str] = {
    conventions.ROLE_ETCD: json.dumps(list(conventions.ETCD_HEALTHCHECK)),
    conventions.ROLE_PATRONI: json.dumps(list(conventions.PATRONI_HEALTHCHECK)),
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
        out.append(
            Violation(
                f"{where(res)} has {shown}, so it stays down after a crash or a Docker daemon "
                f'restart. Fix: set restart="unless-stopped" (or "always" / "on-failure").'
            )
        )
    hc = res.props.get("healthcheck")
    if not is_unknown(hc):
        tests = hc.get("tests") if isinstance(hc, Mapping) else None
        if not is_unknown(tests):
            tests = as_list(tests)
            disabled = bool(tests) and tests[0] == "NONE"
            if not tests or disabled:
                role = label(res, conventions.LABEL_ROLE)
                hint = _HEALTHCHECK_HINTS.get(role if isinstance(role, str) else "", '["CMD", ...]')
                what = "disables its healthcheck" if disabled else "has no healthcheck"
                out.append(
                    Violation(
                        f"{where(res)} {what}, so Docker cannot report it unhealthy. Fix: "
                        f'set healthcheck={{tests: {hint}, interval: "10s", timeout: "5s", '
                        f"retries: 3}}."
                    )
                )
    return out


# --------------------------------------------------------------------------------------------
# Rule: vip-placement (stack)
# --------------------------------------------------------------------------------------------


def _net(
    value: Any, strict: bool = False
) -> Optional[Union[ipaddress.IPv4Network, ipaddress.IPv6Network]]:
    try:
        return ipaddress.ip_network(value, strict=strict)
    except (TypeError, ValueError):
        return None


def _addr(value: Any) -> Optional[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]]:
    try:
        return ipaddress.ip_address(value)
    except (TypeError, ValueError):
        return None


def check_vip_placement(
    resources: Sequence[Resource], config: Mapping[str, Any]
) -> List[Violation]:
    out: List[Violation] = []
    for net in (r for r in resources if r.type == NETWORK):
        vip_raw = label(net, conventions.LABEL_VIP)
        if vip_raw is None or is_unknown(vip_raw) or vip_raw == "":
            continue
        w = where(net)
        vip = _addr(vip_raw)
        if vip is None:
            out.append(
                Violation(
                    f'{w}: the VIP label {conventions.LABEL_VIP}="{vip_raw}" is not an IP address. '
                    f"Fix: set it to an address inside the network's subnet and outside "
                    f"{conventions.LABEL_MEMBER_RANGE}.",
                    net.urn,
                )
            )
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
                    out.append(
                        Violation(
                            f"{w} has VIP {vip} but no ipamConfigs subnet, so Docker picks the subnet "
                            f"and the VIP may lie outside it. Fix: set ipamConfigs=[{{subnet: "
                            f"<CIDR containing {vip}>}}].",
                            net.urn,
                        )
                    )
                elif not any(vip.version == n.version and vip in n for n in nets):
                    out.append(
                        Violation(
                            f"{w}: VIP {vip} lies outside the network's subnet "
                            f"{', '.join(map(str, nets))}, so members cannot reach it. Fix: choose a "
                            f"VIP inside the subnet and outside {conventions.LABEL_MEMBER_RANGE}.",
                            net.urn,
                        )
                    )
            for i in ipams:
                rng, gw = _net(i.get("ipRange")), _addr(i.get("gateway"))
                if rng is not None and vip.version == rng.version and vip in rng:
                    out.append(
                        Violation(
                            f"{w}: VIP {vip} lies inside ipamConfigs ipRange {rng}, from which Docker "
                            f"hands out addresses to containers without a static one. Fix: choose a "
                            f"VIP outside {rng}.",
                            net.urn,
                        )
                    )
                if gw is not None and gw == vip:
                    out.append(
                        Violation(
                            f"{w}: VIP {vip} is the network's gateway address. Fix: choose another "
                            f"VIP inside the subnet and outside {conventions.LABEL_MEMBER_RANGE}.",
                            net.urn,
                        )
                    )
        mr_raw = label(net, conventions.LABEL_MEMBER_RANGE)
        if not is_unknown(mr_raw):
            member_range = _net(mr_raw)
            if member_range is None:
                what = "has no" if not mr_raw else f'has an invalid ("{mr_raw}")'
                out.append(
                    Violation(
                        f"{w} has VIP {vip} but {what} {conventions.LABEL_MEMBER_RANGE} label, so the "
                        f"VIP cannot be checked against member addresses. Fix: label the network "
                        f"with the CIDR "
                        f"member addresses are taken from.",
                        net.urn,
                    )
                )
            elif vip.version == member_range.version and vip in member_range:
                out.append(
                    Violation(
                        f"{w}: VIP {vip} lies inside the member range {member_range}, so a member can "
                        f"be given the VIP as its own address. Fix: choose a VIP outside "
                        f"{member_range} (but inside the subnet), or shrink "
                        f"{conventions.LABEL_MEMBER_RANGE}.",
                        net.urn,
                    )
                )
        cluster = label(net, conventions.LABEL_CLUSTER)
        net_name = net.props.get("name")
        for c in containers(resources):
            c_cluster = label(c, conventions.LABEL_CLUSTER)
            for na in as_list(c.props.get("networksAdvanced")):
                if not isinstance(na, Mapping):
                    continue
                ip = na.get("ipv4Address")
                if is_unknown(ip) or _addr(ip) != vip:
                    continue
                same = (isinstance(net_name, str) and na.get("name") == net_name) or (
                    cluster is not None and not is_unknown(cluster) and c_cluster == cluster
                )
                if same:
                    source = mr_raw if isinstance(mr_raw, str) else conventions.LABEL_MEMBER_RANGE
                    out.append(
                        Violation(
                            f"{where(c)} takes the VIP {vip} of {w} as its static address, so the "
                            f"VIP cannot move to the leader. Fix: give the container an address "
                            f"from {source} instead.",
                            c.urn,
                        )
                    )
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
    mode = res.props.get("networkMode")
    if isinstance(mode, str) and mode.strip().lower() == "host":
        out.append(
            Violation(
                f'{where(res)} uses networkMode "host", so it shares the host\'s network stack: '
                f"every port it listens on is open on every host interface whatever its ports say, "
                f"and it reaches services bound to the host's loopback. Fix: attach it to the "
                f"cluster's bridge network (networksAdvanced) and publish only the ports it needs "
                f'with ip="{allowed[0]}" (a sidecar may join a member\'s namespace with '
                f'networkMode="container:<member>").'
            )
        )
    if res.props.get("publishAllPorts") is True:
        out.append(
            Violation(
                f"{where(res)} sets publishAllPorts, which publishes every exposed port on all "
                f"interfaces (0.0.0.0); allowed host addresses: {shown_allowed}. Fix: remove "
                f'publishAllPorts and list the ports with ip="{allowed[0]}".'
            )
        )
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
        host = (
            f"host port {external}"
            if external not in (None, "") and not is_unknown(external)
            else "a random host port"
        )
        out.append(
            Violation(
                f"{where(res)} publishes container port {internal}/{proto} on {ip} ({host}); "
                f'allowed host addresses: {shown_allowed}. Fix: set ip="{allowed[0]}" on that '
                f"port, {fix_cfg}."
            )
        )
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
    return [
        Violation(
            f"{where(res)} logs to fluentd without the asynchronous connection option, so Docker "
            f"refuses to start it (or blocks it) while fluentd is unreachable. Fix: set "
            f'logOpts={{"fluentd-async": "true"}} (fluentd-async-connect is the deprecated '
            f"spelling)."
        )
    ]


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

# The kinds of rule (pulumi-policy's resource and stack validation policies) and the
# enforcement levels a rule may default to (pulumi_policy.EnforcementLevel's values).
RuleKind = Literal["resource", "stack"]
Level = Literal["mandatory", "advisory", "disabled"]
MANDATORY: Level = "mandatory"
ADVISORY: Level = "advisory"
DISABLED: Level = "disabled"


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    kind: RuleKind
    check: Callable[..., List[Violation]]
    enforcement_level: Level
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
    Rule(
        "etcd-odd-quorum",
        "The etcd members of each cluster number an odd count of at least 3.",
        "stack",
        check_etcd_quorum,
        MANDATORY,
        locked=True,
    ),
    Rule(
        "patroni-group-size",
        "Every Patroni group (Citus coordinator or worker group) has enough members to fail over.",
        "stack",
        check_group_size,
        MANDATORY,
        {
            "minMembers": {
                "type": "integer",
                "minimum": 1,
                "default": 2,
                "description": "Minimum members per Patroni group (3 recommended for production).",
            }
        },
    ),
    Rule(
        "spread-across-hosts",
        "With several hosts, no host holds etcd's quorum or more members of a Patroni group "
        "than the hosts require.",
        "stack",
        check_spread_across_hosts,
        MANDATORY,
    ),
    Rule(
        "pinned-images",
        "Remote images are pinned to a version tag or digest (no `latest`, no untagged).",
        "resource",
        check_pinned_images,
        MANDATORY,
    ),
    Rule(
        "net-capabilities",
        "NET_ADMIN / NET_RAW only on vip-manager containers.",
        "resource",
        check_net_capabilities,
        MANDATORY,
        {
            "requireNetRawDrop": {
                "type": "boolean",
                "default": True,
                "description": "Docker grants NET_RAW by default; require other "
                "containers to drop it.",
            }
        },
    ),
    Rule(
        "dangerous-capabilities",
        "No container is privileged or adds a capability that can take over the host "
        "(SYS_ADMIN, SYS_PTRACE, SYS_MODULE, DAC_READ_SEARCH, ALL, ...).",
        "resource",
        check_dangerous_capabilities,
        MANDATORY,
    ),
    Rule(
        "engine-socket-only-on-the-engine-proxy",
        "Only the engine proxy (role engine-proxy) bind-mounts the Docker engine's API socket or "
        "a host directory above it (/, /var, /var/run, /run, ...), read-only or not; the engine "
        "proxy mounts nothing else from the host.",
        "resource",
        check_engine_socket,
        MANDATORY,
        {
            "socketPaths": {
                "type": "array",
                "items": {"type": "string"},
                "default": list(DEFAULT_ENGINE_SOCKET_PATHS),
                "description": "Host paths of the Docker engine's API socket; a bind mount "
                "of one of them, or of a directory above one, exposes the engine.",
            }
        },
    ),
    Rule(
        "data-volumes",
        "Every etcd and Patroni container (and the backup exporter, at pgBackRest's repository) "
        "mounts a named volume at its data path, and data volumes are protected or retained.",
        "stack",
        check_data_volumes,
        MANDATORY,
    ),
    Rule(
        "no-literal-secrets",
        "No environment variable, label or command argument whose name suggests a secret "
        "carries a literal value, and no URL carries a password.",
        "resource",
        check_literal_secrets,
        MANDATORY,
        {
            "secretNamePattern": {
                "type": "string",
                "default": DEFAULT_SECRET_NAME_PATTERN,
                "description": "Python regular expression (searched, not "
                "anchored) matched against env/label names and "
                "command/entrypoint/healthcheck argument names.",
            },
            "allowedArgumentNames": {
                "type": "array",
                "items": {"type": "string"},
                "default": list(DEFAULT_ALLOWED_ARGUMENT_NAMES),
                "description": "Argument names (without leading dashes) "
                "that match secretNamePattern but carry no "
                "secret.",
            },
        },
    ),
    Rule(
        "restart-and-healthcheck",
        "Every long-running container has a restart policy and a healthcheck.",
        "resource",
        check_restart_and_healthcheck,
        MANDATORY,
    ),
    Rule(
        "vip-placement",
        "The VIP lies inside the network's subnet, outside the member range, and no container "
        "takes it.",
        "stack",
        check_vip_placement,
        MANDATORY,
    ),
    Rule(
        "published-ports",
        "Ports are published on allowed host addresses only (127.0.0.1 by default).",
        "resource",
        check_published_ports,
        MANDATORY,
        {
            "allowedHostIps": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["127.0.0.1"],
                "description": "Host addresses ports may be published on.",
            }
        },
    ),
    Rule(
        "fluentd-async",
        "A container logging to fluentd uses the asynchronous connection option.",
        "resource",
        check_fluentd_async,
        ADVISORY,
    ),
]

RULES_BY_NAME: Dict[str, Rule] = {r.name: r for r in RULES}


def run_rules(
    resources: Sequence[Resource], config: Optional[Mapping[str, Mapping[str, Any]]] = None
) -> Dict[str, List[Violation]]:
    """Every rule over a whole graph, ignoring enforcement levels (for tests and tooling)."""
    config = config or {}
    out: Dict[str, List[Violation]] = {}
    for rule in RULES:
        cfg = rule.config(config.get(rule.name))
        if rule.kind == "stack":
            found = rule.check(resources, cfg)
        else:
            found = [
                Violation(v.message, v.urn or r.urn) for r in resources for v in rule.check(r, cfg)
            ]
        out[rule.name] = found
    return out
