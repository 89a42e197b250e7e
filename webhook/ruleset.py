"""The active rule set and how it is replaced (SIGHUP or a change on disk).

A new `Linter` is compiled (and type-checked by the engine) next to the old one; only if
that succeeds does it replace the old one, with a single reference swap, so a review in
progress finishes with the rules it started with and a broken rule file never leaves
the webhook without rules.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import policy
from policy.api import Linter
from policy.config import find_config, load_config
from policy.errors import GpuadmitError
from policy.readers.native import read_plan_file
from policy.rules import builtin_rules_dir

from .config import ServeConfig
from .metrics import Metrics

log = logging.getLogger("gpuadmit.webhook")

Fingerprint = tuple[tuple[str, int, int], ...]


class RuleHolder:
    """Holds the current Linter; `current` is what a review uses."""

    def __init__(self, settings: ServeConfig, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._config_path = settings.config_file or find_config()
        self._fingerprint = self.fingerprint()
        self.current = self._build()
        self.capacity_ready = False
        self.last_error: str | None = None
        self._published()

    def _build(self) -> Linter:
        config = load_config(self._config_path)
        return Linter(config, self.settings.rule_dirs, capacity=self.settings.capacity)

    def _published(self) -> None:
        self.metrics.rules_loaded_at = time.time()
        self.metrics.rules_count = sum(1 for r in self.current.rules.rules if r.spec.enabled)

    def watched(self) -> list[Path]:
        """Every rule folder plus the project config: what a change on disk means reload."""
        paths = [builtin_rules_dir(), *self.settings.rule_dirs]
        if self._config_path is not None:
            paths.append(self._config_path)
        return paths

    def fingerprint(self) -> Fingerprint:
        entries: list[tuple[str, int, int]] = []
        for path in self.watched():
            files = sorted(path.iterdir()) if path.is_dir() else [path]
            for file in files:
                try:
                    st = os.stat(file)
                except OSError:
                    continue
                entries.append((str(file), st.st_size, st.st_mtime_ns))
        return tuple(entries)

    def changed_on_disk(self) -> bool:
        return self.fingerprint() != self._fingerprint

    def reload(self, reason: str) -> bool:
        """Compile the rules again; keep the old set if the new one does not compile."""
        fingerprint = self.fingerprint()
        try:
            linter = self._build()
        except GpuadmitError as exc:
            self._fingerprint = fingerprint  # do not retry the same broken files every tick
            self.last_error = str(exc)
            self.metrics.reload("rules", "failed")
            log.error(
                "rules reload failed; keeping the previous rules",
                extra={"event": "rules-reload", "reason": reason, "error": str(exc)},
            )
            return False
        self._fingerprint = fingerprint
        self.current = linter
        self.last_error = None
        self._published()
        self.metrics.reload("rules", "ok")
        log.info("rules reloaded", extra={"event": "rules-reload", "reason": reason, "rules": self.metrics.rules_count})
        return True

    def check_capacity(self) -> bool:
        """Judge the built-in probe plan: proves the rules and the capacity source work."""
        try:
            path = Path(policy.__file__).with_name("data") / "probe-plan.yaml"
            self.current.lint_sources(read_plan_file(path))
        except Exception as exc:  # any provider failure means not ready, never a crash
            self.capacity_ready = False
            self.last_error = f"capacity source {self.settings.capacity!r} not ready: {exc}"
            log.warning("not ready", extra={"event": "readiness", "error": self.last_error})
            return False
        self.capacity_ready = True
        return True
