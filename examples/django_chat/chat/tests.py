"""The chat view with Django's test client, against llmclients' emulator.

python manage.py test chat
"""

from __future__ import annotations

from django.conf import settings
from django.test import SimpleTestCase, override_settings

from llmclients.testing import OpenAIEmulator, Reply


class ChatViewTests(SimpleTestCase):
    def setUp(self) -> None:
        self.emulator = OpenAIEmulator().start()
        self.addCleanup(self.emulator.stop)
        config = {
            **settings.LLMCLIENTS,
            "provider": "openai",
            "base_url": self.emulator.base_url,
            "model": "m",
        }
        override = override_settings(LLMCLIENTS=config)
        override.enable()
        self.addCleanup(override.disable)

    def post(self, message: str) -> str:
        response = self.client.post("/chat", {"message": message})
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response.streaming)
        return b"".join(response.streaming_content).decode()

    def test_streams_the_reply_delta_by_delta(self) -> None:
        self.emulator.enqueue(Reply(deltas=["Rain ", "on the ", "roof"]))
        response = self.client.post("/chat", {"message": "A haiku about rain"})
        self.assertEqual(response["Content-Type"], "text/plain; charset=utf-8")
        self.assertEqual(list(response.streaming_content), [b"Rain ", b"on the ", b"roof"])

    def test_the_session_keeps_the_conversation(self) -> None:
        self.emulator.enqueue(Reply(text="Hello Ada."), Reply(text="Your name is Ada."))
        self.assertEqual(self.post("My name is Ada."), "Hello Ada.")
        self.assertEqual(self.post("What is my name?"), "Your name is Ada.")
        messages = self.emulator.last_request.json()["messages"]
        self.assertEqual([m["role"] for m in messages], ["system", "user", "assistant", "user"])
        self.assertEqual(messages[2]["content"], "Hello Ada.")
        self.assertContains(self.client.get("/"), "Your name is Ada.")

    def test_a_broken_reply_is_reported_and_not_remembered(self) -> None:
        self.emulator.enqueue(Reply(text="word " * 100, drop_after=800), Reply(text="Fine."))
        body = self.post("Tell me a long story")
        self.assertTrue(body.startswith("word word"))
        self.assertIn("[StreamInterruptedError:", body)
        self.assertEqual(self.post("Short, then"), "Fine.")
        roles = [m["role"] for m in self.emulator.last_request.json()["messages"]]
        self.assertEqual(roles, ["system", "user"])

    def test_a_refusal_before_the_reply_is_a_502(self) -> None:
        self.emulator.enqueue(Reply(status=401, body={"error": {"message": "Incorrect API key provided."}}))
        response = self.client.post("/chat", {"message": "Hi"})
        self.assertEqual(response.status_code, 502)
        self.assertIn(b"AuthenticationError", response.content)

    def test_reset_starts_a_new_conversation(self) -> None:
        self.emulator.enqueue(Reply(text="One."), Reply(text="Two."))
        self.post("First")
        self.assertRedirects(self.client.post("/reset"), "/")
        self.post("Second")
        self.assertEqual(len(self.emulator.last_request.json()["messages"]), 2)

    def test_an_empty_message_is_a_400(self) -> None:
        self.assertEqual(self.client.post("/chat", {"message": "  "}).status_code, 400)
        self.assertEqual(self.emulator.requests, [])
