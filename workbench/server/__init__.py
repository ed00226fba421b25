"""An OpenAI-compatible API server for the shared model (``python -m workbench serve``).

:func:`workbench.server.app.create_app` builds the Starlette app; :func:`workbench.server.serve.serve`
runs it with uvicorn; the command's options are in :mod:`workbench.cli.serve`. See docs/serving.md.
"""
