"""What a cluster already runs, as neighbours for the objects being judged.

`--cluster FILE` reads a snapshot: what `kubectl get nodes,deployments,statefulsets,jobs,pods
-A -o yaml` (or `-o json`) prints, a `List` of Nodes and workloads, or several such documents.
Nodes tell each GPU product's memory and sharing (GPU Feature Discovery labels); workloads
are the neighbours judged with the given objects in their sharing domains (policy.domains).
"""

from __future__ import annotations

from .snapshot import ClusterView, load_snapshot, view_of

__all__ = ["ClusterView", "load_snapshot", "view_of"]
