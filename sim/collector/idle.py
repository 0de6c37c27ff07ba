"""Close TCP connections that never sent a byte: the idle timeout granian does not apply.

granian's `header_read_timeout` closes a connection whose request head is slow or that idles
between keep-alive requests, but a connection that never sends its first byte is not reliably
closed (granian 2.8 closed such a socket after the timeout in some runs and never in others),
so a port scanner or a misbehaving client fills the worker with idle sockets. `IdleGuard` runs
in each worker process: every `interval` seconds it looks at the worker's own TCP sockets on
the collector's port (`/proc/self/fd`) and shuts down any established one that has received
no byte for `timeout` seconds since it was accepted (the kernel's `tcp_info`:
`tcpi_bytes_received == 0`, and `tcpi_last_data_recv` counts from the handshake). granian then
sees the end of the connection and drops it. Sockets that received anything are left to
granian's own timeouts. Linux only (elsewhere it does nothing).

    guard = IdleGuard(port=8080, timeout=30.0)
    guard.start()          # a daemon thread in this process
    guard.sweep()          # one pass: how many connections it closed
"""

from __future__ import annotations

import os
import socket
import stat
import struct
import threading

_TCP_ESTABLISHED = 1
_TCP_INFO_SIZE = 232  # struct tcp_info up to tcpi_bytes_received and beyond (Linux >= 4.1)
_STATE = struct.Struct("B")  # tcpi_state, offset 0
_LAST_DATA_RECV = struct.Struct("I")  # ms since the last data arrived (since the handshake if none), offset 52
_BYTES_RECEIVED = struct.Struct("Q")  # offset 128


def never_spoke_for(sock: socket.socket) -> float | None:
    """Seconds since `sock` (established TCP) was accepted when it has received no byte; else None."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
    if len(info) < 136 or _STATE.unpack_from(info, 0)[0] != _TCP_ESTABLISHED:
        return None
    if _BYTES_RECEIVED.unpack_from(info, 128)[0] != 0:
        return None
    return _LAST_DATA_RECV.unpack_from(info, 52)[0] / 1000.0


class IdleGuard:
    """Shuts down this process's TCP connections to `port` that sent nothing for `timeout` seconds."""

    def __init__(self, port: int, timeout: float, interval: float | None = None):
        self.port = port
        self.timeout = timeout
        # a connection goes within timeout + interval; a pass costs ~0.1 ms a new socket on this machine
        self.interval = interval if interval is not None else min(5.0, max(0.05, timeout / 4))
        self.closed = 0
        self._settled: set[int] = set()  # sockets that spoke or are not connections to us: not looked at again
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self) -> int:
        """One pass over this process's descriptors; the number of connections shut down."""
        closed = 0
        try:
            names = os.listdir("/proc/self/fd")
        except OSError:  # no /proc: nothing to look at
            return 0
        settled, seen = self._settled, set()
        for name in names:
            fd = int(name)
            try:
                st = os.fstat(fd)
                if not stat.S_ISSOCK(st.st_mode):
                    continue
                target = st.st_ino
                seen.add(target)
                if target in settled:
                    continue
                copy = os.dup(fd)  # our own reference: the socket cannot change under us
            except OSError:  # closed meanwhile (or the listdir's own descriptor)
                continue
            try:
                sock = socket.socket(fileno=copy)
            except OSError:
                os.close(copy)
                continue
            try:
                if (
                    sock.family not in (socket.AF_INET, socket.AF_INET6)
                    or sock.type != socket.SOCK_STREAM
                    or sock.getsockname()[1] != self.port
                ):  # the link, an outgoing socket
                    settled.add(target)
                    continue
                idle = never_spoke_for(sock)
                if idle is None:  # spoke (or is the listener): granian's timeouts apply
                    settled.add(target)
                elif idle >= self.timeout:
                    sock.shutdown(socket.SHUT_RDWR)  # the server's own descriptor sees the end too
                    closed += 1
            except OSError:
                pass
            finally:
                sock.close()  # only our copy; the server closes its own
        settled &= seen  # forget closed sockets (their inode numbers come back)
        self.closed += closed
        return closed

    def start(self) -> IdleGuard:
        if not hasattr(socket, "TCP_INFO"):  # not Linux: no tcp_info to read
            return self
        self._thread = threading.Thread(target=self._run, name="idle-guard", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sweep()
