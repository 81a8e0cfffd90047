"""The emulated API server's object store: typed resources, resourceVersions, watch history.

Every write goes through `Store` under one lock and bumps a cluster-wide counter that
becomes the object's `metadata.resourceVersion`, as etcd's revision does for a real API
server. Each write is also appended to a history that watches replay from any
resourceVersion, so a client that lists at N and watches from N misses nothing. History is
never compacted (tests are short), so a watch never sees 410 Gone.
"""

from __future__ import annotations

import copy
import random
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class ResourceType:
    """One REST resource: its plural name, group/version, kind and scope."""

    plural: str
    group_version: str  # "v1" for the core group, else "group/version"
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = (
        "create", "delete", "get", "list", "patch", "update", "watch",
    )  # fmt: skip


RESOURCES: dict[str, ResourceType] = {
    r.plural: r
    for r in (
        ResourceType("namespaces", "v1", "Namespace", False, ("ns",)),
        ResourceType("nodes", "v1", "Node", False, ("no",)),
        ResourceType("pods", "v1", "Pod", True, ("po",)),
        ResourceType("events", "v1", "Event", True, ("ev",)),
        ResourceType("secrets", "v1", "Secret", True),
        ResourceType("jobs", "batch/v1", "Job", True),
    )
}
PODS, JOBS, NODES, EVENTS, NAMESPACES = (
    RESOURCES[r] for r in ("pods", "jobs", "nodes", "events", "namespaces"))
TERMINAL_PHASES = ("Succeeded", "Failed")
DEFAULT_GRACE_S = 30  # a PodSpec's terminationGracePeriodSeconds default
# Subresources the discovery documents announce (what the emulator serves).
SUBRESOURCES = {"pods": ("log", "status"), "jobs": ("status",), "namespaces": ("status",),
                "nodes": ("status",)}


def now_rfc3339() -> str:
    """The current UTC time as Kubernetes writes timestamps (second precision, Z)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: str) -> datetime:
    """A Kubernetes timestamp as an aware datetime."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


_NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's, no vowels


def generated_name(prefix: str) -> str:
    """`prefix` plus five random characters, as the API server completes generateName."""
    return prefix + "".join(random.choice(_NAME_SUFFIX_ALPHABET) for _ in range(5))


class ApiError(Exception):
    """A failure the HTTP layer turns into a Kubernetes `Status` object."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> Obj:
        """The `Status` body a real API server returns for this failure."""
        body: Obj = {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        }  # fmt: skip
        if self.details:
            body["details"] = self.details
        return body


def not_found(rtype: ResourceType, name: str) -> ApiError:
    """404 in the API server's words: `pods "x" not found`."""
    group = rtype.group_version.rpartition("/")[0]
    qualified = f"{rtype.plural}.{group}" if group else rtype.plural
    return ApiError(404, "NotFound", f'{qualified} "{name}" not found',
                    {"name": name, "group": group, "kind": rtype.plural})


# --- status conditions -------------------------------------------------------------------


def condition(type_: str, status: str, reason: str | None = None,
              message: str | None = None) -> Obj:
    """A status condition as the controllers write it, stamped now."""
    now = now_rfc3339()
    cond = {"type": type_, "status": status, "lastProbeTime": None, "lastTransitionTime": now}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def set_condition(status: Obj, cond: Obj) -> None:
    """Put `cond` into `status`, replacing one of its type (whose transition time is
    kept if its status is unchanged)."""
    conditions = status.setdefault("conditions", [])
    for i, old in enumerate(conditions):
        if old["type"] == cond["type"]:
            if old["status"] == cond["status"]:
                cond["lastTransitionTime"] = old.get("lastTransitionTime")
            conditions[i] = cond
            return
    conditions.append(cond)


def has_condition(obj: Obj, type_: str) -> bool:
    """Whether `obj` has condition `type_` with status True."""
    return any(c["type"] == type_ and c["status"] == "True"
               for c in obj.get("status", {}).get("conditions") or [])


# --- selectors ---------------------------------------------------------------------------

_SET_EXPR = re.compile(r"^\s*(!?)([\w./-]+)\s*(?:\s(in|notin)\s*\(([^)]*)\))?\s*$")


def _split_selector(selector: str) -> list[str]:
    """Split on commas outside parentheses (`a in (x,y),b` is two requirements)."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def label_matcher(selector: str | None) -> Callable[[dict[str, str]], bool]:
    """A predicate over a label dict for a Kubernetes label selector string
    (`k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`)."""
    checks: list[Callable[[dict[str, str]], bool]] = []
    for part in _split_selector(selector or ""):
        if "!=" in part:
            key, value = (s.strip() for s in part.split("!=", 1))
            checks.append(lambda labels, k=key, v=value: labels.get(k) != v)
        elif "=" in part:
            key, value = (s.strip() for s in part.replace("==", "=").split("=", 1))
            checks.append(lambda labels, k=key, v=value: labels.get(k) == v)
        else:
            match = _SET_EXPR.match(part)
            if not match:
                raise ApiError(400, "BadRequest", f"unable to parse requirement: {part!r}")
            negate, key, op, values = match.groups()
            if op:
                allowed = {v.strip() for v in values.split(",")}
                inside = op == "in"
                checks.append(
                    lambda labels, k=key, a=allowed, i=inside: (labels.get(k) in a) == i
                    if (k in labels or i) else True
                )
            else:
                checks.append(lambda labels, k=key, n=bool(negate): (k in labels) != n)
    return lambda labels: all(check(labels) for check in checks)


def field_matcher(selector: str | None) -> Callable[[Obj], bool]:
    """A predicate over an object for a field selector (`metadata.name=x`,
    `metadata.namespace!=y`, `status.phase=Running`, `spec.nodeName=n`)."""
    checks: list[Callable[[Obj], bool]] = []
    for part in _split_selector(selector or ""):
        negate = "!=" in part
        path, value = (s.strip() for s in part.replace("==", "=").replace("!=", "=").split("=", 1))

        def check(obj: Obj, path: str = path, value: str = value, negate: bool = negate) -> bool:
            node: Any = obj
            for key in path.split("."):
                node = node.get(key) if isinstance(node, dict) else None
            return ((node if node is not None else "") == value) != negate

        checks.append(check)
    return lambda obj: all(check(obj) for check in checks)


# --- the store ---------------------------------------------------------------------------


@dataclass
class WatchEvent:
    """One entry of the write history: what happened to which object at which revision."""

    revision: int
    resource: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: Obj


class Store:
    """Objects by (resource, namespace, name), a revision counter and the write history.

    All methods are thread-safe; objects handed out are deep copies, so callers never
    mutate stored state except through `create`, `update` and `delete`.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        # Watches and controllers wait on this; every write notifies it.
        self.changed = threading.Condition(self.lock)
        self.revision = 0
        self._objects: dict[tuple[str, str, str], Obj] = {}
        self.history: list[WatchEvent] = []
        self.closed = False

    def _record(self, resource: str, kind: str, obj: Obj) -> Obj:
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)
        snapshot = copy.deepcopy(obj)
        self.history.append(WatchEvent(self.revision, resource, kind, snapshot))
        self.changed.notify_all()
        return copy.deepcopy(snapshot)

    @staticmethod
    def _key(rtype: ResourceType, namespace: str | None, name: str) -> tuple[str, str, str]:
        return (rtype.plural, (namespace or "") if rtype.namespaced else "", name)

    def create(self, rtype: ResourceType, namespace: str | None, obj: Obj,
               defaults: Callable[[Obj], None] | None = None) -> Obj:
        """Store a new object: name from generateName if needed, uid, creationTimestamp,
        kind and apiVersion, then `defaults(obj)` (the API server's defaulting, which may
        need the uid). 409 AlreadyExists if the name is taken; 404 if the namespace does
        not exist."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        with self.lock:
            if rtype.namespaced:
                namespace = namespace or meta.get("namespace") or "default"
                if self.get(RESOURCES["namespaces"], None, namespace) is None:
                    raise not_found(RESOURCES["namespaces"], namespace)
                meta["namespace"] = namespace
            if not meta.get("name"):
                if not meta.get("generateName"):
                    raise ApiError(422, "Invalid", f"{rtype.kind} is invalid: metadata.name: "
                                   "Required value: name or generateName is required")
                while True:
                    meta["name"] = generated_name(meta["generateName"])
                    if self._key(rtype, namespace, meta["name"]) not in self._objects:
                        break
            key = self._key(rtype, namespace, meta["name"])
            if key in self._objects:
                group = rtype.group_version.rpartition("/")[0]
                qualified = f"{rtype.plural}.{group}" if group else rtype.plural
                raise ApiError(409, "AlreadyExists",
                               f'{qualified} "{meta["name"]}" already exists',
                               {"name": meta["name"], "group": group, "kind": rtype.plural})
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            meta.setdefault("labels", {})
            obj["kind"], obj["apiVersion"] = rtype.kind, rtype.group_version
            if defaults is not None:
                defaults(obj)
            self._objects[key] = obj
            return self._record(rtype.plural, "ADDED", obj)

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj | None:
        """A copy of the object, or None."""
        with self.lock:
            obj = self._objects.get(self._key(rtype, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def require(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj:
        """A copy of the object; 404 ApiError if absent."""
        obj = self.get(rtype, namespace, name)
        if obj is None:
            raise not_found(rtype, name)
        return obj

    def list(self, rtype: ResourceType, namespace: str | None = None,
             label_selector: str | None = None, field_selector: str | None = None) -> list[Obj]:
        """Copies of the objects of `rtype` (in `namespace` if given) matching both
        selectors, oldest first."""
        labels_ok, fields_ok = label_matcher(label_selector), field_matcher(field_selector)
        with self.lock:
            return [
                copy.deepcopy(obj) for (plural, ns, _), obj in self._objects.items()
                if plural == rtype.plural and (namespace is None or ns == namespace)
                and labels_ok(obj["metadata"].get("labels") or {}) and fields_ok(obj)
            ]

    def update(self, rtype: ResourceType, namespace: str | None, name: str,
               mutate: Callable[[Obj], None]) -> Obj:
        """Apply `mutate` to the stored object in place and record a MODIFIED event,
        unless `mutate` changed nothing. 404 ApiError if absent."""
        with self.lock:
            key = self._key(rtype, namespace, name)
            if key not in self._objects:
                raise not_found(rtype, name)
            # Mutate a copy: a mutation that raises leaves the stored object untouched.
            obj = copy.deepcopy(self._objects[key])
            mutate(obj)
            if obj == self._objects[key]:
                return copy.deepcopy(obj)
            self._objects[key] = obj
            return self._record(rtype.plural, "MODIFIED", obj)

    def delete(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj:
        """Remove the object now and record a DELETED event. 404 ApiError if absent."""
        with self.lock:
            key = self._key(rtype, namespace, name)
            if key not in self._objects:
                raise not_found(rtype, name)
            obj = self._objects.pop(key)
            return self._record(rtype.plural, "DELETED", obj)

    def events_since(self, revision: int) -> list[WatchEvent]:
        """History entries after `revision`, oldest first."""
        with self.lock:
            # Revisions are dense and start at 1, so the entry for revision r is at r - 1.
            return self.history[max(revision, 0):]

    def wait_for_change(self, revision: int, timeout: float) -> None:
        """Block until a write after `revision`, the store closes, or `timeout` passes."""
        with self.changed:
            if self.revision <= revision and not self.closed:
                self.changed.wait(timeout)

    def close(self) -> None:
        """Wake every waiter for good (the emulator is stopping)."""
        with self.changed:
            self.closed = True
            self.changed.notify_all()

    def iter_history(self, resource: str) -> Iterator[WatchEvent]:
        """Every recorded event of `resource`, oldest first (for the control API)."""
        with self.lock:
            events = list(self.history)
        return (e for e in events if e.resource == resource)


def random_ip(prefix: str) -> str:
    """An address in `prefix` (e.g. "10.4.") with random last octets."""
    octets = prefix.count(".")
    tail = ".".join(str(random.randint(1, 254)) for _ in range(4 - octets))
    return prefix + tail

