# run_pytest ARGS...: python -m pytest ARGS, in the caller's environment. Its exit code ends the
# calling script unless it is 0, and pytest's 5 ("no tests collected") fails it too: a job that
# tests nothing must not pass. Sourced by .ci/run and .ci/floors.
run_pytest() {
  set +e
  python -m pytest "$@"
  local rc=$?
  set -e
  if [ "$rc" -eq 5 ]; then
    echo "$(basename "$0"): pytest collected no tests ($*)" >&2
    exit 1
  fi
  if [ "$rc" -ne 0 ]; then
    exit "$rc"
  fi
}
