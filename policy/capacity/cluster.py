"""Node objects read from the Kubernetes API when gpuadmit runs in a pod (the webhook).

A plain HTTPS GET with the pod's service-account token: no Kubernetes client library,
one request, bounded in time. Failures become the inventory's `error`.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .inventory import Inventory, failed
from .nodes import inventory_from_nodes, node_objects

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TIMEOUT_S = 5.0
ORIGIN = "the cluster's Node labels"


def read_inventory(service_account: Path = SERVICE_ACCOUNT, timeout_s: float = TIMEOUT_S) -> Inventory:
    """GPU nodes as the API server lists them (only nodes with a GFD product label)."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        return failed("nodes", ORIGIN, "not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set)")
    try:
        token = (service_account / "token").read_text(encoding="utf-8").strip()
    except OSError as exc:
        return failed("nodes", ORIGIN, f"cannot read the service-account token: {exc.strerror}")
    context = (
        ssl.create_default_context(cafile=str(service_account / "ca.crt"))
        if (service_account / "ca.crt").is_file()
        else ssl.create_default_context()
    )
    selector = urllib.parse.quote("nvidia.com/gpu.product", safe="")
    netloc = f"[{host}]" if ":" in host else host
    request = urllib.request.Request(
        f"https://{netloc}:{port}/api/v1/nodes?labelSelector={selector}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=context) as response:
            data = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return failed("nodes", ORIGIN, f"the API server refused to list nodes: HTTP {exc.code} (grant `list` on nodes)")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        return failed("nodes", ORIGIN, f"the API server did not answer: {getattr(exc, 'reason', exc)}")
    except ValueError:
        return failed("nodes", ORIGIN, "the API server's node list is not JSON")
    nodes = node_objects(data)
    if nodes is None:
        return failed("nodes", ORIGIN, "the API server's answer is not a NodeList")
    return inventory_from_nodes(nodes, ORIGIN)
