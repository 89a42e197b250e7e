"""`gpuadmit serve --cluster kube`: the cluster view kept current by watching the API.

Each kind of policy.cluster.kube.KINDS is listed once (at start, by `list_kube`), then
watched from the resourceVersion of its list with lightkube's asyncio client: an ADDED or
MODIFIED object replaces what the view holds under its kind, namespace and name, a DELETED
one leaves. The view takes the objects as a new list would (`ClusterView.refresh`), so an
admitted object's reservation ends when the watch shows it at the admitted generation.

- `410 Gone` (the list's version is older than what the API server keeps), as an HTTP
  status or as an ERROR event: that kind is listed again, and watched from the new list.
- Any other failure (a dropped connection, an ERROR event, a refused request): the watch
  is opened again from the last version it delivered, after a backoff that doubles from
  `backoff_s` up to `max_backoff_s` and starts again once a watch is open.
- A kind whose list answers 404 (its CRD is not installed) is empty and listed again
  every `absent_retry_s`.

While any kind is not being followed, `problem()` says since when and why: the webhook
judges with the last good state and says so in a warning, and once that lasts longer than
`--cluster-stale-after`, it stops judging with it (docs/WEBHOOK.md, "Cluster view").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from ..domains import identity
from ..yamlio import Document
from .kube import OPTIONAL, SELECTORS, SOURCE, as_data, kube_config, resources
from .owners import controller_in, left_out, may_count_others
from .snapshot import ClusterView, view_of

log = logging.getLogger("gpuadmit.cluster")


@dataclass
class KindState:
    """How one kind is followed: the version its objects are at, and what broke, since when."""

    kind: str
    version: str | None = None
    watching: bool = False
    absent: bool = False
    error: str | None = None
    broken_since: float | None = None  # time.monotonic() of the first failure not yet repaired
    relists: int = 0
    reconnects: int = 0


class ClusterWatch:
    """Keeps `view` current from the Kubernetes API; `run()` follows every kind until cancelled."""

    def __init__(
        self,
        view: ClusterView,
        docs: list[Document],
        versions: dict[str, str],
        kubeconfig: str | None = None,
        *,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        absent_retry_s: float = 300.0,
        server_timeout_s: int = 300,
    ) -> None:
        self.view = view
        self.kubeconfig = kubeconfig
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.absent_retry_s = absent_retry_s
        self.server_timeout_s = server_timeout_s
        #: What the API holds, by identity: the view is rebuilt from these, and decides (as a
        #: snapshot does) which are counted through a controller it holds. Pods that have ended
        #: hold nothing (policy.cluster.owners) and are not kept at all. An object is kept
        #: whether or not its controller is listed yet: kinds are followed apart, and a
        #: controller may come after its children (at a relist, a CREATE seen late); until it
        #: does, the children are counted from their own spec, never dropped.
        self._objects: dict[tuple[str, str, str], Document] = {identity(d): d for d in docs if not left_out(d.data)}
        self._line = len(docs)
        self.kinds: dict[str, KindState] = {}
        for kind, _, _ in resources():
            state = KindState(kind, versions.get(kind))
            state.absent = kind in OPTIONAL and kind not in versions
            self.kinds[kind] = state
        #: Changes since the view last took them; applied by one task, in order.
        self._dirty = asyncio.Event()
        #: Changes received, and how many of them the view has taken.
        self.received = 0
        self.applied = 0

    # -- what the webhook asks -------------------------------------------------------------

    def problem(self, now: float | None = None) -> tuple[float, str] | None:
        """(seconds since the view was last known complete, why) while a kind is not being
        followed; None while every kind is."""
        now = time.monotonic() if now is None else now
        broken = [s for s in self.kinds.values() if s.broken_since is not None]
        if not broken:
            return None
        first = min(broken, key=lambda s: s.broken_since or now)
        kinds = ", ".join(sorted(s.kind for s in broken))
        return now - (first.broken_since or now), f"watch of {kinds} broken: {first.error or 'reconnecting'}"

    # -- following ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Follow every kind, and hand the changes to the view, until cancelled."""
        from lightkube import AsyncClient

        client = AsyncClient(kube_config(self.kubeconfig))
        tasks = [asyncio.create_task(self._follow(client, kind, res, ns)) for kind, res, ns in resources()]
        tasks.append(asyncio.create_task(self._apply()))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.close()

    async def _follow(self, client: Any, kind: str, resource: Any, namespaced: bool) -> None:
        state = self.kinds[kind]
        delay = self.backoff_s
        while True:
            try:
                if state.version is None:
                    await self._list(client, state, resource, namespaced)
                    if state.absent:
                        await asyncio.sleep(self.absent_retry_s)
                        continue
                await self._watch(client, state, resource, namespaced)
                delay = self.backoff_s  # the stream ended cleanly (its server timeout): reopen
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a dropped connection, an unreadable answer, a refusal
                code = _status_code(exc)
                self._broken(state, f"{kind}: {code} {exc}" if code else f"{kind}: {type(exc).__name__}: {exc}")
                if code == 410:
                    state.version = None  # expired: list again, at once
                    state.relists += 1
                    continue
            state.reconnects += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff_s)

    async def _list(self, client: Any, state: KindState, resource: Any, namespaced: bool) -> None:
        labels = SELECTORS.get(state.kind)
        listed = client.list(resource, namespace="*", labels=labels) if namespaced else client.list(resource, labels=labels)
        fresh: dict[tuple[str, str, str], Document] = {}
        try:
            async for obj in listed:
                doc = self._document(as_data(obj, resource))
                if not left_out(doc.data):
                    fresh[identity(doc)] = doc
        except Exception as exc:
            if state.kind in OPTIONAL and _status_code(exc) == 404:
                state.absent, state.version = True, None
                self._take_kind(state.kind, {})
                self._healthy(state)
                return
            raise
        state.absent = False
        state.version = listed.resourceVersion
        self._take_kind(state.kind, fresh)
        log.info("cluster kind listed", extra={"event": "cluster-list", "kind": state.kind, "objects": len(fresh)})

    async def _watch(self, client: Any, state: KindState, resource: Any, namespaced: bool) -> None:
        labels = SELECTORS.get(state.kind)
        options: dict[str, Any] = {"labels": labels, "resource_version": state.version, "server_timeout": self.server_timeout_s}
        if namespaced:
            options["namespace"] = "*"
        stream = client.watch(resource, **options)
        # The first event, or the first quiet moment, shows the watch is open: lightkube sends
        # the request when it is first iterated.
        events = stream.__aiter__()
        opened = asyncio.ensure_future(events.__anext__())
        try:
            while True:
                quiet = 0.2 if not state.watching else self.server_timeout_s + 30.0
                done, _ = await asyncio.wait({opened}, timeout=quiet)
                if not done:
                    if state.watching:
                        # The API server ends each watch at its timeoutSeconds and lightkube
                        # reopens it; nothing at all for longer is a connection that hangs
                        # silently (the watch has no read timeout): reopen it from here.
                        return
                    self._healthy(state)
                    continue
                try:
                    kind_of_change, obj = opened.result()
                except StopAsyncIteration:
                    return
                self._healthy(state)
                data = as_data(obj, resource)
                version = (data.get("metadata") or {}).get("resourceVersion")
                if isinstance(version, str) and version:
                    state.version = version
                self._take(kind_of_change, self._document(data))
                opened = asyncio.ensure_future(events.__anext__())
        finally:
            state.watching = False
            if not opened.done():
                opened.cancel()
            with contextlib.suppress(BaseException):
                await opened
            with contextlib.suppress(Exception):
                await events.aclose()

    # -- the store ---------------------------------------------------------------------------

    def _document(self, data: dict[str, Any]) -> Document:
        # Each object its own line of the `kube` source: findings and the view's model
        # owners are told apart by (file, line).
        self._line += 1
        return Document(data, SOURCE, self._line, self._line)

    def _take(self, change: str, doc: Document) -> None:
        key = identity(doc)
        if change == "DELETED" or left_out(doc.data):
            # Gone, or ended (a Pod that was running): only an object the store held changes
            # the view, and not one counted through a controller that is still there.
            held = self._objects.pop(key, None)
            if held is None or self._counted_through(held):
                return
        else:
            held = self._objects.get(key)
            self._objects[key] = doc
            if held is not None and _judged(held.data) == _judged(doc.data):
                # Only its status or the API's bookkeeping moved (a Deployment's ready count,
                # a Pod's conditions): nothing judging reads, so the view is not rebuilt.
                return
            if self._counted_through(doc) and (held is None or self._counted_through(held)):
                # A Deployment's Pod coming or changing: its controller, held, counts it
                # either way. Its controller leaving rebuilds the view, with it counted.
                return
        self.received += 1
        self._dirty.set()

    def _counted_through(self, doc: Document) -> bool:
        """Whether a controller in the store counts `doc`, and nothing is counted through
        `doc` itself: a change to it, or its leaving, changes nothing the view counts."""
        if may_count_others(doc.data):
            return False  # a ReplicaSet, a leader Pod: what it owns may be counted through it

        def lookup(kind: str, namespace: str, name: str) -> Any:
            found = self._objects.get((kind, namespace or "default", name))
            return found.data if found is not None else None

        return controller_in(doc.data, "", lookup) is not None

    def _take_kind(self, kind: str, fresh: dict[tuple[str, str, str], Document]) -> None:
        self._objects = {k: d for k, d in self._objects.items() if k[0] != kind}
        self._objects.update(fresh)
        self.received += 1
        self._dirty.set()

    async def _apply(self) -> None:
        """One task hands the changes to the view: the view's lock is taken in a worker
        thread, so a review being judged never blocks the event loop."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            received = self.received
            await asyncio.to_thread(self._rebuild, list(self._objects.values()))
            self.applied = received

    def _rebuild(self, docs: list[Document]) -> None:
        self.view.refresh(view_of(docs, SOURCE))

    def _broken(self, state: KindState, error: str) -> None:
        state.watching = False
        state.error = error
        if state.broken_since is None:
            state.broken_since = time.monotonic()
            log.warning("cluster watch broken", extra={"event": "cluster-watch", "kind": state.kind, "error": error})

    def _healthy(self, state: KindState) -> None:
        state.watching = True
        if state.broken_since is not None:
            log.info("cluster watch restored", extra={"event": "cluster-watch", "kind": state.kind})
        state.broken_since = None
        state.error = None

    async def settled(self) -> None:
        """Wait until the view has taken every change received so far."""
        while self.applied < self.received:
            await asyncio.sleep(0.01)


#: What the API server changes on its own, and judging never reads.
_BOOKKEEPING = {"resourceVersion", "managedFields"}


def _judged(data: Any) -> Any:
    """The object without its `status` and the API's bookkeeping: everything a reader or a
    reservation could read (a Pod that has ended is left out before this is asked)."""
    if not isinstance(data, dict):
        return data
    kept = {k: v for k, v in data.items() if k != "status"}
    meta = kept.get("metadata")
    if isinstance(meta, dict):
        kept["metadata"] = {k: v for k, v in meta.items() if k not in _BOOKKEEPING}
    return kept


def _status_code(exc: BaseException) -> int | None:
    """The HTTP status of a refusal: an ERROR event's or an answer's `Status`, or the answer's code."""
    status = getattr(exc, "status", None)
    code = getattr(status, "code", None)
    if isinstance(code, int):
        return code
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None
