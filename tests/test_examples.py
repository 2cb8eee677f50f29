"""The examples in examples/, run as a user runs them, against the emulators.

The script and the cron job run as subprocesses; the notebook runs in a real
Jupyter kernel through nbclient; the Django app runs its own tests (Django's
test client) with ``manage.py test``. Nothing touches the network.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import nbclient
import nbformat

from llmclients.testing import Reply

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LIMIT = 60  # seconds any one example may take


def clean_env(**extra: str) -> Dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("LLMCLIENTS_", "DJANGO_"))
        and name.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env.update(NO_PROXY="127.0.0.1,localhost,::1", PYTHONIOENCODING="utf-8")
    env.update(extra)
    return env


def run(args: List[str], cwd: Path = EXAMPLES, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        encoding="utf-8",
        env=clean_env(**env),
        timeout=LIMIT,
    )


# --- the plain script ----------------------------------------------------------------------


def test_script_streams_from_the_configured_server(openai_emulator):
    openai_emulator.enqueue(
        Reply(text="Because of Rayleigh scattering."), Reply(text="Short waves scatter more.")
    )
    result = run(
        ["chat_script.py", "Why", "is", "the", "sky", "blue?"],
        LLMCLIENTS_BASE_URL=openai_emulator.base_url,
        LLMCLIENTS_MODEL="m",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Because of Rayleigh scattering.\n\n[finish reason: stop; usage: Usage(")
    assert result.stdout.endswith("Short waves scatter more.\n")
    first, second = (request.json()["messages"] for request in openai_emulator.requests)
    assert first[-1] == {"role": "user", "content": "Why is the sky blue?"}
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]


def test_script_runs_on_its_own_emulator_without_settings():
    result = run(["chat_script.py", "Hello"])
    assert result.returncode == 0, result.stderr
    assert "answering from the emulator" in result.stdout and "You said: Hello" in result.stdout


def test_script_exit_code_on_a_broken_stream(openai_emulator):
    openai_emulator.enqueue(Reply(text="word " * 100, drop_after=900))
    result = run(["chat_script.py"], LLMCLIENTS_BASE_URL=openai_emulator.base_url, LLMCLIENTS_MODEL="m")
    assert result.returncode == 5
    assert "the connection broke off" in result.stderr


# --- the cron job ----------------------------------------------------------------------------


def test_cron_job_answers_every_prompt_as_json_lines(openai_emulator, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# a comment\nFirst question\n\nSecond question\nThird question\n", encoding="utf-8")
    openai_emulator.enqueue(
        Reply(text="One."),
        Reply(status=400, body={"error": {"message": "the model refused"}}),
        Reply(text="Three."),
    )
    env = {"LLMCLIENTS_BASE_URL": openai_emulator.base_url, "LLMCLIENTS_MODEL": "m"}
    result = run(["cron_batch.py", str(prompts), "--concurrency", "1"], **env)
    assert result.returncode == 1  # some prompts failed
    assert "2 answered, 1 failed" in result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in records] == ["One.", "", "Three."]
    assert len({r["id"] for r in records}) == 3
    assert records[0]["error"] is None and records[0]["finish_reason"] == "stop"
    assert records[0]["usage"]["completion_tokens"] == 1 and records[0]["model"] == "m"
    assert "the model refused" in records[1]["error"]["message"]


def test_cron_job_with_an_output_file_retries_only_what_failed(openai_emulator, tmp_path):
    prompts, answers = tmp_path / "prompts.txt", tmp_path / "answers.jsonl"
    prompts.write_text("Alpha\nBeta\n", encoding="utf-8")
    env = {"LLMCLIENTS_BASE_URL": openai_emulator.base_url, "LLMCLIENTS_MODEL": "m"}
    openai_emulator.enqueue(Reply(text="A."), Reply(status=400, body={"error": {"message": "no"}}))
    first = run(["cron_batch.py", str(prompts), "-o", str(answers), "--concurrency", "1"], **env)
    assert first.returncode == 1, first.stderr
    openai_emulator.enqueue(Reply(text="B."))
    second = run(["cron_batch.py", str(prompts), "-o", str(answers)], **env)
    assert second.returncode == 0, second.stderr
    assert [r.json()["messages"][-1]["content"] for r in openai_emulator.requests] == [
        "Alpha",
        "Beta",
        "Beta",
    ]
    lines = [json.loads(line) for line in answers.read_text(encoding="utf-8").splitlines()]
    assert [(r["text"], r["error"] is None) for r in lines] == [("A.", True), ("", False), ("B.", True)]
    assert lines[1]["id"] == lines[2]["id"]


def test_cron_job_usage_errors_exit_2(tmp_path):
    missing = run(["cron_batch.py", str(tmp_path / "nope.txt")], LLMCLIENTS_BASE_URL="http://127.0.0.1:9/v1")
    assert missing.returncode == 2 and "nope.txt" in missing.stderr
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Hi\n", encoding="utf-8")
    unconfigured = run(["cron_batch.py", str(prompts)])  # openai needs a base URL
    assert unconfigured.returncode == 2 and "base_url" in unconfigured.stderr


def test_cron_job_without_a_model_uses_the_servers_only_one(openai_emulator, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Hi\n", encoding="utf-8")
    openai_emulator.models = ["only-model"]
    result = run(["cron_batch.py", str(prompts)], LLMCLIENTS_BASE_URL=openai_emulator.base_url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model"] == "only-model"
    assert openai_emulator.last_request.json()["model"] == "only-model"
    openai_emulator.models = ["a", "b"]  # two: none is picked, and nothing is sent
    sent = len(openai_emulator.requests)
    two = run(["cron_batch.py", str(prompts)], LLMCLIENTS_BASE_URL=openai_emulator.base_url)
    assert two.returncode == 2 and "set LLMCLIENTS_MODEL" in two.stderr
    assert [r.method for r in openai_emulator.requests[sent:]] == ["GET"]


def test_cron_job_exits_as_the_command_does(openai_emulator, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"id": "a", "prompt": "A"}\nnot json\n{"id": "b", "prompt": "B"}\n', encoding="utf-8")
    env = {"LLMCLIENTS_BASE_URL": openai_emulator.base_url, "LLMCLIENTS_MODEL": "m"}
    refused = Reply(status=400, body={"error": {"message": "no"}})
    openai_emulator.enqueue(refused, refused)
    example = run(["cron_batch.py", str(prompts), "--concurrency", "1"], **env)
    openai_emulator.enqueue(refused, refused)
    command = run(["-m", "llmclients", "batch", str(prompts), "--concurrency", "1", "--no-progress"], **env)
    assert example.returncode == command.returncode == 1
    assert "skipped" in example.stderr and "line 2" in example.stderr
    # Every record failed at once: the summary says so, with no rate of answers.
    assert "0 answered, 2 failed" in example.stderr and "req/s" not in example.stderr
    assert "0 answered, 2 failed" in command.stderr and "req/s" not in command.stderr


def test_cron_job_stops_on_sigterm_and_exits_143(openai_emulator, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("One\nTwo\nThree\n", encoding="utf-8")
    openai_emulator.default_reply = Reply(deltas=["slow ", "answer"], delay=0.5)
    env = clean_env(LLMCLIENTS_BASE_URL=openai_emulator.base_url, LLMCLIENTS_MODEL="m")
    command = [sys.executable, "cron_batch.py", str(prompts), "--concurrency", "1"]
    with subprocess.Popen(command, cwd=EXAMPLES, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        deadline = time.monotonic() + LIMIT
        while not openai_emulator.requests:  # the first call is in flight
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=LIMIT)
    assert proc.returncode == 143, err
    # The call in flight finished within the grace; nothing more was sent.
    assert len(out.decode().splitlines()) == 1 and len(openai_emulator.requests) == 1
    assert b"1 answered" in err


def test_cron_job_sample_prompts_file_is_valid():
    from llmclients.batch import read_records

    assert len(list(read_records(EXAMPLES / "prompts.txt"))) == 3


# --- the notebook ------------------------------------------------------------------------------


def test_notebook_streams_into_its_cells(tmp_path, monkeypatch):
    # The kernel inherits this environment: no server configured, so the
    # notebook starts its emulator; Jupyter's and IPython's files go to tmp_path.
    for name, value in clean_env(
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), IPYTHONDIR=str(tmp_path)
    ).items():
        monkeypatch.setenv(name, value)
    for name in [name for name in os.environ if name.startswith("LLMCLIENTS_")]:
        monkeypatch.delenv(name)

    class Recording(nbclient.NotebookClient):
        """Notes each output message as the kernel sends it, with its time."""

        def process_message(self, msg: Dict[str, Any], cell: Any, cell_index: int) -> Any:
            if msg["msg_type"] in ("stream", "display_data", "update_display_data"):
                messages.setdefault(cell_index, []).append((msg["msg_type"], time.monotonic()))
            return super().process_message(msg, cell, cell_index)

    messages: Dict[int, List[Any]] = {}
    notebook = nbformat.read(EXAMPLES / "notebook.ipynb", as_version=4)
    started = time.monotonic()
    Recording(
        notebook, timeout=LIMIT, kernel_name="python3", resources={"metadata": {"path": str(EXAMPLES)}}
    ).execute()
    assert time.monotonic() - started < LIMIT

    code = {index: cell for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"}
    outputs = {index: cell.outputs for index, cell in code.items()}
    assert all(o["output_type"] != "error" for cell_outputs in outputs.values() for o in cell_outputs)

    def text(index: int) -> str:
        return "".join(o.get("text", "") for o in outputs[index] if o["output_type"] == "stream")

    haiku, markdown, conversation, asynchronous = sorted(code)[1:5]
    assert "You said: Write a haiku about rain" in text(haiku)
    # The haiku arrived in many pieces over time, not in one block at the end.
    pieces = [when for kind, when in messages[haiku] if kind == "stream"]
    assert len(pieces) >= 5 and pieces[-1] - pieces[0] > 0.1
    rendered = [o for o in outputs[markdown] if o["output_type"] == "display_data"]
    assert "You said: Explain streaming" in rendered[0]["data"]["text/markdown"]
    assert sum(kind == "update_display_data" for kind, _ in messages[markdown]) >= 5
    assert "You said: My name is Ada." in text(conversation) and "You said: What is my name?" in text(
        conversation
    )
    assert "You said: Count to five" in text(asynchronous)


# --- the Django app ------------------------------------------------------------------------------


def test_django_view_streams_and_keeps_the_conversation_in_the_session():
    result = run(["manage.py", "test", "chat", "-v", "2"], cwd=EXAMPLES / "django_chat")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ran 6 tests" in result.stderr and "OK" in result.stderr
