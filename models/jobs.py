"""Where training jobs run: in this process, or on Dask distributed (a LocalCluster or a cluster).

Walk-forward folds, the final fit and sweep configurations are independent jobs: plain
functions of their inputs, deterministic for a seed. A `Runner` maps such a function over
argument tuples and returns the results in order, so the same seed gives the same model set
whichever runner ran it. Dask is imported only by `DaskRunner`, i.e. only with `--dask`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from models.errors import ClusterError

Done = Callable[[int], None]  # called with the index of each job as it finishes


class Runner(Protocol):
    """Runs jobs; `workers` is how many may run at once."""

    workers: int

    def map(
        self, fn: Callable[..., Any], jobs: Sequence[tuple], done: Done | None = None
    ) -> list[Any]: ...


class InProcess:
    """Every job here, one after the other (the default: no extra processes, no Dask)."""

    workers = 1

    def map(
        self, fn: Callable[..., Any], jobs: Sequence[tuple], done: Done | None = None
    ) -> list[Any]:
        out = []
        for i, args in enumerate(jobs):
            out.append(fn(*args))
            if done is not None:
                done(i)
        return out


class DaskRunner:
    """Jobs on Dask distributed: `address` "local" starts a LocalCluster of `workers` worker
    processes (one thread each: LightGBM brings its own threads); any other address
    (`tcp://host:8786`) joins a running scheduler. Use as a context manager."""

    def __init__(self, address: str, workers: int | None = None, threads: int = 1) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ClusterError("--dask needs Dask distributed: pip install 'qctl[dask]'") from None
        self.cluster = None
        try:
            if address == "local":
                n = workers or os.cpu_count() or 1
                self.cluster = LocalCluster(
                    n_workers=n,
                    threads_per_worker=threads,
                    processes=True,
                    dashboard_address=":0",  # any free port: never clashes
                )
                self.client = Client(self.cluster)
            else:
                self.client = Client(address, timeout="10s")
        except (OSError, TimeoutError) as exc:
            if self.cluster is not None:
                self.cluster.close()
            raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))

    def map(
        self, fn: Callable[..., Any], jobs: Sequence[tuple], done: Done | None = None
    ) -> list[Any]:
        from distributed import as_completed

        futures = [self.client.submit(fn, *args, pure=False) for args in jobs]
        where = {f.key: i for i, f in enumerate(futures)}
        for future in as_completed(futures):
            if done is not None:
                done(where[future.key])
        return self.client.gather(futures)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def __enter__(self) -> DaskRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
