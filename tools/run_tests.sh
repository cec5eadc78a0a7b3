#!/usr/bin/env bash
# Sets up ./.venv (idempotent) and runs the test suite. Extra arguments go to
# pytest, e.g. `bash tools/run_tests.sh -k ece -x`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash tools/setup_env.sh
exec .venv/bin/python -m pytest "$@"
