"""Running a list of dask tasks with a progress bar, locally or on a distributed cluster."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from functools import partial

import dask
import dask.threaded
from dask.base import is_dask_collection
from dask.callbacks import Callback
from dask.delayed import Delayed
from tqdm.auto import tqdm


def _distributed_client():
    if "distributed" not in sys.modules:  # no client without it; importing it costs ~0.3 s
        return None
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def worker_count() -> int:
    """Threads (or distributed worker threads) that will run the tasks."""
    client = _distributed_client()
    if client is not None:
        return max(1, sum(client.nthreads().values()))
    return int(dask.config.get("num_workers", None) or dask.threaded.CPU_COUNT)


class _CountTasks(Callback):
    """Advances a progress bar by each finished task's integer result."""

    def __init__(self, keys: set, bar: tqdm) -> None:
        super().__init__()
        self._keys = keys
        self._bar = bar

    def _posttask(self, key, result, dsk, state, worker_id):  # noqa: D401 - dask hook
        if key in self._keys:
            self._bar.update(len(result[0]))


def run_tasks(
    tasks: Sequence[partial], *, total: int, desc: str, progress: bool | None = None
) -> list:
    """Run ``tasks`` and return their results, each ``(tile indices, ...)``: the progress bar
    counts the indices.

    Uses the active ``distributed`` client when there is one; else a thread pool, or dask's
    threaded scheduler when some argument is a dask collection still to compute.
    The progress bar shows on a terminal by default (``progress=None``).
    """
    if not tasks:
        return []
    disable = None if progress is None else not progress
    with tqdm(total=total, desc=desc, unit="tile", disable=disable, leave=False) as bar:
        client = _distributed_client()
        if client is not None:
            from distributed import as_completed

            results = []
            for future in as_completed(client.compute([_delayed(t) for t in tasks])):
                results.append(future.result())
                bar.update(len(results[-1][0]))
            return results
        if any(is_dask_collection(a) for t in tasks for a in (*t.args, *t.keywords.values())):
            delayed = [_delayed(t) for t in tasks]
            with _CountTasks({d.key for d in delayed}, bar):
                # the threaded scheduler by function: naming it "threads" imports distributed
                results = dask.compute(*delayed, scheduler=dask.threaded.get)
            return list(results)
        return _run_in_threads(tasks, bar)


def _delayed(task: partial) -> Delayed:
    return dask.delayed(task.func, pure=False)(*task.args, **task.keywords)


def _run_in_threads(tasks: Sequence[partial], bar: tqdm) -> list:
    results = []
    with ThreadPoolExecutor(worker_count()) as pool:
        futures = [pool.submit(t) for t in tasks]
        try:
            for future in as_completed(futures):
                results.append(future.result())
                bar.update(len(results[-1][0]))
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results
