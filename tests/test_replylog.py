"""The reply log: the ``ReplyLog`` observer, the command's log (``chat`` writes,
``llmclients logs`` reads), concurrent writers, a log that cannot be written,
and secrets kept out of it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, Dict, List

import pytest
from test_cli import LIMIT, clean_env, run

import llmclients
from llmclients.batch import run as run_batch
from llmclients.replylog import ReplyLog, ReplyLogWarning
from llmclients.testing import OpenAIEmulator, Reply, wire_sample

KEY = "sk-test-7d1e9a3c5b2f"
PASSWORD = "hunter2-proxy-pass"


def client_of(emulator: OpenAIEmulator, log: ReplyLog, **kwargs: Any) -> llmclients.OpenAICompatible:
    return llmclients.OpenAICompatible(base_url=emulator.base_url, model="m", observers=[log], **kwargs)


def cli(user: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return run(*args, LLMCLIENTS_USER_PATH=str(user), **env)


def logged(user: Path, *args: str) -> List[Dict[str, Any]]:
    result = cli(user, "logs", "--json", *args)
    assert result.returncode == 0, result.stderr
    rows: List[Dict[str, Any]] = json.loads(result.stdout)
    return rows


# --- the library ---------------------------------------------------------------------------------


def test_a_row_holds_the_exchange(openai_emulator: OpenAIEmulator, tmp_path: Path) -> None:
    log = ReplyLog(tmp_path / "logs.db")
    client = client_of(openai_emulator, log, prices={"m": (1, 2)})
    conversation = client.conversation(system="Be brief.")
    conversation.send("What is a zebra?", temperature=0.5)
    openai_emulator.enqueue(Reply(deltas=["Hello", " there"] + ["."] * 200, drop_after=wire_sample("openai").cut))
    with pytest.raises(llmclients.errors.StreamInterruptedError) as caught:
        client.complete("Break, please")
    failed, done = log.rows()
    assert (done["provider"], done["model"], done["system"], done["prompt"]) == (
        "openai", "m", "Be brief.", "What is a zebra?"
    )
    assert done["url"] == f"{openai_emulator.base_url}/chat/completions"
    assert done["options"] == {"temperature": 0.5} and done["conversation"] == conversation.id
    assert done["reply"].endswith("What is a zebra?") and done["finish_reason"] == "stop"
    assert done["outcome"] == "done" and done["error_type"] is None
    assert done["total_tokens"] == done["prompt_tokens"] + done["completion_tokens"] and done["cost"] > 0
    timings = done["timings"]
    assert 0 < timings["headers"] <= timings["first_delta"] <= timings["total"]
    assert done["time"].endswith("+00:00")
    assert (failed["outcome"], failed["error_type"], failed["conversation"]) == (
        "error", "StreamInterruptedError", None
    )
    assert failed["partial_text"] == caught.value.partial_text != "" and failed["prompt"] == "Break, please"


def test_full_text_search_model_and_conversation(openai_emulator: OpenAIEmulator, tmp_path: Path) -> None:
    log = ReplyLog(tmp_path / "logs.db")
    client = client_of(openai_emulator, log)
    for prompt in ("zebras and lions", "the lion sleeps", "nothing here"):
        client.complete(prompt)
    client.complete("zebra crossing", model="other")
    assert [row["prompt"] for row in log.rows(query="zebras")] == ["zebras and lions"]
    assert [row["prompt"] for row in log.rows(query="lion")] == ["the lion sleeps"]  # words, as FTS5 does
    assert len(log.rows(query="emulator speaking")) == 4  # the replies are searched too
    assert log.rows(query="giraffe") == [] and len(log.rows(query="  ")) == 4
    assert [row["prompt"] for row in log.rows(model="other")] == ["zebra crossing"]
    assert [row["prompt"] for row in log.rows(1, query='"zebra" OR')] == []  # words, never operators
    assert log.totals(query="lion")["replies"] == 1 and log.totals()["replies"] == 4
    connection = sqlite3.connect(log.path)
    assert connection.execute("PRAGMA user_version").fetchone()[0] >= 1
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()


def test_batch_threads_lose_no_row(openai_emulator: OpenAIEmulator, tmp_path: Path) -> None:
    log = ReplyLog(tmp_path / "logs.db", queue_size=4)  # a small queue: writers wait, none is dropped
    client = client_of(openai_emulator, log)
    results = list(run_batch(client, [f"record {i}" for i in range(60)], concurrency=12))
    assert all(result.ok for result in results)
    assert sorted(row["prompt"] for row in log.rows()) == sorted(f"record {i}" for i in range(60))


WRITER = """
import sys, llmclients
client = llmclients.OpenAICompatible(base_url=sys.argv[1], model="m")
for i in range(int(sys.argv[3])):
    client.complete(f"process {sys.argv[2]} call {i}")
"""


def test_eight_processes_writing_at_once_lose_no_row(openai_emulator: OpenAIEmulator, tmp_path: Path) -> None:
    path, calls = tmp_path / "logs.db", 15
    env = clean_env(LLMCLIENTS_REPLY_LOG=str(path), PYTHONPATH=os.pathsep.join(sys.path))
    children = [
        subprocess.Popen([sys.executable, "-c", WRITER, openai_emulator.base_url, str(n), str(calls)], env=env)
        for n in range(8)
    ]
    assert [child.wait(timeout=LIMIT * 2) for child in children] == [0] * 8
    prompts = [row["prompt"] for row in ReplyLog(path).rows()]
    assert sorted(prompts) == sorted(f"process {n} call {i}" for n in range(8) for i in range(calls))


def test_an_unwritable_log_warns_once_and_never_breaks_a_call(
    openai_emulator: OpenAIEmulator, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.warns(ReplyLogWarning, match="cannot be written") as caught:
        log = ReplyLog(tmp_path / "a-file" / "logs.db")
        client = client_of(openai_emulator, log)
        assert client.complete("Hi").text and client.complete("Again").text
    assert len(caught) == 1 and log.broken
    # Writable when made, gone afterwards: the writer warns, once.
    folder = tmp_path / "folder"
    later = ReplyLog(folder / "logs.db")
    for name in os.listdir(folder):
        os.remove(folder / name)
    folder.rmdir()
    folder.write_text("a file now")
    client = client_of(openai_emulator, later)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(3):
            assert client.complete("Hi").text
            later.flush()
    assert [type(w.message) for w in seen] == [ReplyLogWarning]


def test_a_log_from_a_newer_llmclients_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "logs.db"
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA user_version = 999")
    connection.close()
    with pytest.warns(ReplyLogWarning, match="newer"):
        assert ReplyLog(path).broken


def test_secrets_stay_out_of_the_log(openai_emulator: OpenAIEmulator, tmp_path: Path) -> None:
    log = ReplyLog(tmp_path / "logs.db")
    client = client_of(openai_emulator, log, api_key=KEY, headers={"X-Extra-Auth": KEY})
    client.complete("Hi", extra_body={"api_key": KEY, "headers": {"Authorization": f"Bearer {KEY}"}})
    basic = llmclients.OpenAICompatible(
        base_url=openai_emulator.base_url.replace("http://", f"http://user:{PASSWORD}@"), model="m", observers=[log]
    )
    basic.complete("Hi")
    openai_emulator.enqueue(Reply(status=401, body={"error": {"message": f"bad key {KEY}"}}))
    with pytest.raises(llmclients.errors.AuthenticationError):
        client.complete("Hi")
    log.close()
    rows = log.rows()
    assert len(rows) == 3 and rows[2]["options"]["extra_body"]["api_key"] == "***"
    stored = b"".join(path.read_bytes() for path in tmp_path.iterdir())
    assert KEY.encode() not in stored and PASSWORD.encode() not in stored


def test_the_library_logs_nothing_unless_asked(openai_emulator: OpenAIEmulator, tmp_path: Path) -> None:
    code = (
        "import sys, llmclients; assert 'sqlite3' not in sys.modules; "
        f"llmclients.OpenAICompatible(base_url={openai_emulator.base_url!r}, model='m').complete('Hi'); "
        "assert 'sqlite3' not in sys.modules"
    )
    env = clean_env(LLMCLIENTS_USER_PATH=str(tmp_path), PYTHONPATH=os.pathsep.join(sys.path))
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=LIMIT)
    assert list(tmp_path.iterdir()) == []
    env["LLMCLIENTS_REPLY_LOG"] = "1"
    subprocess.run([sys.executable, "-c", code.replace("assert 'sqlite3' not in sys.modules", "pass")], env=env, check=True, timeout=LIMIT)
    assert [row["prompt"] for row in ReplyLog(tmp_path / "logs.db").rows()] == ["Hi"]


# --- the command ----------------------------------------------------------------------------------


def test_chat_then_logs_round_trip(openai_emulator: OpenAIEmulator, tmp_path: Path) -> None:
    result = cli(tmp_path, "chat", "--base-url", openai_emulator.base_url, "-m", "m", "--json", "Hello log",
                 LLMCLIENTS_API_KEY=KEY)
    assert result.returncode == 0, result.stderr
    timings = json.loads(result.stdout)["timings"]
    assert 0 < timings["headers"] <= timings["first_delta"] <= timings["total"] and timings["deltas"] > 1
    (row,) = logged(tmp_path, "-n", "1")
    assert (row["prompt"], row["model"], row["provider"], row["outcome"]) == ("Hello log", "m", "openai", "done")
    assert row["reply"] == json.loads(result.stdout)["text"] and row["timings"]["deltas"] == timings["deltas"]
    assert KEY.encode() not in (tmp_path / "logs.db").read_bytes()
    assert cli(tmp_path, "logs", "path").stdout.strip() == str(tmp_path / "logs.db")
    listing = cli(tmp_path, "logs").stdout
    assert "> Hello log" in listing and listing.rstrip().splitlines()[-1].startswith("1 reply, ")


def test_no_log_and_logs_off(openai_emulator: OpenAIEmulator, tmp_path: Path) -> None:
    def chat(prompt: str, *args: str) -> None:
        result = cli(tmp_path, "chat", "--base-url", openai_emulator.base_url, "-m", "m", *args, prompt)
        assert result.returncode == 0, result.stderr

    chat("kept")
    chat("not kept", "--no-log")
    assert cli(tmp_path, "logs", "off").returncode == 0
    chat("not kept either")
    assert cli(tmp_path, "logs", "on").returncode == 0
    chat("kept too")
    assert [row["prompt"] for row in logged(tmp_path, "-n", "0")] == ["kept", "kept too"]
    assert [row["prompt"] for row in logged(tmp_path, "-q", "too")] == ["kept too"]


def test_logs_of_one_conversation(openai_emulator: OpenAIEmulator, tmp_path: Path) -> None:
    saved = tmp_path / "chat.json"
    for prompt in ("My name is Ada.", "What is my name?"):
        result = cli(tmp_path, "chat", "--base-url", openai_emulator.base_url, "-m", "m",
                     "--conversation", str(saved), prompt)
        assert result.returncode == 0, result.stderr
    cli(tmp_path, "chat", "--base-url", openai_emulator.base_url, "-m", "m", "Another")
    conversation = json.loads(saved.read_text())["id"]
    rows = logged(tmp_path, "-c", conversation, "-n", "0")
    assert [row["prompt"] for row in rows] == ["My name is Ada.", "What is my name?"]


def test_the_suite_never_logs_into_the_developers_folder(openai_emulator: OpenAIEmulator) -> None:
    # Commands run with LLMCLIENTS_* cleared still write under this session's folder (conftest).
    result = run("chat", "--base-url", openai_emulator.base_url, "-m", "m", "Where is my log?")
    assert result.returncode == 0, result.stderr
    session = Path(os.environ["XDG_DATA_HOME"])
    assert session.name.startswith("llmclients-user-")
    prompts = [row["prompt"] for row in ReplyLog(session / "llmclients" / "logs.db").rows()]
    assert "Where is my log?" in prompts


def test_a_command_whose_log_cannot_be_written_says_so_in_one_line_and_answers(
    openai_emulator: OpenAIEmulator, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    user = tmp_path / "a-file" / "user"
    result = cli(user, "chat", "--base-url", openai_emulator.base_url, "-m", "m", "Hi")
    assert result.returncode == 0 and "You said: Hi" in result.stdout
    (line,) = result.stderr.splitlines()
    assert line.startswith("llmclients: the reply log ") and "cannot be written" in line
    assert cli(user, "logs").returncode == 0  # no log yet: nothing to list


def test_calls_inside_in_conversation_carry_its_id(openai_emulator: OpenAIEmulator, tmp_path: Path) -> None:
    import asyncio

    from llmclients.aio import AsyncClient

    log = ReplyLog(tmp_path / "logs.db")
    client = client_of(openai_emulator, log)
    with llmclients.observers.in_conversation("ticket-42"):
        client.complete("inside")

        async def main() -> None:
            async with AsyncClient(client_of(openai_emulator, log)) as aclient:
                await aclient.complete("inside, from asyncio")

        asyncio.run(main())
    client.complete("outside")
    assert [(row["prompt"], row["conversation"]) for row in reversed(log.rows())] == [
        ("inside", "ticket-42"),
        ("inside, from asyncio", "ticket-42"),
        ("outside", None),
    ]


def test_an_asyncio_conversation_names_its_calls(openai_emulator: OpenAIEmulator, tmp_path: Path) -> None:
    import asyncio

    from llmclients.aio import AsyncClient

    log = ReplyLog(tmp_path / "logs.db")

    async def main() -> str:
        async with AsyncClient(client_of(openai_emulator, log)) as aclient:
            conversation = aclient.conversation()
            await conversation.send("one")
            await conversation.send("two")
            return conversation.id

    conversation_id = asyncio.run(main())
    assert [row["prompt"] for row in reversed(log.rows(conversation=conversation_id))] == ["one", "two"]


def test_an_interactive_session_logs_each_turn_as_one_conversation(
    openai_emulator: OpenAIEmulator, tmp_path: Path
) -> None:
    pexpect = pytest.importorskip("pexpect", reason="a pseudo-terminal needs pexpect (POSIX)")
    openai_emulator.enqueue(Reply(text="Hello Ada."), Reply(text="Your name is Ada."))
    child = pexpect.spawn(
        sys.executable,
        ["-m", "llmclients", "chat", "-m", "m", "--base-url", openai_emulator.base_url],
        env=clean_env(TERM="dumb", LLMCLIENTS_USER_PATH=str(tmp_path)),
        encoding="utf-8",
        timeout=LIMIT,
    )
    try:
        for line, answer in (("My name is Ada.", "Hello Ada."), ("What is my name?", "Your name is Ada.")):
            child.expect_exact("> ")
            child.sendline(line)
            child.expect_exact(answer)
        child.expect_exact("> ")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    first, second = logged(tmp_path, "-n", "0")
    assert (first["prompt"], second["prompt"]) == ("My name is Ada.", "What is my name?")
    assert first["conversation"] is not None and first["conversation"] == second["conversation"]
