"""Fixtures of the webhook tests."""

from __future__ import annotations

from typing import Iterator

import pytest
from webhook_support import Server, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server shared by the review tests of a module (reviews are independent)."""
    running = start_server(tmp_path_factory.mktemp("serve"))
    yield running
    running.stop()
