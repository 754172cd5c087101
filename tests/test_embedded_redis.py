"""With no GATEWAY_REDIS_URL the gateway runs its own redis-server, and data survives restarts."""

from __future__ import annotations

import redis

from gateway.redis_embedded import EmbeddedRedis
from tests.support import Gateway, sample_visit, wait_until


def test_embedded_redis_keeps_keys_and_visits_across_restarts(tmp_path):
    gw = Gateway(tmp_path, None, None)
    key = gw.create_key("H11010101")  # starts the embedded server for the command, then stops it
    gw.start()
    try:
        resp = gw.submit(key, sample_visit())
        assert resp.status_code == 202, resp.text
        tid = resp.json()["tracking_id"]
    finally:
        gw.stop()
    wait_until(lambda: EmbeddedRedis(tmp_path / "data").running_port() is None,
               what="the embedded redis to stop with the gateway")

    gw.start()
    try:
        view = gw.status(key, tid)  # the key and the visit came back from the AOF
        assert view["status"] == "accepted"
        assert view["visit_no"] == "MZ20260301000123"
    finally:
        gw.stop()


def test_embedded_redis_is_restarted_when_it_dies(tmp_path):
    embedded = EmbeddedRedis(tmp_path)
    url = embedded.start()
    embedded.supervise()
    try:
        client = redis.Redis.from_url(url)
        client.set("k", "v")
        embedded.proc.kill()
        wait_until(lambda: redis.Redis.from_url(url).get("k") == b"v", timeout=20,
                   what="the supervisor to restart redis with its data")
        assert redis.Redis.from_url(url).config_get("appendfsync")["appendfsync"] == "always"
    finally:
        embedded.stop()
