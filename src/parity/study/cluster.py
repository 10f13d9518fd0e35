"""The Dask cluster a study runs on: a LocalCluster of worker processes (one per core,
or `workers`), or an existing cluster at `scheduler`, so that a study that outgrows one
machine runs on many unchanged.

Three things keep Dask's own behaviour from reaching the terminal:

* An address given with `--scheduler` is probed before Dask's client is aimed at it: a
  TCP connection and the first message of Dask's handshake, read with a bounded time and
  size. Dask's client reads the first 8 bytes of whatever answers as the length of a
  message and allocates it (a web server's reply asks for exabytes), or waits past its
  own timeout on a service that says nothing.
* Dask's loggers (and tornado's and asyncio's, which its event loop uses) are silenced
  while the study runs: a lost scheduler, or a Ctrl-C, is said once by parity.
* SIGINT is ignored while the local cluster starts, so that its worker processes are
  born ignoring it (a terminal's Ctrl-C reaches every process of its group: each worker
  would print a KeyboardInterrupt traceback of its own). The client closes the cluster
  when the study is interrupted. A Ctrl-C in the seconds the workers take to start is
  ignored with them; the next one stops the study.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import struct
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from urllib.parse import urlsplit

from parity.errors import ParityError, UsageError
from parity.study.options import StudyOptions

# Seconds an existing scheduler has to answer the probe, and to take the client.
PROBE_SECONDS = 10.0
CONNECT_SECONDS = 20
# Dask's handshake is a few hundred bytes; a longer first message is not Dask's.
HANDSHAKE_MAX_BYTES = 1 << 20
# The port Dask's scheduler listens on when an address names none.
DEFAULT_PORT = 8786
_LOGGERS = ("distributed", "tornado", "asyncio", "bokeh")


class SchedulerLost(ParityError):
    """The cluster stopped answering mid-study: the finished batches are on disk."""

    exit_code = 1


def local_workers(options: StudyOptions) -> int:
    """The worker processes of the local cluster: `--workers`, or one per core."""
    return options.workers or os.cpu_count() or 1


def _read_exactly(sock: socket.socket, n: int, deadline: float) -> bytes:
    data = b""
    while len(data) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no answer")
        sock.settimeout(left)
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the connection was closed")
        data += chunk
    return data


def probe_scheduler(address: str, seconds: float = PROBE_SECONDS) -> None:
    """UsageError unless a Dask scheduler answers at `address` (tcp://host:port, or
    host:port) within `seconds`: it sends its handshake first on a new connection, a
    length-prefixed message naming its compression and pickle protocol. Other schemes
    (tls://, ucx://) are left to Dask's client and its timeout."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme != "tcp":
        return
    try:
        host, port = parts.hostname, parts.port or DEFAULT_PORT
    except ValueError:  # a port that is not a number
        host, port = None, DEFAULT_PORT
    if not host:
        raise UsageError(f"--scheduler {address!r} is not a Dask address "
                         "(tcp://host:port)")
    deadline = time.monotonic() + seconds

    def refuse(why: str) -> UsageError:
        return UsageError(f"no Dask scheduler answered at {address} within "
                          f"{seconds:g}s ({why})")

    try:
        sock = socket.create_connection((host, port), timeout=seconds)
    except TimeoutError:
        raise refuse("no connection") from None
    except OSError as exc:
        raise refuse(exc.strerror or str(exc) or type(exc).__name__) from None
    with sock:
        try:
            head = _read_exactly(sock, 8, deadline)
            (length,) = struct.unpack("<Q", head)
            if not 0 < length <= HANDSHAKE_MAX_BYTES:
                raise refuse(f"it answered, but not as Dask does: a first message of "
                             f"{length} bytes")
            body = _read_exactly(sock, length, deadline)
        except TimeoutError:
            raise refuse("it accepted the connection but sent no Dask handshake") \
                from None
        except OSError as exc:
            raise refuse(exc.strerror or str(exc) or type(exc).__name__) from None
    if b"pickle-protocol" not in body:
        raise refuse("it answered, but not with a Dask handshake")


@contextmanager
def quiet_dask() -> Iterator[None]:
    """Dask's, tornado's and asyncio's loggers (and Dask's warnings) silenced for the
    block, then restored."""
    # Dask's logging configuration gives some loggers their own level
    # (`distributed.client`), so every logger under each name is silenced, not its root.
    names = [n for n in logging.root.manager.loggerDict
             if any(n == root or n.startswith(f"{root}.") for root in _LOGGERS)]
    saved = {name: logging.getLogger(name).level for name in {*_LOGGERS, *names}}
    for name in saved:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            # "Port 8787 is already in use" and the like: Dask's, not the study's news.
            warnings.filterwarnings("ignore", module=r"distributed(\..*)?$")
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored for the block, then the handler it had (only the main thread can
    set one; elsewhere the block runs as it is). A process started in the block is born
    ignoring it too: an ignored signal stays ignored across fork and exec, and Python,
    finding SIGINT ignored at startup, installs no KeyboardInterrupt for it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


@contextmanager
def client_for(options: StudyOptions) -> Iterator[tuple[Any, dict[str, Any]]]:
    with quiet_dask():
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:
            raise UsageError(f"parity study needs dask.distributed ({exc}); install it "
                             "with pip install 'parity[study]'") from None
    if options.scheduler is not None:
        probe_scheduler(options.scheduler)
        with quiet_dask():
            try:
                client = Client(options.scheduler, timeout=f"{CONNECT_SECONDS}s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise UsageError(f"no Dask scheduler answered at {options.scheduler} "
                                 f"within {CONNECT_SECONDS}s ({type(exc).__name__}: "
                                 f"{' '.join(str(exc).split())})") from None
            try:
                info = client.scheduler_info()
                workers = len(info.get("workers", {}))
                yield client, {"kind": "existing cluster", "address": options.scheduler,
                               "workers": workers}
            finally:
                _close(client)
        return
    n = local_workers(options)
    # Each worker's chains run side by side on as many XLA host devices (PyMC's JAX
    # sampler otherwise asks for 100), as `parity run` runs them.
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        flags = f"{flags} --xla_force_host_platform_device_count={options.settings.chains}"
    with quiet_dask(), ExitStack() as stack:
        with sigint_ignored():
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address=None,
                                   silence_logs=logging.CRITICAL + 1,
                                   env={"XLA_FLAGS": flags.strip()})
            # Registered at once, so that the cluster is closed whatever comes next.
            stack.callback(_close, cluster)
            client = Client(cluster)
            stack.callback(_close, client)
        yield client, {"kind": "LocalCluster", "address": cluster.scheduler_address,
                       "workers": n, "threads_per_worker": 1}


def _close(thing: Any) -> None:
    """Close a client or cluster; a second Ctrl-C does not cut the closing short (nor
    make the worker processes print a KeyboardInterrupt as they stop)."""
    with sigint_ignored():
        thing.close()
