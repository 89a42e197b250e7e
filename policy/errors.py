"""Error types. Everything a user can cause is an `InputError` (exit 2, one line);
everything else is a bug and may surface as a traceback."""

from __future__ import annotations


class GpuadmitError(Exception):
    """Base of every error gpuadmit raises on purpose."""


class InputError(GpuadmitError):
    """Unusable input: a file, a rule, a config or a command line that cannot be used.

    Rendered as one line: ``file:line:column: field: message``.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.field = field

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}"


class RuleError(InputError):
    """A rule file or project config that cannot be loaded or compiled."""


class CapacityError(GpuadmitError):
    """Real capacity could not be read (NVML, node labels). Becomes a finding, never a crash."""
