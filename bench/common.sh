# Shared by the bench scripts (sourced, not run): a work folder removed on exit,
# processes started with their PID in PIDS stopped on exit, and `need CMD PKG`
# to install a Debian package when a command is missing.
# The caller sets WORK_PREFIX before sourcing (e.g. /tmp/sticky-bench).

WORK=$(mktemp -d "${WORK_PREFIX:-/tmp/bench}.XXXXXX")
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

need() {
    command -v "$1" >/dev/null 2>&1 && return
    echo "installing $2" >&2
    sudo -n true 2>/dev/null && SUDO=sudo || SUDO=
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$2"
}
