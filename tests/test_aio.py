"""The asyncio wrapper, over loopback against the OpenAI-compatible emulator.

No pytest-asyncio: each test drives its coroutine with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from typing import Awaitable, Callable, Iterator, List, Optional

import pytest
import requests

import llmclients
from llmclients.aio import THREAD_NAME, AsyncClient, AsyncStream
from llmclients.aio import _pool as pool
from llmclients.aio._channel import Channel, Waker
from llmclients.testing import OpenAIEmulator, Reply
from llmclients.testing import _serving as server

MODEL = "emulator-1"


def aio_threads() -> int:
    """Threads of llmclients.aio, busy or idle, and their launcher."""
    return sum(thread.name.startswith(THREAD_NAME) for thread in threading.enumerate())


def busy_threads() -> int:
    """Threads of llmclients.aio opening or reading a stream."""
    return pool.THREADS.busy


def eventually(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Whether ``predicate`` comes true within ``timeout``: a loaded machine may
    wake a thread long after its own timer (idle threads end after 0.2 s)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    assert eventually(lambda: aio_threads() == 0), "a reading thread of an earlier test is still running"
    yield
    assert eventually(lambda: aio_threads() == 0), "a reading thread outlived its test by over 3 s"


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIEmulator]:
    # socketserver listens with a backlog of 5: beyond that, simultaneous
    # connects lose their SYN and retry it a second later.
    monkeypatch.setattr(server.Server, "request_queue_size", 128)
    with OpenAIEmulator() as emulator:
        yield emulator


def make_client(emulator: OpenAIEmulator) -> llmclients.Provider:
    # requests keeps 10 connections per host; the concurrency tests use more.
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))
    return llmclients.OpenAICompatible(
        base_url=emulator.base_url, model=MODEL, max_retries=0, session=session
    )


@pytest.fixture
def aclient(emulator: OpenAIEmulator) -> AsyncClient:
    return AsyncClient(make_client(emulator))


def words(count: int, prefix: str = "w") -> List[str]:
    return [f"{prefix}{i} " for i in range(count)]


# --- the same API as the blocking client -------------------------------------------------


def test_stream_yields_deltas_and_describes_the_reply(emulator: OpenAIEmulator, aclient: AsyncClient) -> None:
    emulator.enqueue(Reply(deltas=["Hello", ", ", "world"], delay=0.01, finish_reason="length"))

    async def main() -> AsyncStream:
        async with aclient.stream("Hi", temperature=0.5) as stream:
            assert [text async for text in stream] == ["Hello", ", ", "world"]
        return stream

    stream = asyncio.run(main())
    assert stream.text == "Hello, world"
    assert stream.finish_reason == "length"
    assert stream.usage == llmclients.Usage(prompt_tokens=1, completion_tokens=3, total_tokens=4)
    assert stream.model == MODEL
    assert stream.done
    assert emulator.last_request.json()["temperature"] == 0.5


def test_complete_returns_what_the_blocking_client_returns(
    emulator: OpenAIEmulator, aclient: AsyncClient
) -> None:
    emulator.enqueue(Reply(text="one two three"), Reply(text="one two three"))
    blocking = aclient.client.complete("Hi")
    reply = asyncio.run(aclient.complete("Hi"))
    assert isinstance(reply, llmclients.Completion)
    assert reply == blocking
    assert str(reply) == "one two three"


def test_awaiting_a_stream_sends_the_request(emulator: OpenAIEmulator, aclient: AsyncClient) -> None:
    emulator.enqueue(Reply(text="a b"))

    async def main() -> str:
        stream = aclient.stream("Hi")
        assert not emulator.requests  # nothing is sent before the stream is awaited
        stream = await stream
        assert len(emulator.requests) == 1
        return (await stream.completion()).text

    assert asyncio.run(main()) == "a b"


def test_from_name(emulator: OpenAIEmulator) -> None:
    emulator.enqueue(Reply(text="by name"))
    aclient = AsyncClient.from_name("openai", base_url=emulator.base_url, model=MODEL, buffer_size=8)
    assert isinstance(aclient.client, llmclients.OpenAICompatible)
    assert aclient.buffer_size == 8
    assert asyncio.run(aclient.complete("Hi")).text == "by name"


def test_conversation_sends_history_and_resumes_from_its_state(
    emulator: OpenAIEmulator, aclient: AsyncClient
) -> None:
    emulator.enqueue(Reply(text="first"), Reply(text="second"), Reply(text="third"))

    async def main() -> None:
        conv = aclient.conversation([{"role": "system", "content": "Be brief."}])
        assert (await conv.send("one")).text == "first"
        async with conv.stream("two") as stream:
            assert [text async for text in stream] == ["second"]
        state = conv.to_dict()
        resumed = aclient.conversation(state=state)
        assert (await resumed.send("three")).text == "third"
        assert [m["content"] for m in resumed.messages] == [
            "Be brief.",
            "one",
            "first",
            "two",
            "second",
            "three",
            "third",
        ]

    asyncio.run(main())
    assert len(emulator.last_request.json()["messages"]) == 6


# --- errors cross the thread boundary unchanged -----------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, llmclients.AuthenticationError),
        (404, llmclients.NotFoundError),
        (429, llmclients.RateLimitError),
        (500, llmclients.ServerError),
    ],
)
def test_error_statuses_raise_the_blocking_classes(
    emulator: OpenAIEmulator, aclient: AsyncClient, status: int, error: type
) -> None:
    body = {"error": {"message": "no such luck", "type": "x"}}
    emulator.enqueue(*[Reply(status=status, body=body)] * 3)
    with pytest.raises(error) as blocking:
        aclient.client.complete("Hi")

    async def main() -> None:
        with pytest.raises(error) as raised:
            async with aclient.stream("Hi"):
                pass  # pragma: no cover
        assert type(raised.value) is type(blocking.value)
        assert raised.value.status_code == status
        assert "no such luck" in str(raised.value)
        with pytest.raises(error):
            await aclient.complete("Hi")

    asyncio.run(main())


def test_mid_stream_drop_raises_with_the_text_received(
    emulator: OpenAIEmulator, aclient: AsyncClient
) -> None:
    reply = Reply(deltas=words(30), delay=0.005, drop_after=2000)  # dropped while the loop reads
    emulator.enqueue(reply, reply)
    with pytest.raises(llmclients.StreamInterruptedError) as blocking:
        aclient.client.complete("Hi")

    async def main() -> None:
        received = []
        with pytest.raises(llmclients.StreamInterruptedError) as raised:
            async for text in aclient.stream("Hi"):
                received.append(text)
        assert raised.value.partial_text == "".join(received) == blocking.value.partial_text
        assert received and len(received) < 30

    asyncio.run(main())


def test_the_idle_timeout_fires_while_the_loop_reads(emulator: OpenAIEmulator) -> None:
    # The socket stays busy with keep-alives; only the loop's timer can end it.
    emulator.enqueue(Reply(deltas=words(3), stall=4, stall_after=2, keepalive=0.05))
    session = requests.Session()
    aclient = AsyncClient(
        llmclients.OpenAICompatible(
            base_url=emulator.base_url, model=MODEL, session=session, timeout=llmclients.Timeout(idle=0.3)
        )
    )

    async def main() -> float:
        received = []
        start = time.monotonic()
        with pytest.raises(llmclients.IdleTimeout) as raised:
            async for text in aclient.stream("Hi"):
                received.append(text)
        assert raised.value.partial_text == "".join(received) == "w0 "
        return time.monotonic() - start

    assert 0.25 < asyncio.run(main()) < 2.5  # idle=0.3, long before the stall ends
    assert emulator.wait_idle()


def test_bad_arguments_raise_when_awaited(aclient: AsyncClient) -> None:
    async def main() -> None:
        with pytest.raises(llmclients.InvalidRequestError, match="warmth"):
            await aclient.complete("Hi", warmth=3)
        with pytest.raises(llmclients.InvalidMessagesError):
            await aclient.stream([{"role": "user"}])

    asyncio.run(main())


# --- concurrency and its bounds -----------------------------------------------------------


def test_streams_run_concurrently_beyond_the_default_executor(
    emulator: OpenAIEmulator, aclient: AsyncClient
) -> None:
    count, alone = 20, 0.3  # each reply: 11 deltas 30 ms apart
    emulator.enqueue(*[Reply(deltas=words(11), delay=0.03) for _ in range(count)])
    streaming = [0]
    peak = [0]

    async def complete() -> str:
        async with aclient.stream("Hi") as stream:
            async for _ in stream:
                if len(stream.text.split()) == 1:  # its first delta
                    streaming[0] += 1
                    peak[0] = max(peak[0], streaming[0])
            streaming[0] -= 1
            return stream.text

    async def main() -> List[str]:
        return await asyncio.gather(*(complete() for _ in range(count)))

    start = time.monotonic()
    texts = asyncio.run(main())
    elapsed = time.monotonic() - start
    assert texts == ["".join(words(11))] * count
    assert peak[0] == count  # all at once, not a pool's worth at a time
    assert elapsed < count * alone / 2  # one after another would take 20 × 0.3 s
    assert eventually(lambda: aio_threads() == 0)


def test_threads_are_reused_from_one_stream_to_the_next(
    emulator: OpenAIEmulator, aclient: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool, "THREAD_IDLE", 1.0)  # a loaded machine may pause 0.2 s between two streams
    emulator.enqueue(*[Reply(deltas=words(3)) for _ in range(10)])

    async def main() -> List[str]:
        return [(await aclient.complete("Hi")).text for _ in range(10)]

    first = next(pool.thread_numbers)
    assert asyncio.run(main()) == ["".join(words(3))] * 10
    started = next(pool.thread_numbers) - first - 1
    # One; two if the machine stalled so long between two streams that the first idled out.
    assert 1 <= started <= 2


def test_streams_wait_for_their_first_deltas_at_once(
    emulator: OpenAIEmulator, aclient: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each model takes 0.4 s to its first token, after the headers: only opening
    # ending at the headers keeps them from adding up (STALL is made longer).
    monkeypatch.setattr(pool, "STALL", 1.0)
    count, first_token = 8, 0.4
    emulator.enqueue(*[Reply(deltas=words(2), stall=first_token, stall_after=0) for _ in range(count)])
    firsts: List[float] = []

    async def first_delta(start: float) -> None:
        async with aclient.stream("Hi") as stream:
            async for _ in stream:
                if len(stream.text.split()) == 1:
                    firsts.append(time.monotonic() - start)

    async def main() -> None:
        start = time.monotonic()
        await asyncio.gather(*(first_delta(start) for _ in range(count)))

    asyncio.run(main())
    assert len(firsts) == count
    assert max(firsts) < count * first_token / 2  # one after another would take count × 0.4 s


def test_no_stream_waits_behind_slow_servers(emulator: OpenAIEmulator) -> None:
    # Every thread that opens streams is waiting for a server's headers: a
    # stream opened now gets a thread of its own once they have stalled.
    # (The fast stream's thread may not have gone idle yet when its reply is
    # complete, so threads are not counted: the slow streams must still be waiting.)
    slow, fast, head_delay = pool.OPENERS, 1, 3.0
    emulator.enqueue(*[Reply(deltas=words(2), head_delay=head_delay) for _ in range(slow)])
    emulator.enqueue(Reply(deltas=words(2)))
    aclient = AsyncClient(make_client(emulator))

    async def main() -> float:
        waiting = [asyncio.create_task(aclient.complete("slow")) for _ in range(slow)]
        while len(emulator.requests) < slow:  # their requests are out: the emulator answers in order
            await asyncio.sleep(0.005)
        start = time.monotonic()
        assert (await aclient.complete("fast")).text == "".join(words(2))
        took = time.monotonic() - start
        assert not any(task.done() for task in waiting), "the fast stream waited behind the slow ones"
        assert busy_threads() >= slow
        await asyncio.gather(*waiting)
        return took

    # STALL (0.05 s) and the reply, not the slow headers, with room for a loaded machine.
    assert asyncio.run(main()) < head_delay - 1.0
    assert len(emulator.requests) == slow + fast


def test_a_stream_cancelled_while_it_waits_for_a_thread_sends_nothing(
    emulator: OpenAIEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool, "STALL", 0.2)  # ample time to cancel it first
    emulator.enqueue(*[Reply(deltas=words(2), head_delay=0.3)] * pool.OPENERS, Reply(deltas=words(2)))
    aclient = AsyncClient(make_client(emulator))

    async def main() -> List[str]:
        slow = [asyncio.create_task(aclient.complete("slow")) for _ in range(pool.OPENERS)]
        while len(emulator.requests) < pool.OPENERS:  # every opener waits for its headers now
            await asyncio.sleep(0.005)
        waiting = asyncio.create_task(aclient.complete("never sent"))
        await asyncio.sleep(0.01)  # queued: a thread comes only after STALL
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return [(await task).text for task in slow]

    assert asyncio.run(main()) == ["".join(words(2))] * pool.OPENERS
    time.sleep(pool.STALL * 5)  # long past when a thread would have taken it
    assert [r.json()["messages"][-1]["content"] for r in emulator.requests] == ["slow"] * pool.OPENERS


@pytest.mark.parametrize(
    "framing, threads_midway",
    [
        # The thread sends the request and reads up to the first delta (retries
        # may still happen until then); the loop reads the rest from the socket.
        ("chunked", 0),
        # A close-delimited body cannot be read without blocking: its thread reads it.
        ("close", 1),
    ],
)
def test_who_reads_the_reply_after_its_first_delta(
    emulator: OpenAIEmulator, aclient: AsyncClient, framing: str, threads_midway: int
) -> None:
    # A pause after the third delta: the opening thread has time to go idle
    # (or not) before the stream goes on, however loaded the machine.
    emulator.enqueue(Reply(deltas=words(10), delay=0.02, framing=framing, stall=1.5, stall_after=4))
    seen: List[int] = []

    async def main() -> str:
        async with aclient.stream("Hi") as stream:
            async for _ in stream:
                if len(stream.text.split()) == 3:
                    deadline = time.monotonic() + 1.0
                    while busy_threads() != threads_midway and time.monotonic() < deadline:
                        await asyncio.sleep(0.01)
                    seen.append(busy_threads())
            return stream.text

    assert asyncio.run(main()) == "".join(words(10))
    assert seen == [threads_midway]


def test_max_streams_bounds_the_open_streams(emulator: OpenAIEmulator) -> None:
    aclient = AsyncClient(make_client(emulator), max_streams=2)
    emulator.enqueue(*[Reply(deltas=words(5), delay=0.02) for _ in range(5)])
    peak, open_streams = [0], [0]

    async def complete() -> str:
        async with aclient.stream("Hi") as stream:
            open_streams[0] += 1
            # Streams, not threads: a thread frees its stream's slot a moment
            # before it counts as idle again.
            peak[0] = max(peak[0], open_streams[0])
            text = (await stream.completion()).text
        open_streams[0] -= 1
        return text

    async def main() -> List[str]:
        # A stream cancelled while it waits for a slot must not keep one.
        waiting = [asyncio.create_task(complete()) for _ in range(3)]
        await asyncio.sleep(0.01)
        waiting[2].cancel()
        results = await asyncio.gather(*waiting, return_exceptions=True)
        assert isinstance(results[2], asyncio.CancelledError)
        return [r for r in results[:2] if isinstance(r, str)] + list(
            await asyncio.gather(*(complete() for _ in range(3)))
        )

    assert asyncio.run(main()) == ["".join(words(5))] * 5
    assert peak[0] == 2


def test_slow_consumer_holds_the_reader_back(emulator: OpenAIEmulator) -> None:
    bound = 3
    aclient = AsyncClient(make_client(emulator), buffer_size=bound)
    emulator.enqueue(Reply(deltas=words(40), delay=0))  # the server sends as fast as it can
    buffered: List[int] = []
    read_ahead: List[int] = []

    async def main() -> None:
        async with aclient.stream("Hi") as stream:
            blocking = stream._stream
            assert blocking is not None
            async for _ in stream:
                await asyncio.sleep(0.005)  # a slow consumer
                buffered.append(stream.buffered)
                # Deltas the thread took from the blocking stream, not yet yielded here.
                read_ahead.append(len(blocking.text.split()) - len(stream.text.split()))
            assert stream.text == "".join(words(40))

    asyncio.run(main())
    assert max(buffered) == bound  # the buffer filled up...
    assert max(read_ahead) <= bound + 1  # ...and the thread held one more delta, no more


# --- cancellation ---------------------------------------------------------------------------


async def by_task_cancel(aclient: AsyncClient, kept: List[AsyncStream]) -> None:
    started = asyncio.Event()

    async def consume() -> None:
        stream = aclient.stream("Hi")
        kept.append(stream)  # alive: the cancellation itself must close it
        async for _ in stream:
            if len(stream.text.split()) == 2:
                started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def by_break(aclient: AsyncClient, kept: List[AsyncStream]) -> None:
    received = 0
    async for _ in aclient.stream("Hi"):  # nothing else refers to this stream
        received += 1
        if received == 2:
            break


async def by_leaving_async_with(aclient: AsyncClient, kept: List[AsyncStream]) -> None:
    async with aclient.stream("Hi") as stream:
        kept.append(stream)
        async for _ in stream:
            if len(stream.text.split()) == 2:
                break


async def by_aclose(aclient: AsyncClient, kept: List[AsyncStream]) -> None:
    stream = await aclient.stream("Hi")
    kept.append(stream)
    assert await stream.__anext__()
    assert await stream.__anext__()
    await stream.aclose()
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def by_wait_for(aclient: AsyncClient, kept: List[AsyncStream]) -> None:
    async def consume() -> None:
        stream = aclient.stream("Hi")
        kept.append(stream)
        async for _ in stream:
            pass

    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(consume(), timeout=0.15)


@pytest.mark.parametrize("cancel", [by_task_cancel, by_break, by_leaving_async_with, by_aclose, by_wait_for])
@pytest.mark.parametrize(
    "reply",
    [
        # Slow enough that 20 writes take 2 s: time to close, even on a loaded machine.
        Reply(deltas=words(200), delay=0.1),
        # Stalled after two deltas: the reading thread is blocked in recv(). The
        # keep-alives, which yield no delta, let the emulator notice the close.
        Reply(deltas=words(5), stall=30, stall_after=3, keepalive=0.2),
    ],
    ids=["streaming", "blocked-in-read"],
)
def test_cancellation_closes_the_connection_and_ends_the_thread(
    emulator: OpenAIEmulator,
    aclient: AsyncClient,
    cancel: Callable[[AsyncClient, List[AsyncStream]], Awaitable[None]],
    reply: Reply,
) -> None:
    emulator.enqueue(reply)
    baseline = threading.active_count()
    kept: List[AsyncStream] = []

    async def main() -> None:
        await cancel(aclient, kept)
        stopped = time.monotonic()
        while aio_threads() and time.monotonic() - stopped < 3:
            await asyncio.sleep(0.005)  # the loop keeps running: nothing here may block it
        assert aio_threads() == 0

    asyncio.run(main())
    assert emulator.wait_idle()
    assert emulator.last_request.outcome == "client closed"
    assert len(emulator.write_times) < 20  # role chunk, two deltas, a few keep-alives or deltas
    assert eventually(lambda: threading.active_count() <= baseline)


def test_cancelling_before_the_response_releases_the_caller_at_once() -> None:
    # A server that accepts connections and never answers: the thread is inside
    # requests, waiting for the headers, where no socket is reachable. The
    # caller is released at once; the thread ends with the client's read timeout (2 s).
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
        client = llmclients.OpenAICompatible(base_url=url, model=MODEL, timeout=(1, 2.0), max_retries=0)
        aclient = AsyncClient(client)

        async def main() -> float:
            task = asyncio.create_task(aclient.complete("Hi"))
            await asyncio.sleep(0.1)
            start = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return time.monotonic() - start

        assert asyncio.run(main()) < 1.0  # not the 2 s until the read timeout
        assert eventually(lambda: aio_threads() == 0, timeout=4.0)
    finally:
        listener.close()


def test_closing_never_shuts_down_a_connection_given_back_to_the_pool(
    emulator: OpenAIEmulator, aclient: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A sized body (read by its thread to the end) without "data: [DONE]" goes
    # back to the pool before the thread reports the end. Closing the stream
    # in that window must leave the connection alone: another request has it.
    chunk = {"model": MODEL, "choices": [{"delta": {"content": "pooled"}, "finish_reason": "stop"}]}
    emulator.enqueue(
        Reply(raw=b"data: " + json.dumps(chunk).encode() + b"\n\n", framing="length"),
        Reply(deltas=words(5), delay=0.02),
    )
    in_window, resume = threading.Event(), threading.Event()
    end = Channel._end

    def end_later(channel: Channel, error: Optional[BaseException]) -> None:
        if not in_window.is_set():
            in_window.set()
            resume.wait(5)
        end(channel, error)

    monkeypatch.setattr(Channel, "_end", end_later)

    async def main() -> None:
        first = await aclient.stream("Hi")
        assert await first.__anext__() == "pooled"
        assert await asyncio.to_thread(in_window.wait, 5)
        second = await aclient.stream("Hi")  # on the pooled connection
        await first.aclose()
        resume.set()
        assert (await second.completion()).text == "".join(words(5))

    asyncio.run(main())
    # The emulator notes an exchange complete a moment after its last write.
    assert eventually(lambda: [request.outcome for request in emulator.requests] == ["complete", "complete"])
    assert len(emulator.requests) == 2


# --- event loops ---------------------------------------------------------------------------


def test_works_inside_a_loop_that_is_already_running(emulator: OpenAIEmulator, aclient: AsyncClient) -> None:
    # As in Jupyter: the loop runs elsewhere; the code is a coroutine scheduled on it.
    emulator.enqueue(Reply(text="from a running loop", delay=0.01))
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    try:
        future = asyncio.run_coroutine_threadsafe(aclient.complete("Hi"), loop)
        assert future.result(timeout=5).text == "from a running loop"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(timeout=5)
        loop.close()


EXIT_SCRIPT = """
import asyncio, threading, time
import llmclients
from llmclients.aio import AsyncClient, THREAD_NAME
from llmclients.testing import OpenAIEmulator, Reply

emulator = OpenAIEmulator().start()
emulator.enqueue(
    # close-delimited, so read by its thread: blocked in recv()
    Reply(deltas=["x "] * 5, stall=60, stall_after=2, framing="close"),
    Reply(deltas=["y "] * 2000),  # chunked, read by the loop: its buffer full
)
client = llmclients.OpenAICompatible(base_url=emulator.base_url, model="m")
aclient = AsyncClient(client, buffer_size=2)
kept = []

async def main():
    for _ in range(2):
        stream = await aclient.stream("Hi")
        await stream.__anext__()
        kept.append(stream)  # never closed

loop = asyncio.new_event_loop()
loop.run_until_complete(main())
loop.close()
time.sleep(1.0)
print(sum(t.name.startswith(THREAD_NAME) for t in threading.enumerate()), flush=True)
"""


def test_a_closed_loop_with_open_streams_does_not_hang_the_exit() -> None:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(EXIT_SCRIPT)], capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - start < 8
    # The stream the loop read stopped with the loop; the thread blocked in
    # recv() is a daemon, which the exit does not wait for.
    assert done.stdout.split() == ["1"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_threads_of_its_own(emulator: OpenAIEmulator, aclient: AsyncClient) -> None:
    emulator.enqueue(Reply(deltas=words(2)), Reply(deltas=words(3)))
    assert asyncio.run(aclient.complete("parent")).text == "".join(words(2))
    assert aio_threads() > 0  # idle, waiting for work: none of them exists in the child
    pid = os.fork()
    if pid == 0:  # the child: its exit status says whether it streamed
        try:
            reply = asyncio.run(asyncio.wait_for(aclient.complete("child"), 5))
            ok = reply.text == "".join(words(3))
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_waker_runs_what_threads_hand_it_in_order_and_survives_a_failure() -> None:
    ran: List[object] = []
    reported: List[BaseException] = []

    async def main() -> Waker:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _, context: reported.append(context["exception"]))
        waker = Waker(loop)

        def fail(_: object) -> None:
            raise ValueError("a callback failed")

        def hand_over() -> None:  # as a reading thread does: a response, a delta, a stream to read
            assert waker.call(ran.append, "first") and waker.call(fail, None) and waker.call(ran.append, "second")

        thread = threading.Thread(target=hand_over)
        thread.start()
        thread.join()
        for _ in range(500):
            if len(ran) == 2:
                break
            await asyncio.sleep(0.01)
        return waker

    waker = asyncio.run(main())
    assert ran == ["first", "second"]
    assert [str(error) for error in reported] == ["a callback failed"]
    assert not waker.call(ran.append, "after")  # the loop is closed: nothing runs it
