"""The code under the public modules that turns bytes into a reply: one call
(:mod:`.call`) with its state, stream, decoders, values and the provider
template. Nothing here is public: import from :mod:`llmclients`,
:mod:`llmclients.providers.kit` and the other public modules."""
