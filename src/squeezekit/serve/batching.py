"""Dynamic batching, as Triton's dynamic batcher does it: concurrent requests share one engine call.

Each request's image is decoded in a worker pool (Pillow releases the GIL while decoding), then queued.
One task per model takes the first waiting image, collects more until ``max_batch`` or until
``max_wait_ms`` have passed since that first image, and runs them as one batch on a single engine
thread (LiteRT interpreters are not thread-safe; ONNX Runtime uses its own threads inside the call).
It waits only while other requests are still being decoded (:meth:`DynamicBatcher.decoding`): a lone
request goes straight to the engine, so batching costs a single client nothing, and under load the
images that queue up while the engine is busy form the next batch.
A queue longer than ``max_queue`` images refuses new work at once (:class:`Overloaded`, HTTP 503)
instead of letting latency grow without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from squeezekit.preprocessing import preprocess_input


class Overloaded(RuntimeError):
    """The model's queue is full: the client should retry shortly."""


@dataclass
class BatchStats:
    batches: int = 0
    images: int = 0
    largest: int = 0

    @property
    def mean_batch(self) -> float:
        return self.images / self.batches if self.batches else 0.0


class DynamicBatcher:
    """Groups preprocessed-size uint8 images of one classifier into batches of up to ``max_batch``."""

    def __init__(self, classifier, *, max_batch: int = 8, max_wait_ms: float = 5.0, max_queue: int = 256):
        self.classifier = classifier
        self.max_batch, self.max_wait, self.max_queue = max_batch, max_wait_ms / 1000.0, max_queue
        self.stats = BatchStats()
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._engine = ThreadPoolExecutor(max_workers=1, thread_name_prefix="squeezekit-engine")
        self._decoding = 0  # requests whose images are being decoded: worth waiting for

    @contextlib.contextmanager
    def decoding(self):
        """Around a request's decoding: while any is in progress, a forming batch waits for it."""
        self._decoding += 1
        try:
            yield
        finally:
            self._decoding -= 1

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._engine.shutdown(wait=True)

    async def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities of ``images`` (N, crop, crop, 3) uint8, batched with other requests'."""
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        if self._queue.qsize() + len(images) > self.max_queue:
            raise Overloaded(f"{self._queue.qsize()} images are waiting (the limit is {self.max_queue})")
        loop = asyncio.get_running_loop()
        futures = []
        for image in images:
            future = loop.create_future()
            self._queue.put_nowait((image, future))
            futures.append(future)
        return np.stack(await asyncio.gather(*futures))

    async def predict_preprocessed(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities of an already preprocessed float32 batch, on the same engine thread as the batches."""
        return await asyncio.get_running_loop().run_in_executor(
            self._engine, lambda: np.asarray(self.classifier.predict(batch), dtype=np.float32))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            batch = [first]
            deadline = time.perf_counter() + self.max_wait
            while len(batch) < self.max_batch:
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or (self._queue.empty() and not self._decoding):
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            images = np.stack([image for image, _ in batch])
            try:
                probabilities = await loop.run_in_executor(self._engine, self._predict, images)
            except Exception as error:  # every waiting request learns of it; the server answers 500
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.stats.batches += 1
            self.stats.images += len(batch)
            self.stats.largest = max(self.stats.largest, len(batch))
            for (_, future), row in zip(batch, probabilities):
                if not future.done():  # a client that went away cancelled its future
                    future.set_result(row)

    def _predict(self, images: np.ndarray) -> np.ndarray:
        batch = preprocess_input(images, preprocessing=self.classifier.metadata.preprocessing)
        return np.asarray(self.classifier.predict(batch), dtype=np.float32)
