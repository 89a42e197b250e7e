"""A local HTTP server that answers as a Kubernetes API server does, from recorded objects.

No API server can be installed where gpuadmit is tested, so the tests run the real client
library (lightkube) against this one. It keeps a store of objects, each with the
`metadata.resourceVersion` the store gave it, and answers:

- `GET` of a collection (`/api/v1/nodes`, `/apis/apps/v1/deployments`, and the namespaced
  `/apis/apps/v1/namespaces/NS/deployments`) with a `<Kind>List` whose
  `metadata.resourceVersion` is the store's current version;
- `GET` of one object (`.../deployments/NAME`), 404 with a `Status` when it is absent;
- `GET` of a collection with `?watch=true` (or `watch=1`): a chunked stream of JSON lines
  `{"type": "ADDED"|"MODIFIED"|"DELETED"|"ERROR", "object": ...}`. With `resourceVersion=N`
  it sends every change after N, then each new one as it happens; without it, an ADDED for
  every object there is, then the changes. A version older than the oldest change kept
  (`forget_history`) is answered as the API server answers an expired one: a `200` stream
  whose one event is an `ERROR` with a `410` `Status` (or, with `gone_status=True`, HTTP 410).
  `timeoutSeconds` ends the stream cleanly, as the API server does.

Tests change the store with `add`, `modify`, `delete` (watchers see the events at once),
break watches with `drop_watches` (the connection closes mid-stream) and `send_error`, and
extend the server with `route(method, pattern, handler)` for other endpoints (Leases, ...).
Every request's method and path is kept in `requests`.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml


@dataclass(frozen=True)
class Resource:
    """Where the API serves a kind: `/api/v1` or `/apis/GROUP/VERSION`, its plural, its scope."""

    group: str
    version: str
    plural: str
    namespaced: bool

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


#: Every kind the fake serves, by kind. Add to it (or to `FakeApiServer.resources`) for more.
RESOURCES: dict[str, Resource] = {
    "Node": Resource("", "v1", "nodes", False),
    "Pod": Resource("", "v1", "pods", True),
    "ConfigMap": Resource("", "v1", "configmaps", True),
    "PriorityClass": Resource("scheduling.k8s.io", "v1", "priorityclasses", False),
    "Deployment": Resource("apps", "v1", "deployments", True),
    "StatefulSet": Resource("apps", "v1", "statefulsets", True),
    "ReplicaSet": Resource("apps", "v1", "replicasets", True),
    "DaemonSet": Resource("apps", "v1", "daemonsets", True),
    "Job": Resource("batch", "v1", "jobs", True),
    "CronJob": Resource("batch", "v1", "cronjobs", True),
    "LeaderWorkerSet": Resource("leaderworkerset.x-k8s.io", "v1", "leaderworkersets", True),
    "InferenceService": Resource("serving.kserve.io", "v1beta1", "inferenceservices", True),
    "LLMInferenceService": Resource("serving.kserve.io", "v1alpha1", "llminferenceservices", True),
    "ServingPlan": Resource("gpuadmit.dev", "v1alpha1", "servingplans", True),
    "RayService": Resource("ray.io", "v1", "rayservices", True),
    "RayCluster": Resource("ray.io", "v1", "rayclusters", True),
    "NIMService": Resource("apps.nvidia.com", "v1alpha1", "nimservices", True),
    "VLLMRuntime": Resource("production-stack.vllm.ai", "v1alpha1", "vllmruntimes", True),
    "Lease": Resource("coordination.k8s.io", "v1", "leases", True),
}

#: A handler added with `route`: (the request, the pattern's match) -> (status, JSON body).
Handler = Callable[["Request", "re.Match[str]"], tuple[int, Any]]


@dataclass
class Request:
    """What a routed handler gets: the method, path, query and decoded JSON body (or None)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any


class _Watch:
    """One open watch: the events queued for it, and whether it must end now."""

    def __init__(self, kind: str, namespace: str | None) -> None:
        self.kind = kind
        self.namespace = namespace
        self.events: list[dict[str, Any] | None] = []  # None: close the connection abruptly
        self.ready = threading.Condition()

    def push(self, event: dict[str, Any] | None) -> None:
        with self.ready:
            self.events.append(event)
            self.ready.notify_all()


class FakeApiServer:
    """The store, the HTTP server and the watches. Start with `start()` or `with server:`."""

    def __init__(self, objects: list[dict[str, Any]] | None = None, *, gone_status: bool = False) -> None:
        self.requests: list[str] = []
        self.resources = dict(RESOURCES)
        self.gone_status = gone_status
        self._lock = threading.RLock()
        self._version = 100
        #: (kind, namespace, name) -> object
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        #: Every change, in order: (version, kind, namespace, event). Older ones may be forgotten.
        self._history: list[tuple[int, str, str, dict[str, Any]]] = []
        self._oldest = self._version  # changes after this version are all in `_history`
        self._watches: list[_Watch] = []
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        for obj in objects or []:
            self._store(obj, "ADDED", record=False)
        self._oldest = self._version
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> FakeApiServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.drop_watches()
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def kubeconfig(self, folder: Path) -> Path:
        """A kubeconfig in `folder` that points at this server."""
        path = folder / "kubeconfig"
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "test",
                    "clusters": [{"name": "test", "cluster": {"server": self.url}}],
                    "users": [{"name": "test", "user": {"token": "t"}}],
                    "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
                }
            ),
            encoding="utf-8",
        )
        return path

    # -- the store -----------------------------------------------------------------------

    @property
    def resource_version(self) -> str:
        with self._lock:
            return str(self._version)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._objects.get((kind, namespace if self.resources[kind].namespaced else "", name))
            return copy.deepcopy(found) if found is not None else None

    def objects(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(o) for (k, _, _), o in sorted(self._objects.items()) if k == kind]

    def add(self, obj: dict[str, Any], *, quietly: bool = False) -> dict[str, Any]:
        """Create an object (ADDED to watchers); its stored form, with its new resourceVersion.
        `quietly`: the open watches do not get the event (a watch opened later from an
        earlier version does, unless `forget_history` came between)."""
        return self._store(obj, "ADDED", quietly=quietly)

    def modify(self, obj: dict[str, Any], *, quietly: bool = False) -> dict[str, Any]:
        """Replace an object (MODIFIED); `metadata.generation` goes up by one."""
        return self._store(obj, "MODIFIED", quietly=quietly)

    def modify_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Replace an object's `status` only (MODIFIED), as a write to its status subresource
        does: the API server keeps `metadata.generation`."""
        return self._store(obj, "MODIFIED", status_only=True)

    def delete(self, kind: str, namespace: str, name: str, *, quietly: bool = False) -> dict[str, Any] | None:
        """Remove an object (DELETED, with the object at the deletion's resourceVersion)."""
        with self._lock:
            key = (kind, namespace if self.resources[kind].namespaced else "", name)
            obj = self._objects.pop(key, None)
            if obj is None:
                return None
            self._version += 1
            obj["metadata"]["resourceVersion"] = str(self._version)
            self._publish(kind, key[1], {"type": "DELETED", "object": copy.deepcopy(obj)}, quietly)
            return obj

    def forget_history(self) -> None:
        """Forget every change so far: a watch from an older version gets `410 Gone` (expired)."""
        with self._lock:
            self._history.clear()
            self._oldest = self._version

    def drop_watches(self) -> None:
        """Close every open watch connection mid-stream, as a restarting API server does."""
        with self._lock:
            watches, self._watches = self._watches, []
        for watch in watches:
            watch.push(None)

    def send_error(self, code: int = 410, reason: str = "Expired", message: str = "too old resource version") -> None:
        """Send an ERROR event with a `Status` to every open watch (the stream ends after it)."""
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
        event = {"type": "ERROR", "object": {**status, "message": message, "reason": reason, "code": code}}
        with self._lock:
            watches, self._watches = self._watches, []
        for watch in watches:
            watch.push(event)
            watch.push(None)

    def watch_count(self, kind: str | None = None) -> int:
        with self._lock:
            return sum(1 for w in self._watches if kind is None or w.kind == kind)

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Answer `method` on paths matching `pattern` (a regular expression, matched whole)
        with `handler`, before the built-in collection and object endpoints."""
        self._routes.append((method.upper(), re.compile(pattern), handler))

    def _store(
        self, obj: dict[str, Any], event: str, *, record: bool = True, quietly: bool = False, status_only: bool = False
    ) -> dict[str, Any]:
        kind = str(obj["kind"])
        resource = self.resources[kind]
        stored = copy.deepcopy(obj)
        stored.setdefault("apiVersion", resource.api_version)
        meta = stored.setdefault("metadata", {})
        namespace = str(meta.get("namespace") or "default") if resource.namespaced else ""
        if resource.namespaced:
            meta["namespace"] = namespace
        key = (kind, namespace, str(meta["name"]))
        with self._lock:
            previous = self._objects.get(key)
            if event == "ADDED" and previous is not None:
                event = "MODIFIED"
            if event == "MODIFIED" and previous is not None:
                meta.setdefault("uid", previous["metadata"].get("uid"))
                if status_only:
                    stored = {**copy.deepcopy(previous), "status": stored.get("status")}
                    meta = stored["metadata"]
                else:
                    meta["generation"] = int(previous["metadata"].get("generation", 1)) + 1
            meta.setdefault("uid", f"uid-{kind.lower()}-{namespace}-{meta['name']}")
            meta.setdefault("generation", 1)
            self._version += 1
            meta["resourceVersion"] = str(self._version)
            self._objects[key] = stored
            if record:
                self._publish(kind, namespace, {"type": event, "object": copy.deepcopy(stored)}, quietly)
        return copy.deepcopy(stored)

    def _publish(self, kind: str, namespace: str, event: dict[str, Any], quietly: bool = False) -> None:
        self._history.append((self._version, kind, namespace, event))
        for watch in self._watches if not quietly else ():
            if watch.kind == kind and watch.namespace in (None, namespace):
                watch.push(event)

    # -- HTTP ----------------------------------------------------------------------------

    def _parse(self, path: str) -> tuple[str, str | None, str | None] | None:
        """(kind, namespace or None, name or None) of a collection or object path."""
        for kind, res in self.resources.items():
            prefix = res.prefix
            if not path.startswith(prefix + "/"):
                continue
            rest = path[len(prefix) + 1 :].split("/")
            namespace = None
            if res.namespaced and len(rest) >= 3 and rest[0] == "namespaces":
                namespace, rest = rest[1], rest[2:]
            if rest[0] != res.plural or len(rest) > 2:
                continue
            return kind, namespace, rest[1] if len(rest) == 2 else None
        return None

    def _list(self, kind: str, namespace: str | None) -> dict[str, Any]:
        with self._lock:
            items = [copy.deepcopy(o) for (k, ns, _), o in sorted(self._objects.items()) if k == kind and namespace in (None, ns)]
            version = str(self._version)
        return {"apiVersion": "v1", "kind": f"{kind}List", "metadata": {"resourceVersion": version}, "items": items}

    def _open_watch(self, kind: str, namespace: str | None, since: str | None) -> tuple[_Watch | None, int]:
        """A watch with its backlog queued; (None, 410) when `since` is older than the history."""
        watch = _Watch(kind, namespace)
        with self._lock:
            if since in (None, "", "0"):
                for (k, ns, _), obj in sorted(self._objects.items()):
                    if k == kind and namespace in (None, ns):
                        watch.events.append({"type": "ADDED", "object": copy.deepcopy(obj)})
            else:
                version = int(str(since))
                if version < self._oldest:
                    return None, 410
                for at, k, ns, event in self._history:
                    if at > version and k == kind and namespace in (None, ns):
                        watch.events.append(event)
            self._watches.append(watch)
        return watch, 200

    def _close_watch(self, watch: _Watch) -> None:
        with self._lock:
            if watch in self._watches:
                self._watches.remove(watch)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: without TCP_NODELAY the body waits
            # for the client's delayed ACK (40 ms a request on a kept-alive connection).
            disable_nagle_algorithm = True

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self._answer("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._answer("POST")

            def do_PUT(self) -> None:  # noqa: N802
                self._answer("PUT")

            def do_PATCH(self) -> None:  # noqa: N802
                self._answer("PATCH")

            def do_DELETE(self) -> None:  # noqa: N802
                self._answer("DELETE")

            def _answer(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                outer.requests.append(parts.path if method == "GET" else f"{method} {parts.path}")
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                for route_method, pattern, handler in list(outer._routes):
                    match = pattern.fullmatch(parts.path)
                    if route_method == method and match:
                        body = json.loads(raw) if raw else None
                        status, answer = handler(Request(method, parts.path, query, body), match)
                        self._json(status, answer)
                        return
                parsed = outer._parse(parts.path) if method == "GET" else None
                if parsed is None:
                    self._json(404, status_object(404, "NotFound", f"the server could not find {parts.path}"))
                    return
                kind, namespace, name = parsed
                if name is not None:
                    found = outer.get(kind, namespace or "", name)
                    if found is None:
                        self._json(404, status_object(404, "NotFound", f'{kind.lower()} "{name}" not found'))
                    else:
                        self._json(200, found)
                elif query.get("watch") in ("true", "1"):
                    self._watch(kind, namespace, query)
                else:
                    self._json(200, outer._list(kind, namespace))

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _watch(self, kind: str, namespace: str | None, query: dict[str, str]) -> None:
                watch, code = outer._open_watch(kind, namespace, query.get("resourceVersion"))
                gone = status_object(410, "Expired", f"too old resource version: {query.get('resourceVersion')}")
                if watch is None and outer.gone_status:
                    self._json(410, gone)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                if watch is None:
                    self._chunk(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
                    self._chunk(b"")
                    return
                timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else None
                try:
                    for event in _events(watch, timeout):
                        if event is None:  # dropped: no final chunk, the connection just closes
                            self.close_connection = True
                            self.connection.shutdown(2)
                            return
                        self._chunk(json.dumps(event).encode() + b"\n")
                    self._chunk(b"")
                except OSError:  # the client went away
                    self.close_connection = True
                finally:
                    outer._close_watch(watch)

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def log_message(self, *args: Any) -> None:
                return None

        return Handler


def _events(watch: _Watch, timeout: float | None) -> Iterator[dict[str, Any] | None]:
    """The watch's events as they come; ends at `timeout` (seconds), or after a None."""
    import time

    end = time.monotonic() + timeout if timeout is not None else None
    while True:
        with watch.ready:
            while not watch.events:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return
                watch.ready.wait(timeout=0.5 if left is None else min(left, 0.5))
            event = watch.events.pop(0)
        yield event
        if event is None:
            return


def status_object(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


@contextmanager
def serving(objects: list[dict[str, Any]], folder: Path, **options: Any) -> Iterator[tuple[FakeApiServer, Path]]:
    """A started server holding `objects`, and a kubeconfig for it written into `folder`."""
    server = FakeApiServer(objects, **options)
    with server:
        yield server, server.kubeconfig(folder)
