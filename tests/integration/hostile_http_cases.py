"""The catalogue's cases for the HTTP layer itself: header fields, request lines, paths and
query strings, answered by nginx, gunicorn or Flask's routing before any body is read."""
from __future__ import annotations

from tests.fixtures.hostile_bodies import DIGIT, Case

UUID = "0b9a3f5e-2c1d-4e8f-9a7b-6c5d4e3f2a1b"
"""A well-formed job id that no job has."""


def header_cases() -> list[Case]:
    many = tuple((f"X-Filler-{i}", "x" * 30) for i in range(1000))
    return [
        Case("header-too-many", 431, method="GET", target="/v1/models", headers=many),
        Case("header-one-huge", 431, method="GET", target="/v1/models", headers=(("X-Huge", "a" * 20_000),)),
        Case("header-gzip-chunked", 400, body=b"0\r\n\r\n", headers=(("Content-Type", "application/json"),
                                                                      ("Transfer-Encoding", "gzip, chunked"))),
        Case("header-length-and-chunked", 400, body=b"0\r\n\r\n", headers=(
            ("Content-Type", "application/json"), ("Content-Length", "5"), ("Transfer-Encoding", "chunked"))),
        Case("header-length-not-a-number", 400, headers=(("Content-Type", "application/json"), ("Content-Length", "abc"))),
        Case("header-length-negative", 400, headers=(("Content-Type", "application/json"), ("Content-Length", "-5"))),
        Case("header-length-over-the-limit", 413, headers=(("Content-Type", "application/json"),
                                                            ("Content-Length", str(10**12)))),
        Case("header-chunked-over-the-limit", 413, body=b"".join(
            [b"10000\r\n" + b" " * 0x10000 + b"\r\n"] * 17) + b"0\r\n\r\n",
            headers=(("Content-Type", "application/json"), ("Transfer-Encoding", "chunked"))),
        Case("header-bad-chunk-size", 400, body=b"zz\r\nabc\r\n0\r\n\r\n",
             headers=(("Content-Type", "application/json"), ("Transfer-Encoding", "chunked"))),
        Case("header-no-host", 400, raw_head=b"GET /v1/models HTTP/1.1\r\nConnection: close\r\n\r\n"),
        Case("header-two-hosts", 400, raw_head=b"GET /v1/models HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n"),
        Case("header-space-before-colon", 400,
             raw_head=b"GET /v1/models HTTP/1.1\r\nHost: a\r\nX-Bad : 1\r\nConnection: close\r\n\r\n"),
        Case("header-obsolete-line-folding", 400,
             raw_head=b"GET /v1/models HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\nConnection: close\r\n\r\n"),
        Case("header-http-2-preface", 400, raw_head=b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        Case("header-idempotency-key-too-long", 400, body=f'{{"instances": [{DIGIT}]}}'.encode(),
             headers=(("Content-Type", "application/json"), ("Idempotency-Key", "k" * 300))),
        Case("header-idempotency-key-control-bytes", 400, body=f'{{"instances": [{DIGIT}]}}'.encode(),
             headers=(("Content-Type", "application/json"), ("Idempotency-Key", "a\x01b"))),
        Case("header-idempotency-key-non-ascii", 400, body=f'{{"instances": [{DIGIT}]}}'.encode(),
             headers=(("Content-Type", "application/json"), ("Idempotency-Key", "caf\xe9"))),
        Case("header-malformed-traceparent-is-ignored", 202, body=f'{{"instances": [{DIGIT}]}}'.encode(),
             headers=(("Content-Type", "application/json"), ("traceparent", "00-zz-" + "x" * 500))),
        Case("header-absurd-prefer-wait-is-capped", 200, body=f'{{"instances": [{DIGIT}]}}'.encode(),
             headers=(("Content-Type", "application/json"), ("Prefer", "wait=" + "9" * 400))),
    ]


def path_cases() -> list[Case]:
    cases = [Case(f"path-job-id-{label}", 404, method=method, target=target) for label, method, target in (
        ("not-a-uuid", "GET", "/v1/jobs/inferq:queue:digits"),
        ("not-a-uuid-deliveries", "GET", "/v1/jobs/stats:deliveries"),
        ("not-a-uuid-delete", "DELETE", "/v1/jobs/inferq:signatures"),
        ("not-a-uuid-redeliver", "POST", "/v1/jobs/abc/deliveries/redeliver"),
        ("uuid-unknown", "GET", f"/v1/jobs/{UUID}"),
        ("uuid-unknown-deliveries", "GET", f"/v1/jobs/{UUID}:deliveries"),
        ("uuid-unknown-delete", "DELETE", f"/v1/jobs/{UUID}"),
        ("uuid-uppercase", "GET", f"/v1/jobs/{UUID.upper()}"),
        ("glob", "GET", "/v1/jobs/*"),
    )]
    cases += [Case(f"path-{label}", 404, method=method, target=target) for label, method, target in (
        ("dot-dot", "GET", "/v1/jobs/../../etc/passwd"),
        ("encoded-dot-dot-model", "POST", "/v1/models/%2e%2e/jobs"),
        ("model-name-200-chars", "POST", "/v1/models/" + "m" * 200 + "/jobs"),
        ("model-name-unicode", "POST", "/v1/models/%E2%98%83/jobs"),
        ("model-name-redis-key", "POST", "/v1/models/inferq:job:x/jobs"),
        ("version-25-digits", "POST", "/v1/models/digits/versions/" + "9" * 25 + "/jobs"),
        ("version-negative", "POST", "/v1/models/digits/versions/-1/jobs"),
        ("unknown-route", "GET", "/v1/nothing-here"),
        ("double-slash", "GET", "//v1//models"),
        ("predict-unknown-model", "POST", "/v1/models/nope:predict"),
        ("v2-unknown-model", "POST", "/v2/models/nope/infer"),
    )]
    cases += [
        Case("path-percent-encoded-nul", 400, method="GET", target="/v1/jobs/%00"),
        Case("path-raw-non-ascii-bytes", 400, raw_head=b"GET /v1/jobs/\xff\xfe HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
        Case("path-raw-space", 400, raw_head=b"GET /v1/jobs/a b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
        Case("path-absolute-form-other-host", 404,
             raw_head=b"GET http://169.254.169.254/latest HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
        Case("path-uri-100k", 414, method="GET", target="/v1/models/" + "a" * 100_000),
        Case("path-wrong-method", 405, method="PUT", target=f"/v1/jobs/{UUID}"),
        Case("path-unknown-method", 405, method="BREW", target="/v1/models"),
    ]
    return cases


def query_cases() -> list[Case]:
    return [Case(f"query-wait-{label}", 400, method="GET", target=f"/v1/jobs/{UUID}?wait={value}") for label, value in (
        ("text", "soon"), ("negative", "-1"), ("nan", "nan"), ("inf", "inf"), ("bad-percent", "%zz"),
        ("percent-nul", "1%00"),
    )] + [
        Case("query-100k", 414, method="GET", target="/v1/models?x=" + "a" * 100_000),
        Case("query-non-ascii-bytes", 400, raw_head=b"GET /v1/models?x=\xff HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
    ]
