"""A chat page, and a view that streams the reply as it arrives.

``POST /chat`` with a form field ``message`` answers ``text/plain``, streamed
delta by delta through ``StreamingHttpResponse``. The conversation is kept in
``request.session``, as the JSON state ``Conversation.to_dict()`` gives, and
grows by a turn only when a reply arrived whole.
"""

from __future__ import annotations

from typing import Iterator, List

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

import llmclients
from llmclients import Message, Stream
from llmclients.conversation import Conversation

from .llm import get_client

SESSION_KEY = "llmclients_conversation"


def conversation_for(request: HttpRequest) -> Conversation:
    client = get_client()
    state = request.session.get(SESSION_KEY)
    if state is not None:
        try:
            return client.conversation(state=state)
        except llmclients.InvalidRequestError:  # another provider's, or an old format: start afresh
            pass
    return client.conversation([{"role": "system", "content": settings.LLMCLIENTS["system"]}])


def index(request: HttpRequest) -> HttpResponse:
    state = request.session.get(SESSION_KEY) or {}
    turns: List[Message] = [m for m in state.get("messages", []) if m["role"] != "system"]
    return render(request, "chat/index.html", {"turns": turns})


@require_POST
def chat(request: HttpRequest) -> HttpResponse:
    message = request.POST.get("message", "").strip()
    if not message:
        return HttpResponseBadRequest("Send a non-empty 'message'.", content_type="text/plain")
    conversation = conversation_for(request)
    try:
        stream = conversation.stream(message)  # sent now: a refusal raises here, before any byte
    except llmclients.LLMClientError as exc:
        return HttpResponse(f"{type(exc).__name__}: {exc}", status=502, content_type="text/plain")
    # Touch the session now, so that the middleware creates it (and sends its
    # cookie) with the headers; relay() saves the reply once it is whole.
    request.session[SESSION_KEY] = conversation.to_dict()
    response = StreamingHttpResponse(
        relay(request, conversation, stream), content_type="text/plain; charset=utf-8"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each delta on at once
    return response


def relay(request: HttpRequest, conversation: Conversation, stream: Stream) -> Iterator[str]:
    """Each delta as it arrives, then the conversation saved with the reply.

    If the browser goes away, the server closes this generator and the
    ``with`` block closes the connection to the LLM service at once.
    """
    with stream:
        try:
            yield from stream
        except llmclients.LLMClientError as exc:  # the headers are gone: say it in the body
            yield f"\n[{type(exc).__name__}: {exc}]"
            return
    # The session middleware saved the session before the first byte; save it again.
    request.session[SESSION_KEY] = conversation.to_dict()
    request.session.save()


@require_POST
def reset(request: HttpRequest) -> HttpResponse:
    request.session.pop(SESSION_KEY, None)
    return redirect("index")
