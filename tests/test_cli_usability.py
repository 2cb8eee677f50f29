"""The command as a new user meets it: mistakes caught with a hint, settings that
say where they came from, model listing, SIGTERM, and the smaller flags.

Every command is a real subprocess against emulators on 127.0.0.1 (the helpers
are test_cli's), bounded by a timeout.
"""

from __future__ import annotations

import http.server
import json
import signal
import subprocess
import sys
import threading

import pytest
from test_cli import CLI, LIMIT, MODEL, chat, clean_env, eventually, one_line, posix_only, read_until, run

from llmclients.cli._parser import build_parser
from llmclients.testing import OpenAIEmulator, Reply
from llmclients.testing.openai import choices_chunks, reasoning_chunks

# --- URL mistakes --------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_a_base_url_without_a_scheme_is_a_usage_error_with_the_fix(how):
    flag = ["--base-url", "localhost:11434/v1"] if how == "flag" else []
    env = {"LLMCLIENTS_BASE_URL": "localhost:11434/v1"} if how == "environment" else {}
    result = run("chat", "-m", "m", *flag, "Hi", **env)
    assert result.returncode == 2
    source = "--base-url" if how == "flag" else "LLMCLIENTS_BASE_URL"
    assert one_line(result.stderr) == (
        f"llmclients: {source} 'localhost:11434/v1' has no scheme: add http:// (http://localhost:11434/v1) or https://"
    )


def test_a_404_from_a_base_url_without_v1_suggests_it():
    with OpenAIEmulator() as emulator:
        root = emulator.base_url[: -len("/v1")]
        result = run("chat", "-m", "m", "--base-url", root, "Hi")
        assert result.returncode == 3
        assert one_line(result.stderr).endswith(f"; did you mean --base-url {root}/v1?")
        assert emulator.requests[-1].path == "/chat/completions"


def test_a_404_with_v1_gives_no_such_hint(openai_emulator):
    openai_emulator.enqueue(Reply(status=404, body={"error": {"message": "no such route"}}))
    result = chat(openai_emulator, "Hi")
    assert result.returncode == 3 and "did you mean" not in result.stderr


# --- settings say where they came from ------------------------------------------------------


def test_a_model_from_the_environment_is_named_in_the_error():
    result = run("chat", "-p", "allenai", "--emulate", "Hello", LLMCLIENTS_MODEL="llama3.2")
    assert result.returncode == 2
    assert "LLMCLIENTS_MODEL=llama3.2" in one_line(result.stderr)


def test_a_flag_given_is_not_blamed_on_the_environment():
    result = run("chat", "-p", "allenai", "--emulate", "-m", "llama3.2", "Hello", LLMCLIENTS_MODEL="other")
    assert result.returncode == 2
    assert "'llama3.2'" in result.stderr and "LLMCLIENTS_MODEL" not in result.stderr


def test_a_connection_refused_names_the_base_url_from_the_environment():
    result = run("chat", "-m", "m", "Hi", LLMCLIENTS_BASE_URL="http://127.0.0.1:9/v1", LLMCLIENTS_TIMEOUT="5")
    assert result.returncode == 3
    assert one_line(result.stderr).startswith("llmclients: ConnectError")
    assert "LLMCLIENTS_BASE_URL=http://127.0.0.1:9/v1" in result.stderr


# --- smaller items -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["chat", "--json", "--temperature", "warm", "Hi"], ["chat", "--json", "--emulate", "-p", "nope", "Hi"]],
    ids=["argparse", "after parsing"],
)
def test_json_prints_an_error_object_on_usage_errors(args):
    result = run(*args)
    assert result.returncode == 2
    reply = json.loads(result.stdout)
    assert reply["text"] == "" and reply["error"]["exit_code"] == 2
    assert ("warm" if "warm" in args else "nope") in reply["error"]["message"]


def test_provider_names_are_case_insensitive(openai_emulator):
    openai_emulator.enqueue(Reply(text="Hi there"))
    result = run("chat", "-p", "OpenAI", "-m", MODEL, "--base-url", openai_emulator.base_url, "Hi")
    assert (result.returncode, result.stdout) == (0, "Hi there\n")
    assert run("chat", "--emulate", "Hi", LLMCLIENTS_PROVIDER="AURA").returncode == 0


def test_every_flag_of_every_command_has_help():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name, command in [("llmclients", parser), *commands.items()]:
        for action in command._actions:
            if action.dest not in ("help", "command", "version"):
                assert action.help, f"{name} {action.option_strings or action.dest} has no help"


def test_seed_and_stop_are_sent(openai_emulator):
    openai_emulator.enqueue(Reply(text="ok"))
    result = chat(openai_emulator, "--seed", "7", "--stop", "END", "--stop", "\n\n", "Hi")
    assert result.returncode == 0, result.stderr
    body = openai_emulator.last_request.json()
    assert (body["seed"], body["stop"]) == (7, ["END", "\n\n"])


def test_seed_for_a_provider_that_does_not_take_it_is_refused_before_sending():
    result = run("chat", "-p", "autonomous", "--emulate", "--seed", "7", "Hi")
    assert result.returncode == 2 and "seed" in result.stderr


@posix_only
def test_sigterm_stops_the_stream_like_ctrl_c_and_exits_143(openai_emulator):
    text = " ".join(f"word{i}" for i in range(200))
    openai_emulator.enqueue(Reply(text=text, delay=0.05))
    args = ["chat", "-m", MODEL, "--base-url", openai_emulator.base_url, "Count"]
    proc = subprocess.Popen(
        CLI + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env()
    )
    try:
        printed = read_until(proc, b"word3 ")
        proc.send_signal(signal.SIGTERM)
        rest, stderr = proc.communicate(timeout=LIMIT)
    finally:
        proc.kill()
    stdout = (printed + rest).decode()
    assert proc.returncode == 143, stderr
    assert stdout.startswith("word0 word1 word2 word3 ") and stdout.endswith("\n") and "word199" not in stdout
    assert one_line(stderr.decode()) == "llmclients: Terminated: stopped by SIGTERM"
    assert eventually(lambda: openai_emulator.requests[0].outcome == "client closed")


# --- models from the server ------------------------------------------------------------------


def test_models_lists_what_an_openai_server_serves():
    with OpenAIEmulator(models=["qwen2.5", "llama3.2"]) as emulator:
        result = run("models", "-p", "openai", "--base-url", emulator.base_url)
        assert result.returncode == 0, result.stderr
        assert [line.split() for line in result.stdout.splitlines()] == [
            ["PROVIDER", "MODEL", "ALIASES"],
            ["openai", "qwen2.5"],
            ["openai", "llama3.2"],
        ]
        assert emulator.last_request.method == "GET" and emulator.last_request.path == "/v1/models"


def test_models_from_an_unreachable_server_exits_3():
    result = run("models", "-p", "openai", "--base-url", "http://127.0.0.1:9/v1", "--timeout", "5")
    assert result.returncode == 3 and "ConnectError" in result.stderr


def test_models_of_another_provider_with_a_base_url_is_a_usage_error():
    result = run("models", "-p", "aura", "--base-url", "http://127.0.0.1:9")
    # The providers whose servers list their models come from the registry (openai, responses, ...).
    assert result.returncode == 2 and "only an openai" in result.stderr and "server lists its own" in result.stderr


def test_a_single_model_server_s_model_is_used_when_none_is_named():
    with OpenAIEmulator(models=["only-one.gguf"]) as emulator:
        result = run("chat", "--json", "--base-url", emulator.base_url, "Hi")
        assert result.returncode == 0, result.stderr
        assert emulator.last_request.json()["model"] == "only-one.gguf"


def test_a_server_with_several_models_still_needs_one_named():
    with OpenAIEmulator(models=["a", "b"]) as emulator:
        result = run("chat", "--base-url", emulator.base_url, "Hi")
        assert result.returncode == 2
        assert "the server serves 2" in result.stderr
        assert all(request.method == "GET" for request in emulator.requests)


# --- conversation files ------------------------------------------------------------------------


def test_an_unwritable_conversation_file_is_refused_before_sending(openai_emulator, tmp_path):
    path = tmp_path / "missing-directory" / "chat.json"
    result = chat(openai_emulator, "--conversation", str(path), "Hi")
    assert result.returncode == 2 and "cannot save the conversation" in result.stderr
    assert result.stdout == "" and openai_emulator.requests == []


def test_a_new_system_prompt_on_an_existing_conversation_is_refused(openai_emulator, tmp_path):
    path = str(tmp_path / "chat.json")
    assert chat(openai_emulator, "--conversation", path, "-s", "Be brief.", "Hi").returncode == 0
    same = chat(openai_emulator, "--conversation", path, "-s", "Be brief.", "Again")
    assert same.returncode == 0, same.stderr
    other = chat(openai_emulator, "--conversation", path, "-s", "Be verbose.", "More")
    assert other.returncode == 2 and "-s applies to a new one only" in other.stderr
    assert len(openai_emulator.requests) == 2


def test_an_emulated_server_side_thread_cannot_go_on_in_a_new_run(tmp_path):
    path = str(tmp_path / "chat.json")
    first = run("chat", "-p", "allenai", "--emulate", "--conversation", path, "Hi")
    assert first.returncode == 0, first.stderr
    second = run("chat", "-p", "allenai", "--emulate", "--conversation", path, "Again")
    assert second.returncode == 2
    assert "keeps its server-side threads in memory" in one_line(second.stderr)


def test_main_runs_from_a_thread_without_touching_signals(openai_emulator):
    # main() installs its SIGTERM handler only in the main thread, where signals arrive.
    script = (
        "import threading, sys; from llmclients.cli import main; out = []\n"
        "t = threading.Thread(target=lambda: out.append(main(sys.argv[1:]))); t.start(); t.join(30)\n"
        "sys.exit(out[0])"
    )
    openai_emulator.enqueue(Reply(text="threaded"))
    args = ["chat", "-m", MODEL, "--base-url", openai_emulator.base_url, "Hi"]
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        encoding="utf-8",
        env=clean_env(),
        timeout=LIMIT,
    )
    assert (result.returncode, result.stdout) == (0, "threaded\n"), result.stderr


def test_debug_shows_the_request_body_with_secrets_masked(openai_emulator):
    openai_emulator.enqueue(Reply(text="ok"))
    key = "sk-debug-5e6f7a8b9c"
    image = "data:image/png;base64," + "A" * 5000
    result = chat(
        openai_emulator,
        "--debug",
        "-o",
        "user",
        json.dumps(image),
        f"My key is {key}",
        LLMCLIENTS_API_KEY=key,
    )
    assert result.returncode == 0, result.stderr
    body_lines = [line for line in result.stderr.splitlines() if "request body: " in line]
    assert len(body_lines) == 1
    logged = json.loads(body_lines[0].split("request body: ", 1)[1])
    assert logged["messages"] == [{"role": "user", "content": "My key is ***"}]
    assert logged["user"].endswith("...(4822 more characters)") and len(logged["user"]) < 300
    assert key not in result.stderr


def test_a_server_that_lists_no_models_still_asks_for_one():
    # A proxy that serves chat completions but not /models: a 404 there is no reason to fail.
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = run("chat", "--base-url", f"http://127.0.0.1:{server.server_port}/v1", "Hi")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert result.returncode == 2
    assert "openai has no default model: name one with -m MODEL" in result.stderr


# --- against a real llama-server: what users met ----------------------------------------------


def test_a_reply_cut_off_while_reasoning_is_one_line_and_exit_3(openai_emulator):
    openai_emulator.enqueue(
        Reply(events=reasoning_chunks(["Let me think", " it over"], finish_reason="length"))
    )
    result = chat(openai_emulator, "Hi")
    assert result.returncode == 3 and result.stdout == ""
    assert one_line(result.stderr).startswith(
        "llmclients: NoAnswer: the token limit ended the reply while the model was still reasoning "
        "(20 characters of reasoning, no answer): raise --max-tokens"
    )
    assert "Warning" not in result.stderr and ".py:" not in result.stderr


def test_a_reply_cut_off_while_reasoning_is_an_error_in_json(openai_emulator):
    openai_emulator.enqueue(Reply(events=reasoning_chunks(["Hmm"], finish_reason="length")))
    result = chat(openai_emulator, "--json", "Hi")
    assert result.returncode == 3 and result.stderr.count("\n") == 1
    reply = json.loads(result.stdout)
    assert reply["text"] == "" and reply["reasoning"] == "Hmm" and reply["finish_reason"] == "length"
    assert reply["error"]["type"] == "NoAnswer" and reply["error"]["exit_code"] == 3


def test_a_reasoning_reply_that_answers_still_exits_0(openai_emulator):
    openai_emulator.enqueue(Reply(events=reasoning_chunks(["Hmm"], then_text=["4"], finish_reason="length")))
    result = chat(openai_emulator, "What is 2+2?")
    assert result.returncode == 0 and result.stdout == "4\n" and result.stderr == ""


def test_an_option_the_openai_provider_does_not_know_goes_to_the_server(openai_emulator):
    result = chat(
        openai_emulator,
        "-o",
        "chat_template_kwargs",
        '{"enable_thinking": false}',
        "-o",
        "extra_body",
        '{"top_k": 20}',
        "Hi",
    )
    assert result.returncode == 0, result.stderr
    body = openai_emulator.last_request.json()
    assert body["chat_template_kwargs"] == {"enable_thinking": False} and body["top_k"] == 20
    assert "extra_body" not in body


def test_an_option_another_provider_does_not_know_is_still_refused():
    result = run("chat", "-p", "aura", "--emulate", "-o", "chat_template_kwargs", "{}", "Hi")
    assert result.returncode == 2 and "does not take 'chat_template_kwargs'" in result.stderr


def test_models_of_a_server_without_p_lists_only_that_server_s():
    with OpenAIEmulator(models=["qwen3-8b.gguf"]) as emulator:
        result = run("models", "--base-url", emulator.base_url)
    assert result.returncode == 0, result.stderr
    assert [line.split() for line in result.stdout.splitlines()] == [
        ["PROVIDER", "MODEL", "ALIASES"],
        ["openai", "qwen3-8b.gguf"],
    ]
    emulated = run("models", "--emulate")
    assert emulated.returncode == 0, emulated.stderr
    assert {line.split()[0] for line in emulated.stdout.splitlines()[1:]} == {"openai"}


def test_every_choice_is_printed_under_its_label(openai_emulator):
    for flags in ([], ["--no-stream"]):
        openai_emulator.enqueue(Reply(events=choices_chunks(["Hello there", "Hi again"])))
        result = chat(openai_emulator, "-o", "n", "2", *flags, "Hi")
        assert result.returncode == 0, result.stderr
        assert result.stdout == "--- choice 0 ---\nHello there\n--- choice 1 ---\nHi again\n", flags
        assert openai_emulator.last_request.json()["n"] == 2


def test_json_has_every_choice(openai_emulator):
    openai_emulator.enqueue(Reply(events=choices_chunks(["Hello there", "Hi again"])))
    result = chat(openai_emulator, "-o", "n", "2", "--json", "Hi")
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["text"] == "Hello there"
    assert [(c["index"], c["text"], c["finish_reason"]) for c in reply["choices"]] == [
        (0, "Hello there", "stop"),
        (1, "Hi again", "stop"),
    ]
    openai_emulator.enqueue(Reply(text="One"))
    single = json.loads(chat(openai_emulator, "--json", "Hi").stdout)
    assert [c["text"] for c in single["choices"]] == ["One"]


def test_the_command_starts_without_the_call_machinery() -> None:
    # --help, logs and models need none of it; chat loads it with its client.
    code = (
        "import sys, llmclients.cli\n"
        "loaded = [m for m in ('requests', 'inspect', 'llmclients._core.provider', 'llmclients.conversation')"
        " if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=LIMIT)
