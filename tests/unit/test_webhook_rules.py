"""Webhook URLs at submit time, the SSRF guard, signatures and the retry policy."""
import ipaddress

import pytest
import standardwebhooks

from shared.errors import InvalidInput
from shared.ssrf import DeniedDestination, denial_reason, parse_networks, resolve_allowed
from shared.webhooks import parse_webhook, webhook_id
from workers.webhooks import signing
from workers.webhooks.delivery import backoff_s, classify
from workers.webhooks.http import AttemptResult


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://x/", "ftp://example.com/", "http:///path",
                                 "https://user:pw@example.com/", "https://user@example.com/",
                                 "https://example.com/" + "a" * 2048, "example.com/hook", "",
                                 "http://exa mple.com/", "http://example.com:99999/"])
def test_unsafe_or_malformed_urls_are_refused_at_submit(url):
    with pytest.raises(InvalidInput):
        parse_webhook({"url": url})


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/", "http://10.0.0.1/", "http://[::1]:8080/",
                                 "http://[::ffff:10.0.0.1]/", "http://2130706433/", "http://0x7f.1/", "http://0/"])
def test_a_host_written_as_a_denied_address_is_refused_at_submit(url):
    with pytest.raises(InvalidInput, match="denied address"):
        parse_webhook({"url": url})


def test_an_allowed_network_or_a_name_passes_at_submit_and_is_checked_again_at_send():
    loopback = parse_networks("127.0.0.0/8")
    assert parse_webhook({"url": "http://127.0.0.1:9/hook"}, loopback).url == "http://127.0.0.1:9/hook"
    assert parse_webhook({"url": "http://localhost:9/hook"}).url == "http://localhost:9/hook"
    with pytest.raises(DeniedDestination):
        resolve_allowed("localhost", 9)


def test_events_default_to_completed_and_must_be_known():
    assert parse_webhook({"url": "https://example.com/h"}).events == ("completed",)
    assert parse_webhook({"url": "https://e.com", "events": ["completed", "started"]}).events == \
        ("started", "completed")
    for bad in ([], ["finished"], "completed", [1]):
        with pytest.raises(InvalidInput):
            parse_webhook({"url": "https://example.com/h", "events": bad})
    with pytest.raises(InvalidInput, match="unknown field"):
        parse_webhook({"url": "https://example.com/h", "secret": "x"})


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                                     "0.0.0.0", "224.0.0.1", "100.64.0.1", "::1", "::", "fe80::1", "fc00::1",
                                     "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
                                     "::ffff:169.254.169.254", "2002:7f00:1::", "255.255.255.255"])
def test_non_public_addresses_are_denied(address):
    assert denial_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_are_allowed(address):
    assert denial_reason(ipaddress.ip_address(address)) is None


def test_allowed_networks_open_private_ranges_including_mapped_forms():
    allowed = parse_networks("127.0.0.0/8, 10.0.0.0/8")
    assert denial_reason(ipaddress.ip_address("127.0.0.1"), allowed) is None
    assert denial_reason(ipaddress.ip_address("::ffff:10.1.1.1"), allowed) is None
    assert denial_reason(ipaddress.ip_address("192.168.0.1"), allowed) is not None
    assert denial_reason(ipaddress.ip_address("::1"), allowed) is not None


def test_a_name_with_any_denied_address_is_refused_and_no_other_address_used():
    def resolver(host, port):
        return {"mixed.test": ["93.184.216.34", "10.0.0.7"], "public.test": ["93.184.216.34"]}[host]

    with pytest.raises(DeniedDestination, match="10.0.0.7"):
        resolve_allowed("mixed.test", 443, resolver=resolver)
    assert resolve_allowed("public.test", 443, resolver=resolver) == "93.184.216.34"


def test_localhost_really_resolves_to_a_denied_address_unless_allowed():
    with pytest.raises(DeniedDestination):
        resolve_allowed("localhost", 80)
    assert resolve_allowed("127.0.0.1", 80, parse_networks("127.0.0.0/8")) == "127.0.0.1"


def test_an_unresolvable_name_is_denied_with_a_reason():
    with pytest.raises(DeniedDestination, match="cannot resolve"):
        resolve_allowed("no-such-host.invalid", 80, resolver=lambda h, p: (_ for _ in ()).throw(OSError("nx")))


def test_signatures_verify_with_the_standardwebhooks_package():
    secret = signing.new_secret()
    body = b'{"type":"job.completed","data":{"id":"j"}}'
    import time

    headers = signing.headers(signing.secret_key(secret), webhook_id("j", "completed"), int(time.time()), body)
    assert standardwebhooks.Webhook(secret).verify(body, headers) == {"type": "job.completed", "data": {"id": "j"}}
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(body.replace(b"j", b"k"), headers)


def test_malformed_secrets_are_rejected():
    for bad in ("", "nope", "whsec_"):
        with pytest.raises(ValueError):
            signing.secret_key(bad)


@pytest.mark.parametrize("result, outcome", [
    (AttemptResult(status=200), "delivered"), (AttemptResult(status=204), "delivered"),
    (AttemptResult(status=500), "retrying"), (AttemptResult(status=503), "retrying"),
    (AttemptResult(status=429), "retrying"), (AttemptResult(error="refused"), "retrying"),
    (AttemptResult(status=400), "failed"), (AttemptResult(status=410), "failed"),
    (AttemptResult(status=302), "failed"), (AttemptResult(error="denied", denied=True), "denied"),
])
def test_outcomes_follow_the_retry_rules(result, outcome):
    assert classify(result, attempt=1, retries=3) == outcome


def test_a_retryable_failure_after_the_last_retry_is_dead():
    assert classify(AttemptResult(status=500), attempt=4, retries=3) == "dead"


def test_backoff_is_jittered_around_the_schedule_and_honours_retry_after():
    schedule = [5, 30, 120]
    for _ in range(50):
        assert 4 <= backoff_s(schedule, 1, None) <= 6
        assert 96 <= backoff_s(schedule, 3, None) <= 144
        assert 96 <= backoff_s(schedule, 9, None) <= 144
    assert backoff_s(schedule, 1, 600) == 600


def test_default_schedule_spans_about_a_day():
    from shared.settings import Settings

    total_h = sum(Settings().webhook_schedule) / 3600
    assert 20 <= total_h <= 28


def test_a_receiver_that_drips_its_answer_is_cut_off_at_the_total_deadline():
    import socket
    import threading
    import time

    from workers.webhooks.http import post

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    stop = threading.Event()

    def drip():
        connection, _ = server.accept()
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok":
            if stop.wait(0.2):  # one byte every 0.2 s: every read meets its own timeout
                break
            try:
                connection.sendall(bytes([byte]))
            except OSError:
                break
        connection.close()

    threading.Thread(target=drip, daemon=True).start()
    began = time.monotonic()
    result = post(f"http://127.0.0.1:{server.getsockname()[1]}/hook", b"{}", {}, 1.0, 1.0,
                  parse_networks("127.0.0.0/8"))
    stop.set()
    server.close()
    assert time.monotonic() - began < 2.0
    assert result.status is None and "total deadline" in result.error
