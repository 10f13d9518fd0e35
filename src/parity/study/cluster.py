"""The Dask cluster a study runs on: a LocalCluster of worker processes (one per core,
or `workers`), or an existing cluster at `scheduler`, so that a study that outgrows one
machine runs on many unchanged."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from parity.errors import UsageError
from parity.study.options import StudyOptions


@contextmanager
def client_for(options: StudyOptions) -> Iterator[tuple[Any, dict[str, Any]]]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise UsageError(f"parity study needs dask.distributed ({exc}); install it with "
                         "pip install 'parity[study]'") from None
    import logging

    if options.scheduler is not None:
        try:
            client = Client(options.scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(f"no Dask scheduler at {options.scheduler!r} "
                             f"({type(exc).__name__}: {exc})") from None
        try:
            info = client.scheduler_info()
            workers = len(info.get("workers", {}))
            yield client, {"kind": "existing cluster", "address": options.scheduler,
                           "workers": workers}
        finally:
            client.close()
        return
    n = options.workers or os.cpu_count() or 1
    # Each worker's chains run side by side on as many XLA host devices (PyMC's JAX
    # sampler otherwise asks for 100), as `parity run` runs them.
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        flags = f"{flags} --xla_force_host_platform_device_count={options.settings.chains}"
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR,
                           env={"XLA_FLAGS": flags.strip()})
    client = Client(cluster)
    try:
        yield client, {"kind": "LocalCluster", "address": cluster.scheduler_address,
                       "workers": n, "threads_per_worker": 1}
    finally:
        client.close()
        cluster.close()
