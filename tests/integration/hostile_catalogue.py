"""The hostile-input catalogue: requests a careless or malicious client can send, and the one
answer each must get. Every case is raw bytes on the wire, so nothing a client library would
normalise away (paths, header folding, transfer codings) is lost on the way to nginx.
"""
from __future__ import annotations

import struct
import zlib

import numpy as np

from tests.fixtures.hostile_bodies import (
    BOUNDARY,
    DIGIT,
    JOBS,
    Case,
    jpeg_claiming,
    multipart,
    nested,
    npy_bytes,
    npy_header,
    png,
    png_bomb,
    png_chunk,
    real_image,
    v2_body,
    zip_bytes,
)
from tests.integration.hostile_http_cases import header_cases, path_cases, query_cases

PREDICT = "/v1/models/digits:predict"
INFER = "/v2/models/digits/infer"


def json_case(name: str, status: int, body: bytes | str, target: str = JOBS, **extra) -> Case:
    data = body.encode() if isinstance(body, str) else body
    return Case(name, status, target=target, body=data,
                headers=(("Content-Type", "application/json"), *extra.get("headers", ())))


def npy_case(name: str, status: int, body: bytes, headers: tuple = ()) -> Case:
    return Case(name, status, body=body, headers=(("Content-Type", "application/x-npy"), *headers))


def image_case(name: str, status: int, parts: list[tuple[str, bytes]], target: str = JOBS,
               content_type: str = f"multipart/form-data; boundary={BOUNDARY}") -> Case:
    return Case(name, status, target=target, body=multipart(parts), headers=(("Content-Type", content_type),))


def json_cases() -> list[Case]:
    return [
        json_case("json-truncated", 400, '{"instances": ['),
        json_case("json-empty-body", 400, b""),
        json_case("json-top-level-array", 400, "[]"),
        json_case("json-top-level-string", 400, '"instances"'),
        json_case("json-top-level-number", 400, "42"),
        json_case("json-byte-order-mark", 400, b"\xef\xbb\xbf" + f'{{"instances": [{DIGIT}]}}'.encode()),
        json_case("json-invalid-utf8", 400, b'{"instances": [], "x": "\xff\xfe"}'),
        json_case("json-lone-surrogate", 400, '{"instances": [], "webhook": {"url": "\\ud800"}}'),
        json_case("json-nan-literal", 400, '{"instances": [[NaN]]}'),
        json_case("json-infinity-literal", 400, '{"instances": [[Infinity]]}'),
        json_case("json-integer-beyond-64-bits", 400, '{"instances": [[' + "9" * 400 + "]]}"),
        json_case("json-1000-deep-failing-schema", 422, '{"instances": ' + nested(1000) + ', "bogus": 1}'),
        json_case("json-100000-deep", 400, '{"instances": ' + nested(100_000) + "}"),
        json_case("json-300-deep-instance", 422, '{"instances": [' + nested(300) + "]}"),
        json_case("json-instances-not-array", 422, '{"instances": {"a": 1}}'),
        json_case("json-instances-empty", 422, '{"instances": []}'),
        json_case("json-wrong-shape", 422, '{"instances": [[1, 2, 3]]}'),
        json_case("json-ragged-rows", 422, '{"instances": [[[1],[1,2]]]}'),
        json_case("json-strings-as-values", 422, '{"instances": [' + DIGIT.replace("1.0", '"1"') + "]}"),
        json_case("json-booleans-as-values", 422, '{"instances": [' + DIGIT.replace("1.0", "true") + "]}"),
        json_case("json-nulls-as-values", 422, '{"instances": [' + DIGIT.replace("1.0", "null") + "]}"),
        json_case("json-float32-overflow", 422, '{"instances": [' + DIGIT.replace("1.0", "1e300", 1) + "]}"),
        json_case("json-1e999", 400, '{"instances": [' + DIGIT.replace("1.0", "1e999", 1) + "]}"),
        json_case("json-unknown-member", 422, '{"instances": [' + DIGIT + '], "priority_boost": 99}'),
        json_case("json-instances-and-inputs", 422, '{"instances": [' + DIGIT + '], "inputs": [' + DIGIT + "]}"),
        json_case("json-neither-instances-nor-inputs", 422, '{"webhook": {"url": "http://127.0.0.1:9/"}}'),
        json_case("json-unknown-input-name", 422, '{"inputs": {"nope": [' + DIGIT + "]}}"),
        json_case("json-too-many-instances", 422, '{"instances": [' + ",".join([DIGIT] * 1025) + "]}"),
        json_case("json-a-million-empty-lists", 413, "[" + "[]," * 349_000 + "[]]"),
        json_case("json-huge-string-member", 422, '{"instances": [' + DIGIT + '], "x": "' + "a" * 500_000 + '"}'),
        json_case("json-charset-utf16", 400, '{"instances": []}'.encode("utf-16"),
                  headers=(("Content-Type", "application/json; charset=utf-16"),)),
        Case("json-text-plain", 415, body=b'{"instances": []}', headers=(("Content-Type", "text/plain"),)),
        Case("json-no-content-type", 415, body=b'{"instances": []}'),
        Case("json-form-urlencoded", 415, body=b"instances=1", headers=(("Content-Type", "application/x-www-form-urlencoded"),)),
    ]


def webhook_cases() -> list[Case]:
    def hook(url: str, events: str = '["completed"]') -> Case:
        name = "webhook-" + "".join(c if c.isalnum() else "-" for c in url)[:50]
        return json_case(name, 422, f'{{"instances": [{DIGIT}], "webhook": {{"url": "{url}", "events": {events}}}}}')

    cases = [hook(url) for url in (
        "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://192.168.1.1/",
        "http://172.16.0.1/", "http://[::1]/", "http://[fe80::1]/", "http://0.0.0.0/", "http://[::ffff:169.254.169.254]/",
        "ftp://127.0.0.1/", "file:///etc/passwd", "javascript:alert(1)", "gopher://127.0.0.1:6379/",
        "http:///no-host", "http://127.0.0.1:99999/", "not a url at all",
        "http://127.0.0.1/" + "a" * 5000,
    )]
    cases.append(json_case("webhook-events-unknown", 422,
                           f'{{"instances": [{DIGIT}], "webhook": {{"url": "http://127.0.0.1:9/", "events": ["exploded"]}}}}'))
    cases.append(json_case("webhook-url-not-string", 422, f'{{"instances": [{DIGIT}], "webhook": {{"url": 7}}}}'))
    cases.append(npy_case("webhook-header-metadata-address", 422, npy_bytes(np.zeros((1, 8, 8), np.float32)),
                          headers=(("Inferq-Webhook-Url", "http://169.254.169.254/"),)))
    cases.append(npy_case("webhook-header-unknown-event", 422, npy_bytes(np.zeros((1, 8, 8), np.float32)),
                          headers=(("Inferq-Webhook-Url", "http://127.0.0.1:9/"), ("Inferq-Webhook-Events", "boom"))))
    return cases


def scheduling_cases() -> list[Case]:
    """Priorities and queue deadlines a client may mistype or abuse: each a 422 (or the parser's 400)."""
    def body(name: str, status: int, fields: str) -> Case:
        return json_case(name, status, f'{{"instances": [{DIGIT}], {fields}}}')

    def header(name: str, field: str, value: str, target: str = JOBS) -> Case:
        if target == PREDICT:
            return json_case(name, 422, f'{{"instances": [{DIGIT}]}}', target=PREDICT, headers=((field, value),))
        return npy_case(name, 422, npy_bytes(np.zeros((1, 8, 8), np.float32)), headers=((field, value),))

    return [
        body("priority-unknown", 422, '"priority": "urgent"'), body("priority-upper-case", 422, '"priority": "HIGH"'),
        body("priority-object", 422, '"priority": {"$gt": ""}'), body("priority-null", 422, '"priority": null'),
        body("max-queue-zero", 422, '"max_queue_s": 0'), body("max-queue-negative", 422, '"max_queue_s": -5'),
        body("max-queue-over-ttl", 422, '"max_queue_s": 1e12'), body("max-queue-string", 422, '"max_queue_s": "5"'),
        body("max-queue-true", 422, '"max_queue_s": true'), body("max-queue-infinite", 400, '"max_queue_s": 1e400'),
        header("priority-header-unknown", "Inferq-Priority", "urgent"),
        header("priority-header-predict", "Inferq-Priority", "highest", target=PREDICT),
        header("max-queue-header-nan", "Inferq-Max-Queue-S", "nan"),
        header("max-queue-header-inf", "Inferq-Max-Queue-S", "inf"),
        header("max-queue-header-hex", "Inferq-Max-Queue-S", "0x10"),
        header("max-queue-header-zero", "Inferq-Max-Queue-S", "0"),
        header("max-queue-header-huge", "Inferq-Max-Queue-S", "9" * 400, target=PREDICT),
    ]


def npy_cases() -> list[Case]:
    valid = npy_bytes(np.zeros((1, 8, 8), np.float32))
    return [
        npy_case("npy-random-bytes", 400, bytes(range(256)) * 4),
        npy_case("npy-empty", 400, b""),
        npy_case("npy-magic-only", 400, b"\x93NUMPY"),
        npy_case("npy-billion-rows", 400, npy_header("(1000000000, 8, 8)")),
        npy_case("npy-31-digit-dimension", 400, npy_header("(" + "9" * 31 + ", 8, 8)")),
        npy_case("npy-negative-dimension", 400, npy_header("(-1, 8, 8)")),
        npy_case("npy-shape-not-a-tuple", 400, npy_header("'eight'")),
        npy_case("npy-object-dtype", 400, npy_header("(1,)", "|O")),
        npy_case("npy-unicode-dtype", 400, npy_header("(1, 8, 8)", "<U8") + b"\0" * 2048),
        npy_case("npy-complex-dtype", 400, npy_header("(1, 8, 8)", "<c8") + b"\0" * 512),
        npy_case("npy-structured-dtype", 400, npy_header("(1,)", "[('a', '<f4')]") + b"\0" * 4),
        npy_case("npy-version-3", 400, npy_header("(1, 8, 8)", version=b"\x03\x00") + b"\0" * 256),
        npy_case("npy-version-9", 400, npy_header("(1, 8, 8)", version=b"\x09\x00") + b"\0" * 256),
        npy_case("npy-header-length-past-the-end", 400, b"\x93NUMPY\x02\x00" + (10**6).to_bytes(4, "little")),
        npy_case("npy-header-not-a-dict", 400, b"\x93NUMPY\x01\x00\x10\x00[1, 2, 3]      \n"),
        npy_case("npy-header-code-injection", 400, npy_header("__import__('os').getpid()")),
        npy_case("npy-trailing-junk", 400, valid + b"\0" * 65_536),
        npy_case("npy-truncated-data", 400, valid[:-10]),
        npy_case("npy-zip-archive", 400, zip_bytes()),
        npy_case("npy-wrong-shape", 422, npy_bytes(np.zeros((1, 3, 3), np.float32))),
        npy_case("npy-scalar", 422, npy_bytes(np.float32(1.0))),
        npy_case("npy-nan-values", 422, npy_bytes(np.full((1, 8, 8), np.nan, np.float32))),
        npy_case("npy-too-many-instances", 422, npy_bytes(np.zeros((1025, 8, 8), np.float32))),
        npy_case("npy-float64-overflowing-float32", 422, npy_bytes(np.full((1, 8, 8), 1e300))),
    ]


def image_cases() -> list[Case]:
    ztxt = png_chunk(b"zTXt", b"Comment\x00\x07" + zlib.compress(b"hello"))
    broken_chunk = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + b"\x00" * 5
    valid_png = real_image("PNG")
    return [
        image_case("image-png-claiming-5000x5000", 422, [("big.png", png(5000, 5000))]),
        image_case("image-jpeg-claiming-5000x5000", 422, [("big.jpg", jpeg_claiming(5000, 5000))]),
        image_case("image-64-jpegs-over-the-pixel-budget", 422, [(f"{i}.jpg", jpeg_claiming(4000, 4000)) for i in range(64)]),
        image_case("image-png-bomb-20000x20000", 422, [("bomb.png", png_bomb(20_000))]),
        image_case("image-png-broken-chunk-header", 422, [("broken.png", broken_chunk)]),
        image_case("image-png-ztxt-unknown-compression", 422, [("z.png", png(8, 8, ztxt))]),
        image_case("image-png-bad-crc", 422, [("crc.png", valid_png[:30] + b"\xff" + valid_png[31:])]),
        image_case("image-png-truncated", 422, [("short.png", valid_png[: len(valid_png) // 2])]),
        image_case("image-jpeg-truncated", 422, [("short.jpg", real_image("JPEG")[:200])]),
        image_case("image-jpeg-zero-size", 422, [("zero.jpg", jpeg_claiming(0, 0))]),
        image_case("image-gif", 422, [("a.gif", real_image("GIF"))]),
        image_case("image-bmp", 422, [("a.bmp", real_image("BMP"))]),
        image_case("image-tiff", 422, [("a.tiff", real_image("TIFF"))]),
        image_case("image-svg-text", 422, [("a.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>')]),
        image_case("image-empty-part", 422, [("empty.png", b"")]),
        image_case("image-one-bad-among-good", 422, [("ok.png", valid_png), ("bad.png", b"garbage")]),
        image_case("image-no-parts", 422, []),
        image_case("image-boundary-missing", 422, [("ok.png", valid_png)], content_type="multipart/form-data"),
        image_case("image-to-a-model-without-images", 415, [("ok.png", valid_png)], target="/v1/models/pair/jobs"),
        image_case("image-path-traversal-filename", 202, [("../../etc/passwd", valid_png)]),
        Case("image-parts-beyond-the-form-limit", 413, body=multipart([("x.png", b"x")] * 1100),
             headers=(("Content-Type", f"multipart/form-data; boundary={BOUNDARY}"),)),
        Case("image-unterminated-form", 422, body=multipart([("ok.png", valid_png)])[:-20],
             headers=(("Content-Type", f"multipart/form-data; boundary={BOUNDARY}"),)),
    ]


def tf_serving_cases() -> list[Case]:
    return [
        json_case("tfs-truncated", 400, '{"instances": [', target=PREDICT),
        json_case("tfs-1000-deep-failing-schema", 422, '{"instances": ' + nested(1000) + ', "bogus": 1}', target=PREDICT),
        json_case("tfs-wrong-shape", 422, '{"instances": [[1, 2]]}', target=PREDICT),
        json_case("tfs-instances-and-inputs", 422, f'{{"instances": [{DIGIT}], "inputs": [{DIGIT}]}}', target=PREDICT),
        json_case("tfs-top-level-array", 400, "[1]", target=PREDICT),
        json_case("tfs-a-million-empty-lists", 413, "[" + "[]," * 349_000 + "[]]", target=PREDICT),
        Case("tfs-npy-body", 415, target=PREDICT, body=npy_bytes(np.zeros((1, 8, 8), np.float32)),
             headers=(("Content-Type", "application/x-npy"),)),
        json_case("tfs-version-not-a-number", 404, f'{{"instances": [{DIGIT}]}}', target="/v1/models/digits/versions/x:predict"),
        json_case("tfs-classify-verb", 404, f'{{"instances": [{DIGIT}]}}', target="/v1/models/digits:classify"),
    ]


def v2_cases() -> list[Case]:
    def v2(name: str, status: int, body: str | bytes, headers: tuple = ()) -> Case:
        data = body.encode() if isinstance(body, str) else body
        return Case(name, status, target=INFER, body=data, headers=(("Content-Type", "application/json"), *headers))

    tensor = struct.pack("<64f", *([0.5] * 64))
    binary = v2_body(data="null").replace(', "data": null', ', "parameters": {"binary_data_size": 256}').encode()
    return [
        v2("v2-truncated", 400, '{"inputs": ['),
        v2("v2-not-an-object", 400, "[]"),
        v2("v2-unknown-datatype", 400, v2_body(datatype="FP128")),
        v2("v2-negative-shape", 400, v2_body(shape="[-1, 8, 8]")),
        v2("v2-huge-shape", 400, v2_body(shape="[1000000000, 1000000000, 8]")),
        v2("v2-data-shorter-than-shape", 400, v2_body(data="[1, 2, 3]")),
        v2("v2-unknown-input", 400, v2_body(name="nope")),
        v2("v2-unknown-output", 400, v2_body(extra=', "outputs": [{"name": "nope"}]')),
        v2("v2-a-million-empty-lists", 413, "[" + "[]," * 349_000 + "[]]"),
        v2("v2-header-length-not-a-number", 400, binary + tensor, headers=(("Inference-Header-Content-Length", "x"),)),
        v2("v2-header-length-past-the-body", 400, binary + tensor, headers=(("Inference-Header-Content-Length", "99999"),)),
        v2("v2-binary-size-mismatch", 400, binary + tensor[:100], headers=(("Inference-Header-Content-Length", str(len(binary))),)),
        v2("v2-binary-trailing-bytes", 400, binary + tensor + b"\0" * 64,
           headers=(("Inference-Header-Content-Length", str(len(binary))),)),
    ]


def catalogue() -> list[Case]:
    return (json_cases() + webhook_cases() + scheduling_cases() + npy_cases() + image_cases() + header_cases() + path_cases()
            + query_cases() + tf_serving_cases() + v2_cases())
