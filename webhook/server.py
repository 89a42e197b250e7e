"""`gpuadmit serve`: runs the admission app under uvicorn."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8443)


def run(args: argparse.Namespace) -> int:
    sys.stderr.write("gpuadmit: serve is not available yet\n")
    return 2
