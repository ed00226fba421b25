#!/usr/bin/env bash
# Set up (if needed) and start the app on the embedded default model: http://127.0.0.1:8501 (this machine only).
#   scripts/run-app.sh [--host ADDRESS] [--port N] [--no-auth] [streamlit options...]
#   --host ADDRESS  listen there instead of 127.0.0.1 (0.0.0.0: every interface); needs WORKBENCH_PASSWORD
#                   (a login form guards every page) or --no-auth
#   --no-auth       allow another address without a password (prints a warning; same as WORKBENCH_NO_AUTH=1)
# WORKBENCH_HOST and WORKBENCH_PORT set the defaults; WORKBENCH_SKIP_SETUP=1 skips scripts/setup.sh;
# WORKBENCH_VENV names the virtual environment (default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
host=${WORKBENCH_HOST:-127.0.0.1}
port=${WORKBENCH_PORT:-8501}
passthrough=()
while [ $# -gt 0 ]; do
  case "$1" in
    --host) host=${2:?--host needs an address}; shift 2 ;;
    --host=*) host=${1#--host=}; shift ;;
    --port) port=${2:?--port needs a number}; shift 2 ;;
    --port=*) port=${1#--port=}; shift ;;
    --no-auth) export WORKBENCH_NO_AUTH=1; shift ;;
    --server.address|--server.address=*)
      echo "error: use --host ADDRESS (it checks that a password is set) instead of --server.address" >&2
      exit 2 ;;
    *) passthrough+=("$1"); shift ;;
  esac
done
[ "${WORKBENCH_SKIP_SETUP:-0}" = 1 ] || scripts/setup.sh
py="${WORKBENCH_VENV:-.venv}/bin/python"
"$py" -m workbench.auth "$host"  # exits 2, saying why, if listening there would be unsafe
exec "$py" -m streamlit run main.py --server.address "$host" --server.port "$port" ${passthrough[@]+"${passthrough[@]}"}
