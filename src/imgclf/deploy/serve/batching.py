"""Micro-batching: requests that arrive within a short window share one forward pass, run off the event loop."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import numpy as np


class MicroBatcher:
    """Gather image batches submitted within ``window_ms`` (up to ``max_images``) and run ``infer`` once on them
    all, in a worker thread, so the event loop keeps answering while the model computes.

    Args:
        infer: ``infer(images uint8 (n, h, w, c)) -> probabilities (n, k)``.
        window_ms: how long the first request of a batch waits for others, in milliseconds.
        max_images: the most images one forward pass takes.
    """

    def __init__(self, infer, window_ms: float = 5.0, max_images: int = 64):
        self.infer, self.window, self.max_images = infer, window_ms / 1000.0, max_images
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None

    @asynccontextmanager
    async def lifespan(self, app):
        """FastAPI lifespan: start the batching loop with the server, stop it at shutdown."""
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop())
        try:
            yield
        finally:
            self._task.cancel()

    async def submit(self, images: np.ndarray) -> np.ndarray:
        """Probabilities of ``images``, computed in the next batch."""
        if self._queue is None:  # no lifespan (a bare app): compute directly, still off the loop
            return await asyncio.to_thread(self.infer, images)
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((images, future))
        return await future

    async def _loop(self):
        while True:
            items = [await self._queue.get()]
            count = len(items[0][0])
            deadline = asyncio.get_running_loop().time() + self.window
            while count < self.max_images:
                timeout = deadline - asyncio.get_running_loop().time()
                if timeout <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), timeout)
                except TimeoutError:
                    break
                items.append(item)
                count += len(item[0])
            batch = np.concatenate([images for images, _ in items])
            try:
                out = await asyncio.to_thread(self.infer, batch)
            except Exception as exc:  # noqa: BLE001  (hand the failure to every waiting request)
                for _, future in items:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for images, future in items:
                if not future.done():
                    future.set_result(out[start : start + len(images)])
                start += len(images)
