"""Writable Leases for the fake API server (tests/fakes/kube_api.py), with the API server's
optimistic concurrency:

- `POST .../namespaces/NS/leases` creates a Lease, `201`; `409 AlreadyExists` when one of
  that name is there (two replicas creating it at once: one wins);
- `PUT .../namespaces/NS/leases/NAME` replaces it only when the body's
  `metadata.resourceVersion` is the stored one, `200`; otherwise `409 Conflict` (someone
  wrote in between), `404` when it is absent, `422` without a resourceVersion.

`GET` of one Lease is the fake's own (404 when absent). Each write gives the Lease a new
resourceVersion, as etcd does. `fail_next(n, status)` answers the next `n` writes with an
error instead; `conflict_next(n)` makes the next `n` writes lose a race to another writer.
"""

from __future__ import annotations

from typing import Any

from fakes.kube_api import FakeApiServer, Request, status_object

LEASES = r"/apis/coordination\.k8s\.io/v1/namespaces/([^/]+)/leases"


class Leases:
    """The Lease endpoints of one fake server, and what was written through them."""

    def __init__(self, server: FakeApiServer) -> None:
        self.server = server
        self.writes: list[tuple[str, int]] = []  # (method, status) of every write
        self._fail: list[int] = []
        self._conflicts = 0
        server.route("POST", LEASES, self._create)
        server.route("PUT", LEASES + r"/([^/]+)", self._replace)

    def fail_next(self, count: int, status: int = 503) -> None:
        self._fail.extend([status] * count)

    def conflict_next(self, count: int = 1) -> None:
        """The next `count` writes find the Lease changed by another writer first."""
        self._conflicts += count

    def all(self) -> list[dict[str, Any]]:
        return self.server.objects("Lease")

    def _create(self, request: Request, match: Any) -> tuple[int, Any]:
        answer = self._create_locked(request, match)
        self.writes.append(("POST", answer[0]))
        return answer

    def _replace(self, request: Request, match: Any) -> tuple[int, Any]:
        answer = self._replace_locked(request, match)
        self.writes.append(("PUT", answer[0]))
        return answer

    def _create_locked(self, request: Request, match: Any) -> tuple[int, Any]:
        namespace = match.group(1)
        body = dict(request.body or {})
        meta = dict(body.get("metadata") or {})
        name = str(meta.get("name") or "")
        with self.server._lock:  # one write at a time, as etcd's transaction is
            early = self._early()
            if early is not None:
                return early
            if self.server.get("Lease", namespace, name) is not None:
                return 409, status_object(409, "AlreadyExists", f'leases.coordination.k8s.io "{name}" already exists')
            if meta.get("resourceVersion"):
                return 500, status_object(500, "InternalError", "resourceVersion should not be set on objects to be created")
            meta["namespace"] = namespace
            body.update(kind="Lease", apiVersion="coordination.k8s.io/v1", metadata=meta)
            return 201, self.server.add(body)

    def _replace_locked(self, request: Request, match: Any) -> tuple[int, Any]:
        namespace, name = match.group(1), match.group(2)
        body = dict(request.body or {})
        meta = dict(body.get("metadata") or {})
        with self.server._lock:
            early = self._early()
            if early is not None:
                return early
            stored = self.server.get("Lease", namespace, name)
            if stored is None:
                return 404, status_object(404, "NotFound", f'leases.coordination.k8s.io "{name}" not found')
            if not meta.get("resourceVersion"):
                return 422, status_object(
                    422, "Invalid", "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
                )
            if self._conflicts:
                self._conflicts -= 1
                self.server.modify(stored)  # another writer got there first
                return 409, _conflict(name)
            if str(meta["resourceVersion"]) != stored["metadata"]["resourceVersion"]:
                return 409, _conflict(name)
            meta.update(namespace=namespace, name=name)
            body.update(kind="Lease", apiVersion="coordination.k8s.io/v1", metadata=meta)
            return 200, self.server.modify(body)

    def _early(self) -> tuple[int, Any] | None:
        if self._fail:
            status = self._fail.pop(0)
            return status, status_object(status, "ServiceUnavailable", "etcd leader changed")
        return None


def _conflict(name: str) -> dict[str, Any]:
    return status_object(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on leases.coordination.k8s.io "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
    )
