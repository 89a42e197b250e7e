"""Waivers: what one is, whether it has expired, and what it waives.

A waiver (`policy.plan.Waiver`, the same in a plan, in `.gpuadmit.yaml` and in the
`gpuadmit.dev/waive` annotation) names an exact rule id and subject (`model`, `gpu` or
both) with a reason and usually an expiry date. It waives every finding of that rule
whose model and GPU equal the ones it names; a subject it leaves out matches any, so a
model rule waived for a GPU covers the models on it. It is in force through its expiry
date and expired from the day after: an expired waiver waives nothing (the
`waiver-expired` rule reports it). Every place that needs one of these answers asks
this module.
"""

from __future__ import annotations

import datetime as dt
import re

from .plan import Waiver

#: The one spelling of an expiry date in an annotation (`expires=YYYY-MM-DD`).
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


def parse_expires(text: str) -> dt.date:
    """An expiry date written as text (`2027-01-31`); ValueError for anything else."""
    text = text.strip()
    if not _ISO_DATE.match(text):
        raise ValueError(f"expires must be a date YYYY-MM-DD, got {text!r}")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expires must be a date YYYY-MM-DD, got {text!r}") from None


def expired(waiver: Waiver, today: dt.date) -> bool:
    """Past its expiry date: it waives nothing. A waiver is still in force on that date."""
    return waiver.expires is not None and waiver.expires < today


def days_expired(waiver: Waiver, today: dt.date) -> int:
    """How many days ago it expired; 0 while in force."""
    return (today - waiver.expires).days if waiver.expires is not None and waiver.expires < today else 0


def waives(waiver: Waiver, rule: str, model: str | None, gpu: str | None) -> bool:
    """Whether the waiver covers a finding of `rule` about `model` on `gpu`, expiry aside."""
    return waiver.rule == rule and (waiver.model is None or waiver.model == model) and (waiver.gpu is None or waiver.gpu == gpu)


__all__ = ["Waiver", "days_expired", "expired", "parse_expires", "waives"]
