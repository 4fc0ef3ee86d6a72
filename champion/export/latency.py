"""Single-image latency (p50, p99) and batch throughput of one runner, measured in-process."""

import time
from dataclasses import dataclass

import numpy as np

from champion.export.formats import Runner


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p99_ms: float
    images_per_second: float  # over batches of `batch_size`
    batch_size: int

    def tags(self, prefix: str) -> dict[str, str]:
        """The figures as version tags: `<prefix>_p50_ms`, `_p99_ms`, `_batch_img_per_s`."""
        return {
            f"{prefix}_p50_ms": f"{self.p50_ms:.3f}",
            f"{prefix}_p99_ms": f"{self.p99_ms:.3f}",
            f"{prefix}_batch_img_per_s": f"{self.images_per_second:.0f}",
        }


def measure_latency(
    run: Runner,
    images: np.ndarray,
    *,
    single_calls: int = 200,
    batch_calls: int = 5,
    batch_size: int = 256,
    warmup_calls: int = 10,
) -> Latency:
    """Time `single_calls` one-image calls and `batch_calls` calls on `batch_size` images.

    `images` are cycled through so that no runtime sees one cached input; warm-up calls
    (graph tracing, allocation) are not timed.
    """
    singles = [images[index % len(images)][None] for index in range(single_calls)]
    batch = np.resize(images, (batch_size, *images.shape[1:])).astype("float32")
    for single in singles[:warmup_calls]:
        run(single)
    run(batch)
    seconds = []
    for single in singles:
        started = time.perf_counter()
        run(single)
        seconds.append(time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(batch_calls):
        run(batch)
    batch_seconds = time.perf_counter() - started
    p50, p99 = np.percentile(np.asarray(seconds) * 1000, [50, 99])
    return Latency(
        float(p50), float(p99), batch_calls * batch_size / max(batch_seconds, 1e-9), batch_size
    )
