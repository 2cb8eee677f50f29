"""The interactive chat: ``llmclients chat`` on a pseudo-terminal, typed at as a
person would (pexpect), and its loop driven by scripted lines.

Every session talks to an emulator on 127.0.0.1, and every wait is bounded.
"""

from __future__ import annotations

import io
import json
import os
import sys
from typing import Iterator, List

import pytest
from test_cli import MODEL, clean_env

import llmclients
from llmclients.cli._repl import Session
from llmclients.testing import AllenAIEmulator, OpenAIEmulator, Reply
from llmclients.testing.openai import reasoning_chunks

pexpect = pytest.importorskip("pexpect", reason="a pseudo-terminal needs pexpect (POSIX)")
LIMIT = 30


@pytest.fixture
def terminal(openai_emulator) -> Iterator:
    """``llmclients chat`` with no prompt on a pseudo-terminal, talking to the emulator."""
    args = ["-m", "llmclients", "chat", "-m", MODEL, "--base-url", openai_emulator.base_url]
    child = pexpect.spawn(
        sys.executable,
        args,
        env=clean_env(TERM="dumb"),
        encoding="utf-8",
        timeout=LIMIT,
        dimensions=(40, 200),
    )
    try:
        child.expect_exact(f"Chatting with {MODEL}")
        yield child
    finally:
        child.close(force=True)


def expect_prompt(child) -> None:
    child.expect_exact("> ")


def test_a_terminal_session_is_multi_turn(terminal, openai_emulator):
    openai_emulator.enqueue(Reply(text="Hello Ada."), Reply(text="Your name is Ada."))
    expect_prompt(terminal)
    terminal.sendline("My name is Ada.")
    terminal.expect_exact("Hello Ada.")
    expect_prompt(terminal)
    terminal.sendline("What is my name?")
    terminal.expect_exact("Your name is Ada.")
    expect_prompt(terminal)
    messages = openai_emulator.last_request.json()["messages"]
    assert [m["content"] for m in messages] == ["My name is Ada.", "Hello Ada.", "What is my name?"]
    terminal.sendeof()
    terminal.expect(pexpect.EOF)
    terminal.close()
    assert terminal.exitstatus == 0


def test_ctrl_c_stops_the_reply_not_the_session(terminal, openai_emulator):
    words = " ".join(f"word{i}" for i in range(300))
    openai_emulator.enqueue(Reply(text=words, delay=0.05), Reply(text="Still here."))
    expect_prompt(terminal)
    terminal.sendline("Count")
    terminal.expect_exact("word3 ")
    terminal.sendintr()
    terminal.expect_exact("stopped; this turn is not kept")
    expect_prompt(terminal)
    terminal.sendline("Are you there?")
    terminal.expect_exact("Still here.")
    assert openai_emulator.requests[0].wait() == "client closed"
    # The stopped turn is not in the history sent next.
    assert [m["content"] for m in openai_emulator.last_request.json()["messages"]] == ["Are you there?"]
    terminal.sendline("/exit")
    terminal.expect(pexpect.EOF)
    terminal.close()
    assert terminal.exitstatus == 0


def test_readline_recalls_the_previous_line(terminal, openai_emulator):
    pytest.importorskip("readline")
    openai_emulator.enqueue(Reply(text="First."), Reply(text="Again."))
    expect_prompt(terminal)
    terminal.sendline("Say it")
    terminal.expect_exact("First.")
    expect_prompt(terminal)
    terminal.send("\x1b[A")  # the up arrow: the last line typed comes back
    terminal.send("\r")
    terminal.expect_exact("Again.")
    assert openai_emulator.last_request.json()["messages"][-1]["content"] == "Say it"


def test_a_piped_prompt_keeps_the_one_shot_behaviour(openai_emulator):
    # Not a terminal: no session, no banner, the reply alone.
    import subprocess

    openai_emulator.enqueue(Reply(text="One shot."))
    result = subprocess.run(
        [sys.executable, "-m", "llmclients", "chat", "-m", MODEL, "--base-url", openai_emulator.base_url],
        input="Hi",
        capture_output=True,
        encoding="utf-8",
        env=clean_env(),
        timeout=LIMIT,
    )
    assert (result.returncode, result.stdout) == (0, "One shot.\n")


def test_a_session_resumes_and_keeps_the_conversation_file(openai_emulator, tmp_path):
    path = tmp_path / "chat.json"
    client = llmclients.OpenAICompatible(base_url=openai_emulator.base_url, model=MODEL)
    earlier = client.conversation(system="Be brief.")
    openai_emulator.enqueue(Reply(text="Hi Ada."), Reply(text="Ada."))
    earlier.send("I am Ada.")
    path.write_text(json.dumps(earlier.to_dict()))
    args = ["-m", "llmclients", "chat", "--base-url", openai_emulator.base_url, "--conversation", str(path)]
    child = pexpect.spawn(sys.executable, args, env=clean_env(TERM="dumb"), encoding="utf-8", timeout=LIMIT)
    try:
        expect_prompt(child)
        child.sendline("Who am I?")
        child.expect_exact("Ada.")
        expect_prompt(child)
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    sent = [m["content"] for m in openai_emulator.last_request.json()["messages"]]
    assert sent == ["Be brief.", "I am Ada.", "Hi Ada.", "Who am I?"]
    kept = json.loads(path.read_text())
    assert [m["content"] for m in kept["messages"]][-2:] == ["Who am I?", "Ada."]


# --- the loop, driven by scripted lines ----------------------------------------------------------


def scripted(lines: List[str]):
    """A ``read`` that types ``lines`` then Ctrl-D."""
    queue = list(lines)

    def read(prompt: str) -> str:
        if not queue:
            raise EOFError
        return queue.pop(0)

    return read


def session(client: llmclients.Provider, lines: List[str]) -> Session:
    return Session(client, client.conversation(), read=scripted(lines), out=io.StringIO(), err=io.StringIO())


def client_of(emulator: OpenAIEmulator) -> llmclients.OpenAICompatible:
    return llmclients.OpenAICompatible(base_url=emulator.base_url, model=MODEL, max_retries=0)


def test_commands_reset_system_model_and_save(openai_emulator, tmp_path):
    saved = tmp_path / "saved.json"
    lines = ["One", "/system Be terse.", "Two", "/model other", "/reset", "Three", f"/save {saved}", "/exit"]
    chat = session(client_of(openai_emulator), [*lines, "never read"])
    assert chat.loop() == 0
    bodies = [request.json() for request in openai_emulator.requests]
    assert [m["content"] for m in bodies[1]["messages"]][:2] == ["Be terse.", "One"]
    assert bodies[2]["model"] == "other"
    assert [m["content"] for m in bodies[2]["messages"]] == [
        "Be terse.",
        "Three",
    ]  # /reset kept the system prompt
    state = json.loads(saved.read_text())
    assert state["model"] == "other" and len(state["messages"]) == 3
    assert len(bodies) == 3  # "never read" was not sent: /exit ended the session


def test_unknown_commands_and_errors_do_not_end_the_session(openai_emulator):
    openai_emulator.enqueue(Reply(status=500, body={"error": {"message": "boom"}}), Reply(text="Fine now."))
    chat = session(client_of(openai_emulator), ["/nope", "//slash", "again", "/model"])
    assert chat.loop() == 0
    err = chat.err.getvalue()  # type: ignore[attr-defined]
    assert "no command /nope" in err and "ServerError" in err
    assert openai_emulator.requests[0].json()["messages"][-1]["content"] == "/slash"
    out = chat.out.getvalue()  # type: ignore[attr-defined]
    assert "Fine now." in out and f"Model: {MODEL}" in out


def test_an_unknown_model_is_refused_and_the_old_one_kept():
    chat = session(llmclients.AllenAI(base_url="http://127.0.0.1:9"), ["/model gpt-9"])
    assert chat.loop() == 0
    assert chat.conversation.model == "tulu3-405b"
    assert "has no model 'gpt-9'" in chat.err.getvalue()  # type: ignore[attr-defined]


@pytest.mark.skipif(os.name != "posix", reason="pseudo-terminals are POSIX")
def test_help_lists_every_command(terminal):
    expect_prompt(terminal)
    terminal.sendline("/help")
    for command in ("/exit", "/reset", "/system", "/model", "/save"):
        terminal.expect_exact(command)
    terminal.sendline("/exit")
    terminal.expect(pexpect.EOF)


def test_a_turn_of_several_lines_is_sent_as_one(openai_emulator):
    chat = session(client_of(openai_emulator), ['"""', "/first line", "", "second line", '"""'])
    assert chat.loop() == 0
    assert len(openai_emulator.requests) == 1
    assert openai_emulator.last_request.json()["messages"][-1]["content"] == "/first line\n\nsecond line"


def test_show_reasoning_prints_it_on_stderr_apart_from_the_answer(openai_emulator):
    openai_emulator.enqueue(Reply(events=reasoning_chunks(["Let me think."], then_text=["The answer."])))
    client = client_of(openai_emulator)
    chat = Session(
        client,
        client.conversation(),
        show_reasoning=True,
        read=scripted(["Q?"]),
        out=io.StringIO(),
        err=io.StringIO(),
    )
    assert chat.loop() == 0
    assert chat.err.getvalue() == "Let me think.\n"  # type: ignore[attr-defined]
    assert "The answer.\n" in chat.out.getvalue()  # type: ignore[attr-defined]


def test_json_on_a_terminal_without_a_prompt_is_a_usage_error(openai_emulator):
    args = ["-m", "llmclients", "chat", "--json", "-m", MODEL, "--base-url", openai_emulator.base_url]
    child = pexpect.spawn(sys.executable, args, env=clean_env(TERM="dumb"), encoding="utf-8", timeout=LIMIT)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert "--json answers one prompt" in child.before
    assert openai_emulator.requests == []


def test_ctrl_c_while_typing_several_lines_drops_them(openai_emulator):
    typed = iter(['"""', "half a thought"])

    def read(prompt: str) -> str:
        for line in typed:
            return line
        raise KeyboardInterrupt if prompt == "... " else EOFError

    chat = Session(
        client_of(openai_emulator), client_of(openai_emulator).conversation(), read=read, out=io.StringIO()
    )
    assert chat.loop() == 0
    assert openai_emulator.requests == []


def test_an_allenai_thread_goes_on_for_the_whole_session():
    # One emulator serves the whole session, so the server-side thread is known on turn 2.
    with AllenAIEmulator() as emulator:
        client = llmclients.AllenAI(base_url=emulator.base_url)
        chat = session(client, ["My name is Ada.", "What is my name?"])
        assert chat.loop() == 0
        assert chat.err.getvalue() == ""  # type: ignore[attr-defined]
        assert len(emulator.requests) == 2
        assert chat.conversation.thread and len(chat.conversation.messages) == 4


def test_a_turn_cut_off_while_reasoning_says_so_in_one_line(openai_emulator, recwarn):
    openai_emulator.enqueue(Reply(events=reasoning_chunks(["Hmm"], finish_reason="length")), Reply(text="4"))
    chat = session(client_of(openai_emulator), ["What is 2+2?", "Again"])
    assert chat.loop() == 0
    err = chat.err.getvalue()  # type: ignore[attr-defined]
    assert err.startswith(
        "llmclients: NoAnswer: the token limit ended the reply while the model was still reasoning"
    )
    assert err.count("\n") == 1
    # No empty line for the turn that answered nothing; the next turn's answer follows.
    assert chat.out.getvalue().splitlines()[1:2] == ["4"]  # type: ignore[attr-defined]
    assert not [w for w in recwarn if issubclass(w.category, llmclients.ReasoningCutOffWarning)]
