"""Fixtures: real Helios apps on free loopback ports, and gRPC clients to them."""

from __future__ import annotations

import pytest

from helios.scaler.app import HeliosApp

from .helpers import Client, fast_settings


@pytest.fixture
async def start_app():
    """Start HeliosApp instances on free loopback ports; stop them all after the test."""
    apps: list[HeliosApp] = []

    async def start(settings=None, **kwargs) -> HeliosApp:
        app = HeliosApp(settings or fast_settings(), **kwargs)
        await app.start()
        apps.append(app)
        return app

    yield start
    for app in apps:
        await app.stop()


@pytest.fixture
async def client_for():
    clients: list[Client] = []

    def make(app: HeliosApp) -> Client:
        c = Client(app)
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.channel.close()
