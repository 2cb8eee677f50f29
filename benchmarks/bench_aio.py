"""Benchmark of :mod:`llmclients.aio`: many concurrent streams, delivery delay, cancellation.

::

    python benchmarks/bench_aio.py [--streams 200] [--deltas 20] [--pace 0.02] [--cancel 100]
    python benchmarks/bench_aio.py --quick    # 20 streams, 10 cancelled: a smoke test

Measures, in one run:

* one stream alone, then ``--streams`` concurrent streams through
  :class:`~llmclients.aio.AsyncClient`: wall time as a multiple of the
  *floor* (target: at most 1.15×), and the delay from the server's write of
  each delta to the body of the ``async for`` that receives it (target: p99
  at most 50 ms);
* the floor: the CPU time of opening the streams one after another with
  this package's client, in one thread with nothing else to do, plus one
  stream alone. Their Python runs under one GIL, so the last stream cannot
  start before that much CPU has been spent, whatever the design; the ratio
  to one stream alone is printed too, as information (the floor itself is
  1.4–1.6× one stream alone on a 2-core machine, so a target in those terms
  measures the machine more than the package);
* the same streams with ``asyncio.to_thread`` around each ``next()`` (its
  executor given one worker per stream, its best case) as the baseline;
* ``--cancel`` streams cancelled in flight: how long until the server has seen
  every connection closed, and until the thread count is back to its baseline
  (target: 1 s).

The server runs in a child process, so that it does not take the client's
GIL; it writes the OpenAI emulator's bytes (see :class:`StampingServer`). Each delta carries the ``time.monotonic()`` at which the server
wrote it (CLOCK_MONOTONIC is system-wide on Linux, so comparable across
processes, unlike ``perf_counter`` on some systems).
"""

from __future__ import annotations

import argparse
import asyncio
import email.message
import multiprocessing
import re
import socket
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any, ClassVar, Dict, List, Optional, Tuple

import requests

import llmclients
from llmclients.aio import THREAD_NAME, AsyncClient
from llmclients.testing import OpenAIEmulator, RecordedRequest, Reply

#: Replaced, in each delta, by the server's clock when it writes the event.
MARK = b"@T@"


# --- the server, in its own process ----------------------------------------------------


class StampingServer(asyncio.Protocol):
    """One connection of the benchmark's server: HTTP/1.1 keep-alive, one
    request at a time, each answered with the OpenAI emulator's own events,
    the ``deltas`` deltas (a number in the request's body) ``pace`` seconds
    apart, each ``"t=<monotonic time of its write> "``, chunked.

    Why not :class:`~llmclients.testing.OpenAIEmulator` itself: its thread per
    connection costs the server about 3 ms of CPU per stream, so 200 streams
    started at once got their first byte up to 0.4 s late whatever the client
    (a bare selector over raw sockets reached only 1.9× one stream alone). The
    client is what is measured here, so the server is one asyncio loop, and
    writes the bytes the emulator would.
    """

    emulator = OpenAIEmulator()
    stats: ClassVar[Counter[str]] = Counter()
    open_connections: ClassVar[int] = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""
        self.pending: List[bytes] = []  # the current reply's events not yet written
        self.timer: Optional[asyncio.TimerHandle] = None
        StampingServer.open_connections += 1
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        StampingServer.open_connections -= 1
        if self.pending:
            self.stats["client closed"] += 1
            self.pending = []
        if self.timer is not None:
            self.timer.cancel()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head, sep, rest = self.buffer.partition(b"\r\n\r\n")
        if not sep:
            return
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
        if len(rest) < length:
            return
        body, self.buffer = rest[:length], rest[length:]
        request = RecordedRequest("POST", head.split()[1].decode(), email.message.Message(), body)
        options = request.json()
        reply = Reply(deltas=["t=" + MARK.decode() + " "] * options["deltas"])
        self.pending = list(self.emulator.events(reply, request))
        self.pending.reverse()
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        self.write_until_paced(options["pace"], first=True)

    def write_until_paced(self, pace: float, first: bool = False) -> None:
        """Write events up to and including the next stamped one, then wait ``pace``."""
        self.timer = None
        while self.pending:
            event = self.pending.pop()
            stamped = MARK in event
            if stamped and not first:
                self.pending.append(event)
                self.timer = asyncio.get_running_loop().call_later(pace, self.write_stamped, pace)
                return
            first = first and not stamped
            self.write_event(event)
        self.transport.write(b"0\r\n\r\n")
        self.stats["complete"] += 1

    def write_stamped(self, pace: float) -> None:
        self.write_event(self.pending.pop())
        self.write_until_paced(pace)

    def write_event(self, event: bytes) -> None:
        event = event.replace(MARK, b"%.6f" % time.monotonic())
        self.transport.write(b"%x\r\n%s\r\n" % (len(event), event))


def serve(conn: Connection) -> None:
    """The child process: serve, and answer the parent's questions until told to stop."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(StampingServer, "127.0.0.1", 0, backlog=1024)
        port = server.sockets[0].getsockname()[1]
        conn.send(f"http://127.0.0.1:{port}/v1")
        stopped = loop.create_future()

        def answer() -> None:
            command = conn.recv()
            if command == "stats":
                conn.send({"open": StampingServer.open_connections, "outcomes": dict(StampingServer.stats)})
            elif command == "reset":
                StampingServer.stats.clear()
                conn.send(None)
            else:
                conn.send(None)
                stopped.set_result(None)

        loop.add_reader(conn.fileno(), answer)
        await stopped
        server.close()

    asyncio.run(main())


class Server:
    """The parent's handle on the child process."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=serve, args=(child,), daemon=True)
        self._process.start()
        self.base_url: str = self._conn.recv()

    def ask(self, command: str) -> Any:
        self._conn.send(command)
        return self._conn.recv()

    def stop(self) -> None:
        self.ask("stop")
        self._process.join(5)


# --- the client side ------------------------------------------------------------------


def make_client(base_url: str, connections: int) -> llmclients.Provider:
    # requests keeps 10 connections per host unless told otherwise.
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=connections))
    return llmclients.OpenAICompatible(base_url=base_url, model="bench", session=session)


def delay_of(text: str, now: float) -> float:
    return now - float(text[2:])


class Run:
    """Wall time, CPU time (of this process: all its threads) and per-delta delays of one phase."""

    def __init__(self) -> None:
        self.delays: List[float] = []
        self.wall = 0.0
        self.cpu = 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.delays)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def aio_stream(aclient: AsyncClient, options: Dict[str, Any], run: Run) -> None:
    async with aclient.stream("go", extra_body=options) as stream:
        async for text in stream:
            run.delays.append(delay_of(text, time.monotonic()))


async def to_thread_stream(client: llmclients.Provider, options: Dict[str, Any], run: Run) -> None:
    stream = await asyncio.to_thread(client.stream, "go", extra_body=options)
    try:
        while True:
            text = await asyncio.to_thread(next, stream, None)
            if text is None:
                return
            run.delays.append(delay_of(text, time.monotonic()))
    finally:
        stream.close()


async def concurrently(count: int, make: Any) -> Run:
    run = Run()
    start, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(make(run) for _ in range(count)))
    run.wall = time.monotonic() - start
    run.cpu = time.process_time() - cpu
    return run


def blocking_cpu_per_stream(base_url: str, options: Dict[str, Any], repeat: int = 5) -> float:
    """CPU seconds the blocking client, read by one thread, spends on one stream."""
    client = make_client(base_url, 1)
    client.complete("go", extra_body=options)  # warm: the connection, the imports
    start = time.process_time()
    for _ in range(repeat):
        client.complete("go", extra_body=options)
    return (time.process_time() - start) / repeat


def sequential_opens(base_url: str, count: int, options: Dict[str, Any]) -> Dict[str, Tuple[float, float]]:
    """Wall and CPU seconds to open ``count`` streams one after another, each
    up to its first bytes, in one thread with nothing else to do (on new
    connections, as in :func:`measure_aio`): with this package's blocking
    client, and with a bare ``requests.Session.post``.

    The CPU time is a floor under any design that opens the streams so in one
    process: their Python runs under one GIL, so the last stream cannot start
    before that much CPU has been spent.
    """
    client = make_client(base_url, count)
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=count))
    body = {"model": "bench", "messages": [{"role": "user", "content": "go"}], "stream": True, **options}

    def with_client() -> Any:
        stream = client.stream("go", extra_body=options)
        next(stream)
        return stream

    def with_requests() -> Any:
        response = session.post(f"{base_url}/chat/completions", json=body, stream=True, timeout=10)
        next(response.iter_content(None))
        return response

    figures = {}
    for label, open_one in (("this client", with_client), ("requests.Session.post", with_requests)):
        open_one().close()  # warm: the imports, the code paths
        opened = []
        start, cpu = time.monotonic(), time.process_time()
        try:
            for _ in range(count):
                opened.append(open_one())
            figures[label] = (time.monotonic() - start, time.process_time() - cpu)
        finally:
            for stream in opened:
                stream.close()
    client.close()
    session.close()
    return figures


def measure_aio(base_url: str, count: int, options: Dict[str, Any]) -> Run:
    aclient = AsyncClient(make_client(base_url, count))
    return asyncio.run(concurrently(count, lambda run: aio_stream(aclient, options, run)))


def measure_to_thread(base_url: str, count: int, options: Dict[str, Any]) -> Run:
    client = make_client(base_url, count)

    async def main() -> Run:
        # Its best case: a worker for every stream (the default executor has 6 here).
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=count + 4))
        return await concurrently(count, lambda run: to_thread_stream(client, options, run))

    return asyncio.run(main())


def aio_threads() -> int:
    return sum(thread.name.startswith(THREAD_NAME) for thread in threading.enumerate())


def measure_cancel(server: Server, count: int, pace: float) -> Tuple[float, float, float, Dict[str, int]]:
    """Cancel ``count`` streams in flight; seconds until the server saw every
    connection closed, until the reading threads were gone, until the thread
    count was back to its baseline; and the requests' outcomes."""
    aclient = AsyncClient(make_client(server.base_url, count))
    options = {"deltas": 10_000, "pace": pace}
    baseline = threading.active_count()
    server.ask("reset")

    async def main() -> Tuple[float, float, float]:
        started = asyncio.Semaphore(0)

        async def consume() -> None:
            async with aclient.stream("go", extra_body=options) as stream:
                async for _ in stream:
                    if len(stream.text.split()) == 3:
                        started.release()

        tasks = [asyncio.create_task(consume()) for _ in range(count)]
        for _ in range(count):
            await started.acquire()
        start = time.monotonic()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        closed = gone = back = None
        while time.monotonic() - start < 10 and None in (closed, gone, back):
            now = time.monotonic() - start
            if closed is None and server.ask("stats")["open"] == 0:
                closed = now
            if gone is None and aio_threads() == 0:
                gone = now
            if back is None and threading.active_count() <= baseline:
                back = now
            await asyncio.sleep(0.002)
        return _or_inf(closed), _or_inf(gone), _or_inf(back)

    closed, gone, back = asyncio.run(main())
    return closed, gone, back, server.ask("stats")["outcomes"]


def _or_inf(value: Optional[float]) -> float:
    return float("inf") if value is None else value


# --- the report ------------------------------------------------------------------------


def row(label: str, run: Run, alone: float) -> str:
    ms = [1000 * run.percentile(q) for q in (0.5, 0.99)] + [1000 * max(run.delays)]
    return (
        f"{label:<36} {run.wall:>7.3f} {run.wall / alone:>7.2f}× {run.cpu:>7.3f} "
        f"{ms[0]:>8.1f} {ms[1]:>8.1f} {ms[2]:>8.1f}"
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, help="concurrent streams (default 200; --quick: 20)")
    parser.add_argument("--deltas", type=int, default=20)
    parser.add_argument("--pace", type=float, default=0.02, help="seconds between deltas")
    parser.add_argument("--cancel", type=int, help="streams to cancel in flight (default 100; --quick: 10)")
    parser.add_argument(
        "--quick", action="store_true", help="fewer streams, as the other benchmarks' --quick"
    )
    args = parser.parse_args(argv)
    # Flags given win over --quick's sizes.
    args.streams = args.streams or (20 if args.quick else 200)
    args.cancel = args.cancel or (10 if args.quick else 100)
    options = {"deltas": args.deltas, "pace": args.pace}

    server = Server()
    try:
        measure_aio(server.base_url, 1, options)  # warm up: imports, first connection
        alone = min(measure_aio(server.base_url, 1, options).wall for _ in range(3))
        blocking_cpu = blocking_cpu_per_stream(server.base_url, options)
        opens = sequential_opens(server.base_url, args.streams, options)
        aio = measure_aio(server.base_url, args.streams, options)
        baseline = measure_to_thread(server.base_url, args.streams, options)
        closed, gone, back, outcomes = measure_cancel(server, args.cancel, args.pace)
    finally:
        server.stop()

    ratio = aio.wall / alone
    floor = opens["this client"][1] + alone
    p99 = 1000 * aio.percentile(0.99)
    print(
        f"{args.streams} concurrent streams of {args.deltas} deltas {1000 * args.pace:.0f} ms apart "
        f"(emulator in a child process; Python {sys.version.split()[0]})\n"
    )
    print(f"{'':<36} {'wall s':>7} {'× alone':>8} {'CPU s':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    print(f"{'one stream alone, AsyncClient':<36} {alone:>7.3f} {1:>7.2f}×")
    print(row(f"{args.streams} streams, AsyncClient", aio, alone))
    print(row(f"{args.streams} streams, to_thread per next()", baseline, alone))
    print("(delay: from the server's write of a delta to the body of the async for;")
    print(" CPU: of the client process, all threads)\n")
    print(
        f"for reference, the blocking client read by a thread spends {1000 * blocking_cpu:.1f} ms of CPU on "
        f"one stream: {args.streams * blocking_cpu:.2f} s for {args.streams} "
        f"({args.streams * blocking_cpu / alone:.2f}× one stream alone), where the AsyncClient, whose loop "
        f"reads the streams after their first delta, spent {aio.cpu:.2f} s\n"
    )
    print(
        f"opening {args.streams} streams one after another, in one thread with nothing else to do "
        "(their CPU time runs under one GIL\nbefore the last stream can start, whatever the design; "
        "and the loop also reads the streams already open meanwhile):"
    )
    for label, (wall, cpu) in opens.items():
        print(
            f"  {label:<22} {wall:.3f} s, {cpu:.3f} s of it CPU: the last stream cannot end before "
            f"{cpu + alone:.3f} s, {(cpu + alone) / alone:.2f}× one stream alone"
        )
    print(
        f"the floor (this client's CPU above, plus one stream alone): {floor:.3f} s; the {args.streams} "
        f"streams took {aio.wall / floor:.2f}× the floor\n"
    )
    print(f"cancel {args.cancel} streams in flight:")
    print(f"  every connection closed, as the server sees it   {1000 * closed:8.1f} ms")
    print(f"  every reading thread ended                        {1000 * gone:8.1f} ms")
    print(f"  thread count back to its baseline                 {1000 * back:8.1f} ms")
    print(f"  outcomes at the server: {outcomes}\n")
    checks = [
        (f"wall ≤ 1.15× the floor: {aio.wall / floor:.2f}× (floor {floor:.3f} s)", aio.wall <= 1.15 * floor),
        (f"p99 delay ≤ 50 ms: {p99:.1f} ms", p99 <= 50),
        (f"cancelled: closed and threads back within 1 s: {max(closed, back):.3f} s", max(closed, back) <= 1),
        (
            f"cancelled: server saw {args.cancel} clients close",
            outcomes.get("client closed", 0) == args.cancel,
        ),
    ]
    for label, ok in checks:
        print(f"  [{'ok' if ok else 'MISSED'}] {label}")
    print(f"  (information: wall {ratio:.2f}× one stream alone, the floor {floor / alone:.2f}×)")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
