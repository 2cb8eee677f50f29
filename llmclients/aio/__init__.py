"""asyncio wrappers around the blocking clients.

The package holds the public classes (:mod:`~llmclients.aio._client`), each
stream's channel between its thread and the loop (:mod:`~llmclients.aio._channel`),
the thread pool (:mod:`~llmclients.aio._pool`) and a conversation's tool loop
(:mod:`~llmclients.aio._tools`).

::

    from llmclients.aio import AsyncClient

    aclient = AsyncClient(llmclients.OpenAICompatible(base_url=...))
    async with aclient.stream("Write a haiku") as stream:
        async for text in stream:
            print(text, end="")
    reply = await aclient.complete("Hi")
    conv = aclient.conversation()
    await conv.send("Hi")
    conv = aclient.conversation(tools=[get_weather])   # sync or async functions
    reply = await conv.run("Weather in Paris?")       # the tool loop, awaited

Options, return values, attributes and exception types are the blocking API's.
A request is sent when its stream is first awaited (``await``, ``async with``
or ``async for``); errors that the blocking ``stream()`` raises at once are
raised there.

Threading model
---------------
A stream is opened on a **daemon thread**, which sends the request
(``requests`` blocks until the response headers arrive) and reads up to the
first delta: until then a failed attempt may be retried, which means waiting.
Then, if the body is chunked (as streamed replies are) and the loop can watch
sockets, the thread hands the stream to the **event loop** and is free: the
loop watches the socket (``add_reader``) and, whenever it is readable, reads
what has arrived through the same body reader and decoders, without blocking
(:meth:`~llmclients._core.stream.Stream.set_nonblocking`); the read, idle and total
timeouts run on loop timers. A body the loop cannot read so (close-delimited
or sized, or a loop without ``add_reader``, as on Windows' proactor) is read by
its thread to the end.

The threads are shared by all clients and loops, and reused. Sending a
request is CPU work under the GIL, and more threads at it take the GIL from
the loop, whose deltas then wait: :data:`OPENERS` (one) stream at a time is
sent, each until its response headers arrive. Waiting for the first delta is
not, and happens on as many threads as streams wait for theirs. No stream
waits behind a slow server: when no stream has been sent for :data:`STALL`
seconds while some wait, every waiting stream gets a thread of its own. So
there are as many threads as the streams being opened (or read by a thread)
at once need, never more than ``max_streams`` per client, and idle ones end
after :data:`THREAD_IDLE` seconds.

Why not a thread per stream throughout: every delta was then a thread
wake-up and a hand-off of the GIL to the loop, which cost more CPU than the
delta itself (measured: 200 paced streams took 1.0–1.2 s of CPU that way, 0.65–0.7 s
read by the loop). Why not an executor: a pool of N workers (the default
executor has ``min(32, cpus + 4)``) makes stream N+1 wait until one of the
first N *ends*.

Bounds:

* **streams**: at most ``max_streams`` (default :data:`DEFAULT_MAX_STREAMS`)
  open at once per :class:`AsyncClient`, so busy on at most that many threads. A
  stream opened beyond that waits, without blocking the loop, first come
  first served, until another stream has ended; ``max_streams=None`` removes
  the bound.
* **memory**: between the reader and the consumer sit at most ``buffer_size``
  deltas (default :data:`DEFAULT_BUFFER_SIZE`). When they are not taken, the
  reader (the thread, or the loop, which stops watching the socket) waits
  before reading on, so a slow consumer slows the reading (and, through TCP,
  the server) instead of the reply piling up in memory.

A thread's hand-off is batched: it appends to the buffer under a lock and
wakes the loop only when the consumer is waiting on an empty buffer; a
consumer that wakes takes every delta buffered meanwhile; and the wake-ups of
all the streams of one loop that arrive while it is busy share one
``call_soon_threadsafe``.

Cancellation
------------
Closing an :class:`AsyncStream` — ``aclose()``, leaving ``async with``,
dropping the stream (as a ``break`` out of ``async for stream ...`` does),
cancelling the task that awaits it, an ``asyncio.wait_for`` timeout — returns
at once and stops the reading. A stream the loop reads is closed there and
then (its socket unwatched first). A stream its thread reads: the buffer is
dropped, and the loop shuts the stream's socket down, which wakes a thread
blocked in ``recv``; the thread then closes its
:class:`~llmclients._core.stream.Stream` itself. (``Stream.close()`` must not be
called from the loop then: closing the generator that another thread is
running raises ``ValueError``.) The socket is shut down only while the
response still owns its connection, never once it has gone back to the pool
where another request may be using it.

Until the response headers have arrived the socket is inside ``requests``:
a stream cancelled then releases its caller at once; its thread finishes the
request (within the client's connect and read timeouts, and its total) and
then closes the response without reading it. A stream cancelled before a thread took it sends
no request at all.

Event loops
-----------
A stream belongs to the loop that opened it. Nothing here starts, runs or
nests a loop, so it works inside one that is already running (Jupyter). The
threads are daemons and never block interpreter exit. A stream dropped with
its loop is closed like any dropped stream; one still referenced stops reading:
the loop's reading ends with the loop, and a thread stops once it finds the
loop closed (when it would wake it, or, with its buffer full, within
:data:`LOOP_CHECK_INTERVAL`).

Many concurrent streams to one host need as many connections: a client's own
session keeps its ``pool_size`` (100) per host for reuse, and closes those
beyond it as their streams end. A ``session`` you pass in keeps requests' 10
unless you mount an ``HTTPAdapter(pool_maxsize=...)`` on it; set
``session.trust_env = False`` on it unless you need requests to read proxies
and ``~/.netrc`` from the environment: it does so on every request.

``benchmarks/bench_aio.py`` measures throughput, delay and cancellation.
"""

from __future__ import annotations

from .._public import expose
from ._client import DEFAULT_BUFFER_SIZE, DEFAULT_MAX_STREAMS, AsyncClient, AsyncConversation, AsyncStream
from ._pool import THREAD_NAME
from ._tools import AsyncToolLoopStream

__all__ = [
    "DEFAULT_BUFFER_SIZE",
    "DEFAULT_MAX_STREAMS",
    "THREAD_NAME",
    "AsyncClient",
    "AsyncConversation",
    "AsyncStream",
    "AsyncToolLoopStream",
]

expose(globals(), __name__, __all__)
