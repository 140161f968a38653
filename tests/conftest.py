"""Fixtures every test may use; those that start real servers are in e2e/conftest.py,
the fake relay's in unit/conftest.py. Each folder's conftest marks its tests (``-m unit``,
``-m e2e``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from hypothesis import settings

from tests.helpers import Client, examples

# Tests that name no number of examples draw Hypothesis's default of 100 (or a tenth).
settings.register_profile("xmpp-post", max_examples=examples(100))
settings.load_profile("xmpp-post")


@pytest.fixture
async def http() -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as session:
        yield Client(session)
