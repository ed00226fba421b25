"""Engines and the types they share.

- :mod:`workbench.models.spec`: what to load (:class:`ModelSpec`) and the options that build it;
- :mod:`workbench.models.backend`: the :class:`Backend` seam, :class:`Capabilities`, :class:`ModelInfo`
  and the shared generation loop;
- :mod:`workbench.models.backends`: :func:`load_backend`, the one way to load any engine;
- :mod:`workbench.models.generation`: sampling settings, requests, stats and the stream;
- :mod:`workbench.models.loading` and :mod:`workbench.models.gguf_check`: finding a model, checking GGUF files;
- :mod:`workbench.models.transformers_backend`: the transformers engine (folders, GPUs, the fallback);
- :mod:`workbench.models.llamacpp_backend`: the llama.cpp engine (GGUF files), with its grammars
  (:mod:`~workbench.models.llamacpp_grammar`) and per-conversation KV states (:mod:`~workbench.models.llamacpp_state`).

Nothing is imported here, so ``import workbench.models.spec`` stays cheap.
"""
