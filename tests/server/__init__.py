"""Tests of the OpenAI-compatible server and of the remote backend."""
