"""The webhook's settings: one frozen object built from the command line and checked there,
so the rest of the server trusts it."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from policy.errors import InputError

Mode = Literal["enforce", "audit"]

#: Kubernetes sends at most 3 MiB objects (etcd's default request limit is 1.5 MiB);
#: a review wraps the object and the old object, so 3 MiB is the ceiling a real review reaches.
DEFAULT_MAX_BODY = 3 * 1024 * 1024
#: Below the ValidatingWebhookConfiguration's timeoutSeconds (5 in samples/deploy/),
#: so a slow review is answered by gpuadmit (fail closed) instead of timing out.
DEFAULT_DEADLINE_S = 4.0
#: Reviews up to this size are judged on the event loop (measured faster: no thread
#: hop); larger ones go to a worker thread so the deadline can still answer them.
DEFAULT_INLINE_MAX_BYTES = 256 * 1024
#: A connection with no request under way is closed after this long (also before its
#: first request). Below the 90 s the API server's Go client keeps idle connections, so
#: a reconnect now and then is the cost; an idle connection holds about 300 KiB.
DEFAULT_IDLE_TIMEOUT_S = 30.0
#: asyncio's own default is 60 s; a loopback or in-cluster handshake takes milliseconds.
DEFAULT_TLS_HANDSHAKE_TIMEOUT_S = 5.0
#: Open connections at once, each about 300 KiB with TLS: 512 is about 150 MiB at worst.
#: An API server keeps a few per replica; the soak benchmark uses up to 256.
DEFAULT_MAX_CONNECTIONS = 512
#: With `--cluster kube`, an admitted object counts this long unless the view shows it first:
#: twice --cluster-stale-after, the longest a view whose watch is broken is judged with.
DEFAULT_RESERVATION_TTL_S = 120.0


@dataclass(frozen=True)
class ServeConfig:
    """Everything `gpuadmit serve` was told, validated once."""

    host: str = "127.0.0.1"
    port: int = 8443
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    plain_http: bool = False
    health_port: int | None = None
    mode: Mode = "enforce"
    capacity: str = "declared"
    cluster: str | None = None
    kubeconfig: str | None = None
    #: How long a broken watch (`--cluster kube`) may leave the view behind before reviews
    #: are answered as gpuadmit failures instead of judged with it (docs/WEBHOOK.md).
    cluster_stale_after_s: float = 60.0
    #: With `--cluster kube`: coordinate admissions with the other replicas (webhook.coordination).
    coordinate: bool = True
    #: How long an admitted object counts (in its pool's Lease too) before the view must show it.
    reservation_ttl_s: float = DEFAULT_RESERVATION_TTL_S
    rule_dirs: tuple[Path, ...] = ()
    config_file: Path | None = None
    fail_open: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY
    deadline_s: float = DEFAULT_DEADLINE_S
    inline_max_bytes: int = DEFAULT_INLINE_MAX_BYTES
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    tls_handshake_timeout_s: float = DEFAULT_TLS_HANDSHAKE_TIMEOUT_S
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    watch_interval_s: float = 10.0
    tls_reload_interval_s: float = 10.0
    drain_timeout_s: float = 25.0
    log_objects: bool = False
    log_level: str = "info"

    @property
    def tls(self) -> bool:
        return not self.plain_http


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `gpuadmit serve` options."""
    net = parser.add_argument_group("listening")
    net.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 inside a pod)")
    net.add_argument("--port", type=int, default=8443)
    net.add_argument("--tls-cert", metavar="FILE", help="server certificate chain (PEM); reloaded when it changes")
    net.add_argument("--tls-key", metavar="FILE", help="server private key (PEM); reloaded when it changes")
    net.add_argument("--client-ca", metavar="FILE", help="require client certificates signed by this CA (PEM)")
    net.add_argument("--plain-http", action="store_true", help="serve without TLS (local experiments only)")
    net.add_argument(
        "--health-port",
        type=int,
        metavar="PORT",
        help="also serve /healthz, /readyz and /metrics over plain HTTP on this port (for probes when --client-ca is set)",
    )
    judging = parser.add_argument_group("judging")
    judging.add_argument(
        "--mode", choices=["enforce", "audit"], default="enforce", help="audit: always allow, report findings as warnings"
    )
    judging.add_argument(
        "--capacity", default="declared", metavar="declared|nodes|nvml|FILE", help="where real GPU capacity comes from"
    )
    judging.add_argument(
        "--cluster",
        metavar="kube|FILE",
        help="what the cluster runs: kube (its API, listed then watched) or a snapshot file (read again when it changes)",
    )
    judging.add_argument("--kubeconfig", metavar="FILE", help="with --cluster kube (default: the pod's service account)")
    judging.add_argument(
        "--cluster-stale-after",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="with --cluster kube: a view whose watch has been broken this long is not judged with (a failure: denied, or allowed under --fail-open)",
    )
    judging.add_argument(
        "--reservation-ttl",
        type=float,
        default=DEFAULT_RESERVATION_TTL_S,
        metavar="SECONDS",
        help="with --cluster kube: an admitted object counts this long, or until the cluster view shows it (default 120)",
    )
    judging.add_argument(
        "--no-coordination",
        action="store_true",
        help="with --cluster kube: do not coordinate admissions with other replicas through Leases (one replica only)",
    )
    judging.add_argument("--rules", action="append", default=[], metavar="DIR", help="extra rule folder (repeatable)")
    judging.add_argument("--config", metavar="FILE", help="project config (.gpuadmit.yaml)")
    judging.add_argument("--fail-open", action="store_true", help="allow objects gpuadmit could not judge (default: deny)")
    limits = parser.add_argument_group("limits and operations")
    limits.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY, help="larger reviews get 413 (default 3 MiB)")
    limits.add_argument(
        "--deadline",
        type=float,
        default=DEFAULT_DEADLINE_S,
        metavar="SECONDS",
        help="answer every review within this time of its first byte (reading it included); keep it below the webhook's timeoutSeconds",
    )
    limits.add_argument(
        "--inline-max-bytes",
        type=int,
        default=DEFAULT_INLINE_MAX_BYTES,
        metavar="BYTES",
        help="reviews up to this size are judged on the event loop, larger ones in a worker thread",
    )
    limits.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT_S,
        metavar="SECONDS",
        help="close a connection with no request under way after this long (default 30)",
    )
    limits.add_argument(
        "--tls-handshake-timeout",
        type=float,
        default=DEFAULT_TLS_HANDSHAKE_TIMEOUT_S,
        metavar="SECONDS",
        help="close a connection whose TLS handshake has not finished after this long (default 5)",
    )
    limits.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="close connections beyond this many open at once (default 512)",
    )
    limits.add_argument(
        "--watch-interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="check rule folders for changes this often (0: only on SIGHUP)",
    )
    limits.add_argument(
        "--tls-reload-interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="check the certificate files for rotation this often",
    )
    limits.add_argument(
        "--drain-timeout", type=float, default=25.0, metavar="SECONDS", help="on SIGTERM, wait this long for in-flight reviews"
    )
    limits.add_argument("--log-objects", action="store_true", help="include object bodies in logs (off: they may hold secrets)")
    limits.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")


def from_args(args: argparse.Namespace) -> ServeConfig:
    """Check the options together; every problem is an InputError (exit 2, one line)."""
    plain = bool(args.plain_http)
    cert = Path(args.tls_cert) if args.tls_cert else None
    key = Path(args.tls_key) if args.tls_key else None
    client_ca = Path(args.client_ca) if args.client_ca else None
    if not plain and (cert is None or key is None):
        raise InputError(
            "serve needs --tls-cert and --tls-key (the API server only calls webhooks over HTTPS); --plain-http for local use"
        )
    if plain and client_ca is not None:
        raise InputError("--client-ca needs TLS; drop --plain-http")
    for label, path in (("--tls-cert", cert), ("--tls-key", key), ("--client-ca", client_ca)):
        if path is not None and not plain and not path.is_file():
            raise InputError(f"{label}: no such file", file=str(path))
    for directory in args.rules:
        if not Path(directory).is_dir():
            raise InputError("--rules: no such folder", file=str(directory))
    _port("--port", args.port)
    if args.health_port is not None:
        _port("--health-port", args.health_port)
        if args.health_port == args.port:
            raise InputError("--health-port must differ from --port")
    if args.max_body_bytes < 1024:
        raise InputError(f"--max-body-bytes {args.max_body_bytes} is too small; a review needs at least 1024")
    for label, value, low in (
        ("--deadline", args.deadline, 0.05),
        ("--watch-interval", args.watch_interval, 0.0),
        ("--tls-reload-interval", args.tls_reload_interval, 0.05),
        ("--drain-timeout", args.drain_timeout, 0.0),
        ("--idle-timeout", args.idle_timeout, 0.1),
        ("--tls-handshake-timeout", args.tls_handshake_timeout, 0.1),
        ("--cluster-stale-after", float(getattr(args, "cluster_stale_after", 60.0)), 0.0),
    ):
        if not math.isfinite(value) or value < low:
            raise InputError(f"{label} {value} must be at least {low}")
    if args.idle_timeout > 3600 or args.tls_handshake_timeout > 60:
        raise InputError("--idle-timeout is at most 3600 s and --tls-handshake-timeout at most 60 s")
    if not 1 <= args.max_connections <= 100_000:
        raise InputError(f"--max-connections {args.max_connections} must be from 1 to 100000")
    ttl = float(getattr(args, "reservation_ttl", DEFAULT_RESERVATION_TTL_S))
    if not math.isfinite(ttl) or not 1.0 <= ttl <= 86400.0:
        raise InputError(f"--reservation-ttl {ttl} must be from 1 to 86400 seconds")
    if args.deadline > 29.5:
        raise InputError(f"--deadline {args.deadline} exceeds the API server's 30 s webhook limit")
    return ServeConfig(
        host=args.host,
        port=args.port,
        tls_cert=cert,
        tls_key=key,
        client_ca=client_ca,
        plain_http=plain,
        health_port=args.health_port,
        mode=args.mode,
        capacity=args.capacity,
        cluster=_cluster(args),
        kubeconfig=getattr(args, "kubeconfig", None),
        cluster_stale_after_s=float(getattr(args, "cluster_stale_after", 60.0)),
        coordinate=not getattr(args, "no_coordination", False),
        reservation_ttl_s=ttl,
        rule_dirs=tuple(Path(d) for d in args.rules),
        config_file=Path(args.config) if args.config else None,
        fail_open=bool(args.fail_open),
        max_body_bytes=args.max_body_bytes,
        deadline_s=args.deadline,
        inline_max_bytes=max(0, args.inline_max_bytes),
        idle_timeout_s=args.idle_timeout,
        tls_handshake_timeout_s=args.tls_handshake_timeout,
        max_connections=args.max_connections,
        watch_interval_s=args.watch_interval,
        tls_reload_interval_s=args.tls_reload_interval,
        drain_timeout_s=args.drain_timeout,
        log_objects=bool(args.log_objects),
        log_level=args.log_level,
    )


def _port(label: str, port: int) -> None:
    if not 0 < port < 65536:
        raise InputError(f"{label} {port} is not a TCP port (1-65535)")


def _cluster(args: argparse.Namespace) -> str | None:
    cluster = getattr(args, "cluster", None)
    if cluster is not None and cluster != "kube" and not Path(cluster).is_file():
        raise InputError("--cluster: no such file", file=str(cluster))
    return str(cluster) if cluster is not None else None
