#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment in ./.venv and installs
# torch, mmcv 2.1.0 WITH ops, mmengine 0.10.7, mmsegmentation 1.2.2 and this package
# in editable mode. Idempotent: re-running it only installs what is missing.
#
# Environment variables:
#   VENV            where the environment lives            (default: <repo>/.venv)
#   PYTHON          interpreter used to create it          (default: python3)
#   TORCH_SPEC      the torch requirement to install if torch is missing
#                   (default: torch==2.13.0; on a GPU machine e.g. "torch==2.4.1")
#   MMCV_WHEELS     a folder of prebuilt mmcv wheels        (default: <repo>/../shared/wheels)
#   WITH_TESTS=0    skip the test requirements
#
# A GPU user who wants mmcv's CUDA ops built from source sets FORCE_CUDA=1 and
# TORCH_CUDA_ARCH_LIST (e.g. "8.0;9.0") before running this script; see README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
MMCV_WHEELS=${MMCV_WHEELS:-$ROOT/../shared/wheels}
WITH_TESTS=${WITH_TESTS:-1}

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV" || die "could not create a venv with '$PYTHON' (install python3-venv?)"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -q)
# This machine's pip config names local mirrors that lack most packages; pip
# warns once per package about them. Keep the log readable.
pipi() { "${PIP[@]}" "$@" 2> >(grep -v "^WARNING: Location 'file:" >&2); }

have() { "$PY" -c "$1" >/dev/null 2>&1; }

# 1. torch: keep whatever is already there, otherwise install TORCH_SPEC.
if have "import torch"; then
    log "torch $("$PY" -c 'import torch; print(torch.__version__)') already installed"
else
    log "installing $TORCH_SPEC"
    pipi "$TORCH_SPEC"
fi
TORCH_VERSION=$("$PY" -c 'import torch; print(torch.__version__)')

# 2. mmcv 2.1.0 with its compiled ops. mmcv's setup.py imports torch and
#    pkg_resources, so the build needs setuptools<70 and no build isolation
#    (an isolated build silently produces a wheel without ops).
if have "import mmcv.ops, mmcv; assert mmcv.__version__ == '2.1.0'"; then
    log "mmcv 2.1.0 with ops already installed"
else
    pipi "setuptools<70" wheel ninja
    FIND_LINKS=()
    # The shared prebuilt wheel was compiled against torch 2.13.0+cpu; it is
    # ABI-incompatible with any other torch, so only use it for that one.
    if [ -d "$MMCV_WHEELS" ] && [ "$TORCH_VERSION" = "2.13.0+cpu" ]; then
        log "using prebuilt mmcv wheels from $MMCV_WHEELS"
        FIND_LINKS=(--find-links "$MMCV_WHEELS")
    else
        log "building mmcv 2.1.0 from source against torch $TORCH_VERSION (about 15 min on 2 cores)"
    fi
    MAX_JOBS=${MAX_JOBS:-$(nproc)} pipi --no-build-isolation "${FIND_LINKS[@]}" mmcv==2.1.0
fi
if ! have "import mmcv.ops"; then
    "$PY" -c "import mmcv.ops" || true
    die "mmcv is installed WITHOUT its compiled ops (import mmcv.ops fails; see above).
  Fix: $PY -m pip uninstall -y mmcv && $PY -m pip install 'setuptools<70' wheel ninja &&
       $PY -m pip install --no-build-isolation --no-cache-dir mmcv==2.1.0"
fi

# 3. OpenMMLab runtime, the package itself (editable) and the test tools.
if have "import mmseg_calsfda, mmseg, mmengine, ftfy, pkg_resources" \
        && [ "${FORCE_REINSTALL:-0}" != 1 ]; then
    log "runtime requirements and mmseg_calsfda already installed"
else
    pipi -r "$ROOT/requirements/runtime.txt"
    pipi --no-build-isolation --no-deps -e "$ROOT"
fi
if [ "$WITH_TESTS" = 1 ] && ! have "import pytest, hypothesis, torchmetrics, scipy, triton"; then
    # runtime.txt again as constraints, so nothing it pins moves
    pipi -r "$ROOT/requirements/tests.txt" -c "$ROOT/requirements/runtime.txt"
fi

"$PY" - <<'EOF' || die "the environment does not import; see the traceback above"
import mmcv, mmcv.ops, mmengine, mmseg, torch
import mmseg_calsfda
print(f'[setup] ok: torch {torch.__version__}, mmcv {mmcv.__version__} (ops), '
      f'mmengine {mmengine.__version__}, mmseg {mmseg.__version__}, '
      f'mmseg_calsfda {mmseg_calsfda.__version__}')
EOF
