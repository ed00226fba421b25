"""Starts a stdio MCP server with only the environment Workbench chose for it (run as a script, not imported).

``python -I -S mcp_launcher.py COMMAND [ARGS...]``: keeps only the environment variables that
``WORKBENCH_MCP_ENV_KEEP`` names (a JSON list: PATH, HOME and the server entry's ``env``), then becomes
COMMAND in the same process (so the SDK's process group and its stop still apply). The SDK adds its own
safe list (LOGNAME, SHELL, TERM, USER ...) to the environment it is given; this drops it.
"""

import json
import os
import sys

if __name__ == "__main__":
    keep = json.loads(os.environ.pop("WORKBENCH_MCP_ENV_KEEP", "[]"))
    os.execvpe(sys.argv[1], sys.argv[1:], {name: os.environ[name] for name in keep if name in os.environ})
