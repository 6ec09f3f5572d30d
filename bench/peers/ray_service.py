"""Optional peer 4: Ray Serve with ``@serve.batch``, 2 replicas x 1 thread (``make bench PEERS=ray``).

Runs from its own virtual environment (``make bench-ray-env``), never from ``make test``; ``bench.ray_peer``
starts it as ``python -m bench.peers.ray_service --port N --temp-dir D`` and stops it with SIGTERM.
It takes the same request bytes as the other peers, so the load generator needs no Ray-specific body:
- ``POST /predict/digits``: JSON ``{"instances": [...]}`` (or a ``.npy`` body);
- ``POST /predict/mobilenet``: a multipart/form-data upload with one file part ``image`` (a JPEG), turned into
  the float32 (1, 224, 224, 3) tensor inferq makes of it (RGB, bilinear 224x224, pixels 0..255), or a ``.npy``
  body of that tensor;
- ``GET /readyz``: 200 from a replica, i.e. only once a model-loaded replica serves HTTP.

One deployment, like BentoML's one service with two workers: each of the 2 replicas (1 CPU, TensorFlow
intra-op 1 thread) loads both models and batches each with ``@serve.batch``, counting instances, not requests:
- digits: max_batch_size 64, batch_wait_timeout_s 0.005: one model call costs a few milliseconds whether it
  holds 1 or 64 digits (measured 8-9 ms both on a busy 2-core machine), so a window longer than about one
  call would only add latency;
- mobilenet: max_batch_size 16, batch_wait_timeout_s 0.05: one image alone takes over 100 ms on one thread
  (about 35 ms an image in a batch of 16), so a 50 ms window costs less than half an image and lets
  batches form under load.
max_ongoing_requests is 64 per replica (Serve's default is 5), else no batch could ever exceed 5.
The model runs in a thread (``asyncio.to_thread``) so the replica's event loop keeps reading requests,
forming the next batch meanwhile. A request larger than max_batch_size runs on its own, unbatched.
Access logs are off, as for the other peers.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import signal
import threading

import numpy as np
import orjson
from ray import serve
from starlette.requests import Request
from starlette.responses import Response

DIGITS_BATCH, MOBILENET_BATCH = 64, 16
LOGGING = {"enable_access_log": False, "log_level": "WARNING"}


def loopback_replica_grpc() -> None:
    """Bind each replica's inter-deployment gRPC server to 127.0.0.1 instead of ``[::]``.

    With RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (set by ``bench.ray_peer``) Ray's own servers listen on
    127.0.0.1 only, but Ray Serve 2.60's replica hard-codes ``[::]:0`` for this one, with no setting.
    The benchmark keeps every port on the loopback, so the replica's helper is wrapped here (this module
    is imported in each replica before the server starts); a Ray without that helper is left as it is.
    """
    try:
        from ray.serve._private import replica
    except ImportError:
        return
    add_port = getattr(replica, "add_port_to_grpc_server", None)
    if add_port is None or getattr(add_port, "loopback", False):
        return

    def loopback(server, address: str):
        return add_port(server, address.replace("[::]", "127.0.0.1"))

    loopback.loopback = True
    replica.add_port_to_grpc_server = loopback


loopback_replica_grpc()


def instances(arrays: list[np.ndarray]) -> int:
    """The size ``@serve.batch`` counts: instances, since one request may carry several."""
    return sum(len(array) for array in arrays)


def multipart_file(body: bytes, content_type: str, name: str = "image") -> bytes:
    """The bytes of the form part ``name`` of a multipart/form-data body (no python-multipart needed)."""
    boundary = content_type.split("boundary=", 1)[1].split(";", 1)[0].strip().strip('"').encode()
    for part in body.split(b"--" + boundary)[1:]:
        head, _, data = part.partition(b"\r\n\r\n")
        if f'name="{name}"'.encode() in head:
            return data[:-2] if data.endswith(b"\r\n") else data
    raise ValueError(f"no form part named {name}")


def read_body(model: str, body: bytes, content_type: str) -> np.ndarray:
    """Instances from a multipart JPEG upload (mobilenet), a ``.npy`` body or JSON ``instances``.

    The upload goes through ``bench.peers.common.image_tensor``, the BentoML peer's conversion too
    (RGB, bilinear 224x224, float32 pixels 0..255, as inferq's image preprocessing), one image per request.
    """
    from PIL import Image

    from bench.peers.common import decode, image_tensor

    if model == "mobilenet" and content_type.startswith("multipart/form-data"):
        return image_tensor(Image.open(io.BytesIO(multipart_file(body, content_type))))[None]
    return decode(body, content_type)


@serve.deployment(num_replicas=2, max_ongoing_requests=64, ray_actor_options={"num_cpus": 1})
class Inference:
    """Each replica: both models, one TensorFlow thread, one batch queue per model."""

    def __init__(self) -> None:
        """One TensorFlow thread per replica, set before TensorFlow starts, as the BentoML peer does."""
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        from bench.peers.common import load_models

        self.models = load_models()

    async def __call__(self, request: Request) -> Response:
        """Plain Starlette routing: three routes need no FastAPI app, and the body is read as raw bytes."""
        path = request.url.path
        if request.method == "GET" and path == "/readyz":
            return Response(b"ok")
        model = path.removeprefix("/predict/")
        if request.method != "POST" or model not in ("digits", "mobilenet"):
            return Response(b"not found", status_code=404)
        try:
            batch = read_body(model, await request.body(), request.headers.get("content-type", ""))
        except (ValueError, KeyError, OSError) as error:  # bad JSON/npy, no "instances", not an image
            return Response(str(error).encode(), status_code=400)
        limit, batched = (DIGITS_BATCH, self.digits) if model == "digits" else (MOBILENET_BATCH, self.mobilenet)
        rows = await (batched(batch) if len(batch) <= limit else asyncio.to_thread(self.infer, model, batch))
        return Response(orjson.dumps({"predictions": rows.tolist()}), media_type="application/json")

    def infer(self, model: str, batch: np.ndarray) -> np.ndarray:
        """The model called directly, as the BentoML peer does: ``model.predict`` adds a per-call overhead."""
        return np.asarray(self.models[model](batch, training=False))

    async def run_batch(self, model: str, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """One model call for the whole batch, in a thread; the rows split back per request."""
        out = await asyncio.to_thread(self.infer, model, np.concatenate(arrays))
        return np.split(out, np.cumsum([len(array) for array in arrays])[:-1])

    @serve.batch(max_batch_size=DIGITS_BATCH, batch_wait_timeout_s=0.005, batch_size_fn=instances)
    async def digits(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Called with one request's instances; runs with up to 64 instances gathered within 5 ms."""
        return await self.run_batch("digits", arrays)

    @serve.batch(max_batch_size=MOBILENET_BATCH, batch_wait_timeout_s=0.05, batch_size_fn=instances)
    async def mobilenet(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Called with one request's image; runs with up to 16 images gathered within 50 ms."""
        return await self.run_batch("mobilenet", arrays)


def main() -> None:
    """A local Ray (no dashboard, logs under --temp-dir) with Serve's proxy on 127.0.0.1:--port, until SIGTERM."""
    import ray

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--temp-dir", required=True, help="Ray's root temp dir: short, its unix sockets live there")
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, _temp_dir=args.temp_dir, logging_level="warning")
    serve.start(http_options={"host": "127.0.0.1", "port": args.port}, logging_config=LOGGING)
    serve.run(Inference.bind(), logging_config=LOGGING)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # after ray.init, which installs its own handler
    while not stop.wait(1):
        pass
    ray.shutdown()  # ends the raylet, GCS and workers this driver started


if __name__ == "__main__":
    from bench.peers import ray_service  # the deployment pickled by reference to this module, not __main__

    ray_service.main()
