"""Who makes a run's parts: this process, a pool of worker processes, or a Dask cluster; then the
pieces become the output.

    stats = run_parts(spec, out, workers=4)                           # processes on this machine
    stats = run_parts(spec, out, scheduler="tcp://10.0.0.5:8786")     # tasks on a Dask cluster

Everything is written under one hidden folder beside the output (`.NAME.tmp-PID-XXXX`, the
run's `workdir`): pieces, carries, and the joined file. Only when every part is done is the
result renamed into place, so a failed or interrupted run (Ctrl-C, SIGTERM) leaves nothing that
looks like finished output: the folder is deleted, after the workers are stopped.
"""
from __future__ import annotations

import multiprocessing
import os
import secrets
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

from .atomic import replace_path
from .parts import PartResult, RunSpec, make_part, n_parts, piece_path, warm_up
from .sinks.stitch import StitchError, join_parquet, join_text

class ClusterError(RuntimeError):
    """The Dask cluster cannot be used: Dask is not installed, or the scheduler does not answer."""


EXTENSIONS = {"parquet": ".parquet", "csv": ".csv", "jsonl": ".jsonl", "requests": ".jsonl"}


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:        # not Linux
        return max(1, os.cpu_count() or 1)


def workdir_for(out: Path | str) -> Path:
    """The run's folder: beside a local output (one filesystem, so the result is renamed into
    place), in the temporary folder for a URI."""
    if is_uri(out):
        import tempfile

        return Path(tempfile.mkdtemp(prefix=f".{str(out).rstrip('/').rsplit('/', 1)[-1]}.tmp-"))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.parent / f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    path.mkdir()
    return path


# -- making the parts ------------------------------------------------------------------------------

def _in_process(spec: RunSpec, count: int, on_chunk) -> Iterator[PartResult]:
    for j in range(count):
        yield make_part(spec, j, on_chunk, stream=True)


def _worker_init() -> None:
    import pyarrow as pa

    # Ctrl-C reaches the whole process group: the parent alone decides, and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # One process per core already: Arrow's own threads would only contend with the other workers.
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)


def _make_part_in_pool(args: tuple[RunSpec, int]) -> PartResult:
    return make_part(*args)


def _in_pool(spec: RunSpec, count: int, workers: int, pools: list) -> Iterator[PartResult]:
    """Parts in order from `workers` processes. Forked where the platform can: the workers start
    with this process's prepared run and compiled kernels instead of a second of imports each."""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    if method == "fork":
        warm_up(spec)
    pool = multiprocessing.get_context(method).Pool(workers, initializer=_worker_init)
    pools.append(pool)
    # In order, one at a time: part j only ever waits for parts before it, all already started.
    yield from pool.imap(_make_part_in_pool, ((spec, j) for j in range(count)), chunksize=1)
    pool.close()
    pool.join()


def _on_dask(spec: RunSpec, count: int, scheduler: str, clients: list) -> Iterator[PartResult]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ClusterError("Dask is not installed: pip install 'player-sim[dask]'") from None
    try:
        client = Client(scheduler, timeout="30s")
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"no Dask scheduler answers there ({exc})") from None
    clients.append(client)
    # Earlier parts first (higher priority): a part waits only for the carry of those before it.
    futures = [client.submit(make_part, spec, j, key=f"player-sim-part-{spec.token}-{j}", priority=count - j,
                             pure=False) for j in range(count)]
    for future in as_completed(futures):
        yield future.result()
    client.close()


# -- the run -------------------------------------------------------------------------------------

def run_parts(spec: RunSpec, out: Path | str, *, workers: int = 1, scheduler: str | None = None,
              on_part: Callable[[PartResult], None] | None = None,
              on_chunk: Callable[[int], None] | None = None) -> list[PartResult]:
    """Makes every part of `spec` and moves the output into place at `out`; `spec.workdir` is
    this run's folder (see `workdir_for`) and is gone afterwards, whatever happens."""
    workdir = Path(spec.workdir)
    pools: list = []
    clients: list = []
    results: list[PartResult] = []
    try:
        count = n_parts(spec)
        if scheduler:
            parts = _on_dask(spec, count, scheduler, clients)
        elif workers > 1 and count > 1:
            parts = _in_pool(spec, count, min(workers, count), pools)
        else:
            parts = _in_process(spec, count, on_chunk)
        for result in parts:
            results.append(result)
            if on_part is not None:
                on_part(result)
        results.sort(key=lambda r: r.index)
        _check_schemas(results)
        _publish(_assemble(spec, count), out)
    finally:
        for pool in pools:
            pool.terminate()
            pool.join()
        # Parts still running on a cluster find their folder gone and stop (see parts.read_carry).
        shutil.rmtree(workdir, ignore_errors=True)
        for client in clients:
            client.close()
    return results


def _check_schemas(results: list[PartResult]) -> None:
    first = results[0].schema if results else None
    for r in results[1:]:
        if not r.schema.equals(first, check_metadata=True):
            raise StitchError(f"part {r.index} wrote other columns than part 0 (the events schema must not "
                              f"depend on the data)")


def _assemble(spec: RunSpec, count: int) -> Path:
    """The finished output, still inside the workdir: the joined file, or the folder of days."""
    workdir = Path(spec.workdir)
    pieces = [piece_path(spec.workdir, j) for j in range(count)]
    if spec.partition is None:
        joined = workdir / "joined"
        if count == 0:
            from .sinks import REQUESTS_SCHEMA, EventsBuilder, open_sink

            schema = REQUESTS_SCHEMA if spec.fmt == "requests" else EventsBuilder().schema
            with open_sink(spec.fmt, joined, schema):
                pass
        elif count == 1:
            os.replace(pieces[0], joined)
        else:
            with open(joined, "wb") as f:
                if spec.fmt == "parquet":
                    join_parquet(pieces, f)
                else:
                    join_text(pieces, f, skip_first_line_after_first=spec.fmt == "csv")
        return joined
    # Day folders: piece j's files become date=D/part-j.
    stem = "requests" if spec.fmt == "requests" else "part"
    ext = EXTENSIONS[spec.fmt]
    days = workdir / "days"
    days.mkdir()
    for j, piece in enumerate(pieces):
        if not piece.exists():
            continue
        for day in sorted(piece.iterdir()):
            target = days / day.name
            target.mkdir(exist_ok=True)
            for n, f in enumerate(sorted(day.iterdir())):
                suffix = f"-{n}" if n else ""
                os.replace(f, target / f"{stem}-{j:05d}{suffix}{ext}")
    return days


def is_uri(out) -> bool:
    return "://" in str(out)


def _publish(result: Path, out) -> None:
    """Moves the finished output into place: renamed on this machine, or copied to any filesystem
    pyarrow reaches (`s3://bucket/key`: the object appears when its upload completes)."""
    if is_uri(out):
        import pyarrow.fs as pafs

        fs, path = pafs.FileSystem.from_uri(str(out))
        if result.is_dir():
            fs.create_dir(path)
        pafs.copy_files(str(result), path, destination_filesystem=fs, use_threads=False)
        return
    replace_path(result, out)
