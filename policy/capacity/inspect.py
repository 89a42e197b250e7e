"""`gpuadmit inspect`: this machine's GPUs (NVML) as a plan fragment.

The output is an inventory file: paste its `gpus:` into a plan, or pass the file to
`gpuadmit lint --capacity FILE` on a machine without the GPUs (CI, a laptop).
"""

from __future__ import annotations

import argparse
import json
import sys

import yaml

from .file import inventory_document
from .nvml import read_inventory

EXIT_OK, EXIT_UNAVAILABLE = 0, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=["yaml", "json"], default="yaml", help="output format (default yaml)")


def run(args: argparse.Namespace) -> int:
    inventory = read_inventory()
    if inventory.error:
        sys.stderr.write(f"gpuadmit: cannot inspect GPUs: {inventory.error}\n")
        return EXIT_UNAVAILABLE
    document = inventory_document(inventory)
    if args.format == "json":
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return EXIT_OK
    host = document["metadata"]["name"]
    sys.stdout.write(
        f"# The GPUs of {host} as NVML reports them (gpuadmit inspect). Paste `gpus:` into a plan,\n"
        "# or check plans against this file: gpuadmit lint --capacity THIS_FILE PLAN...\n"
    )
    sys.stdout.write(yaml.safe_dump(document, sort_keys=False, default_flow_style=None, allow_unicode=True, width=100))
    return EXIT_OK
