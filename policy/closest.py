"""One "did you mean" for every misspelt name gpuadmit reports."""

from __future__ import annotations

import difflib
from typing import Iterable

#: How alike a name must be to be suggested (difflib's ratio: 2 × matching characters /
#: total characters). 0.6 suggests `lantency_critical` for `latency_critical` and
#: `memroy-fit` for `memory-fit`, and nothing for unrelated words.
CUTOFF = 0.6


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name most like `name`, or None when none is alike enough."""
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=CUTOFF)
    return matches[0] if matches else None


def did_you_mean(name: str, known: Iterable[str], *, prefix: str = "") -> str:
    """`"; did you mean '<prefix><closest>'?"`, or "" when nothing is close."""
    match = closest(name, known)
    return f"; did you mean {prefix + match!r}?" if match is not None else ""
