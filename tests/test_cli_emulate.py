"""``llmclients emulate`` as a real subprocess: it logs each request and reply
on stderr, plays the replies scripted with ``--reply`` and ``--script``, and
the README's examples that run against it show what they claim."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

import llmclients
from llmclients import errors

CLI = [sys.executable, "-m", "llmclients"]
LIMIT = 30
README = Path(__file__).resolve().parent.parent / "README.rst"
posix_only = pytest.mark.skipif(os.name != "posix", reason="signals as POSIX sends them")

TOOL_CALL = {"tool_calls": [{"name": "weather", "arguments": {"city": "Paris"}}]}


def env() -> dict:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("LLMCLIENTS_")}
    clean.update(NO_PROXY="127.0.0.1,localhost", PYTHONIOENCODING="utf-8")
    return clean


class Served:
    """A running ``llmclients emulate``: its base URL; ``stderr`` once stopped."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.stderr = ""

    def client(self, **kwargs) -> llmclients.OpenAICompatible:
        return llmclients.OpenAICompatible(
            base_url=self.base_url, model="emulator-1", max_retries=0, **kwargs
        )


@contextlib.contextmanager
def emulate(*args: str) -> Iterator[Served]:
    proc = subprocess.Popen(
        CLI + ["emulate", "--port", "0", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], LIMIT)
        assert ready, "llmclients emulate printed no URL"
        served = Served(proc.stdout.readline().strip())  # type: ignore[union-attr]
        assert served.base_url.startswith("http://127.0.0.1:"), proc.communicate(timeout=LIMIT)
        yield served
        proc.send_signal(signal.SIGINT)
        _, served.stderr = proc.communicate(timeout=LIMIT)
        assert proc.returncode == 0, served.stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=LIMIT)


def log_lines(stderr: str, kind: str) -> List[str]:
    return [line for line in stderr.splitlines() if re.search(rf"llmclients\.testing: {kind} \d+:", line)]


@posix_only
def test_it_plays_a_script_and_logs_one_line_per_request_and_reply(tmp_path):
    script = tmp_path / "replies.jsonl"
    script.write_text(
        json.dumps({"reasoning": "Nine point nine is more.", "text": "No."})
        + "\n\n"
        + json.dumps({"status": 400, "body": {"error": {"message": "scripted refusal"}}})
        + "\n"
    )
    replies = [
        "--reply",
        json.dumps(TOOL_CALL),
        "--reply",
        json.dumps({"text": WORDS, "drop_after_deltas": 1}),
    ]
    with emulate("--script", str(script), *replies) as served:
        client = served.client()
        thought = client.complete("Is 9.11 > 9.9?")
        assert (thought.reasoning, thought.text) == ("Nine point nine is more.", "No.")
        with pytest.raises(errors.HTTPStatusError, match="scripted refusal"):
            client.complete("Hi")
        called = client.complete("Weather?", tools=[{"type": "function", "function": {"name": "weather"}}])
        assert [(call.name, call.parsed()) for call in called.tool_calls] == [("weather", {"city": "Paris"})]
        with pytest.raises(errors.StreamInterruptedError) as caught:
            client.complete("Hi")
        assert caught.value.partial_text == "one "
        history = [{"role": "user", "content": "My name is Ada."}, {"role": "assistant", "content": "Hi."}]
        assert (
            "You said: Who am I?"
            in client.complete(history + [{"role": "user", "content": "Who am I?"}]).text
        )
    assert "with 4 scripted replies (then its echo)" in served.stderr
    requests, replies_logged = log_lines(served.stderr, "request"), log_lines(served.stderr, "reply")
    assert len(requests) == len(replies_logged) == 5
    assert "POST /v1/chat/completions" in requests[0] and "the last user: 'Is 9.11 > 9.9?'" in requests[0]
    assert "3 messages, the last user: 'Who am I?'" in requests[4]  # the history the client kept
    assert re.search(
        r"reply 1: 200, scripted reply 1 of 4: Reply\(events=\[\d+ events\]\), complete", replies_logged[0]
    )
    assert "reply 2: 400, scripted reply 2 of 4" in replies_logged[1]
    assert "drop_after_deltas=1), dropped" in replies_logged[3]
    assert "reply 5: 200, echo, complete" in replies_logged[4]
    assert "body:" not in served.stderr  # bodies only with --debug


WORDS = "one two three"


@posix_only
def test_debug_adds_bodies_and_events_and_strict_answers_500_after_the_script(tmp_path):
    script = tmp_path / "replies.json"
    script.write_text('[{"text": "Only this."}]')  # a JSON list, the other form of a script
    with emulate("--debug", "--strict", "--script", str(script)) as served:
        client = served.client()
        assert client.complete("Hi").text == "Only this."
        with pytest.raises(errors.ServerError, match="no scripted reply left"):
            client.complete("Again")
    assert "then a 500 (--strict)" in served.stderr
    assert re.search(
        r'request 1 body: \{"model": "emulator-1", "messages": \[\{"role": "user", "content": "Hi"\}',
        served.stderr,
    )
    assert '"delta": {"content": "this."}' in served.stderr  # each event at --debug
    assert "reply 2: 500, unscripted, unscripted" in served.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reply", "{not json"], "--reply: not JSON"),
        (["--reply", '{"txt": "Hi"}'], "no reply field txt"),
        (["--reply", '["Hi"]'], "a reply is a JSON object, not list"),
        (["--reply", '{"text": "Hi", "framing": "smoke"}'], "framing must be one of"),
        (
            ["-p", "aura", "--reply", json.dumps(TOOL_CALL)],
            "the aura emulator cannot script reasoning or tool calls",
        ),
        (["--script", "/nonexistent/replies.jsonl"], "cannot read the script /nonexistent/replies.jsonl"),
    ],
)
def test_a_wrong_script_is_a_usage_error(args, message):
    result = subprocess.run(
        CLI + ["emulate", *args],
        capture_output=True,
        text=True,
        env=env(),
        timeout=LIMIT,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""  # nothing served


# --- the README's examples against it ------------------------------------------------------------


def readme_block(marker: str, language: str) -> str:
    """The ``.. code-block:: language`` of README.rst that holds ``marker``, dedented."""
    text = README.read_text(encoding="utf-8")
    for match in re.finditer(rf"\.\. code-block:: {language}\n\n((?:    .*\n|\n)+)", text):
        if marker in match.group(1):
            return "\n".join(line[4:] for line in match.group(1).splitlines()) + "\n"
    raise AssertionError(f"README.rst has no {language} block with {marker!r}")


def emulate_command_in_readme() -> Tuple[List[str], int]:
    """The arguments of the README's ``llmclients emulate`` command for its examples, and its port."""
    words = shlex.split(readme_block("llmclients emulate --port 8080", "bash").replace("\\\n", " "))
    assert words[:2] == ["llmclients", "emulate"]
    port = words.index("--port")
    return words[2:port] + words[port + 2 :], int(words[port + 1])


@posix_only
def test_the_readme_examples_show_what_they_claim_against_the_scripted_emulator(capsys):
    args, port = emulate_command_in_readme()
    assert port == 8080
    blocks = [
        readme_block('reply = conv.run("What is the weather in Paris?"', "python"),
        readme_block('with client.stream("Is 9.11 > 9.9?"', "python"),
        readme_block('response_format={"type": "json_object"}', "python"),
    ]
    with emulate(*args) as served:
        namespace = {
            "llmclients": llmclients,
            "client": llmclients.OpenAICompatible(base_url=served.base_url),
            "messages": "Why is the sky blue? Answer in JSON.",
        }
        exec(compile(blocks[0], "README.rst", "exec"), namespace)
        assert capsys.readouterr().out == "It is 18 C and sunny in Paris.\n"  # after the tool ran
        exec(compile(blocks[1], "README.rst", "exec"), namespace)
        out, err = capsys.readouterr()
        assert "9.9 is larger" in out and "decimal" in err  # the answer on stdout, the thinking on stderr
        exec(compile(blocks[2], "README.rst", "exec"), namespace)
        assert namespace["data"] == {"answer": "Rayleigh scattering"}
    # The tool's own result went back to the emulator, which logged it.
    assert "the last tool: '18 C and sunny in Paris'" in log_lines(served.stderr, "request")[1]
    logged = log_lines(served.stderr, "reply")
    assert [re.search(r"scripted reply (\d) of 4: .*, complete in", line) is not None for line in logged] == [True] * 4
