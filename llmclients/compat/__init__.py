"""Faces of llmclients shaped like other libraries, so that code written for
them moves over by changing its import line.

:mod:`llmclients.compat.g4f`
    gpt4free's ``AutonomousAI``, ``Aura`` and ``AllenAI`` providers
    (``create_async_generator``, ``create_completion``, ``get_model``,
    ``FinishReason``, AllenAI's ``Conversation``).

Nothing here is imported by ``import llmclients``.
"""
