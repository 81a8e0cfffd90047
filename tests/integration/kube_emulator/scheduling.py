"""kube-scheduler's filter step for one pod over the emulated nodes, with its messages.

The filters are the default profile's that matter to a GPU Job, in the scheduler's order
(each node stops at its first failing filter): NodeUnschedulable, TaintToleration,
NodeAffinity (nodeSelector and required node affinity), NodeResourcesFit (cpu, memory,
nvidia.com/gpu and any other requested resource). When no node fits, the pod's
PodScheduled condition carries the scheduler's FitError text, e.g.

    0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.
    preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.

which is what `prefect_kubernetes.diagnostics` parses into Unschedulable.NodeAffinity,
Unschedulable.Taint or Unschedulable.InsufficientResources.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

Obj = dict[str, Any]

_SUFFIXES = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}  # fmt: skip
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")

UNSCHEDULABLE_TAINT_EFFECTS = ("NoSchedule", "NoExecute")
REASON_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
REASON_UNSCHEDULABLE_NODE = "node(s) were unschedulable"
PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"
PREEMPTION_NO_VICTIMS = "No preemption victims found for incoming pod"


def quantity(value: Any) -> Decimal:
    """A Kubernetes resource quantity ("500m", "16Gi", 2) as a number."""
    match = _QUANTITY.match(str(value).strip())
    if not match or match.group(2) not in ("", *_SUFFIXES):
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    number, suffix = match.groups()
    return Decimal(number) * Decimal(_SUFFIXES.get(suffix, 1))


def pod_requests(pod: Obj) -> dict[str, Decimal]:
    """The pod's summed container requests; a resource with only a limit requests the
    limit (the API server's defaulting)."""
    total: Counter[str] = Counter()
    for container in pod["spec"].get("containers") or []:
        resources = container.get("resources") or {}
        requests = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        for name, value in requests.items():
            if value is not None:
                total[name] += quantity(value)
    return dict(total)


def _tolerates(tolerations: Iterable[Obj], taint: Obj) -> bool:
    for toleration in tolerations:
        if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
            continue
        operator = toleration.get("operator") or "Equal"
        if operator == "Exists" and (not toleration.get("key")
                                     or toleration["key"] == taint.get("key")):
            return True
        if (operator == "Equal" and toleration.get("key") == taint.get("key")
                and (toleration.get("value") or "") == (taint.get("value") or "")):
            return True
    return False


def _expression_holds(expression: Obj, labels: dict[str, str]) -> bool:
    key, operator = expression.get("key"), expression.get("operator")
    values = expression.get("values") or []
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    if operator in ("Gt", "Lt") and key in labels:
        node_value, wanted = int(labels[key]), int(values[0])
        return node_value > wanted if operator == "Gt" else node_value < wanted
    return False


def _matches_affinity(pod: Obj, labels: dict[str, str]) -> bool:
    spec = pod["spec"]
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    # Terms are ORed, expressions within a term ANDed.
    return not terms or any(
        all(_expression_holds(e, labels) for e in term.get("matchExpressions") or [])
        for term in terms
    )


def node_failures(pod: Obj, node: Obj, bound_pods: Iterable[Obj]) -> list[str]:
    """Why `pod` cannot run on `node` (empty: it can), given the pods already bound
    there that still hold their resources."""
    spec, labels = node.get("spec") or {}, node["metadata"].get("labels") or {}
    if spec.get("unschedulable"):
        return [REASON_UNSCHEDULABLE_NODE]
    tolerations = pod["spec"].get("tolerations") or []
    for taint in spec.get("taints") or []:
        if taint.get("effect") in UNSCHEDULABLE_TAINT_EFFECTS and not _tolerates(
            tolerations, taint
        ):
            return [f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"]
    if not _matches_affinity(pod, labels):
        return [REASON_AFFINITY]
    allocatable = {k: quantity(v) for k, v in (node.get("status", {}).get("allocatable")
                                                or {}).items()}
    used: Counter[str] = Counter()
    for other in bound_pods:
        used.update(pod_requests(other))
    missing = [
        f"Insufficient {name}" for name, wanted in sorted(pod_requests(pod).items())
        if wanted > 0 and wanted > allocatable.get(name, Decimal(0)) - used[name]
    ]
    return missing


def fit_error(failures: dict[str, list[str]]) -> str:
    """The scheduler's FitError message for per-node failure reasons (no node fits)."""
    total = len(failures)
    if total == 0:
        return "no nodes available to schedule pods"
    counts = Counter(reason for reasons in failures.values() for reason in reasons)
    filtered = ", ".join(sorted(f"{n} {reason}" for reason, n in counts.items()))
    # Preemption helps only where every failure is a resource shortage; the emulator runs
    # no lower-priority pods, so even then it finds no victims.
    preemption = Counter(
        PREEMPTION_NO_VICTIMS if all(r.startswith("Insufficient ") for r in reasons)
        else PREEMPTION_NOT_HELPFUL
        for reasons in failures.values()
    )
    post = ", ".join(sorted(f"{n} {reason}" for reason, n in preemption.items()))
    return (f"0/{total} nodes are available: {filtered}. "
            f"preemption: 0/{total} nodes are available: {post}.")


def choose_node(pod: Obj, nodes: list[Obj], pods_by_node: dict[str, list[Obj]]
                ) -> tuple[str | None, str]:
    """(node name, "") for the first node that fits, else (None, the FitError message)."""
    failures: dict[str, list[str]] = {}
    for node in nodes:
        name = node["metadata"]["name"]
        reasons = node_failures(pod, node, pods_by_node.get(name, []))
        if not reasons:
            return name, ""
        failures[name] = reasons
    return None, fit_error(failures)
