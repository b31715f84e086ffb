"""The pipelined local executor (``talkbench run``'s default; ``--workers 0`` is the serial path).

Three stages overlap:

- **prepare** (decode, face tracking, crop, ground-truth landmarks: CPU-bound, no model) runs in
  ``workers`` processes, at most ``prefetch`` samples ahead of the consumer: the bounded queue;
- **generate and score** run in this process, which holds the loaded methods and critics: prepared
  samples are taken ``group`` at a time and each method spec gets its requests for the whole group,
  ``batch_size`` per ``Method.generate`` call;
- **write** (video encoding, then one SQLite transaction per (method, sample)) runs in one writer
  thread behind a bounded queue: the only thread that touches the store, so a pair is marked done
  only after its media file exists, as in the serial path.

Memory is bounded by ``prefetch + group`` clips plus the writer queue, whatever the number of
samples. Results are the serial path's: the same functions compute every row
(:mod:`talkbench.runner`), only the order of commits differs.

A worker process that dies (killed, out of memory, a crashing decoder) breaks the pool: a new pool is
started and every item that was in flight and not finished is submitted again; an item whose
preparation broke the pool :data:`MAX_ATTEMPTS` times is recorded as a failed sample (and retried on
resume, as every failed pair is). Ctrl-C: workers ignore SIGINT; the main process stops taking new
samples, lets the writer commit what is already scored, and exits: the next invocation resumes.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from talkbench.conditions import parse_method_spec
from talkbench.errors import MediaError
from talkbench.results import media_path
from talkbench.store import Row

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3
DEFAULT_BATCH = 4


def default_workers(device: str = "cpu") -> int:
    """Worker processes. On CPU they prepare and score (most of an item's time), the main process
    generates: one per core. On a GPU they only prepare: one core is left to the main process."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    return max(1, min(16, cores if not device.startswith("cuda") else cores - 1))


# Where each live pool was made (the test under pytest, else the caller's frame): a pool that is never
# shut down keeps its manager thread, and the interpreter waits for it at exit; open_pools() names it.
_ORIGINS: weakref.WeakKeyDictionary[ProcessPoolExecutor, str] = weakref.WeakKeyDictionary()
_SCORING: dict[str, Any] = {}  # in a worker: how to build the scorers, and once built, the scorers


def _worker_init(cache: str | None, scoring: dict[str, Any] | None = None,
                 env: dict[str, str] | None = None) -> None:
    # Ctrl-C is the main process's to handle (clean stop); a worker finishing its item is harmless.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The forkserver was started once, possibly before the caller changed its environment: workers take
    # the caller's talkbench settings (weights and cache folders) as they are now.
    for k in [k for k in os.environ if k.startswith("TALKBENCH_")]:
        if k not in (env or {}):
            del os.environ[k]
    os.environ.update(env or {})
    if cache:
        os.environ["TALKBENCH_CACHE"] = cache
    _SCORING.clear()
    _SCORING.update(scoring or {})
    try:
        import cv2

        cv2.setNumThreads(1)  # one core per worker: the workers are the parallelism
    except ImportError:
        pass


def _prepare_in_worker(sample: Any, size: int, crop: str) -> tuple[Any, str | None]:
    from talkbench.steps import prepare

    return prepare(sample, size, crop)


def _score_in_worker(item: Any, method: str, dataset: str, sample_id: str,
                     run_dir: Any = None) -> tuple[list[Row], dict[str, str]]:
    """A pair's rows (and the scorers that do not apply to it), computed by this worker's own copy of
    the scorers (built on first use)."""
    from talkbench.steps import score_rows

    if "scorers" not in _SCORING:
        import torch

        from talkbench.metrics import build_scorers

        torch.set_num_threads(_SCORING.get("threads", 1))
        _SCORING["scorers"], _ = build_scorers(_SCORING["metrics"], _SCORING["device"], _SCORING["options"])
    outside: dict[str, str] = {}
    rows = score_rows(_SCORING["scorers"], item, method, dataset, sample_id, outside, run_dir)
    return rows, outside


def make_pool(workers: int, scoring: dict[str, Any] | None = None) -> ProcessPoolExecutor:
    """Workers forked from a clean forkserver (never from this process, which holds torch's thread
    pools and the loaded models). ``scoring``: what they need to build the scorers themselves."""
    from talkbench.cache import cache_dir

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["talkbench.faces.crop", "talkbench.steps"])
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                               initargs=(str(cache_dir()), scoring,
                                         {k: v for k, v in os.environ.items() if k.startswith("TALKBENCH_")}))
    caller = traceback.extract_stack(limit=3)[0]
    _ORIGINS[pool] = os.environ.get("PYTEST_CURRENT_TEST") or f"{caller.filename}:{caller.lineno}"
    return pool


def open_pools() -> list[str]:
    """Where the pools made by :func:`make_pool` that are still alive and not shut down were made."""
    return [origin for pool, origin in list(_ORIGINS.items()) if not getattr(pool, "_shutdown_thread", True)]


def _drop_pool(pool: ProcessPoolExecutor, grace: float = 5.0) -> None:
    """Shut ``pool`` down and make sure none of its worker processes outlives it.

    ``shutdown(wait=False)`` alone leaves the workers to the pool's manager thread. When a worker was
    killed without the pool noticing (seen under load), or one is stuck, that thread and the workers
    stay, and the interpreter then waits for them at exit forever (concurrent.futures joins its
    manager threads, multiprocessing joins non-daemon children). Whatever such a pool still holds is
    resubmitted or abandoned by the caller, so its workers are stopped here."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    # shutdown() drops the pool's references to its result queue and manager thread
    queue, manager = getattr(pool, "_result_queue", None), getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + grace
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
        if p.exitcode is None:
            p.kill()
            p.join(timeout=grace)
    # A worker killed while it was writing a result leaves half a message in the result pipe: the
    # manager thread then blocks in recv() for bytes no process will send (the interpreter waited for it
    # at exit; the test session's watchdog saw it). With every worker gone, closing this process's
    # write end turns that wait into an EOF, which the thread handles as a broken pool and exits.
    if manager is not None and manager.is_alive():
        manager.join(timeout=max(0.0, deadline - time.monotonic()))
        if manager.is_alive() and queue is not None and all(p.exitcode is not None for p in procs):
            queue._writer.close()
            manager.join(timeout=grace)


class Prefetcher:
    """Prepared samples in order, at most ``prefetch`` in flight; survives worker deaths."""

    def __init__(self, plan: list[tuple[Any, list[str]]], size: int, crop: str, workers: int, prefetch: int,
                 scoring: dict[str, Any] | None = None) -> None:
        self.plan, self.size, self.crop = plan, size, crop
        self.workers, self.prefetch, self.scoring = workers, max(1, prefetch), scoring
        self.pool: Any = None
        self.generation = 0  # which pool: a future of an earlier one is never a reason to restart
        self.restarts = 0
        self.lock = threading.Lock()  # the writer thread submits nothing, but reads results

    def submit(self, fn: Callable[..., Any], *args: Any) -> tuple[Future, int]:
        with self.lock:
            while True:
                if self.pool is None:
                    self.pool = make_pool(self.workers, self.scoring)
                    self.generation += 1
                try:
                    fut = self.pool.submit(fn, *args)
                    fut.tb_generation = self.generation  # type: ignore[attr-defined]
                    return fut, self.generation
                except BrokenProcessPool:
                    self._restart(self.generation)

    def wait(self, fut: Future) -> Any:
        """``fut.result()``, but a pool whose worker is gone without the pool noticing (seen after a
        SIGKILL under load: every future then waits forever) counts as broken."""
        empty = stale = 0
        gen = getattr(fut, "tb_generation", None)
        while True:
            try:
                return fut.result(timeout=2.0)
            except FuturesTimeout:
                procs = list((getattr(self.pool, "_processes", None) or {}).values())
                empty = empty + 1 if not procs else 0
                # A future of a pool that was replaced after a worker died and that neither finished
                # nor failed (seen under load): its work is lost, so it is submitted again.
                stale = stale + 1 if gen is not None and (gen != self.generation or self.pool is None) else 0
                if any(p.exitcode is not None for p in procs) or empty >= 3 or stale >= 2:
                    raise BrokenProcessPool("a worker process died (found by the watchdog)") from None

    def _submit(self, sample: Any) -> tuple[Future, int]:
        return self.submit(_prepare_in_worker, sample, self.size, self.crop)

    def score(self, item: Any, method: str, dataset: str, sample_id: str, run_dir: Any = None) -> Future:
        """Score a pair in a worker (which holds its own scorers; dataset-level metrics save the
        sample's features under ``run_dir``, one file per pair)."""
        return self.submit(_score_in_worker, item, method, dataset, sample_id, run_dir)[0]

    def _restart(self, generation: int) -> None:
        if self.pool is not None and generation == self.generation:
            _drop_pool(self.pool)
            self.pool = None
            self.restarts += 1

    def __iter__(self) -> Iterator[tuple[Any, list[str], Any, str | None]]:
        inflight: deque[list[Any]] = deque()  # [sample, pending, (future, pool) or None, attempts]
        todo = iter(self.plan)

        def fill() -> None:
            while sum(1 for x in inflight if x[2] is not None) < self.prefetch:
                nxt = next(todo, None)
                if nxt is None:
                    return
                sample, pending = nxt
                inflight.append([sample, pending, self._submit(sample) if pending else None, 1])

        try:
            fill()
            while inflight:
                sample, pending, fut, attempts = inflight[0]
                if fut is None:
                    inflight.popleft()
                    fill()
                    yield sample, pending, None, None
                    continue
                try:
                    clip, why = self.wait(fut[0])
                except (BrokenProcessPool, CancelledError):
                    self._recover(inflight, fut[1])
                    continue
                except Exception as exc:  # e.g. a result too large to send back: this sample fails
                    clip, why = None, f"{type(exc).__name__}: {exc} ({sample.video_path})"
                inflight.popleft()
                fill()
                yield sample, pending, clip, why
        except BaseException:  # Ctrl-C, an error, or the consumer closing the iterator early
            self.close()
            raise
        # Exhausted: the pool stays, the last groups are still being scored in it (``close`` ends it).

    def close(self) -> None:
        with self.lock:
            if self.pool is not None:
                # Queued and running items are dropped (not committed: a resume does them).
                _drop_pool(self.pool)
                self.pool = None

    def _recover(self, inflight: deque[list[Any]], generation: int) -> None:
        """A worker of pool ``generation`` died: start a new pool and submit again what that pool (or
        an older one) lost; finished items, and items of a newer healthy pool, are kept."""
        def ok(f: Future) -> bool:
            return f.done() and not f.cancelled() and f.exception() is None

        with self.lock:
            self._restart(generation)
        broken = [x for x in inflight if x[2] is not None and x[2][1] <= generation and not ok(x[2][0])]
        log.warning("a worker process died; restarting the pool and retrying %d item(s)", len(broken))
        for x in broken:
            if x[3] >= MAX_ATTEMPTS:
                done: Future = Future()
                done.set_result((None, f"the worker process preparing it died ({x[3]} attempts; "
                                       f"{x[0].video_path})"))
                x[2] = (done, 0)
            else:
                x[3] += 1
                x[2] = self._submit(x[0])


class Writer(threading.Thread):
    """The one thread that writes media and commits to the store, behind a bounded queue."""

    def __init__(self, r: Any, score_bar: Any, maxsize: int) -> None:
        super().__init__(name="talkbench-writer", daemon=True)
        self.r, self.score_bar = r, score_bar
        self.q: queue.Queue = queue.Queue(maxsize=max(1, maxsize))
        self.error: BaseException | None = None
        # Set on Ctrl-C: pairs whose scoring was cancelled are left for the resume, not scored here.
        self.stopping = False
        self.wait: Callable[[Any], Any] = lambda fut: fut.result()

    def put(self, job: tuple[Any, ...]) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.q.put(job, timeout=0.5)
                return
            except queue.Full:
                continue

    def fail(self, method: str, sample_id: str, marker: str, why: str) -> None:
        self.put(("fail", method, sample_id, marker, why))

    def pair(self, method: str, sample: Any, frames: Any, clip: Any, scored: Any, t0: float,
             extra: list[Row], fallback: Callable[[], tuple[list[Row], dict[str, str]]]) -> None:
        """``scored``: (rows, scorers not applicable), or a future of it (a worker's, an actor's);
        ``fallback`` scores the pair here when that worker died (the pair is retried, never lost)."""
        self.put(("pair", method, sample.sample_id, frames, clip.audio, clip.fps, clip.sample_rate, scored, t0,
                  extra, fallback))

    def close(self) -> None:
        """Commit what is queued, then stop (also on Ctrl-C: finished work is kept)."""
        if self.is_alive():
            self.q.put(None)
            self.join()
        if self.error is not None:
            raise self.error

    def run(self) -> None:
        from talkbench.io.video import write_video

        r = self.r
        while True:
            job = self.q.get()
            if job is None:
                return
            if self.error is not None:
                continue  # keep draining so the producer never blocks; the error ends the run
            try:
                if job[0] == "fail":
                    _, m, sid, marker, why = job
                    r.fail(m, sid, marker, why)
                else:
                    _, m, sid, frames, audio, fps, sr, scored, t0, extra, fallback = job
                    if not isinstance(scored, tuple):  # a future (a worker's, a Ray actor's)
                        try:
                            scored = self.wait(scored)
                        except Exception as exc:  # scorer errors are rows; this is the process dying
                            if self.stopping:
                                continue  # not committed: the resume does this pair
                            log.warning("the worker scoring %s/%s failed (%s): scoring it here", m, sid, exc)
                            scored = fallback()
                    rows, outside = scored
                    rows = [*rows, *extra]
                    try:
                        write_video(media_path(r.run_dir, m, sid), frames, audio, fps=fps, sample_rate=sr)
                    except MediaError as exc:  # a full disk: this pair fails, the store stays intact
                        r.fail(m, sid, "__media__", str(exc))
                    else:
                        r.summary.failures += int(any(row.error for row in rows))
                        r.store.commit_sample(m, r.config.dataset, sid, rows, time.perf_counter() - t0, outside)
                        r.summary.pairs_done += 1
                self.score_bar.update(1)
            except BaseException as exc:  # a store error ends the run, as in the serial path
                self.error = exc


def evaluate_group(r: Any, group: list[tuple[Any, list[str], Any]], writer: Writer, gen_bar: Any,
                   batch_sizes: dict[str, int], t0: float,
                   generate: Callable[[Any, str, list[Any]], list[Any]] | None = None,
                   score: Callable[[str, Any, Any], Any] | None = None) -> None:
    """Generate every pending method spec for a group of prepared samples (batched per method), start
    scoring each pair and hand it to the writer. ``generate`` replaces the local ``Method.generate``
    (Ray); ``score(method, sample, item)`` returns the rows or a future of them (a worker, an actor)."""
    from talkbench import steps as rn

    faces, base = {}, {}
    for sample, _, clip in group:
        faces[sample.sample_id] = rn.note_sample(r, sample, clip)
        base[sample.sample_id] = rn.base_request(sample, clip)
    results: dict[tuple[str, str], tuple[Any, str | None, tuple[int, ...]]] = {}
    for m in r.config.all_methods:
        members = [(s, c) for s, pending, c in group if m in pending]
        if not members:
            continue
        spec = parse_method_spec(m)
        why = rn._unsupported(r, spec)
        if why is not None:
            for s, _ in members:
                results[m, s.sample_id] = (None, why, ())
            continue
        reqs = [rn.spec_request(base[s.sample_id], spec, c.num_frames) for s, c in members]
        call = None if generate is None else (lambda batch, _b=spec.base: generate(r, _b, batch))
        got = rn.generate_many(r, spec, reqs, [c.frames.shape for _, c in members],
                               batch_size=batch_sizes.get(spec.base, batch_sizes.get("*", DEFAULT_BATCH)), call=call)
        gen_bar.update(len(members))
        for (s, _), q, (res, err) in zip(members, reqs, got):
            results[m, s.sample_id] = (res, err, q.mask_frames)
    for sample, pending, clip in group:
        for m in pending:
            res, err, masked = results[m, sample.sample_id]
            if err is not None:
                writer.fail(m, sample.sample_id, "__generate__", err)
                continue
            item = rn.score_input(sample, clip, res.frames, masked)
            extra = rn.faces_rows(r, m, sample.sample_id, faces[sample.sample_id])

            def here(_m: str = m, _s: Any = sample, _it: Any = item) -> tuple[list[Row], dict[str, str]]:
                outside: dict[str, str] = {}
                return rn.score_rows(r.scorers, _it, _m, r.config.dataset, _s.sample_id, outside, r.run_dir), outside

            rows = here() if score is None else score(m, sample, item)
            writer.pair(m, sample, res.frames, clip, rows, t0, extra, here)


def run_pipelined(r: Any, plan: list[tuple[Any, list[str]]], bars: tuple[Any, Any, Any],
                  on_sample: Callable[[str], None] | None, workers: int, batch_sizes: dict[str, int],
                  prefetch: int | None = None, prefetcher: Iterator[Any] | None = None,
                  generate: Callable[..., Any] | None = None, score: Callable[..., Any] | None = None) -> None:
    """Evaluate ``plan`` ((sample, pending method specs) in order) with overlapping stages."""
    crop_bar, gen_bar, score_bar = bars
    group_size = max([batch_sizes.get("*", DEFAULT_BATCH), *batch_sizes.values()])
    prefetch = prefetch or max(2 * workers, group_size)
    writer = Writer(r, score_bar, maxsize=2 * group_size * max(1, len(r.config.all_methods)))
    writer.start()
    if prefetcher is None:
        scoring = None
        if not r.device.startswith("cuda"):
            # On CPU the critics (LSE, landmarks of generated frames) are most of an item's time: the
            # workers score too, each with its own copy. On a GPU they stay with the one process.
            options: dict[str, dict[str, Any]] = {}
            for metric, key, value in r.config.metric_options:
                options.setdefault(metric, {})[key] = value
            scoring = {"metrics": tuple(r.scorers), "device": r.device, "options": options, "threads": 1}
        stream = Prefetcher(plan, r.config.size, r.config.crop, workers, prefetch, scoring=scoring)
        writer.wait = lambda fut: stream.wait(fut) if isinstance(fut, Future) else fut.result()
        if scoring is not None:
            def score(m: str, sample: Any, item: Any) -> Future:
                return stream.score(item, m, r.config.dataset, sample.sample_id, r.run_dir)
    else:
        stream = prefetcher
    group: list[tuple[Any, list[str], Any]] = []
    waiting: list[str] = []  # samples whose on_sample waits for their group
    t0 = time.perf_counter()

    def flush() -> None:
        nonlocal group, t0
        if group:
            evaluate_group(r, group, writer, gen_bar, batch_sizes, t0, generate=generate, score=score)
            group = []
        t0 = time.perf_counter()
        for sid in waiting:
            if on_sample is not None:
                on_sample(sid)
        waiting.clear()

    it = iter(stream)
    try:
        for sample, pending, clip, why in it:
            r.summary.samples += 1
            crop_bar.update(1)
            waiting.append(sample.sample_id)
            if pending and clip is None:
                for m in pending:
                    writer.fail(m, sample.sample_id, "__sample__", why)
                gen_bar.update(len(pending))
            elif pending:
                group.append((sample, pending, clip))
            if len(group) >= group_size or not group:
                flush()
        flush()
    except BaseException:
        writer.stopping = True  # Ctrl-C or an error: commit what is scored, leave the rest to the resume
        _close(it, stream)  # queued work is dropped first, so the writer does not wait for it
        raise
    finally:
        try:
            writer.close()  # waits for the scoring still running in the workers
        finally:
            _close(it, stream)  # no worker process outlives the run


def _close(*streams: Any) -> None:
    for x in streams:
        close = getattr(x, "close", None)
        if close is not None:
            close()
