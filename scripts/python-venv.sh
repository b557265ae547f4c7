# Sourced by the scripts that need Python packages from PyPI (the Python binding's suite, the
# OpenAPI check of scripts/check-run.sh, schemathesis, release.sh's wheel tools):
# `python_venv DIR SPEC...` makes the virtual environment DIR (installing Debian's python3-venv
# first when python3 has no venv) and pip-installs the pinned SPECs into it, unless it already
# holds exactly those.
python_venv() {
  local venv=$1
  shift
  if ! [ -x "$venv/bin/python" ]; then
    if ! python3 -m venv "$venv" 2>/dev/null; then
      # Debian's python3 has venv in a separate package.
      rm -rf "$venv"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null; }
      python3 -m venv "$venv"
    fi
  fi
  local wanted="$*"
  if [ "$(cat "$venv/.nami-specs" 2>/dev/null)" != "$wanted" ]; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@"
    echo "$wanted" >"$venv/.nami-specs"
  fi
}
