"""Connection limits: what a client may hold of the server, and for how long.

uvicorn bounds none of these by itself: it starts its keep-alive clock only after a
first response, has no clock on reading a request, no handshake timeout of its own
(asyncio's default is 60 s) and no cap on open connections. One connection costs about
300 KiB once TLS is up (asyncio's 256 KiB read buffer and the TLS state), so an
unbounded number of idle ones is unbounded memory. Here:

- a TLS handshake has --tls-handshake-timeout to finish (asyncio closes it otherwise),
  and so has the closing handshake of a client that never answers it;
- an open connection with no request under way is closed after --idle-timeout, also
  before its first request;
- a request has --deadline from its first byte to be answered: the app answers or cuts
  a slow body by then (`REQUEST_STARTED` tells it when the first byte came), and a
  request whose headers are still arriving at that point loses its connection;
- a connection beyond --max-connections is closed as soon as it is accepted.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import ctypes
import ctypes.util
import functools
import gc
import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

if TYPE_CHECKING:
    from .config import ServeConfig

log = logging.getLogger("gpuadmit.webhook")

#: The scope key holding the event-loop time of a request's first byte.
REQUEST_STARTED = "gpuadmit.request_started"
#: asyncio reads decrypted data into a per-connection buffer of 256 KiB, allocated when the
#: connection is accepted: most of what an idle TLS connection costs. A TLS record holds
#: at most 16 KiB of data and a review arrives in many, so 64 KiB reads lose nothing.
TLS_READ_BUFFER = 64 * 1024
#: After this many connections have closed, they are collected and the freed memory is
#: handed back to the system (glibc keeps freed heap memory for reuse, so RSS would
#: otherwise stay at its peak), at most once a TRIM_DELAY_S.
TRIM_AFTER_CLOSED = 64
TRIM_DELAY_S = 1.0

#: Past the deadline, how long the app has to finish its answer before the connection
#: is closed under it (the app answers at the deadline; this only catches what did not).
CLOSE_GRACE_S = 1.0


@dataclass(frozen=True)
class Limits:
    """The connection limits of one listening port."""

    deadline_s: float
    idle_timeout_s: float
    tls_handshake_timeout_s: float
    max_connections: int
    #: Request line and headers together (h11's own default is 16 KiB).
    max_header_bytes: int = 64 * 1024

    @classmethod
    def of(cls, settings: ServeConfig) -> Limits:
        return cls(settings.deadline_s, settings.idle_timeout_s, settings.tls_handshake_timeout_s, settings.max_connections)


def economise_tls_memory() -> None:
    """Smaller TLS read buffers for every connection this process accepts from now on."""
    if getattr(asyncio.sslproto.SSLProtocol, "max_size", 0) > TLS_READ_BUFFER:
        asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> object | None:
    """glibc's malloc_trim, or None elsewhere (musl, macOS): there trimming is skipped."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return getattr(libc, "malloc_trim", None)
    except OSError:
        return None


class _Trimmer:
    """Hands freed memory back to the system once many connections have closed."""

    def __init__(self) -> None:
        self.closed = 0
        self.scheduled = False

    def connection_closed(self, loop: asyncio.AbstractEventLoop) -> None:
        self.closed += 1
        if self.closed >= TRIM_AFTER_CLOSED and not self.scheduled and _malloc_trim() is not None:
            self.scheduled = True
            loop.call_later(TRIM_DELAY_S, self.trim)

    def trim(self) -> None:
        self.closed = 0
        self.scheduled = False
        # A closed connection's protocol, transport and TLS objects refer to each other: only
        # a collection frees them, and an idle server allocates too little to trigger one.
        gc.collect()
        trim = _malloc_trim()
        if trim is not None:
            trim(0)  # type: ignore[operator]


_TRIMMER = _Trimmer()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the clocks and the cap of `Limits`."""

    def __init__(
        self, config: Any, server_state: Any, app_state: dict[str, Any], _loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits: Limits = config.limits
        self._refused = False
        self._started: float | None = None  # loop time of the first byte of the request under way
        self._request_clock: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._refused = True
            self.transport = transport
            log.warning(
                "connection refused: at the connection limit",
                extra={"event": "connection-limit", "limit": self.limits.max_connections},
            )
            transport.abort()
            return
        super().connection_made(transport)
        # uvicorn starts the keep-alive clock after a response; a connection that never
        # sends a request must not be held for ever either.
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_later(self.limits.idle_timeout_s, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_request_clock()
        _TRIMMER.connection_closed(self.loop)
        if self._refused:
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._started is None and (self.cycle is None or self.cycle.response_complete):
            # The first byte of a new request: its deadline runs from here.
            self._started = self.loop.time()
            self._request_clock = self.loop.call_later(self.limits.deadline_s + CLOSE_GRACE_S, self._overdue)
        super().data_received(data)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle and self.cycle is not None:  # a request's headers are in
            self.cycle.scope[REQUEST_STARTED] = self._started if self._started is not None else self.loop.time()  # type: ignore[literal-required]

    def on_response_complete(self) -> None:
        self._stop_request_clock()
        super().on_response_complete()

    def _stop_request_clock(self) -> None:
        self._started = None
        if self._request_clock is not None:
            self._request_clock.cancel()
            self._request_clock = None

    def _overdue(self) -> None:
        """Past the deadline and no answer sent: a slow client (or a stuck review) loses its connection."""
        self._request_clock = None
        if self.transport is None or self.transport.is_closing():
            return
        headers_in = self.cycle is not None and not self.cycle.response_complete
        log.warning(
            "request not answered within the deadline; connection closed",
            extra={"event": "request-timeout", "stage": "app" if headers_in else "headers", "deadline_s": self.limits.deadline_s},
        )
        if self.cycle is not None:
            self.cycle.disconnected = True
            self.cycle.keep_alive = False
            self.cycle.message_event.set()
        self.transport.close()


async def bounded_startup(server: uvicorn.Server) -> None:
    """uvicorn's `Server.startup` for a host and port, with asyncio's TLS handshake timeout set."""
    from uvicorn.config import STARTUP_FAILURE

    await server.lifespan.startup()
    if server.lifespan.should_exit:
        sys.exit(STARTUP_FAILURE)
    config = server.config
    limits: Limits = config.limits  # type: ignore[attr-defined]

    def create_protocol(_loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:
        return config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=server.server_state, app_state=server.lifespan.state, _loop=_loop
        )

    loop = asyncio.get_running_loop()
    tls: dict[str, Any] = {}
    if config.ssl:
        tls["ssl_handshake_timeout"] = limits.tls_handshake_timeout_s
        if sys.version_info >= (3, 11):
            # A client that never answers our close_notify would hold the connection's
            # memory for asyncio's default 30 s.
            tls["ssl_shutdown_timeout"] = limits.tls_handshake_timeout_s
    try:
        listener = await loop.create_server(
            create_protocol, host=config.host, port=config.port, ssl=config.ssl, backlog=config.backlog, **tls
        )
    except OSError as exc:
        logging.getLogger("uvicorn.error").error(exc)
        await server.lifespan.shutdown()
        sys.exit(STARTUP_FAILURE)
    server.servers = [listener]
    assert listener.sockets is not None
    server._log_started_message(listener.sockets)  # noqa: SLF001 - uvicorn's own start line
    server.started = True
