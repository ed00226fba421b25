#!/usr/bin/env bash
# Set up (if needed) everything the tests need, then lint, type-check and run the whole suite.
# Extra arguments go to pytest (e.g. scripts/run-tests.sh -m "not browser" -x).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
py=.venv/bin/python
echo "[tests] ruff"
"$py" -m ruff check .
echo "[tests] mypy"
"$py" -m mypy
echo "[tests] pytest"
exec "$py" -m pytest -p no:cacheprovider "$@"
