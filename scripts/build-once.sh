# Sourced by scripts/test.sh and the bindings' run-tests.sh. `built_once [--may-compile CRATE] CMD...`
# runs a command that builds with cargo (cargo itself, maturin). Under scripts/test.sh, which first
# builds every package, test and example (`cargo build --workspace --all-targets`) and then sets
# NAMI_BUILT_ONCE=1, it fails when CMD compiles a crate again: each crate is compiled once per test
# run (before this check, 6 of a 16-minute run were such rebuilds). Run alone (NAMI_BUILT_ONCE
# unset), it just runs CMD.
#
# When it fails, a dependency is usually compiled with other features for one package than for the
# whole workspace: `cargo build -p <package> --message-format json` lists each crate's features;
# add the workspace's to workspace-hack/Cargo.toml.
built_once() {
  local may_compile=()
  while [ "${1:-}" = --may-compile ]; do may_compile+=("$2"); shift 2; done
  if [ "${NAMI_BUILT_ONCE:-}" != 1 ]; then
    "$@"
    return
  fi
  local log rc=0
  log=$(mktemp)
  "$@" 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
  local again
  again=$(sed -nE 's/^ *Compiling ([^ ]+) .*/\1/p' "$log" | sort -u)
  rm -f "$log"
  local crate
  for crate in "${may_compile[@]}"; do again=$(grep -vx -- "$crate" <<<"$again" || true); done
  if [ -n "$again" ]; then
    echo "compiled again after the workspace build: $(tr '\n' ' ' <<<"$again")(see scripts/build-once.sh)" >&2
    return 1
  fi
  return "$rc"
}
