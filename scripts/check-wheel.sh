#!/usr/bin/env bash
# A regular (non-editable) install works from any folder:
#   1. build the wheel from a copy of the sources (no stale build/ folder can leak in),
#   2. check that it carries every file of configs/ (as semiad_cli/configs/),
#   3. install it with --no-deps into a fresh virtual environment that borrows the other
#      requirements, torch included, from $PYTHON's environment through a .pth file
#      (offline, and no second torch),
#   4. from an empty folder outside the checkout run `semiad train --cfg job` and
#      `semiad train trainer.max_epochs=1`, and check the run folder under ./outputs/.
# Run by tests/e2e/test_wheel.py (so `make test`, i.e. CI, runs it). Standalone:
#   scripts/check-wheel.sh                  # PYTHON defaults to .venv/bin/python
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
PYTHON=${PYTHON:-$repo/.venv/bin/python}
start=$(date +%s)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/semiad-wheel.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "check-wheel: FAILED: $*" >&2; exit 1; }
pip() { "$PYTHON" -m pip --disable-pip-version-check "$@"; }

# 1. build (setup.py maps configs/ into the package; no build isolation: offline, setuptools from $PYTHON)
mkdir "$tmp/src" "$tmp/dist"
cp -R pyproject.toml setup.py README.md semiad_cli configs hydra_plugins "$tmp/src/"
pip wheel --quiet --no-deps --no-build-isolation -w "$tmp/dist" "$tmp/src" >"$tmp/build.log" 2>&1 \
  || { cat "$tmp/build.log" >&2; fail "pip wheel"; }
wheel=$(ls "$tmp"/dist/*.whl)

# 2. every file of configs/ is in the wheel
"$PYTHON" - "$wheel" configs <<'EOF' || fail "the wheel lacks config files"
import sys, zipfile
from pathlib import Path
inside = {n.removeprefix("semiad_cli/configs/") for n in zipfile.ZipFile(sys.argv[1]).namelist()
          if n.startswith("semiad_cli/configs/")}
source = {p.relative_to(sys.argv[2]).as_posix() for p in Path(sys.argv[2]).rglob("*")
          if p.is_file() and "__pycache__" not in p.parts}
missing = sorted(source - inside)
if missing:
    sys.exit(f"check-wheel: not in the wheel: {', '.join(missing)} (see package_data in setup.py)")
EOF

# 3. fresh environment: the wheel itself, everything else borrowed
"$PYTHON" -m venv --without-pip "$tmp/venv"
venv_site=$("$tmp/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$PYTHON" -c 'import sysconfig; p = sysconfig.get_paths(); print(p["purelib"]); print(p["platlib"])' \
  | sort -u >"$venv_site/_semiad_borrowed_requirements.pth"
if pip --python "$tmp/venv/bin/python" --version >/dev/null 2>&1; then  # pip >= 22.3: no pip in the venv needed
  install=(pip --python "$tmp/venv/bin/python" install)
else
  "$tmp/venv/bin/python" -m ensurepip --default-pip >/dev/null 2>&1 || fail "ensurepip in the fresh venv"
  install=("$tmp/venv/bin/python" -m pip --disable-pip-version-check install)
fi
"${install[@]}" --quiet --no-deps "$wheel" >"$tmp/install.log" 2>&1 \
  || { cat "$tmp/install.log" >&2; fail "pip install of the wheel"; }

# 4. a user's empty folder, no hint of the checkout
mkdir "$tmp/empty"
cd "$tmp/empty"
unset SEMIAD_CONFIG_DIR PYTHONPATH
export SEMIAD_CACHE_DIR="$tmp/cache"
config_dir=$("$tmp/venv/bin/python" -c 'from semiad_cli.cli import CONFIG_DIR; print(CONFIG_DIR)')
case "$config_dir" in "$tmp/venv/"*) ;; *) fail "configs read from $config_dir, not from the installed wheel" ;; esac
"$tmp/venv/bin/semiad" train --cfg job >job.txt 2>&1 || { cat job.txt >&2; fail "semiad train --cfg job"; }
grep -q "_target_: semiad_cli.models" job.txt || { cat job.txt >&2; fail "semiad train --cfg job printed no model"; }
"$tmp/venv/bin/semiad" train trainer.max_epochs=1 >train.txt 2>&1 \
  || { cat train.txt >&2; fail "semiad train trainer.max_epochs=1"; }
metrics=$(ls outputs/*/*/metrics.json 2>/dev/null | head -n 1 || true)
[ -n "$metrics" ] || { cat train.txt >&2; fail "no run folder with metrics.json under $tmp/empty/outputs/"; }
grep -q '"status": "completed"' "$metrics" || fail "$metrics does not say completed"
# the stacked launcher is a Hydra plugin (hydra_plugins/semiad_stacked_launcher): found in the wheel
"$tmp/venv/bin/semiad" train --multirun seed=1,2 trainer.max_epochs=1 hydra/launcher=stacked >stacked.txt 2>&1 \
  || { cat stacked.txt >&2; fail "semiad train --multirun ... hydra/launcher=stacked"; }
grep -q "as one stacked model" stacked.txt || { cat stacked.txt >&2; fail "hydra/launcher=stacked did not stack"; }
echo "check-wheel: ok: $(basename "$wheel") installed in a fresh venv ran from an empty folder" \
  "($(( $(date +%s) - start )) s)"
