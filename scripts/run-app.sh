#!/usr/bin/env bash
# Set up (if needed) and start the app on the embedded default model: http://localhost:8501
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m streamlit run main.py "$@"
