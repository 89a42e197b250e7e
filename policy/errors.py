"""Error types. Everything a user can cause is an `InputError` (exit 2, one line);
everything else is a bug and may surface as a traceback."""

from __future__ import annotations


class GpuadmitError(Exception):
    """Base of every error gpuadmit raises on purpose."""


#: Messages quote the input (a parser shows the offending text); a hostile file must
#: not turn that into a megabyte of terminal output.
MAX_MESSAGE_CHARS = 400


def shorten(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """One line, at most `limit` characters, saying how much was left out."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


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
        message = shorten(message)
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        #: Further errors of the same input, each one line, so one run reports them all.
        self.also: list[InputError] = []

    def each(self) -> list[InputError]:
        """This error and the ones found with it, in input order."""
        return [self, *self.also]

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
