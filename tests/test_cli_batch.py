"""``llmclients batch``, run as a real subprocess against the OpenAI emulator on 127.0.0.1."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from test_cli import CLI, LIMIT, MODEL, clean_env, posix_only, run

from llmclients.testing import OpenAIEmulator, Reply


@pytest.fixture
def emulator() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator(default_reply=Reply(deltas=["an ", "answer"], delay=0.01)) as server:
        yield server


def records_file(path: Path, count: int) -> Path:
    path.write_text(
        "".join(json.dumps({"id": f"r{n}", "prompt": f"prompt {n}"}) + "\n" for n in range(count))
    )
    return path


def batch_args(emulator: OpenAIEmulator, source: Path, *extra: str) -> List[str]:
    return ["batch", str(source), "--base-url", emulator.base_url, "-m", MODEL, *extra]


def lines(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def sent(emulator: OpenAIEmulator) -> collections.Counter[str]:
    """How often each prompt reached the emulator whole (a kill between a request's
    head and its body leaves an "incomplete" one, which was never answered)."""
    return collections.Counter(
        request.json()["messages"][-1]["content"]
        for request in emulator.requests
        if request.method == "POST" and request.outcome != "incomplete"
    )


def test_batch_answers_every_record_into_the_output(emulator: OpenAIEmulator, tmp_path: Path) -> None:
    source, output = records_file(tmp_path / "in.jsonl", 20), tmp_path / "out.jsonl"
    done = run(*batch_args(emulator, source, "-o", str(output), "--concurrency", "4"))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert sorted(line["id"] for line in lines(output)) == sorted(f"r{n}" for n in range(20))
    assert all(line["text"] == "an answer" and line["error"] is None for line in lines(output))
    assert "20 answered, 0 failed, 0 already answered" in done.stderr
    again = run(*batch_args(emulator, source, "-o", str(output)))
    assert again.returncode == 0 and "0 answered, 0 failed, 20 already answered" in again.stderr
    assert set(sent(emulator).values()) == {1}


def test_batch_of_a_text_file_to_stdout(emulator: OpenAIEmulator, tmp_path: Path) -> None:
    source = tmp_path / "prompts.txt"
    source.write_text("# nightly\nsame\nsame\nother\n")
    done = run(*batch_args(emulator, source))
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(results) == 3 and len({result["id"] for result in results}) == 3
    assert sent(emulator) == {"same": 2, "other": 1}


def test_failed_records_and_bad_lines_exit_1_and_a_rerun_retries_them(
    emulator: OpenAIEmulator, tmp_path: Path
) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    emulator.models = [MODEL]  # it refuses b's model, as OpenAI does (404)
    source.write_text(
        '{"id": "a", "prompt": "fine"}\n{oops\n{"id": "b", "prompt": "refused", "model": "nope"}\n'
    )
    done = run(*batch_args(emulator, source, "-o", str(output), "--concurrency", "1"))
    assert done.returncode == 1
    assert "skipped line 2: not JSON" in done.stderr
    assert "1 answered, 1 failed" in done.stderr and "1 bad lines skipped" in done.stderr
    [failed] = [line for line in lines(output) if line["error"]]
    assert failed["id"] == "b" and failed["attempts"] == 1 and "nope" in failed["error"]["message"]
    source.write_text('{"id": "a", "prompt": "fine"}\n{"id": "b", "prompt": "refused"}\n')
    again = run(*batch_args(emulator, source, "-o", str(output), "--compact"))
    assert again.returncode == 0, again.stderr
    assert sent(emulator) == {"fine": 1, "refused": 2}
    assert [(line["id"], line["error"]) for line in lines(output)] == [("a", None), ("b", None)]


def test_a_bad_line_is_fatal_before_anything_is_sent_when_asked(
    emulator: OpenAIEmulator, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "fine"}\n{"prompt": "x", "id": [1]}\n')
    done = run(*batch_args(emulator, source, "--on-bad-line", "fail"))
    assert done.returncode == 2
    assert "line 2: 'id' is a non-empty string or an integer" in done.stderr
    assert not emulator.requests


def test_bad_usage_exits_2(emulator: OpenAIEmulator, tmp_path: Path) -> None:
    assert run(*batch_args(emulator, tmp_path / "missing.jsonl")).returncode == 2
    source = records_file(tmp_path / "in.jsonl", 1)
    done = run(*batch_args(emulator, source, "--concurrency", "0"))
    assert done.returncode == 2 and "at least 1" in done.stderr


def spawn_batch(emulator: OpenAIEmulator, source: Path, output: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        CLI + batch_args(emulator, source, "-o", str(output), *extra),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        encoding="utf-8",
        env=clean_env(),
    )


def wait_for_lines(path: Path, count: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + LIMIT
    while not (path.exists() and path.read_text().count("\n") >= count):
        assert proc.poll() is None, "the batch ended before the signal"
        assert time.monotonic() < deadline, "too few lines in time"
        time.sleep(0.02)


@posix_only
def test_kill_9_half_way_then_resume_answers_no_record_twice(
    emulator: OpenAIEmulator, tmp_path: Path
) -> None:
    emulator.default_reply = Reply(deltas=["an ", "answer"], delay=0.1)
    source, output = records_file(tmp_path / "in.jsonl", 40), tmp_path / "out.jsonl"
    proc = spawn_batch(emulator, source, output, "--concurrency", "4")
    try:
        wait_for_lines(output, 20, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(LIMIT)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()  # type: ignore[union-attr]
    answered_before = {line["id"] for line in lines(output) if line["error"] is None}
    assert 20 <= len(answered_before) < 40
    sent_before = sent(emulator)
    again = run(*batch_args(emulator, source, "-o", str(output), "--concurrency", "4", "--compact"))
    assert again.returncode == 0, again.stderr
    counts = sent(emulator)
    for n in range(40):
        prompt = f"prompt {n}"
        if f"r{n}" in answered_before:
            assert counts[prompt] == 1  # answered before the kill: never sent again
        else:
            assert (
                counts[prompt] == sent_before[prompt] + 1
            )  # sent once more (in flight at the kill, or never)
    final = lines(output)
    assert sorted(line["id"] for line in final) == sorted(f"r{n}" for n in range(40))
    assert all(line["error"] is None for line in final)


@posix_only
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_sending_lets_calls_in_flight_finish_and_exits(
    emulator: OpenAIEmulator, tmp_path: Path, signum: int, code: int
) -> None:
    emulator.default_reply = Reply(deltas=["an ", "answer"], delay=0.4)
    source, output = records_file(tmp_path / "in.jsonl", 30), tmp_path / "out.jsonl"
    proc = spawn_batch(emulator, source, output, "--concurrency", "3", "--grace", "20")
    try:
        wait_for_lines(output, 3, proc)
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=LIMIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, stderr
    assert "answered" in stderr  # the summary
    written = lines(output)
    assert all(
        line["error"] is None for line in written
    )  # the calls in flight finished well within the grace
    assert len(written) == len(sent(emulator)) < 30  # each call sent was answered and written; no more sent


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_second_signal_ends_the_grace_at_once(
    emulator: OpenAIEmulator, tmp_path: Path, signum: int, code: int
) -> None:
    emulator.default_reply = Reply(deltas=["slow"] * 20, delay=0.5)  # 10 s a reply
    source, output = records_file(tmp_path / "in.jsonl", 6), tmp_path / "out.jsonl"
    proc = spawn_batch(emulator, source, output, "--concurrency", "2", "--grace", "60")
    try:
        deadline = time.monotonic() + LIMIT
        while len(sent(emulator)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signum)
        time.sleep(0.5)
        proc.send_signal(signum)
        started = time.monotonic()
        _, stderr = proc.communicate(timeout=LIMIT)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, stderr
    assert took < 8  # neither the 60 s grace nor the 10 s replies
    assert len(lines(output)) == 2 and all(line["error"] for line in lines(output))  # the two in flight, cut


def test_progress_bar_on_a_terminal(emulator: OpenAIEmulator, tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    pytest.importorskip("tqdm")
    source, output = records_file(tmp_path / "in.jsonl", 10), tmp_path / "out.jsonl"
    args = ["-m", "llmclients", *batch_args(emulator, source, "-o", str(output))]
    child = pexpect.spawn(sys.executable, args, env=clean_env(TERM="dumb"), encoding="utf-8", timeout=LIMIT)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "10/10" in child.before and "req/s" in child.before
    assert "10 answered" in child.before
    assert os.path.getsize(output) > 0
