"""The admission app: routes, handlers and background duties, built explicitly.

    POST /validate   AdmissionReview in, AdmissionReview out
    GET  /healthz    the process answers
    GET  /readyz     rules compiled and the capacity source judged the probe plan
    GET  /metrics    Prometheus text format

Everything the handlers share lives on one `Webhook` object made by `build_app`; there is
no module-level state, so tests and the benchmark can build as many apps as they like.
"""

from __future__ import annotations

import asyncio
import os
import contextlib
import gc
import json
import logging
import re
import signal
import time
import weakref
from typing import Any, AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from policy.cluster import ClusterView
from policy.cluster.kube import open_cluster
from policy.cluster.watch import ClusterWatch
from policy.errors import InputError

from .config import ServeConfig
from .coordination import CoordinationError, Coordinator, KubeLeases
from .judge import JUDGED_OPERATIONS, ViewBusy, describe, judge, malformed, unreadable
from .limits import REQUEST_STARTED
from .metrics import CONTENT_TYPE, Metrics
from .readiness import cluster_view_readiness
from .review import Answer, BadRequest, Review, deny, failure, parse_json, parse_review, warning
from .ruleset import RuleHolder
from .scale import malformed_scale
from .tls import ReloadingContext

log = logging.getLogger("gpuadmit.webhook")

#: The API server appends `?timeout=5s` (its timeoutSeconds) to every webhook call.
_TIMEOUT_PARAM = re.compile(r"^(\d{1,6}(?:\.\d{1,6})?)s$")
#: `asyncio.timeout` (Python 3.11+), or None.
_timeout: Any = getattr(asyncio, "timeout", None)
#: A small review is judged on the event loop only while this much of its deadline is
#: left (at most half the deadline); closer to it, a worker thread judges it so the
#: deadline can still answer.
INLINE_MIN_BUDGET_S = 0.5


class Webhook:
    """The handlers and the state they share: settings, rules, metrics, certificates."""

    def __init__(self, settings: ServeConfig, rules: RuleHolder, metrics: Metrics, tls: ReloadingContext | None) -> None:
        self.settings = settings
        self.rules = rules
        self.metrics = metrics
        self.tls = tls
        self.draining = False
        self._reload_lock = asyncio.Lock()
        #: What the cluster runs (`--cluster kube|FILE`): reviews are judged with their neighbours.
        #: With `kube`, listed once here and then kept current by a watch (policy.cluster.watch).
        self.cluster_watch: ClusterWatch | None = None
        self.cluster: ClusterView | None = None
        if settings.cluster == "kube":
            from policy.cluster.kube import list_kube
            from policy.cluster.snapshot import view_of

            docs, versions = list_kube(settings.kubeconfig)
            self.cluster = view_of(docs, "kube")
            self.cluster_watch = ClusterWatch(self.cluster, docs, versions, settings.kubeconfig)
            watch = self.cluster_watch
            metrics.cluster_view_behind = lambda: (watch.problem() or (0.0, ""))[0]
        else:
            self.cluster = open_cluster(settings.cluster, settings.kubeconfig) if settings.cluster else None
        #: With `--cluster kube`: admissions coordinated with the other replicas through Leases.
        self.coordinator = _coordinator(settings, metrics) if self.cluster is not None else None
        #: How long an admitted object counts (`--reservation-ttl` with `kube`; a snapshot's default otherwise).
        self._reserve_s = settings.reservation_ttl_s if settings.cluster == "kube" else None
        # Its API connections close with the server, or when the webhook is dropped unstarted.
        self._release = weakref.finalize(self, self.coordinator.close) if self.coordinator is not None else None
        self._cluster_mtime = _mtime(settings.cluster)

    # -- reviews -----------------------------------------------------------------------

    async def validate(self, request: Request) -> Response:
        """POST /validate."""
        started = time.perf_counter()
        self.metrics.in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            deadline = self._deadline(request)
            # The deadline runs from the request's first byte (the server's protocol notes
            # when it came), so a slow body eats into it instead of extending it.
            due = request.scope.get(REQUEST_STARTED, loop.time()) + deadline
            try:
                body = await self._body(request, due - loop.time())
                review = parse_review(parse_json(body))
            except BadRequest as error:
                self.metrics.bad_request(error.status)
                log.warning("bad request", extra={"event": "bad-request", "status": error.status, "error": error.message})
                # A client that sent a bad or slow body gets no second request on this connection.
                close = {"connection": "close"} if error.status == 408 else None
                return PlainTextResponse(error.message + "\n", status_code=error.status, headers=close)
            if not review.uid:
                answer = deny(
                    400, "gpuadmit: the AdmissionReview has no request.uid; an answer could not be matched to it", "error"
                )
            else:
                answer = await self._judge(review, len(body), deadline, due)
            seconds = time.perf_counter() - started
            self.metrics.review(review.kind, review.operation, answer.decision, seconds)
            try:
                if log.isEnabledFor(logging.INFO):  # the fields cost more than a skipped line
                    self._log(review, answer, seconds)
            except Exception:  # a log line must never cost the answer
                log.exception("could not log a review", extra={"event": "log-error", "uid": review.uid})
            content = json.dumps(answer.response(review.uid), ensure_ascii=False, separators=(",", ":"))
            return Response(content, media_type="application/json")
        finally:
            self.metrics.in_flight -= 1

    async def _body(self, request: Request, budget: float) -> bytes:
        """The body, refused with 413 as soon as it passes the limit and with 408 when it
        has not all come within `budget` seconds."""
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and len(declared) < 19 and int(declared) > limit:
            raise BadRequest(f"request body of {int(declared)} bytes exceeds the {limit}-byte limit", 413)
        chunks: list[bytes] = []
        size = 0

        async def read() -> None:
            nonlocal size
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BadRequest(f"request body exceeds the {limit}-byte limit", 413)
                chunks.append(chunk)

        try:
            if budget <= 0:
                raise asyncio.TimeoutError
            if _timeout is not None:
                # A timer on this task: wait_for would run the read as a task of its own,
                # two more turns of the event loop on every review.
                async with _timeout(budget):
                    await read()
            else:  # Python 3.10
                await asyncio.wait_for(read(), timeout=budget)
        except asyncio.TimeoutError:
            raise BadRequest(
                f"request body not received within the {self._deadline(request):g} s deadline ({size} bytes came)", 408
            ) from None
        except ClientDisconnect:
            raise BadRequest("the client closed the connection before sending the whole body", 400) from None
        if not size:
            raise BadRequest("request body is empty; expected an AdmissionReview")
        return b"".join(chunks)

    def _deadline(self, request: Request) -> float:
        """Our deadline, kept below the API server's own timeout when it tells us one."""
        deadline = self.settings.deadline_s
        # The one parameter we read, found without building Starlette's QueryParams: this
        # runs on every review.
        query: bytes = request.scope.get("query_string", b"")
        for part in query.split(b"&") if b"timeout=" in query else ():
            name, _, value = part.partition(b"=")
            match = _TIMEOUT_PARAM.match(value.decode("latin-1")) if name == b"timeout" else None
            if match:
                deadline = min(deadline, max(0.05, float(match.group(1)) * 0.8))
        return deadline

    async def _judge(self, review: Review, size: int, deadline: float, due: float) -> Answer:
        """The verdict, and what the cluster view's state means for it: judged with the last
        good state and a warning while its watch is broken, a failure once that lasts longer
        than --cluster-stale-after."""
        problem = self.cluster_watch.problem() if self.cluster_watch is not None else None
        if problem is None or review.operation not in JUDGED_OPERATIONS:
            return await self._verdict(review, size, deadline, due)
        seconds, why = problem
        if seconds > self.settings.cluster_stale_after_s:
            # Bad input is denied as such, never answered by the failure policy: the object
            # is read, without the view, as the judge reads it.
            return (
                malformed(review)
                or malformed_scale(review)
                or unreadable(self.rules.current, review, self.settings.mode)
                or self._failure(review, f"cluster view {seconds:.0f} s behind, over --cluster-stale-after ({why})")
            )
        answer = await self._verdict(review, size, deadline, due)
        answer.warnings.append(warning(f"gpuadmit: judged with the cluster view of {seconds:.0f} s ago ({why})"))
        return answer

    async def _verdict(self, review: Review, size: int, deadline: float, due: float) -> Answer:
        linter = self.rules.current
        mode = self.settings.mode
        loop = asyncio.get_running_loop()
        try:
            if self.coordinator is not None:
                # Coordination waits on the API server: never on the event loop.
                return await asyncio.wait_for(
                    run_in_threadpool(judge, linter, review, mode, self.cluster, self.coordinator, due),
                    timeout=max(due - loop.time(), 0.0),
                )
            if size <= self.settings.inline_max_bytes and due - loop.time() > min(INLINE_MIN_BUDGET_S, deadline / 2):
                # A small review is judged in well under a millisecond: a thread hop costs more.
                # But never waiting on the event loop: while a refresh or a threaded review
                # holds the cluster view, this one waits for it in a thread, and the loop
                # goes on answering probes and other reviews.
                try:
                    answer = judge(linter, review, mode, self.cluster, due=due, reserve_s=self._reserve_s, wait=False)
                except ViewBusy:
                    pass
                else:
                    if loop.time() <= due:
                        return answer
                    # Too late to count: the API server has given up on it, so it is answered
                    # (and logged and counted) as the deadline's answer, like a threaded one.
                    raise asyncio.TimeoutError
            return await asyncio.wait_for(
                run_in_threadpool(judge, linter, review, mode, self.cluster, None, due, self._reserve_s),
                timeout=max(due - loop.time(), 0.0),
            )
        except (asyncio.TimeoutError, TimeoutError):  # two classes before Python 3.11; judge raises the builtin
            return self._failure(review, f"no verdict within the {deadline:g} s deadline")
        except CoordinationError as exc:
            log.warning("coordination failed", extra={"event": "coordination-error", "uid": review.uid, "error": str(exc)})
            return self._failure(review, f"replicas not coordinated: {exc}")
        except Exception as exc:  # fail closed (or open, if told), never a traceback to the client
            log.exception("internal error", extra={"event": "internal-error", "uid": review.uid, "kind": review.kind})
            return self._failure(review, f"internal error ({type(exc).__name__}: {exc})")

    def _failure(self, review: Review, reason: str) -> Answer:
        return failure(review.subject, reason, fail_open=self.settings.fail_open)

    def _log(self, review: Review, answer: Answer, seconds: float) -> None:
        fields: dict[str, Any] = {
            "event": "review",
            "uid": review.uid,
            "kind": review.kind,
            "operation": review.operation,
            "namespace": review.namespace,
            "object_name": review.name,
            "dry_run": review.dry_run,
            "duration_ms": round(seconds * 1000, 3),
            **describe(answer),
        }
        if self.settings.log_objects:
            fields["object"] = review.object
        log.info("review", extra=fields)

    # -- operations --------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(self, request: Request) -> Response:
        if self.draining:
            return PlainTextResponse("draining\n", status_code=503)
        if not self.rules.capacity_ready:
            return PlainTextResponse(
                f"not ready: {self.rules.last_error or 'capacity source not checked yet'}\n", status_code=503
            )
        view = ""
        if self.cluster_watch is not None:  # a view behind past --cluster-stale-after: webhook.readiness
            ready, view = cluster_view_readiness(
                self.cluster_watch.problem(), stale_after_s=self.settings.cluster_stale_after_s, fail_open=self.settings.fail_open
            )
            if not ready:
                return PlainTextResponse(f"not ready: {view}\n", status_code=503)
        text = f"ready: {self.metrics.rules_count} rules, capacity {self.settings.capacity}"
        return PlainTextResponse(f"{text}; {view}\n" if view else f"{text}\n")

    async def metrics_text(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=CONTENT_TYPE)

    async def reload_rules(self, reason: str) -> None:
        """One reload at a time, compiled in a worker thread so reviews keep flowing."""
        async with self._reload_lock:
            await asyncio.to_thread(self.rules.reload, reason)
            if not self.rules.capacity_ready:
                await asyncio.to_thread(self.rules.check_capacity)

    async def watch(self) -> None:
        """Certificate rotation, rule changes on disk, and readiness retries."""
        settings = self.settings
        intervals = [settings.tls_reload_interval_s if self.tls else 0.0, settings.watch_interval_s, 5.0]
        tick = min(i for i in intervals if i > 0)
        last_rules_check = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            if self.tls is not None and self.tls.changed():
                self.metrics.reload("tls", "ok" if self.tls.reload() else "failed")
            now = time.monotonic()
            if settings.watch_interval_s > 0 and now - last_rules_check >= settings.watch_interval_s:
                last_rules_check = now
                if await asyncio.to_thread(self.rules.changed_on_disk):
                    await self.reload_rules("file-change")
            if not self.rules.capacity_ready:
                await asyncio.to_thread(self.rules.check_capacity)
            if self.cluster is not None:
                await self.refresh_cluster(now)

    async def refresh_cluster(self, now: float) -> None:
        """The snapshot read again when its file changes, reservations kept until it shows
        them (`kube` is kept current by its watch)."""
        settings = self.settings
        if self.cluster is None or settings.cluster is None or self.cluster_watch is not None:
            return
        mtime = _mtime(settings.cluster)
        if mtime == self._cluster_mtime:
            return
        self._cluster_mtime = mtime
        try:
            fresh = await asyncio.to_thread(open_cluster, settings.cluster, settings.kubeconfig)
        except Exception as exc:  # keep judging with the view we have; say so
            log.warning("cluster view not refreshed", extra={"event": "cluster-refresh", "error": str(exc)})
            return
        await asyncio.to_thread(self.cluster.refresh, fresh)
        log.info("cluster view refreshed", extra={"event": "cluster-refresh", "objects": len(fresh.objects)})

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Readiness check, the watcher and the SIGHUP handler live as long as the server."""
        await asyncio.to_thread(self.rules.check_capacity)
        # Rules, readers and libraries are loaded for good: keep them out of every later
        # garbage collection, which otherwise walks them all and shows up in the p99.
        gc.collect()
        gc.freeze()
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()

        def on_sighup() -> None:
            task = loop.create_task(self.reload_rules("sighup"))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        hup = getattr(signal, "SIGHUP", None)
        if hup is not None:
            loop.add_signal_handler(hup, on_sighup)
        watcher = loop.create_task(self.watch())
        # The cluster view's watch (`--cluster kube`) runs as long as the server.
        following = loop.create_task(self.cluster_watch.run()) if self.cluster_watch is not None else None
        log.info(
            "ready to review",
            extra={
                "event": "start",
                "mode": self.settings.mode,
                "capacity": self.settings.capacity,
                "rules": self.metrics.rules_count,
            },
        )
        try:
            yield
        finally:
            self.draining = True
            if hup is not None:
                loop.remove_signal_handler(hup)
            watcher.cancel()
            if following is not None:
                following.cancel()
            for task in (watcher, *([following] if following is not None else []), *tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.close()
            log.info("stopped", extra={"event": "stop"})

    def close(self) -> None:
        """Let go of what the webhook holds open (the API connections of coordination)."""
        if self._release is not None:
            self._release()

    def health_routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.metrics_text, methods=["GET"]),
        ]


def build_app(webhook: Webhook) -> Starlette:
    """The admission app."""
    routes = [Route("/validate", webhook.validate, methods=["POST"]), *webhook.health_routes()]
    return Starlette(routes=routes, lifespan=webhook.lifespan)


def build_health_app(webhook: Webhook) -> Starlette:
    """Health and metrics alone, for a plain-HTTP probe port beside an mTLS webhook port."""
    return Starlette(routes=webhook.health_routes())


def _coordinator(settings: ServeConfig, metrics: Metrics) -> Coordinator | None:
    """Leases in the webhook's namespace, for `--cluster kube` (a snapshot file is one
    replica's own view: nothing to coordinate)."""
    if settings.cluster != "kube" or not settings.coordinate:
        return None
    try:
        leases = KubeLeases.connect(settings.kubeconfig, timeout_s=max(0.2, settings.deadline_s / 4))
    except Exception as exc:  # noqa: BLE001 - credentials that listed the cluster a moment ago
        raise InputError(f"--cluster kube: cannot coordinate replicas: {type(exc).__name__}: {exc}") from None
    return Coordinator(leases, settings.reservation_ttl_s, count=metrics.coordination)


def _mtime(path: str | None) -> float | None:
    """A snapshot file's modification time (None for `kube`, or a file that vanished)."""
    if not path or path == "kube":
        return None
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None
