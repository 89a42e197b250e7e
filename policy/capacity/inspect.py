"""`gpuadmit inspect`: this machine's GPUs as a plan fragment."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=["yaml", "json"], default="yaml")


def run(args: argparse.Namespace) -> int:
    sys.stderr.write("gpuadmit: NVML inventory is not available yet\n")
    return 2
