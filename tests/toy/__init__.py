"""A toy provider, to show (and test) that a new provider is one provider
module, one emulator module and one ``register`` call (in tests/conftest.py)."""
