"""``talkbench run --executor ray``: the pipelined executor's stages on a Ray cluster.

- **prepare** (decode, crop, landmarks) is a Ray task per sample (``num_cpus=1``, retried
  ``TASK_RETRIES`` times if its worker process or node dies), at most ``prefetch`` in flight;
- **generate**: one actor per (method, device) holding the loaded model, fed ``--batch-size``
  requests at a time; **score**: one actor per metric (critic) holding its network. Actors are
  restarted and their calls retried when they die (``max_restarts`` / ``max_task_retries``); with
  ``--device cuda`` each asks for ``TALKBENCH_RAY_GPUS`` GPUs (default 0.5: two actors share a GPU;
  fractions are allowed);
- **write**: the driver is the only SQLite writer (the same writer thread as the local executor),
  so resume, retry of failed pairs and one transaction per pair work exactly as locally.

The driver also loads the methods and critics once, for the run's identity (weights sha256, versions)
and the generation cache keys; the rows are computed by the same functions as the serial path
(:mod:`talkbench.runner`), so they are the same rows.

Multi-node: data must be on storage every node sees at the same path (the samples carry absolute
paths); caches (crops, generations, ``TALKBENCH_CACHE``) stay per node. See docs/throughput.md.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from talkbench.errors import ConfigError
from talkbench.store import Row

log = logging.getLogger(__name__)
TASK_RETRIES = 3
ACTOR_RESTARTS = 3
EXTRA_HINT = "pip install 'talkbench[ray]'"


def require_ray() -> Any:
    """The ``ray`` module, or a ConfigError naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"--executor ray needs Ray, which is not installed: {EXTRA_HINT} "
                          f"(or pip install ray) ({exc})") from exc
    return ray


def _prepare_task(sample: Any, size: int, crop: str, cache: str | None) -> tuple[Any, str | None]:
    if cache:
        os.environ["TALKBENCH_CACHE"] = cache
    from talkbench.steps import prepare

    return prepare(sample, size, crop)


def _same_threads(threads: int) -> None:
    """The driver's torch thread count. Ray starts workers with one thread, and torch's CPU kernels
    round differently with another count (Wav2Lip's frames, hence PSNR/SSIM, differed in the 9th
    digit between 1 and 2 threads): the same count gives the serial path's rows."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


class _MethodActor:
    """One loaded method on one device."""

    def __init__(self, name: str, weights: str | None, device: str, threads: int) -> None:
        from talkbench.methods import METHODS
        from talkbench.steps import resolve_device

        _same_threads(threads)
        self.method = METHODS.get(name)()
        self.method.load(device=resolve_device(device), weights=weights)

    def generate(self, requests: list[Any]) -> list[Any]:
        return self.method.generate(requests)


class _ScorerActor:
    """One metric's scorer (and its critic network)."""

    def __init__(self, name: str, device: str, options: dict[str, Any], threads: int) -> None:
        from talkbench.metrics import build_scorers
        from talkbench.steps import resolve_device

        _same_threads(threads)
        self.scorers, self.unavailable = build_scorers((name,), resolve_device(device), {name: options} if options else {})

    def score(self, item: Any, method: str, dataset: str, sample_id: str,
              run_dir: Any = None) -> tuple[list[Row], dict[str, str]]:
        from talkbench.steps import score_rows

        outside: dict[str, str] = {}
        return score_rows(self.scorers, item, method, dataset, sample_id, outside, run_dir), outside


class _Pending:
    """A pair's rows still being computed by the critic actors (the writer thread waits on it)."""

    def __init__(self, ray: Any, refs: list[Any]) -> None:
        self.ray, self.refs = ray, refs

    def result(self) -> tuple[list[Row], dict[str, str]]:
        rows: list[Row] = []
        outside: dict[str, str] = {}
        for r, o in self.ray.get(self.refs):
            rows.extend(r)
            outside.update(o)
        return rows, outside


def _prefetch(ray: Any, plan: list[tuple[Any, list[str]]], size: int, crop: str, prefetch: int,
              ) -> Iterator[tuple[Any, list[str], Any, str | None]]:
    task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(_prepare_task)
    cache = os.environ.get("TALKBENCH_CACHE")
    inflight: deque[tuple[Any, list[str], Any]] = deque()
    todo = iter(plan)

    def fill() -> None:
        while sum(1 for x in inflight if x[2] is not None) < prefetch:
            nxt = next(todo, None)
            if nxt is None:
                return
            sample, pending = nxt
            inflight.append((sample, pending, task.remote(sample, size, crop, cache) if pending else None))

    fill()
    while inflight:
        sample, pending, ref = inflight.popleft()
        fill()
        if ref is None:
            yield sample, pending, None, None
            continue
        try:
            clip, why = ray.get(ref)
        except Exception as exc:  # its worker died more often than the retries allow: the sample fails
            clip, why = None, f"preparing it failed on the Ray cluster after {TASK_RETRIES} retries: " \
                              f"{type(exc).__name__}: {exc} ({sample.video_path})"
        yield sample, pending, clip, why


def run_ray(r: Any, plan: list[tuple[Any, list[str]]], bars: tuple[Any, Any, Any],
            on_sample: Callable[[str], None] | None, batch_sizes: dict[str, int], address: str | None = None,
            prefetch: int | None = None) -> None:
    """Evaluate ``plan`` with Ray actors; the driver writes the store (see the module docstring)."""
    ray = require_ray()
    from talkbench.pipeline import DEFAULT_BATCH, run_pipelined

    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        gpus = float(os.environ.get("TALKBENCH_RAY_GPUS", "0.5")) if r.device.startswith("cuda") else 0
        weights = dict(r.config.weights)
        # Actors reserve no CPU by default (TALKBENCH_RAY_ACTOR_CPUS, as Ray's own actor default): a
        # reservation each would leave a small node no CPU for the preparation tasks, which wait
        # forever (5 actors at 0.25 on 2 CPUs leave 0.75). GPU actors are placed by num_gpus.
        cpus = float(os.environ.get("TALKBENCH_RAY_ACTOR_CPUS", "0"))
        opts = dict(num_cpus=cpus, num_gpus=gpus, max_restarts=ACTOR_RESTARTS, max_task_retries=TASK_RETRIES)
        method_actor = ray.remote(**opts)(_MethodActor)
        scorer_actor = ray.remote(**opts)(_ScorerActor)
        import torch

        threads = torch.get_num_threads()
        methods = {n: method_actor.remote(n, weights.get(n), r.device, threads) for n in r.methods}
        options: dict[str, dict[str, Any]] = {}
        for metric, key, value in r.config.metric_options:
            options.setdefault(metric, {})[key] = value
        scorers = {n: scorer_actor.remote(n, r.device, options.get(n, {}), threads) for n in r.scorers}

        def generate(_r: Any, base: str, batch: list[Any]) -> list[Any]:
            return ray.get(methods[base].generate.remote(batch))

        def score(method: str, sample: Any, item: Any) -> _Pending:
            from talkbench.metrics.base import missing_inputs

            item_ref = ray.put(item)  # one copy in the object store for every critic
            return _Pending(ray, [a.score.remote(item_ref, method, r.config.dataset, sample.sample_id, r.run_dir)
                                  for n, a in scorers.items() if not missing_inputs(r.scorers[n], item)])

        total_cpus = int(ray.cluster_resources().get("CPU", 1))
        group = max([batch_sizes.get("*", DEFAULT_BATCH), *batch_sizes.values()])
        stream = _prefetch(ray, plan, r.config.size, r.config.crop, prefetch or max(2 * total_cpus, group))
        run_pipelined(r, plan, bars, on_sample, workers=0, batch_sizes=batch_sizes, prefetcher=stream,
                      generate=generate, score=score)
    finally:
        if started:
            ray.shutdown()
