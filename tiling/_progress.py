"""Running a list of dask tasks with a progress bar, locally or on a distributed cluster."""

from __future__ import annotations

from collections.abc import Sequence

import dask
from dask.callbacks import Callback
from dask.delayed import Delayed
from tqdm.auto import tqdm


def _distributed_client():
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


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
            results = dask.compute(*tasks, scheduler="threads")
        return int(sum(results))
