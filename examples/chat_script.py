"""Stream an answer into the terminal, then continue the conversation.

    python examples/chat_script.py "Why is the sky blue?"

It talks to the OpenAI-compatible server at ``LLMCLIENTS_BASE_URL`` (Ollama:
``http://localhost:11434/v1``) with ``LLMCLIENTS_MODEL`` and, if the server
wants one, ``LLMCLIENTS_API_KEY``. Without ``LLMCLIENTS_BASE_URL`` it starts
the local emulator and talks to that, so it runs anywhere.
"""

from __future__ import annotations

import contextlib
import os
import sys

import llmclients
from llmclients.testing import OpenAIEmulator


def main() -> int:
    prompt = " ".join(sys.argv[1:]) or "Write a haiku about rain"
    with contextlib.ExitStack() as stack:
        base_url = os.environ.get("LLMCLIENTS_BASE_URL")
        if not base_url:
            base_url = stack.enter_context(OpenAIEmulator()).base_url
            print(f"(no LLMCLIENTS_BASE_URL: answering from the emulator at {base_url})\n")
        client = stack.enter_context(
            llmclients.OpenAICompatible(
                base_url=base_url,
                api_key=os.environ.get("LLMCLIENTS_API_KEY"),
                model=os.environ.get("LLMCLIENTS_MODEL", "llama3.2"),
                timeout=(10, 60),  # 10 s to connect, then at most 60 s between two bytes
            )
        )
        conversation = client.conversation([{"role": "system", "content": "Answer briefly."}])
        try:
            # Each delta is printed the moment it arrives.
            with conversation.stream(prompt) as stream:
                for text in stream:
                    print(text, end="", flush=True)
            print(f"\n\n[finish reason: {stream.finish_reason}; usage: {stream.usage}]\n")

            # The conversation remembers the first turn; send() returns the whole reply.
            reply = conversation.send("Now say that in five words.")
            print(reply.text)
        except llmclients.StreamInterruptedError as exc:
            print(
                f"\nthe connection broke off after {len(exc.partial_text)} characters: {exc}", file=sys.stderr
            )
            return 5
        except llmclients.LLMClientError as exc:
            print(f"\nerror: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
