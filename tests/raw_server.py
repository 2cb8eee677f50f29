"""Small loopback TCP servers for tests that need bytes no HTTP server sends:
:class:`RawServer` answers every connection with scripted bytes, dripped if
asked; :class:`CountingRelay` forwards to another port (a proxy under test)
and counts the connections it carried. Both stop by themselves: at the end
of a ``with`` block, and every loop is bounded."""

from __future__ import annotations

import select
import socket
import threading
import time
from typing import List, Optional, Tuple


class _Listener:
    """A thread that accepts connections on a free loopback port until stopped."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []

    def __enter__(self) -> _Listener:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            self.connections += 1
            thread = threading.Thread(target=self._serve_and_close, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve_and_close(self, conn: socket.socket) -> None:
        try:
            self.serve(conn)
        except OSError:  # the client went away
            pass
        finally:
            conn.close()

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError


class RawServer(_Listener):
    """Reads a request head, then sends ``head`` at once and ``drip`` one
    byte every ``interval`` seconds (for at most ``limit`` seconds)."""

    def __init__(
        self,
        head: bytes = b"",
        drip: bytes = b"",
        interval: float = 0.05,
        limit: float = 15.0,
        read_request: bool = True,
    ) -> None:
        super().__init__()
        self.read_request = read_request
        self.head = head
        self.drip = drip
        self.interval = interval
        self.limit = limit
        #: When the client closed the connection (monotonic time), per connection.
        self.closed_at: List[float] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self, conn: socket.socket) -> None:
        if self.read_request:
            _read_head(conn, self._stop)
        conn.sendall(self.head)
        conn.settimeout(0.01)
        end = time.monotonic() + self.limit
        for byte in self.drip:
            if self._stop.is_set() or time.monotonic() > end or _closed(conn):
                break
            conn.sendall(bytes([byte]))
            self._stop.wait(self.interval)
        self.closed_at.append(time.monotonic())


class CountingRelay(_Listener):
    """Forwards each connection to ``127.0.0.1:target`` and counts them."""

    def __init__(self, target: int) -> None:
        super().__init__()
        self.target = target

    def serve(self, conn: socket.socket) -> None:
        with socket.create_connection(("127.0.0.1", self.target), timeout=5) as upstream:
            pairs: List[Tuple[socket.socket, socket.socket]] = [(conn, upstream), (upstream, conn)]
            while not self._stop.is_set():
                readable, _, _ = select.select([conn, upstream], [], [], 0.05)
                for source, sink in pairs:
                    if source in readable:
                        data = source.recv(65536)
                        if not data:
                            return
                        sink.sendall(data)


def _read_head(conn: socket.socket, stop: threading.Event) -> Optional[bytes]:
    """The request's head (its body, if any, is left unread)."""
    conn.settimeout(0.05)
    data = b""
    while b"\r\n\r\n" not in data and not stop.is_set() and len(data) < 1 << 20:
        try:
            more = conn.recv(65536)
        except socket.timeout:
            continue
        if not more:
            return None
        data += more
    return data


def _closed(conn: socket.socket) -> bool:
    """Whether the client has closed or shut down its end (reads pending data away)."""
    try:
        return conn.recv(65536) == b""
    except socket.timeout:
        return False
