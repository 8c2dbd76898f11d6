"""Running a list of dask tasks with a progress bar, locally or on a distributed cluster."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import dask
import dask.threaded
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
            self._bar.update(int(result))


def run_tasks(
    tasks: Sequence[Delayed], *, total: int, desc: str, progress: bool | None = None
) -> int:
    """Compute ``tasks`` (each returning a count) and return the sum of their results.

    Uses the active ``distributed`` client when there is one, else dask's threaded scheduler.
    The progress bar shows on a terminal by default (``progress=None``).
    """
    if not tasks:
        return 0
    disable = None if progress is None else not progress
    with tqdm(total=total, desc=desc, unit="tile", disable=disable, leave=False) as bar:
        client = _distributed_client()
        if client is not None:
            from distributed import as_completed

            done = 0
            for future in as_completed(client.compute(list(tasks))):
                n = int(future.result())
                done += n
                bar.update(n)
            return done
        keys = {t.key for t in tasks}
        with _CountTasks(keys, bar):
            # the threaded scheduler by function: naming it "threads" imports distributed
            results = dask.compute(*tasks, scheduler=dask.threaded.get)
        return int(sum(results))
