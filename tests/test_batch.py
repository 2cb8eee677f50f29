"""llmclients.batch: records in, results out, over real HTTP against the emulator."""

from __future__ import annotations

import collections
import json
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

import llmclients
from llmclients import batch
from llmclients.testing import OpenAIEmulator, RecordedRequest, Reply


class TimedEmulator(OpenAIEmulator):
    """The OpenAI emulator, noting when each chat request arrived."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arrivals: List[float] = []

    def check(self, request: RecordedRequest) -> None:
        self.arrivals.append(time.monotonic())
        super().check(request)


@pytest.fixture
def emulator() -> Iterator[TimedEmulator]:
    with TimedEmulator(default_reply=Reply(deltas=["answer ", "text"], delay=0.01)) as server:
        yield server


def client_for(emulator: OpenAIEmulator) -> llmclients.OpenAICompatible:
    # No retries inside the client: the batch retries, so that a 429 pauses the whole run.
    return llmclients.OpenAICompatible(
        base_url=emulator.base_url, model="m", retry=llmclients.Retry(total=0), timeout=30
    )


def prompts_sent(emulator: OpenAIEmulator) -> collections.Counter[str]:
    return collections.Counter(
        request.json()["messages"][-1]["content"] for request in emulator.requests if request.method == "POST"
    )


def lines(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_jsonl(path: Path, records: List[Any]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


# --- records ---------------------------------------------------------------------------


def test_jsonl_records_ids_options_and_bad_lines(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"id": "a", "prompt": "one", "temperature": 0.5}\n'
        "not json\n"
        '{"messages": [{"role": "user", "content": "two"}]}\n'
        "\n"
        '{"prompt": "same"}\n'
        '{"prompt": "same"}\n'
        '{"id": "a", "prompt": "dup"}\n'
        '{"id": 7, "prompt": "seven", "model": "x"}\n'
        '{"prompt": ""}\n'
    )
    bad: List[batch.BadRecordError] = []
    records = list(batch.read_records(source, report=bad.append))
    assert [record.line for record in records] == [1, 3, 5, 6, 8]
    assert records[0].id == "a" and records[0].options == {"temperature": 0.5}
    assert records[4].id == "7" and records[4].options == {"model": "x"}
    # identical records are two records, with stable, distinct ids
    assert records[2].id != records[3].id
    again = list(batch.read_records(source, report=lambda exc: None))
    assert [record.id for record in again] == [record.id for record in records]
    assert [exc.line for exc in bad] == [2, 7, 9]
    assert "line 2: not JSON" in str(bad[0]) and "appears twice" in str(bad[1])
    with pytest.raises(batch.BadRecordError, match="line 2"):
        list(batch.read_records(source, on_bad="raise"))


def test_text_records_skip_comments_and_keep_repeats(tmp_path: Path) -> None:
    source = tmp_path / "prompts.txt"
    source.write_text("# a comment\nfirst\n\nsecond\nfirst\n")
    records = list(batch.read_records(source))
    assert [(record.messages, record.line) for record in records] == [
        ("first", 2),
        ("second", 4),
        ("first", 5),
    ]
    assert len({record.id for record in records}) == 3
    assert batch.count_records(source) == 3


def test_bad_line_is_reported_on_stderr_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "ok"}\n[1, 2]\n')
    assert len(list(batch.read_records(source))) == 1
    assert "line 2: a record is a JSON object, not list" in capsys.readouterr().err


# --- runs ------------------------------------------------------------------------------------


def test_run_answers_every_record_and_writes_one_line_each(emulator: TimedEmulator, tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    records = [{"id": f"r{n}", "prompt": f"prompt {n}"} for n in range(30)]
    with client_for(emulator) as client:
        job = batch.run(client, records, concurrency=6, output=output, progress=False)
        results = list(job)
    assert sorted(result.id for result in results) == sorted(record["id"] for record in records)
    assert all(result.ok and result.text == "answer text" and result.attempts == 1 for result in results)
    written = lines(output)
    assert [line["id"] for line in written] == [result.id for result in results]  # completion order
    assert written[0]["usage"]["total_tokens"] > 0 and written[0]["error"] is None
    assert set(prompts_sent(emulator).values()) == {1}
    assert job.stats.done == 30 and job.stats.failed == 0 and job.stats.tokens > 0
    assert emulator.connections_accepted <= 6  # one client: its connections are reused


def test_resume_skips_successes_retries_failures_and_ignores_a_torn_line(
    emulator: TimedEmulator, tmp_path: Path
) -> None:
    output = tmp_path / "out.jsonl"
    failed = {"type": "ServerError", "message": "500", "partial_text": ""}
    output.write_text(
        json.dumps({"id": "r0", "text": "old", "error": None})
        + "\n"
        + json.dumps({"id": "r1", "text": "", "error": failed})
        + "\n"
        + '{"id": "r2", "text": "torn'
    )
    records = [{"id": f"r{n}", "prompt": f"prompt {n}"} for n in range(4)]
    with client_for(emulator) as client:
        job = batch.run(client, records, output=output, progress=False)
        results = list(job)
    assert sorted(result.id for result in results) == ["r1", "r2", "r3"]
    assert job.stats.skipped == 1
    assert prompts_sent(emulator) == {"prompt 1": 1, "prompt 2": 1, "prompt 3": 1}
    written = lines(output)  # the torn line was cut off; every line parses
    assert [line["id"] for line in written[:2]] == ["r0", "r1"] and len(written) == 5
    assert batch.compact(output) == 4
    compacted = lines(output)
    assert sorted(line["id"] for line in compacted) == ["r0", "r1", "r2", "r3"]
    assert all(line["error"] is None for line in compacted)


def test_compact_keeps_a_success_over_a_later_failure(tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    error = {"type": "X", "message": "m", "partial_text": ""}
    write_jsonl(
        output,
        [
            {"id": "a", "error": error, "text": "1"},
            {"id": "a", "error": None, "text": "2"},
            {"id": "a", "error": error, "text": "3"},
            {"id": "b", "error": error, "text": "4"},
            {"id": "b", "error": error, "text": "5"},
        ],
    )
    output.chmod(0o600)
    assert batch.compact(output) == 2
    assert [(line["id"], line["text"]) for line in lines(output)] == [("a", "2"), ("b", "5")]
    assert output.stat().st_mode & 0o777 == 0o600


def test_failures_are_recorded_with_partial_text_and_retried_only_when_they_may_pass(
    emulator: TimedEmulator, tmp_path: Path
) -> None:
    emulator.enqueue(
        Reply(deltas=["half ", "way ", "there"], delay=0.01, drop_after=450),
        Reply(deltas=["half ", "way ", "there"], delay=0.01, drop_after=450),
    )
    with client_for(emulator) as client:
        [broken] = list(batch.run(client, ["p"], max_attempts=2, backoff=0.01, progress=False))
    assert broken.error is not None and broken.error["type"] == "StreamInterruptedError"
    assert broken.error["partial_text"].startswith("half")
    assert broken.attempts == 2

    emulator.enqueue(Reply(status=401, body={"error": {"message": "bad key"}}))
    with client_for(emulator) as client:
        [refused] = list(batch.run(client, ["q"], max_attempts=3, backoff=0.01, progress=False))
    assert refused.error is not None and refused.error["type"] == "AuthenticationError"
    assert refused.attempts == 1  # the same key would be refused again
    assert prompts_sent(emulator)["q"] == 1


def test_a_429_pauses_the_whole_run(emulator: TimedEmulator) -> None:
    emulator.enqueue(
        Reply(status=429, headers={"Retry-After": "1"}, body={"error": {"message": "slow down"}})
    )
    with client_for(emulator) as client:
        results = list(batch.run(client, [f"p{n}" for n in range(8)], concurrency=1, progress=False))
    assert all(result.ok for result in results)
    assert [result.attempts for result in results].count(2) == 1
    gaps = [later - earlier for earlier, later in zip(emulator.arrivals, emulator.arrivals[1:])]
    # after the 429, nothing is sent for the second it asked
    assert gaps[0] >= 0.9


def test_a_429_holds_other_workers_too(emulator: TimedEmulator) -> None:
    emulator.enqueue(Reply(status=429, headers={"Retry-After": "1.5"}, body={"error": {"message": "slow"}}))
    emulator.default_reply = Reply(deltas=["ok"], delay=0.6)  # the 429 is met well before these end
    with client_for(emulator) as client:
        job = batch.run(client, [f"p{n}" for n in range(8)], concurrency=4, progress=False)
        results = list(job)
    assert all(result.ok for result in results)
    first = emulator.arrivals[0]
    # requests sent after the 429 was answered (at once, well before the others end) wait out its 1.5 s
    later = [arrival - first for arrival in emulator.arrivals[4:]]
    assert min(later) >= 1.3


def test_rpm_spaces_the_requests(emulator: TimedEmulator) -> None:
    with client_for(emulator) as client:
        list(batch.run(client, [f"p{n}" for n in range(6)], concurrency=6, rpm=120, progress=False))
    # 2 a second, starting with one: the 6th goes no sooner than 2.5 s after the first
    assert emulator.arrivals[-1] - emulator.arrivals[0] >= 2.3


def test_fallback_answers_when_the_first_client_fails(emulator: TimedEmulator) -> None:
    with OpenAIEmulator(default_reply=Reply(status=500, body={"error": {"message": "down"}})) as broken:
        clients = [client_for(broken), client_for(emulator)]
        with llmclients.Fallback(clients) as client:
            results = list(batch.run(client, ["a", "b", "c"], concurrency=2, progress=False))
    assert all(result.ok and result.text == "answer text" for result in results)
    assert len(broken.requests) == 3


def test_stop_lets_calls_in_flight_finish_within_the_grace_then_closes_them(
    emulator: TimedEmulator, tmp_path: Path
) -> None:
    emulator.default_reply = Reply(deltas=["slow"] * 20, delay=0.5)  # 10 s a reply
    output = tmp_path / "out.jsonl"
    with client_for(emulator) as client:
        job = batch.run(client, [f"p{n}" for n in range(10)], concurrency=2, output=output, progress=False)
        threading.Timer(1.0, job.stop, kwargs={"grace": 0.5}).start()
        started = time.monotonic()
        results = list(job)
        took = time.monotonic() - started
    assert took < 8  # not the 10 s a reply would take
    assert len(results) == 2 and not any(result.ok for result in results)  # the two in flight, closed
    assert len(prompts_sent(emulator)) == 2  # nothing more was sent
    assert len(lines(output)) == 2


def test_a_second_stop_ends_the_grace_at_once(emulator: TimedEmulator, tmp_path: Path) -> None:
    """As a second Ctrl-C does in ``llmclients batch``: the first stop's long
    grace no longer holds once a second stop asks for none."""
    emulator.default_reply = Reply(deltas=["slow"] * 20, delay=0.5)  # 10 s a reply
    with client_for(emulator) as client:
        job = batch.run(client, [f"p{n}" for n in range(4)], concurrency=2, output=tmp_path / "o.jsonl", progress=False)
        threading.Timer(1.0, job.stop, kwargs={"grace": 30.0}).start()
        threading.Timer(1.5, job.stop, kwargs={"grace": 0.0}).start()
        started = time.monotonic()
        results = list(job)
        took = time.monotonic() - started
    assert took < 6  # neither the 30 s grace nor the 10 s replies
    assert len(results) == 2 and not any(result.ok for result in results)


def test_the_end_of_the_grace_interrupts_a_stream_whose_server_went_silent(
    emulator: TimedEmulator, tmp_path: Path
) -> None:
    emulator.default_reply = Reply(deltas=["late"], delay=30)  # the role chunk, then 30 s of silence
    with client_for(emulator) as client:
        job = batch.run(client, ["p0"], concurrency=1, output=tmp_path / "out.jsonl", progress=False)
        threading.Timer(1.0, job.stop, kwargs={"grace": 0.5}).start()
        started = time.monotonic()
        results = list(job)
        took = time.monotonic() - started
    assert took < 10  # not the 30 s to the next delta, nor the 120 s read timeout
    assert len(results) == 1 and not results[0].ok
    assert results[0].error is not None and results[0].error["type"] == "StreamInterruptedError"


def test_stopped_run_sends_nothing_more_and_a_rerun_finishes(emulator: TimedEmulator, tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    records = [{"id": str(n), "prompt": f"p{n}"} for n in range(10)]
    with client_for(emulator) as client:
        job = batch.run(client, records, concurrency=1, output=output, progress=False)
        first = next(job)
        job.close()
        assert first.ok
        list(batch.run(client, records, concurrency=3, output=output, progress=False))
    assert set(prompts_sent(emulator)) == {f"p{n}" for n in range(10)}
    assert max(prompts_sent(emulator).values()) <= 2  # at most the one in flight at close() twice
    assert batch.answered_ids(output) == {str(n) for n in range(10)}


# --- rate limits, as units -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("6m0s", 360.0), ("1.5s", 1.5), ("200ms", 0.2), ("1h2m3s", 3723.0), ("7", 7.0), ("soon", None)],
)
def test_parse_duration(text: str, seconds: Any) -> None:
    assert batch.parse_duration(text) == seconds


def test_ratelimit_headers_pause_and_cap_the_buckets() -> None:
    pacer = batch.Pacer(rpm=6000)
    pacer.observe({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "300ms"})
    started = time.monotonic()
    assert pacer.acquire(1)
    assert time.monotonic() - started >= 0.25
    pacer.observe({"x-ratelimit-remaining-requests": "0.5", "x-ratelimit-reset-requests": "1s"})
    assert pacer.requests is not None and pacer.requests.level <= 0.5


def test_token_bucket_corrects_its_estimate_from_usage() -> None:
    pacer = batch.Pacer(tpm=600)  # 10 tokens a second
    assert pacer.acquire(1)
    pacer.correct(1, 11)  # the call took 10 more than estimated: a second's debt
    started = time.monotonic()
    assert pacer.acquire(1)
    assert time.monotonic() - started >= 0.9


def test_a_stopped_pacer_lets_nobody_through() -> None:
    stop = threading.Event()
    pacer = batch.Pacer(rpm=1, stop=stop)
    assert pacer.acquire(1)
    threading.Timer(0.2, stop.set).start()
    assert not pacer.acquire(1)


def test_reasoning_tool_calls_and_record_options_reach_the_output(
    emulator: TimedEmulator, tmp_path: Path
) -> None:
    from llmclients.testing import openai as emulated

    emulator.enqueue(
        Reply(events=emulated.reasoning_chunks(["think", "ing"], then_text=["done"])),
        Reply(events=emulated.tool_call_chunks([("call_a", "weather", '{"city": "Oslo"}')])),
    )
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    records = [
        {"id": "plain", "prompt": "p", "temperature": 0.25},
        {"id": "tool", "prompt": "q", "tools": tools},
    ]
    output = tmp_path / "out.jsonl"
    with client_for(emulator) as client:
        list(batch.run(client, records, concurrency=1, output=output, progress=False))
    first, second = lines(output)
    assert first["reasoning"] == "thinking" and first["text"] == "done" and "tool_calls" not in first
    assert second["tool_calls"] == [
        {"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
    ]
    assert "reasoning" not in second and second["finish_reason"] == "tool_calls"
    bodies = [request.json() for request in emulator.requests]
    assert bodies[0]["temperature"] == 0.25 and bodies[1]["tools"] == tools


def test_streams_and_status_errors_carry_the_ratelimit_headers_the_batch_reads(emulator: TimedEmulator) -> None:
    limits = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1s"}
    emulator.enqueue(Reply(deltas=["ok"], headers={**limits, "X-Other": "not a limit"}))
    emulator.enqueue(Reply(status=400, headers=limits, body={"error": {"message": "bad"}}))
    with client_for(emulator) as client:
        with client.stream("hi", model="m") as stream:
            assert "".join(stream) == "ok"
            assert stream.rate_limits == limits
        with pytest.raises(llmclients.HTTPStatusError) as caught:
            client.complete("hi", model="m")
    assert caught.value.rate_limits == limits
    pacer = batch.Pacer()
    pacer.observe(caught.value.rate_limits)
    assert pacer.paused_until - time.monotonic() > 0.5  # no request left until the reset a second away
