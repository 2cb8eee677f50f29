"""``llmclients chat --tools FILE.py`` / ``--functions CODE`` / ``--yes``: the
command as a real subprocess against emulators on 127.0.0.1, on every
provider that carries tools; the terminal's question over a pseudo-terminal."""

from __future__ import annotations

import io
import json
import os
import subprocess

import pytest
from test_cli import CLI, LIMIT, MODEL, chat, clean_env
from test_repl import scripted
from tool_replies import reply, tool_providers

import llmclients
from llmclients.cli._repl import Session
from llmclients.cli._tools import ToolPrompts

TOOLS_FILE = '''\
from os.path import join  # imported: not a tool


def get_weather(city: str) -> str:
    """The weather now in a city.

    Args:
        city: The city's name.
    """
    return f"18 C in {city}"


def _helper():
    return "not a tool either"
'''


@pytest.fixture
def tools_file(tmp_path):
    path = tmp_path / "tools.py"
    path.write_text(TOOLS_FILE)
    return str(path)


def turns(emulator) -> list:
    """The bodies of the chat requests (the command may ask other things first: Ollama's model check)."""
    return [r.json() for r in emulator.requests if r.method == "POST" and r.body and "model" in r.json()]


def tool_names(body) -> list:
    return sorted(t.get("name") or t.get("function", {}).get("name") for t in body.get("tools") or ())


@pytest.mark.parametrize("provider", tool_providers())
def test_tools_from_a_file_run_with_yes_and_show_each_call_on_stderr(llm_emulator, provider, tools_file):
    emulator = llm_emulator(provider)
    emulator.enqueue(
        reply(provider, "Looking.", calls=[("c1", "get_weather", '{"city": "Paris"}')]),
        reply(provider, "It is 18 C in Paris."),
    )
    done = chat(emulator, "--tools", tools_file, "--yes", "Weather in Paris?")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Looking.\nIt is 18 C in Paris.\n"
    assert done.stderr.splitlines() == [
        'llmclients: the model calls get_weather({"city": "Paris"})',
        "llmclients: get_weather returned: 18 C in Paris",
    ]
    first, second = turns(emulator)[-2:]
    assert tool_names(first) == tool_names(second) == ["get_weather"]
    assert "18 C in Paris" in json.dumps(second)


def test_functions_given_as_code_and_json_output(openai_emulator):
    openai_emulator.enqueue(
        reply("openai", "Adding.", calls=[("c1", "add", '{"a": 2, "b": 40}')]), reply("openai", "42.")
    )
    code = "def add(a: int, b: int) -> int:\n    'Add two numbers.'\n    return a + b"
    done = chat(openai_emulator, "--functions", code, "--yes", "--json", "2 + 40?")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["text"] == "42."  # the final reply's text
    assert "llmclients: add returned: 42" in done.stderr.splitlines()
    assert tool_names(turns(openai_emulator)[0]) == ["add"]


def test_tools_without_a_terminal_need_yes(openai_emulator, tools_file):
    done = chat(openai_emulator, "--tools", tools_file, "-", stdin="Weather in Paris?")
    assert done.returncode == 2
    assert "give --yes" in done.stderr
    assert openai_emulator.requests == []


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--tools", "No such file or directory"),
        ("--functions", "defines no function"),
    ],
)
def test_tools_that_cannot_load_are_a_usage_error(openai_emulator, flag, message):
    value = "/nonexistent/tools.py" if flag == "--tools" else "x = 1"
    done = chat(openai_emulator, flag, value, "--yes", "Hi")
    assert done.returncode == 2 and message in done.stderr
    assert openai_emulator.requests == []


@pytest.mark.skipif(os.name != "posix", reason="a pseudo-terminal")
@pytest.mark.parametrize(("answer", "result"), [("n", "the user did not allow this call"), ("y", "18 C in Paris")])
def test_on_a_terminal_each_call_is_asked_about_first(openai_emulator, tools_file, answer, result):
    import pty

    openai_emulator.enqueue(
        reply("openai", calls=[("c1", "get_weather", '{"city": "Paris"}')]), reply("openai", "Done.")
    )
    primary, secondary = pty.openpty()
    args = ["chat", "-p", "openai", "--base-url", openai_emulator.base_url, "-m", MODEL, "--tools", tools_file]
    with subprocess.Popen(
        CLI + args + ["Weather?"],
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    ) as proc:
        os.close(secondary)
        try:
            os.write(primary, f"{answer}\n".encode())  # the terminal keeps the line until the question reads it
            stdout, stderr = proc.communicate(timeout=LIMIT)
        finally:
            os.close(primary)
    assert proc.returncode == 0, stderr
    assert b"Run get_weather? [y/N] " in stderr
    assert stdout == b"Done.\n"
    assert result in json.dumps(openai_emulator.requests[1].json())


def test_the_interactive_chat_runs_a_tool_loop_a_turn_and_keeps_the_tools_after_reset(openai_emulator):
    def get_weather(city: str) -> str:
        """The weather now in a city."""
        return f"18 C in {city}"

    call = [("c1", "get_weather", '{"city": "Paris"}')]
    openai_emulator.enqueue(
        reply("openai", "Looking.", calls=call), reply("openai", "18 C."),
        reply("openai", calls=call), reply("openai", "I may not look."),
    )  # fmt: skip
    client = llmclients.OpenAICompatible(base_url=openai_emulator.base_url, model=MODEL, max_retries=0)
    answers = iter(["y\n", "n\n"])
    err = io.StringIO()
    chat = Session(
        client,
        client.conversation(tools=[get_weather]),
        tools=ToolPrompts(yes=False, read=lambda: next(answers), err=err),
        read=scripted(["Weather?", "/reset", "Again?"]),
        out=io.StringIO(),
        err=err,
    )
    assert chat.loop() == 0
    assert chat.out.getvalue().count("Looking.\n18 C.\n") == 1
    assert "I may not look.\n" in chat.out.getvalue()
    assert err.getvalue().count("Run get_weather? [y/N] ") == 2
    assert "get_weather returned: 18 C in Paris" in err.getvalue()
    assert "get_weather failed: the user did not allow this call" in err.getvalue()


def test_a_call_cut_off_by_the_token_limit_says_to_raise_max_tokens(openai_emulator, tools_file, tmp_path):
    saved = tmp_path / "chat.json"
    openai_emulator.enqueue(reply("openai", calls=[("c1", "get_weather", '{"city": "Lon')], finish="length"))
    done = chat(openai_emulator, "--tools", tools_file, "--yes", "--conversation", str(saved), "Weather?")
    assert done.returncode == 3
    assert "ToolCallCutOffError" in done.stderr and "--max-tokens N" in done.stderr
    state = json.loads(saved.read_text())  # kept, without the cut call: the next turn can go on
    assert [m["role"] for m in state["messages"]] == ["user", "assistant"]
    assert "tool_calls" not in state["messages"][1]
