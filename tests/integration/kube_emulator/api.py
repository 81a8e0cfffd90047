"""The emulated Kubernetes REST API over HTTP/1.1 (threaded, keep-alive, chunked watches).

Serves what prefect-kubernetes' worker (kubernetes_asyncio) and observer (kopf) call:
`/version`, discovery (`/api`, `/api/v1`, `/apis`, `/apis/batch`, `/apis/batch/v1`),
and for namespaces, nodes, pods, events, secrets and jobs: list (label and field
selectors), watch (`watch=true|1`, from `resourceVersion`, `timeoutSeconds`; one JSON event
per line), get, create (generateName), replace, merge patch and delete (graceful for pods,
`propagationPolicy` for jobs), plus `pods/{name}/log` and the `status` subresources.
Failures are `Status` objects with Kubernetes' codes and reasons. Any request outside this
set is answered 404 and recorded in `ApiServer.unhandled` (and logged as an error), so a
gap shows up instead of a silent hang.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import jobs
from .cluster import Cluster
from .store import (
    RESOURCES, SUBRESOURCES, ApiError, Obj, ResourceType, field_matcher, label_matcher,
)  # fmt: skip

log = logging.getLogger("kube_emulator")

KUBE_VERSION = {
    "major": "1", "minor": "30", "gitVersion": "v1.30.5-emulator", "gitCommit": "emulator",
    "gitTreeState": "clean", "buildDate": "2024-09-11T00:00:00Z", "goVersion": "go1.22.6",
    "compiler": "gc", "platform": "linux/amd64",
}  # fmt: skip
DEFAULT_WATCH_TIMEOUT_S = 1800  # the API server's --min-request-timeout
WATCH_POLL_S = 1.0


def _discovery_resources(group_version: str) -> list[Obj]:
    found = []
    for rtype in RESOURCES.values():
        if rtype.group_version != group_version:
            continue
        found.append({"name": rtype.plural, "singularName": rtype.kind.lower(),
                      "namespaced": rtype.namespaced, "kind": rtype.kind,
                      "verbs": list(rtype.verbs), "shortNames": list(rtype.short_names)})
        for sub in SUBRESOURCES.get(rtype.plural, ()):
            found.append({"name": f"{rtype.plural}/{sub}", "singularName": "",
                          "namespaced": rtype.namespaced, "kind": rtype.kind,
                          "verbs": ["get"] if sub == "log" else ["get", "patch", "update"]})
    return found


def _group(group: str, version: str) -> Obj:
    gv = {"groupVersion": f"{group}/{version}", "version": version}
    return {"name": group, "versions": [gv], "preferredVersion": gv}


def discovery(path: str, address: str) -> Obj | None:
    """The discovery document at `path`, or None if it is not one."""
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": address}]}
    if path == "/apis":
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group("batch", "v1")]}
    if path == "/apis/batch":
        return {"kind": "APIGroup", "apiVersion": "v1", **_group("batch", "v1")}
    for prefix, gv in (("/api/v1", "v1"), ("/apis/batch/v1", "batch/v1")):
        if path == prefix:
            return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                    "resources": _discovery_resources(gv)}
    return None


class Route:
    """A parsed resource path: /api/v1/namespaces/{ns}/{plural}/{name}/{sub} and kin."""

    def __init__(self, rtype: ResourceType, namespace: str | None, name: str | None,
                 sub: str | None):
        self.rtype, self.namespace, self.name, self.sub = rtype, namespace, name, sub

    @classmethod
    def parse(cls, path: str) -> Route | None:
        """The route for `path`, or None if it names no served resource."""
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            gv, rest = "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        else:
            return None
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            return None
        rtype = RESOURCES.get(rest[0])
        if rtype is None or rtype.group_version != gv or (namespace and not rtype.namespaced):
            return None
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and sub not in SUBRESOURCES.get(rtype.plural, ()):
            return None
        return cls(rtype, namespace, name, sub)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (strategic merge patches are treated the same)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class ApiServer:
    """The HTTP front of a `Cluster`: start() on a free loopback port, stop() when done."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.store = cluster.store
        self.unhandled: list[str] = []
        self.requests: list[tuple[str, str, int]] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name="kube-emulator-api", daemon=True)

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving; open watches end when the store closes."""
        self._httpd.shutdown()
        self._httpd.server_close()

    # --- verbs ------------------------------------------------------------------------------

    def handle(self, method: str, route: Route, query: dict[str, str], body: Any
               ) -> tuple[int, Obj]:
        """Everything but watches and logs: (HTTP status, JSON body)."""
        rtype, ns, name = route.rtype, route.namespace, route.name
        if method == "GET" and name is None:
            items = self.store.list(rtype, ns, query.get("labelSelector"),
                                    query.get("fieldSelector"))
            return 200, {"kind": f"{rtype.kind}List", "apiVersion": rtype.group_version,
                         "metadata": {"resourceVersion": str(self.store.revision)},
                         "items": items}
        if method == "POST" and name is None:
            return 201, self._create(rtype, ns, body)
        if name is None:
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on a collection")
        if method == "GET":
            return 200, self.store.require(rtype, ns, name)
        if method == "DELETE":
            return self._delete(rtype, ns, name, query, body or {})
        if method in ("PUT", "PATCH"):
            return 200, self._write(method, route, body)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported")

    def _create(self, rtype: ResourceType, ns: str | None, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request was not a JSON object")
        body_ns = (body.get("metadata") or {}).get("namespace")
        if ns and body_ns and body_ns != ns:
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not "
                           "match the namespace sent on the request")
        defaults = {"jobs": jobs.job_defaults, "pods": _pod_defaults,
                    "namespaces": _namespace_defaults}.get(rtype.plural)
        if rtype.plural == "jobs":
            jobs.validate_job(body)
        return self.store.create(rtype, ns, body, defaults)

    def _delete(self, rtype: ResourceType, ns: str | None, name: str, query: dict[str, str],
                options: Obj) -> tuple[int, Obj]:
        grace = query.get("gracePeriodSeconds", options.get("gracePeriodSeconds"))
        grace = float(grace) if grace is not None else None
        if rtype.plural == "pods":
            result = self.cluster.delete_pod(ns, name, grace)
        elif rtype.plural == "jobs":
            policy = query.get("propagationPolicy", options.get("propagationPolicy"))
            result = self.cluster.jobs.delete_job(ns, name, policy, grace)
        else:
            result = self.store.delete(rtype, ns, name)
        if self.store.get(rtype, ns, name) is not None:
            return 202, result  # deletion pending: the object, as the API server returns
        group = rtype.group_version.rpartition("/")[0]
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                     "details": {"name": name, "group": group, "kind": rtype.plural,
                                 "uid": result["metadata"]["uid"]}}

    def _write(self, method: str, route: Route, body: Any) -> Obj:
        if method == "PATCH" and isinstance(body, list):
            self.unhandled.append(f"JSON patch (unsupported) on {route.rtype.plural}")
            raise ApiError(415, "UnsupportedMediaType", "the emulator takes merge patches only")
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request was not a JSON object")
        current = self.store.require(route.rtype, route.namespace, route.name)
        wanted_rv = (body.get("metadata") or {}).get("resourceVersion")
        if method == "PUT" and wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on '
                           f'{route.rtype.plural} "{route.name}": the object has been '
                           "modified; please apply your changes to the latest version and "
                           "try again")
        new = body if method == "PUT" else merge_patch(current, body)
        immutable = {k: current["metadata"].get(k) for k in
                     ("uid", "creationTimestamp", "name", "namespace")}

        def replace(obj: Obj) -> None:
            if route.sub == "status":
                obj["status"] = new.get("status", obj.get("status"))
                return
            # Writes to the main resource leave status alone, as for any resource with a
            # status subresource; identity fields cannot change.
            kept = {k: obj[k] for k in ("kind", "apiVersion", "status") if k in obj}
            obj.clear()
            obj.update(copy.deepcopy(new))
            obj.setdefault("metadata", {}).update(
                {k: v for k, v in immutable.items() if v is not None})
            obj.update(kept)

        return self.store.update(route.rtype, route.namespace, route.name, replace)


def _pod_defaults(obj: Obj) -> None:
    jobs.pod_spec_defaults(obj.setdefault("spec", {}))
    obj.setdefault("status", {}).setdefault("phase", "Pending")


def _namespace_defaults(obj: Obj) -> None:
    obj.setdefault("spec", {"finalizers": ["kubernetes"]})
    obj.setdefault("status", {"phase": "Active"})
    obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = obj["metadata"]["name"]


def _handler_class(server: ApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        api = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api: ApiServer

    def log_message(self, *args: Any) -> None:  # the test's output stays quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        status: int | None = 500
        try:
            body = json.loads(raw) if raw else None
            status = self._route(method, url.path, query, body)
        except ApiError as exc:
            status = exc.code
            self._send_json(exc.code, exc.status())
        except (json.JSONDecodeError, ValueError) as exc:
            status = 400
            self._send_json(400, ApiError(400, "BadRequest", str(exc)).status())
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (e.g. a watch it closed)
        except Exception as exc:  # a bug in the emulator: say so, loudly
            log.exception("kube emulator: %s %s failed", method, self.path)
            self.api.unhandled.append(f"{method} {self.path} -> {type(exc).__name__}: {exc}")
            self._send_json(500, ApiError(500, "InternalError", str(exc)).status())
        if status is not None:  # a watch was recorded when it began
            self.api.requests.append((method, self.path, status))

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> int | None:
        path = path.rstrip("/") or "/"
        if method == "GET" and path == "/version":
            return self._send_json(200, KUBE_VERSION)
        if method == "GET" and path in ("/healthz", "/livez", "/readyz"):
            return self._send(200, b"ok", "text/plain")
        if method == "GET" and (doc := discovery(path, self.api.url.removeprefix("http://"))):
            return self._send_json(200, doc)
        route = Route.parse(path)
        if route is None:
            message = f"unhandled request: {method} {self.path}"
            log.error("kube emulator: %s", message)
            self.api.unhandled.append(message)
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if method == "GET" and route.name is None and query.get("watch") in ("true", "1", "True"):
            return self._watch(route, query)
        if method == "GET" and route.sub == "log":
            return self._log(route, query)
        code, obj = self.api.handle(method, route, query, body)
        return self._send_json(code, obj)

    # --- responses --------------------------------------------------------------------------

    def _send(self, code: int, payload: bytes, content_type: str) -> int:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        return code

    def _send_json(self, code: int, obj: Obj) -> int:
        return self._send(code, json.dumps(obj).encode(), "application/json")

    def _start_chunked(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _watch(self, route: Route, query: dict[str, str]) -> None:
        """Stream events after `resourceVersion` (all current objects as ADDED first when
        it is absent or "0") until `timeoutSeconds` or the emulator stops."""
        store, rtype, ns = self.api.store, route.rtype, route.namespace
        labels_ok = label_matcher(query.get("labelSelector"))
        fields_ok = field_matcher(query.get("fieldSelector"))

        def wanted(obj: Obj) -> bool:
            meta = obj["metadata"]
            return ((ns is None or meta.get("namespace") == ns)
                    and labels_ok(meta.get("labels") or {}) and fields_ok(obj))

        self.api.requests.append(("GET", self.path, 200))
        timeout = float(query.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT_S)
        deadline = time.monotonic() + timeout
        self._start_chunked("application/json")
        since = query.get("resourceVersion")
        with store.lock:
            cursor = store.revision
            initial = [] if since not in (None, "", "0") else store.list(rtype, ns)
        if since not in (None, "", "0"):
            cursor = int(since)
        for obj in initial:
            if wanted(obj):
                self._chunk(json.dumps({"type": "ADDED", "object": obj}).encode() + b"\n")
        while not store.closed and time.monotonic() < deadline:
            events = store.events_since(cursor)
            for event in events:
                cursor = event.revision
                if event.resource == rtype.plural and wanted(event.obj):
                    line = json.dumps({"type": event.type, "object": event.obj}).encode()
                    self._chunk(line + b"\n")
            if not events:
                store.wait_for_change(cursor, min(WATCH_POLL_S, deadline - time.monotonic()))
        self._chunk(b"")
        return None

    def _log(self, route: Route, query: dict[str, str]) -> int:
        """Container output; `tailLines`, `limitBytes`, `follow` (until it exits);
        `previous` fails as for a container that never restarted."""
        pod = self.api.store.require(route.rtype, route.namespace, route.name)
        container_name = query.get("container") or pod["spec"]["containers"][0]["name"]
        if query.get("previous") in ("true", "1", "True"):
            raise ApiError(400, "BadRequest", f'previous terminated container '
                           f'"{container_name}" in pod "{route.name}" not found')
        runtime = self.api.cluster.runtime
        container = runtime.get(pod["metadata"]["uid"])
        if container is None:
            raise ApiError(400, "BadRequest", f'container "{container_name}" in pod '
                           f'"{route.name}" is waiting to start: ContainerCreating')
        if query.get("follow") in ("true", "1", "True"):
            return self._follow(container)
        data = container.log_path.read_bytes()
        if query.get("tailLines"):
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-int(query["tailLines"]):]) if int(query["tailLines"]) else b""
        if query.get("limitBytes"):
            data = data[: int(query["limitBytes"])]
        return self._send(200, data, "text/plain")

    def _follow(self, container: Any) -> int:
        self._start_chunked("text/plain")
        offset = 0
        while True:
            done = container.exit_code is not None
            data = container.log_path.read_bytes()[offset:]
            if data:
                offset += len(data)
                self._chunk(data)
            if done or self.api.store.closed:
                break
            time.sleep(0.2)
        self._chunk(b"")
        return 200
