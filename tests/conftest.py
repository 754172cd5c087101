from __future__ import annotations

import pytest

from tests.support import RedisServer


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def peer(tmp_path):
    from tests.support import Peer

    p = Peer(tmp_path).start()
    yield p
    p.stop()


@pytest.fixture
def gateway(tmp_path, redis_server, peer):
    from tests.support import Gateway

    gw = Gateway(tmp_path, redis_server.url, peer.fhir).start()
    yield gw
    gw.stop()
