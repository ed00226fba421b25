"""An OpenAI-compatible API server for the shared model (``python -m workbench serve``).

``create_app(slot)`` builds the Starlette app; :mod:`workbench.server.command` holds the command's
options and ``run_serve``. See docs/serving.md.
"""
