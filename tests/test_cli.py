"""The ``llmclients`` command, run as a real subprocess against emulators on 127.0.0.1.

Nothing here touches the network: every command gets a loopback base URL or
``--emulate``, and the environment is cleared of ``LLMCLIENTS_*`` and proxy
settings. Every subprocess is bounded by a timeout.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import time
from typing import Dict, Optional

import pytest

import llmclients
from llmclients.cli import redact
from llmclients.providers import BUILTIN
from llmclients.testing import AllenAIEmulator, AuraEmulator, OpenAIEmulator, Reply

CLI = [sys.executable, "-m", "llmclients"]
LIMIT = 30  # seconds any one command may take
MODEL = "emulator-1"
KEY = "sk-test-4f9c2b7e1d0a"
posix_only = pytest.mark.skipif(os.name != "posix", reason="signals as POSIX sends them")


def clean_env(**extra: str) -> Dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("LLMCLIENTS_")
        and name.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env.update(NO_PROXY="127.0.0.1,localhost,::1", PYTHONIOENCODING="utf-8")
    env.update(extra)
    return env


def run(*args: str, stdin: Optional[str] = None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        CLI + list(args),
        input=stdin if stdin is not None else "",
        capture_output=True,
        encoding="utf-8",
        env=clean_env(**env),
        timeout=LIMIT,
    )


def chat(emulator, *args: str, **kwargs) -> subprocess.CompletedProcess:
    provider = emulator.provider
    model = ["-m", MODEL] if provider == "openai" else []
    return run("chat", "-p", provider, "--base-url", emulator.base_url, *model, *args, **kwargs)


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("llmclients: ")
    return lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_until(proc: subprocess.Popen, needle: bytes, timeout: float = 10.0) -> bytes:
    """What ``proc`` wrote to stdout up to and including ``needle``."""
    fd = proc.stdout.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} not seen in time; got {data!r}"
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 65536)
            assert chunk, f"stdout closed before {needle!r}; got {data!r}"
            data += chunk
    return data


def eventually(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# --- chat ------------------------------------------------------------------------------


def test_chat_streams_the_reply_to_the_prompt_argument(openai_emulator):
    openai_emulator.enqueue(Reply(deltas=["Rain ", "on the ", "roof — ", "日本語"]))
    result = chat(openai_emulator, "Write a haiku about rain")
    assert (result.returncode, result.stdout, result.stderr) == (0, "Rain on the roof — 日本語\n", "")
    body = openai_emulator.last_request.json()
    assert body["messages"] == [{"role": "user", "content": "Write a haiku about rain"}]
    assert body["model"] == MODEL and body["stream"] is True


@pytest.mark.parametrize("argument", [["-"], []], ids=["dash", "no argument"])
def test_chat_reads_the_prompt_from_stdin(openai_emulator, argument):
    openai_emulator.enqueue(Reply(text="Piped answer"))
    result = chat(openai_emulator, *argument, stdin="Summarise this:\nline one\nline two\n")
    assert (result.returncode, result.stdout) == (0, "Piped answer\n")
    content = openai_emulator.last_request.json()["messages"][-1]["content"]
    assert content == "Summarise this:\nline one\nline two"


def test_chat_sends_system_prompt_and_options(openai_emulator):
    openai_emulator.enqueue(Reply(text="Brief."))
    result = chat(openai_emulator, "-s", "Be brief.", "--temperature", "0.2", "--max-tokens", "50", "Hi")
    assert result.returncode == 0, result.stderr
    body = openai_emulator.last_request.json()
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert (body["temperature"], body["max_tokens"]) == (0.2, 50)


def test_json_prints_one_object_with_the_reply(openai_emulator):
    openai_emulator.enqueue(
        Reply(
            deltas=["Hello", ", world"], usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        )
    )
    result = chat(openai_emulator, "--json", "Hi")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    reply = json.loads(result.stdout)
    assert reply["text"] == "Hello, world"
    assert reply["finish_reason"] == "stop"
    assert reply["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert reply["model"] == MODEL and reply["provider"] == "openai"
    assert 0 <= reply["time_to_first_delta"] <= reply["elapsed"] < LIMIT
    assert reply["error"] is None


def test_no_stream_prints_the_whole_reply_once(openai_emulator):
    openai_emulator.enqueue(Reply(text="one two three", delay=0.01))
    result = chat(openai_emulator, "--no-stream", "Count")
    assert (result.returncode, result.stdout, result.stderr) == (0, "one two three\n", "")


@pytest.mark.parametrize("provider", ["openai", "allenai", "autonomous", "aura"])
def test_emulate_answers_without_any_server(provider):
    result = run("chat", "-p", provider, "--emulate", "--json", "Hello emulator")
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert "Hello emulator" in reply["text"] and reply["provider"] == provider


def test_settings_come_from_the_environment(openai_emulator):
    openai_emulator.enqueue(Reply(text="From the environment"))
    result = run(
        "chat",
        "--json",
        "Hi",
        LLMCLIENTS_PROVIDER="openai",
        LLMCLIENTS_BASE_URL=openai_emulator.base_url,
        LLMCLIENTS_MODEL="env-model",
        LLMCLIENTS_TIMEOUT="5",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model"] == "env-model"
    assert openai_emulator.last_request.json()["model"] == "env-model"


# --- conversations --------------------------------------------------------------------


def test_conversation_file_carries_the_history_to_the_next_turn(openai_emulator, tmp_path):
    path = str(tmp_path / "chat.json")
    openai_emulator.enqueue(Reply(text="Hello Ada."), Reply(text="Your name is Ada."))
    first = chat(openai_emulator, "--conversation", path, "-s", "Be brief.", "My name is Ada.")
    second = chat(openai_emulator, "--conversation", path, "What is my name?")
    assert (first.returncode, first.stdout) == (0, "Hello Ada.\n"), first.stderr
    assert (second.returncode, second.stdout) == (0, "Your name is Ada.\n"), second.stderr
    assert "resuming" not in first.stderr  # a new conversation
    assert f"llmclients: resuming 2 turns from {path}\n" in second.stderr
    assert openai_emulator.requests[1].json()["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada."},
        {"role": "user", "content": "What is my name?"},
    ]
    with open(path, encoding="utf-8") as file:
        state = json.load(file)
    assert state["provider"] == "openai" and len(state["messages"]) == 5


def test_allenai_conversation_continues_the_server_side_thread(tmp_path):
    path = str(tmp_path / "thread.json")
    with AllenAIEmulator() as emulator:
        emulator.enqueue(Reply(text="Hello Ada."), Reply(text="You are Ada."))
        first = chat(emulator, "--conversation", path, "My name is Ada.")
        second = chat(emulator, "--conversation", path, "What is my name?")
        assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
        turn1, turn2 = emulator.requests
        form1, form2 = emulator.form(turn1), emulator.form(turn2)
    with open(path, encoding="utf-8") as file:
        state = json.load(file)
    assert "parent" not in form1
    assert form2["content"] == "What is my name?"  # only the new text: the server keeps the rest
    assert form2["parent"] and form2["parent"] != state["thread"]["parent"]  # the first reply's id
    assert turn1.headers["X-Anonymous-User-ID"] == turn2.headers["X-Anonymous-User-ID"]


def test_a_failed_turn_leaves_the_conversation_file_as_it_was(openai_emulator, tmp_path):
    path = tmp_path / "chat.json"
    openai_emulator.enqueue(Reply(text="Hello."))
    assert chat(openai_emulator, "--conversation", str(path), "Hi").returncode == 0
    before = path.read_bytes()
    openai_emulator.enqueue(Reply(status=500, body={"error": {"message": "boom"}}))
    failed = chat(openai_emulator, "--conversation", str(path), "Again")
    assert failed.returncode == 3
    assert path.read_bytes() == before


def file_mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def leftovers(*directories) -> list:
    return [name for directory in directories for name in os.listdir(directory) if name.endswith(".tmp")]


@posix_only
def test_a_new_conversation_file_is_private(openai_emulator, tmp_path):
    path = tmp_path / "chat.json"
    assert chat(openai_emulator, "--conversation", str(path), "Hi").returncode == 0
    assert file_mode(path) == 0o600
    assert json.loads(path.read_text(encoding="utf-8"))["messages"]


@posix_only
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600])
def test_a_conversation_file_keeps_its_mode(openai_emulator, tmp_path, mode):
    path = tmp_path / "chat.json"
    assert chat(openai_emulator, "--conversation", str(path), "Hi").returncode == 0
    os.chmod(path, mode)
    assert chat(openai_emulator, "--conversation", str(path), "Again").returncode == 0
    assert file_mode(path) == mode
    assert len(json.loads(path.read_text(encoding="utf-8"))["messages"]) == 4
    assert leftovers(tmp_path) == []


@posix_only
def test_a_symlinked_conversation_file_stays_a_symlink(openai_emulator, tmp_path):
    kept, linked = tmp_path / "kept", tmp_path / "work"
    kept.mkdir()
    linked.mkdir()
    target = kept / "chat.json"
    link = linked / "chat.json"
    link.symlink_to(os.path.join("..", "kept", "chat.json"))  # relative, as users make them
    assert chat(openai_emulator, "--conversation", str(link), "Hi").returncode == 0  # through a dangling link
    assert link.is_symlink() and file_mode(target) == 0o600
    os.chmod(target, 0o644)
    assert chat(openai_emulator, "--conversation", str(link), "Again").returncode == 0
    assert link.is_symlink(), "the link was replaced by a file"
    assert os.readlink(link) == os.path.join("..", "kept", "chat.json")
    assert file_mode(target) == 0o644
    assert len(json.loads(target.read_text(encoding="utf-8"))["messages"]) == 4
    assert leftovers(kept, linked) == []


def test_a_conversation_file_that_is_not_one_is_a_usage_error(openai_emulator, tmp_path):
    path = tmp_path / "chat.json"
    path.write_text("[1, 2]", encoding="utf-8")
    result = chat(openai_emulator, "--conversation", str(path), "Hi")
    assert result.returncode == 2
    assert "is not a conversation file" in one_line(result.stderr)
    assert openai_emulator.requests == []


# --- exit codes and errors --------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["chat", "--temperature", "warm", "Hi"],
        ["chat", "-p", "nope", "--emulate", "Hi"],
        ["chat", "-p", "aura", "--emulate", "-m", "gpt-9", "Hi"],
        ["chat", "--emulate", "   "],
        ["chat", "-p", "openai", "-m", "m", "Hi"],  # no base URL
        ["models", "-p", "nope"],
    ],
    ids=[
        "no command",
        "bad number",
        "unknown provider",
        "unknown model",
        "empty prompt",
        "no base URL",
        "models",
    ],
)
def test_usage_errors_exit_2(args):
    result = run(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_http_401_exits_3_with_one_line(tmp_path):
    with OpenAIEmulator(api_key="the-right-key") as emulator:
        result = chat(emulator, "Hi", LLMCLIENTS_API_KEY=KEY)
    assert result.returncode == 3
    line = one_line(result.stderr)
    assert "AuthenticationError" in line and "401" in line and "Incorrect API key" in line
    assert KEY not in result.stderr


def test_read_timeout_exits_4_after_printing_what_arrived(openai_emulator):
    openai_emulator.enqueue(Reply(deltas=["Partial ", "answer"], stall=10, stall_after=2))
    started = time.monotonic()
    result = chat(openai_emulator, "--timeout", "0.5", "Hi")
    assert time.monotonic() - started < 8
    assert result.returncode == 4
    assert result.stdout == "Partial \n"
    assert "ReadTimeout" in one_line(result.stderr)


def test_interrupted_stream_exits_5_after_printing_what_arrived(openai_emulator):
    text = " ".join(f"word{i}" for i in range(100))
    openai_emulator.enqueue(Reply(text=text, drop_after=1500))
    result = chat(openai_emulator, "Hi")
    assert result.returncode == 5
    assert result.stdout.startswith("word0 word1 ") and result.stdout.endswith("\n")
    assert "word99" not in result.stdout
    line = one_line(result.stderr)
    assert "StreamInterruptedError" in line and "characters of text" in line


def test_json_reports_the_error_and_the_partial_text(openai_emulator):
    openai_emulator.enqueue(Reply(text="Half of it " * 30, drop_after=1500))
    result = chat(openai_emulator, "--json", "Hi")
    assert result.returncode == 5
    reply = json.loads(result.stdout)
    assert reply["text"].startswith("Half of it")
    assert reply["error"]["type"] == "StreamInterruptedError" and reply["error"]["exit_code"] == 5
    assert reply["finish_reason"] is None


@posix_only
def test_ctrl_c_while_streaming_stops_cleanly_with_the_partial_text(openai_emulator):
    text = " ".join(f"word{i}" for i in range(200))
    openai_emulator.enqueue(Reply(text=text, delay=0.05))
    # A shell that starts a command in the background leaves SIGINT ignored,
    # and Python then keeps it ignored: give the command Python's usual handler.
    wrapper = (
        "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "runpy.run_module('llmclients', run_name='__main__', alter_sys=True)"
    )
    args = ["chat", "-p", "openai", "-m", MODEL, "--base-url", openai_emulator.base_url, "Count"]
    proc = subprocess.Popen(
        [sys.executable, "-c", wrapper, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    try:
        printed = read_until(proc, b"word3 ")
        proc.send_signal(signal.SIGINT)
        rest, stderr = proc.communicate(timeout=LIMIT)
    finally:
        proc.kill()
    stdout = (printed + rest).decode()
    assert proc.returncode == 130, stderr
    assert stdout.startswith("word0 word1 word2 word3 ") and stdout.endswith("\n")
    assert "word199" not in stdout
    assert one_line(stderr.decode()) == "llmclients: Interrupted: stopped by Ctrl-C"
    assert eventually(lambda: openai_emulator.requests[0].outcome == "client closed")


# --- logging ------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_debug_logs_requests_and_retries_without_the_key(how):
    with OpenAIEmulator(api_key=KEY) as emulator:
        emulator.enqueue(Reply(status=503, body="busy"), Reply(text="At last"))
        args = ["--debug"] if how == "flag" else []
        env = {"LLMCLIENTS_LOG": "debug"} if how == "environment" else {}
        result = chat(emulator, *args, "Hi", LLMCLIENTS_API_KEY=KEY, **env)
    assert (result.returncode, result.stdout) == (0, "At last\n"), result.stderr
    assert f"POST {emulator.base_url}/chat/completions" in result.stderr
    assert "retry" in result.stderr.lower() and "503" in result.stderr
    assert "api_key=<hidden>" in result.stderr
    assert KEY not in result.stderr


def test_debug_never_shows_the_key_when_it_is_refused():
    with OpenAIEmulator(api_key="another-key") as emulator:
        result = chat(emulator, "--debug", "Hi", LLMCLIENTS_API_KEY=KEY)
    assert result.returncode == 3
    assert "DEBUG" in result.stderr and "401" in result.stderr
    assert KEY not in result.stderr


def test_redact_masks_credentials_in_log_lines():
    line = (
        f"Authorization: Bearer {KEY} GET http://u:pw@h/x?api_key=abc&q=1 "
        f"https://proxy.example/?token=t0k X-Api-Key={KEY}"
    )
    redacted = redact(line, [KEY])
    for secret in (KEY, "pw@", "abc", "t0k"):
        assert secret not in redacted
    assert "q=1" in redacted and "http://u:***@h/x" in redacted


# --- providers, models ------------------------------------------------------------------------


def test_providers_lists_every_provider_with_its_status():
    result = run("providers")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "MODELS", "CAPABILITIES", "LIVE", "STATUS"]
    for name in BUILTIN:  # the subprocess knows the built-in ones (the toy is this process's)
        row = next(line for line in lines if line.startswith(name + " "))
        assert llmclients.get_provider_class(name).status in row
    assert "retired" in next(line for line in lines if line.startswith("allenai"))


def test_models_lists_ids_aliases_and_the_default():
    result = run("models", "-p", "aura")
    assert result.returncode == 0, result.stderr
    rows = [line.split(None, 2) for line in result.stdout.splitlines()[1:]]
    assert rows[0][:2] == ["aura", "openchat_v3.2_mistral"] and "(default)" in rows[0][2]
    assert any(row[1] == "openchat_3.6" for row in rows)
    everything = run("models").stdout
    assert all(name in everything for name in BUILTIN)


# --- check ----------------------------------------------------------------------------------


def test_check_ok_reports_the_time_to_first_delta(openai_emulator):
    result = run("check", "-p", "openai", "-m", MODEL, "--base-url", openai_emulator.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    name, verdict, seconds, *_ = result.stdout.split()
    assert (name, verdict) == ("openai", "ok") and float(seconds.rstrip("s")) < LIMIT


def test_check_every_emulated_provider():
    result = run("check", "--emulate", "--timeout", "10")
    assert result.returncode == 0, result.stdout + result.stderr
    verdicts = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()}
    assert verdicts == {name: "ok" for name in BUILTIN}


def test_check_down_when_nothing_listens():
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = run("check", "-m", MODEL, "--base-url", url, "--timeout", "5")
    assert result.returncode == 3
    assert result.stdout.split()[:2] == ["openai", "down"]
    assert "ConnectError" in result.stdout


def test_check_blocked_by_a_key_or_a_challenge_page():
    with OpenAIEmulator(api_key="needed") as openai, AuraEmulator() as aura:
        page = "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body></body></html>"
        aura.enqueue(
            Reply(status=503, body=page, headers={"Content-Type": "text/html", "cf-mitigated": "challenge"})
        )
        refused = run("check", "-p", "openai", "-m", MODEL, "--base-url", openai.base_url)
        challenged = run("check", "-p", "aura", "--base-url", aura.base_url)
    assert refused.returncode == 3 and refused.stdout.split()[:2] == ["openai", "blocked"]
    assert challenged.returncode == 3 and challenged.stdout.split()[:2] == ["aura", "blocked"]
    assert "BlockedError" in challenged.stdout
    assert "known status: not working" in challenged.stdout


def test_check_down_on_a_server_error(openai_emulator):
    openai_emulator.enqueue(Reply(status=502, body="bad gateway"))
    result = run("check", "-m", MODEL, "--base-url", openai_emulator.base_url)
    assert result.returncode == 3
    assert result.stdout.split()[:2] == ["openai", "down"] and "502" in result.stdout
    assert len(openai_emulator.requests) == 1  # check probes with no retries


def test_check_one_base_url_for_several_providers_is_a_usage_error(openai_emulator):
    result = run("check", "-p", "openai", "-p", "aura", "--base-url", openai_emulator.base_url)
    assert result.returncode == 2
    assert "applies to one provider" in one_line(result.stderr)
    assert openai_emulator.requests == []


# --- emulate ----------------------------------------------------------------------------------


@posix_only
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_emulate_serves_until_stopped(stop_signal):
    proc = subprocess.Popen(
        CLI + ["emulate", "-p", "openai", "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    try:
        base_url = read_until(proc, b"\n").decode().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        with llmclients.OpenAICompatible(base_url=base_url, model=MODEL) as client:
            assert "You said: Hi" in client.complete("Hi").text
        proc.send_signal(stop_signal)
        _, stderr = proc.communicate(timeout=LIMIT)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert b"serving the openai emulator" in stderr


def test_emulate_on_a_busy_port_is_a_usage_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = run("emulate", "-p", "aura", "--port", str(busy.getsockname()[1]))
    assert result.returncode == 2
    assert "cannot serve on 127.0.0.1" in one_line(result.stderr)


def test_json_carries_reasoning_tool_calls_usage_details_and_request_id(openai_emulator):
    from llmclients.testing import openai as emulated

    events = emulated.reasoning_chunks(["Thinking."], then_text=[], finish_reason=None)
    events += emulated.tool_call_chunks([("call_1", "weather", '{"city": "Paris"}')])
    events.append(emulated.usage_chunk(3, 2, cached=1, reasoning=1))
    openai_emulator.enqueue(Reply(events=events, headers={"x-request-id": "req_7"}))
    result = chat(
        openai_emulator,
        "--json",
        "-o",
        "tool_choice",
        '"auto"',
        "-o",
        "tools",
        '[{"type": "function", "function": {"name": "weather"}}]',
        "Hi",
    )
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["reasoning"] == "Thinking."
    assert reply["tool_calls"] == [{"id": "call_1", "name": "weather", "arguments": '{"city": "Paris"}'}]
    assert reply["usage"]["cached_tokens"] == 1 and reply["usage"]["reasoning_tokens"] == 1
    assert reply["request_id"] == "req_7"
    sent = openai_emulator.last_request.json()
    assert sent["tool_choice"] == "auto" and sent["tools"][0]["function"]["name"] == "weather"


def test_show_reasoning_streams_it_to_stderr_apart_from_the_answer(openai_emulator):
    from llmclients.testing import openai as emulated

    openai_emulator.enqueue(Reply(events=emulated.reasoning_chunks(["Hmm, ", "yes."], then_text=["42"])))
    result = chat(openai_emulator, "--show-reasoning", "Hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "42\n"
    assert "Hmm, yes." in result.stderr
