"""What `/readyz` says about the cluster view (`serve --cluster kube`).

Readiness decides whether the Service sends this replica reviews. Past
`--cluster-stale-after`, a replica whose watch is broken answers every CREATE and UPDATE
with gpuadmit's failure policy: a 500 deny, or under `--fail-open` an allow with a warning.
It is made not-ready only where it would deny: the Service then sends the reviews to a
replica whose view is current, and when none is, the API server applies the webhook's
`failurePolicy` — with `Fail` the same deny. Under `--fail-open` it stays ready, since going
unready would turn its allow into the API server's deny (`Fail`) or into an allow without
gpuadmit's warning (`Ignore`). Within `--cluster-stale-after` it judges with the last good
state and stays ready. docs/WEBHOOK.md, "The cluster view", has the reasoning.
"""

from __future__ import annotations


def cluster_view_readiness(problem: tuple[float, str] | None, *, stale_after_s: float, fail_open: bool) -> tuple[bool, str]:
    """(ready, what to add to the answer) for a watch's `problem()`; (True, "") while it is current."""
    if problem is None:
        return True, ""
    seconds, why = problem
    behind = f"cluster view {seconds:.0f} s behind ({why})"
    if seconds <= stale_after_s:
        return True, f"{behind}: judged with it, with a warning"
    if fail_open:
        return True, f"{behind}, over --cluster-stale-after: reviews allowed with a warning (--fail-open)"
    return False, f"{behind}, over --cluster-stale-after: reviews would be denied"
