"""`gpuadmit serve`: runs the admission app under uvicorn.

uvicorn drains on SIGTERM (stops accepting, lets in-flight reviews finish, up to
--drain-timeout) and we hand it a TLS context that follows certificate rotation.

Every connection is bounded (`limits.GuardedH11Protocol`): a TLS handshake must finish
within --tls-handshake-timeout, a connection may sit idle (before its first request or
between requests) for --idle-timeout, a request must be answered within --deadline of its
first byte (headers and body included), and at most --max-connections are open at once.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.config
import signal
import ssl
from types import FrameType
from typing import Any

import uvicorn

from policy.errors import InputError

from . import config as serve_config
from .app import Webhook, build_app, build_health_app
from .limits import GuardedH11Protocol, Limits, bounded_startup, economise_tls_memory
from .logs import log_config
from .metrics import Metrics
from .ruleset import RuleHolder
from .tls import CertFiles, ReloadingContext

log = logging.getLogger("gpuadmit.webhook")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    serve_config.add_arguments(parser)


class _Config(uvicorn.Config):
    """uvicorn's Config, but serving our reloading SSLContext instead of a fixed one, and
    carrying the connection limits its protocol and server read."""

    def __init__(self, *args: Any, tls: ReloadingContext | None = None, limits: Limits, **kwargs: Any) -> None:
        kwargs["http"] = GuardedH11Protocol
        super().__init__(*args, **kwargs)
        self.reloading_tls = tls
        self.limits = limits

    def load(self) -> None:
        super().load()
        if self.reloading_tls is not None:
            self.ssl = self.reloading_tls.context


class _Server(uvicorn.Server):
    """Marks the webhook not-ready the moment a shutdown signal arrives."""

    def __init__(self, config: uvicorn.Config, webhook: Webhook) -> None:
        super().__init__(config)
        self.webhook = webhook

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await bounded_startup(self)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.webhook.draining = True
        log.info("draining", extra={"event": "drain", "signal": sig})
        super().handle_exit(sig, frame)
        # uvicorn raises a captured signal again once it has stopped, so the process dies
        # of it. SIGTERM is how Kubernetes stops a pod: after a drain that is a clean stop,
        # exit 0, and a death by the signal means the drain did not finish.
        captured = getattr(self, "_captured_signals", None)
        if sig == signal.SIGTERM and isinstance(captured, list):
            captured[:] = [s for s in captured if s != signal.SIGTERM]


class _SideServer(uvicorn.Server):
    """The plain-HTTP health port: signals belong to the main server, which stops it."""

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await bounded_startup(self)

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29 hook
        return None

    def capture_signals(self) -> Any:  # uvicorn >= 0.29 hook
        import contextlib

        return contextlib.nullcontext()


def run(args: argparse.Namespace) -> int:
    """Start serving; returns when the server has stopped (exit 0), or raises InputError."""
    settings = serve_config.from_args(args)
    logging.config.dictConfig(log_config(settings.log_level))
    metrics = Metrics()
    rules = RuleHolder(settings, metrics)  # a rule that does not compile stops us here, exit 2
    tls: ReloadingContext | None = None
    if settings.tls and settings.tls_cert is not None and settings.tls_key is not None:
        try:
            tls = ReloadingContext(CertFiles(settings.tls_cert, settings.tls_key, settings.client_ca))
        except (OSError, ssl.SSLError) as exc:
            raise InputError(f"cannot load the TLS certificate and key: {exc}", file=str(settings.tls_cert)) from None
    webhook = Webhook(settings, rules, metrics, tls)
    limits = Limits.of(settings)
    economise_tls_memory()
    common: dict[str, Any] = {
        "access_log": False,
        "server_header": False,
        "proxy_headers": False,
        "timeout_graceful_shutdown": settings.drain_timeout_s,
        "timeout_keep_alive": settings.idle_timeout_s,
        "h11_max_incomplete_event_size": limits.max_header_bytes,
        "limits": limits,
    }
    main_config = _Config(
        build_app(webhook),
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(settings.tls_cert) if tls else None,
        ssl_keyfile=str(settings.tls_key) if tls else None,
        lifespan="on",
        log_config=log_config(settings.log_level),
        tls=tls,
        **common,
    )
    server = _Server(main_config, webhook)
    side: uvicorn.Server | None = None
    if settings.health_port is not None:
        side_config = _Config(
            build_health_app(webhook), host=settings.host, port=settings.health_port, lifespan="off", log_config=None, **common
        )
        side = _SideServer(side_config)
    asyncio.run(_serve(server, side))
    return 0


async def _serve(server: uvicorn.Server, side: uvicorn.Server | None) -> None:
    side_task = asyncio.create_task(side.serve()) if side is not None else None
    try:
        await server.serve()
    finally:
        if side is not None and side_task is not None:
            side.should_exit = True
            await side_task
