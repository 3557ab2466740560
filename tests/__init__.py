"""Orca's test suite: real processes over real sockets, an Ollama stand-in, and small documents of its own."""
