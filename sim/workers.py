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
import multiprocessing.connection
import os
import secrets
import shutil
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from sim.atomic import replace_path
from sim.parts import PartResult, RunSpec, make_part, n_parts, piece_path, span, warm_up
from sim.sinks.stitch import ParquetJoiner, StitchError, TextJoiner

_stop_requested = False
_stop_deferred = False


def request_stop(stop: bool = True) -> None:
    """Notes that the run must stop (a signal handler calls it before raising
    KeyboardInterrupt, which can be lost; see `check_stop`); False forgets it."""
    global _stop_requested
    _stop_requested = stop


def stop_is_deferred() -> bool:
    """True while the run is in a step that must not be cut in the middle (starting its worker
    processes): a signal handler then only notes the stop, and the run stops right after the step."""
    return _stop_deferred


def check_stop() -> None:
    """Raises KeyboardInterrupt if a stop was requested: between a run's steps."""
    if _stop_requested:
        raise KeyboardInterrupt


class ClusterError(RuntimeError):
    """The Dask cluster cannot be used: Dask is not installed, or the scheduler does not answer."""


# How often the parent, waiting for its workers, looks whether it was asked to stop.
STOP_POLL_S = 0.25

EXTENSIONS = {"parquet": ".parquet", "csv": ".csv", "jsonl": ".jsonl", "requests": ".jsonl"}


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
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
        check_stop()
        yield make_part(spec, j, on_chunk, stream=True)


# Signals a worker must not receive before it has set its own handlers (it starts with the parent's).
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _worker_main(spec: RunSpec, count: int, next_part, conn) -> None:
    """A worker process: takes the next part not yet taken until none is left, and sends each
    result (or the error that stopped it) to the parent through `conn`."""
    import pyarrow as pa

    # Ctrl-C reaches the whole process group: the parent alone decides, and stops the workers
    # (SIGTERM, default action: nothing to clean up here, the parent deletes the run's folder).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    # One process per core already: Arrow's own threads would only contend with the other workers.
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    while True:
        with next_part.get_lock():
            j = next_part.value
            next_part.value += 1
        if j >= count:
            break
        try:
            conn.send((j, make_part(spec, j), None))
        except Exception as exc:  # noqa: BLE001 -- any error of a part: the parent raises it
            try:
                conn.send((j, None, exc))
            except Exception:  # noqa: BLE001 -- not picklable: its text
                conn.send((j, None, RuntimeError(f"part {j}: {type(exc).__name__}: {exc}")))
            break
    conn.close()


def _in_pool(spec: RunSpec, count: int, workers: int, procs: list) -> Iterator[PartResult]:
    """Parts in order from `workers` processes, each taking the next part when it is free:
    part j only ever waits for parts before it, all already taken. Forked where the platform
    can: the workers start with this process's prepared run and compiled kernels instead of a
    second of imports each.

    Each worker has its own pipe and the parent never takes a lock a worker may hold, so
    stopping them (`_stop`) cannot hang whatever they were doing; they start with SIGINT and
    SIGTERM blocked until they have set their own handlers, so a stop that comes while they
    are being started reaches no handler of the parent's."""
    import gc

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    if method == "fork":
        with span("warm-up"):
            warm_up(spec)
    check_stop()
    ctx = multiprocessing.get_context(method)
    next_part = ctx.Value("l", 0)
    conns = []
    with span("start workers"):
        # Frozen, the objects this process made so far are never touched by a worker's
        # collector, so their pages stay shared instead of being copied into every worker.
        gc.freeze()
        try:
            with _signals_held():
                for _ in range(workers):
                    receive, send = ctx.Pipe(duplex=False)
                    proc = ctx.Process(target=_worker_main, args=(spec, count, next_part, send), daemon=True)
                    procs.append(proc)
                    proc.start()
                    send.close()
                    conns.append(receive)
        finally:
            gc.unfreeze()
    done: dict[int, PartResult] = {}
    following = 0
    live = list(conns)
    while following < count:
        if not live:
            raise RuntimeError("the worker processes stopped before every part was made")
        check_stop()
        # With a timeout: a stop noted while a signal's exception was lost is still seen.
        for conn in multiprocessing.connection.wait(live, timeout=STOP_POLL_S):
            try:
                j, result, error = conn.recv()
            except EOFError:  # the worker is done, or died
                live.remove(conn)
                proc = procs[conns.index(conn)]
                proc.join()
                if proc.exitcode:
                    raise RuntimeError(f"a worker process stopped (exit code {proc.exitcode})") from None
                continue
            if error is not None:
                raise error
            done[j] = result
        while following in done:
            yield done.pop(following)
            following += 1
    # The workers exit by themselves now (freeing their memory takes a while): `run_parts`
    # finishes the output meanwhile and waits for them before publishing it.


@contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held back (pending) in this thread for the block, then delivered.
    A signal that arrived just before the block may still reach its Python handler inside it:
    that handler only notes the stop meanwhile (`stop_is_deferred`)."""
    global _stop_deferred
    deferred_before = _stop_deferred
    _stop_deferred = True
    before = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS) if hasattr(signal, "pthread_sigmask") else None
    try:
        yield
    finally:
        # In this order: a signal held back until the mask is lifted then raises as it should.
        _stop_deferred = deferred_before
        if before is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _stop(procs: list) -> None:
    """Ends the worker processes still running and waits for them."""
    procs = [proc for proc in procs if proc.pid is not None]  # not those never started
    for proc in procs:
        if proc.exitcode is None:
            proc.terminate()
    for proc in procs:
        proc.join(timeout=10)
        if proc.exitcode is None:
            proc.kill()
            proc.join()


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
    futures = [
        client.submit(make_part, spec, j, key=f"player-sim-part-{spec.token}-{j}", priority=count - j, pure=False)
        for j in range(count)
    ]
    for future in as_completed(futures):
        yield future.result()
    client.close()


# -- the run -------------------------------------------------------------------------------------


def run_parts(
    spec: RunSpec,
    out: Path | str,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    on_part: Callable[[PartResult], None] | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> list[PartResult]:
    """Makes every part of `spec` and moves the output into place at `out`; `spec.workdir` is
    this run's folder (see `workdir_for`) and is gone afterwards, whatever happens."""
    workdir = Path(spec.workdir)
    procs: list = []
    clients: list = []
    results: list[PartResult] = []
    assembly = None
    try:
        count = n_parts(spec)
        if scheduler:
            parts = _on_dask(spec, count, scheduler, clients)
        elif workers > 1 and count > 1:
            parts = _in_pool(spec, count, min(workers, count), procs)
        else:
            parts = _in_process(spec, count, on_chunk)
        check_stop()
        assembly = _Assembly(spec, count)
        with span("parts"):
            for result in parts:
                results.append(result)
                assembly.part_done(result)
                if on_part is not None:
                    on_part(result)
        results.sort(key=lambda r: r.index)
        _check_schemas(results)
        with span("stitch"):
            joined = assembly.finish()
        # Only then: a worker's exit (freeing its memory) ran beside the last join. Before the
        # output is published, so a run stopped now still leaves nothing.
        for proc in procs:
            proc.join()
        with span("publish"):
            _publish(joined, out)
    finally:
        if assembly is not None:
            assembly.close()
        # A second Ctrl-C or SIGTERM must not cut the clean-up short: it waits until it is done.
        with _signals_held():
            _stop(procs)
            # Parts still running on a cluster find their folder gone and stop (see parts.read_carry).
            shutil.rmtree(workdir, ignore_errors=True)
        for client in clients:
            client.close()
    return results


def _check_schemas(results: list[PartResult]) -> None:
    first = results[0].schema if results else None
    for r in results[1:]:
        if not r.schema.equals(first, check_metadata=True):
            raise StitchError(
                f"part {r.index} wrote other columns than part 0 (the events schema must not depend on the data)"
            )


class _Assembly:
    """The finished output, put together inside the workdir as parts come in: a single file is
    joined piece by piece, in order, as soon as the pieces before it are in, while later parts
    are still being made (only the last piece and the footer are left when the last part is
    done); day folders are moved into place at the end."""

    def __init__(self, spec: RunSpec, count: int):
        self.spec, self.count = spec, count
        self.workdir = Path(spec.workdir)
        self.joined = self.workdir / "joined"
        self.file: BinaryIO | None = None
        self.joiner: ParquetJoiner | TextJoiner | None = None
        self.next = 0
        self.done: dict[int, PartResult] = {}
        self.first: PartResult | None = None  # part 0: the columns every piece must have
        self.joins = spec.partition is None and count > 1

    def part_done(self, result: PartResult) -> None:
        """A part's piece is written: joins it, and those after it already done, if every piece
        before it is in."""
        if not self.joins:
            return
        self.done[result.index] = result
        while self.next in self.done:
            if self.next:
                _check_schemas([self.first, self.done[self.next]])
            else:
                self.first = self.done[0]
                self.file = open(self.joined, "wb")
                if self.spec.fmt == "parquet":
                    self.joiner = ParquetJoiner(self.file)
                else:
                    self.joiner = TextJoiner(self.file, skip_first_line_after_first=self.spec.fmt == "csv")
            piece = piece_path(self.spec.workdir, self.next)
            with span("join", self.next):
                self.joiner.add(piece)
                piece.unlink()  # its bytes are in the joined file now
            del self.done[self.next]
            self.next += 1

    def finish(self) -> Path:
        """The finished output, still inside the workdir: the joined file, or the folder of days."""
        spec, count = self.spec, self.count
        if spec.partition is None:
            if self.joins:
                if self.next != count:
                    raise RuntimeError(f"pieces {self.next} to {count - 1} were never joined")
                self.joiner.close()
                self.close()
            elif count == 0:
                from sim.sinks import REQUESTS_SCHEMA, EventsBuilder, open_sink

                schema = REQUESTS_SCHEMA if spec.fmt == "requests" else EventsBuilder().schema
                with open_sink(spec.fmt, self.joined, schema):
                    pass
            else:
                os.replace(piece_path(spec.workdir, 0), self.joined)
            return self.joined
        # Day folders: piece j's files become date=D/part-j.
        stem = "requests" if spec.fmt == "requests" else "part"
        ext = EXTENSIONS[spec.fmt]
        days = self.workdir / "days"
        days.mkdir()
        for j in range(count):
            piece = piece_path(spec.workdir, j)
            if not piece.exists():
                continue
            for day in sorted(piece.iterdir()):
                target = days / day.name
                target.mkdir(exist_ok=True)
                for n, f in enumerate(sorted(day.iterdir())):
                    suffix = f"-{n}" if n else ""
                    os.replace(f, target / f"{stem}-{j:05d}{suffix}{ext}")
        return days

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


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
