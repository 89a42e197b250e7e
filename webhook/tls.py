"""TLS from certificate files that rotate (cert-manager renews them in place).

uvicorn builds its SSLContext once; we hand it ours instead and keep a reference. Loading a
new chain into a live context changes what every *new* handshake presents, so rotation
needs no restart and no dropped connection. A new pair is first loaded into a scratch
context: a half-written or mismatched pair is refused and the old one stays in service.
"""

from __future__ import annotations

import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("gpuadmit.webhook")

Stamp = tuple[tuple[int, int, int], ...]


@dataclass
class CertFiles:
    cert: Path
    key: Path
    client_ca: Path | None = None

    def stamp(self) -> Stamp:
        """(inode, size, mtime) of each file, following symlinks (Secret volumes swap links)."""
        stamps: list[tuple[int, int, int]] = []
        for path in (self.cert, self.key, self.client_ca):
            if path is None:
                continue
            try:
                st = os.stat(path)
            except OSError:
                stamps.append((0, 0, 0))
                continue
            stamps.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(stamps)


class ReloadingContext:
    """An SSLContext whose certificate chain follows the files."""

    def __init__(self, files: CertFiles) -> None:
        self.files = files
        self.context = self._new_context()
        self._stamp = files.stamp()

    def _new_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.files.cert), str(self.files.key))
        if self.files.client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=str(self.files.client_ca))
        return context

    def changed(self) -> bool:
        return self.files.stamp() != self._stamp

    def reload(self) -> bool:
        """Load the files into the live context if they form a valid pair; True when loaded."""
        stamp = self.files.stamp()
        try:
            self._new_context()  # validates the pair without touching the live context
            self.context.load_cert_chain(str(self.files.cert), str(self.files.key))
            if self.files.client_ca is not None:
                self.context.load_verify_locations(cafile=str(self.files.client_ca))
        except (OSError, ssl.SSLError) as exc:
            log.warning("tls reload failed; keeping the current certificate", extra={"event": "tls-reload", "error": str(exc)})
            return False
        self._stamp = stamp
        log.info("tls certificate reloaded", extra={"event": "tls-reload", "cert": str(self.files.cert)})
        return True
