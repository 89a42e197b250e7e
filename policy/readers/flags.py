"""Command-line flags of serving engines (vLLM, SGLang, tritonserver), as written in a
container's command/args or a plan's `triton.args`.

Both `--flag value` and `--flag=value` are accepted, and a shell line inside one
argument (`sh -c "vllm serve ... --flag value"`) is split the way the shell would.
"""

from __future__ import annotations

import shlex
from typing import Iterable


def tokens(args: Iterable[str]) -> list[str]:
    """Every word of the command line; an argument holding a shell line is split."""
    words: list[str] = []
    for arg in args:
        text = str(arg)
        if any(ch.isspace() for ch in text.strip()):
            try:
                words.extend(shlex.split(text))
            except ValueError:  # unbalanced quotes: keep what a reader can still use
                words.extend(text.split())
        else:
            words.append(text.strip())
    return [w for w in words if w]


def flag_values(words: list[str]) -> dict[str, list[str]]:
    """`--name` -> every value it was given ("" for a bare switch), in order."""
    values: dict[str, list[str]] = {}
    n = 0
    while n < len(words):
        word = words[n]
        if word.startswith("--") and len(word) > 2:
            name, eq, value = word.partition("=")
            if not eq:
                following = words[n + 1] if n + 1 < len(words) else None
                if following is not None and not following.startswith("--"):
                    value = following
                    n += 1
            values.setdefault(name, []).append(value)
        n += 1
    return values


def last(values: dict[str, list[str]], *names: str) -> str | None:
    """The value of the last of `names` given (engines take the last occurrence)."""
    for name in names:
        if name in values and values[name]:
            return values[name][-1]
    return None


def rate_limit_on(words: list[str]) -> bool:
    """tritonserver applies `rate_limiter` only with `--rate-limit=execution_count` (default off)."""
    return last(flag_values(words), "--rate-limit") == "execution_count"
