#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: starts (or installs) PostgreSQL, installs
# the interoperability peers, builds the wallet's shared library for its Python binding
# test, then runs every Rust test on SQLite and PostgreSQL.
# Then it runs the README's quickstart as written (scripts/readme-quickstart.py), and
# last every fuzz target briefly (scripts/fuzz.sh).
# This is the README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/countersign-target}"
export CS_TEST_POSTGRES_URL="${CS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

log() { printf '==> %s\n' "$*" >&2; }

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    log "need root to apt-get install $*; install them and re-run"; exit 1
  fi
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    log "installing PostgreSQL"
    apt_install postgresql
    # Tests connect as postgres over TCP without a password, like the CI machines.
    for hba in /etc/postgresql/*/main/pg_hba.conf; do
      sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
    done
  fi
  log "starting PostgreSQL"
  for version in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p 5432 && return
    sleep 1
  done
  log "PostgreSQL did not come up on 127.0.0.1:5432"; exit 1
}

drop_stale_test_databases() {
  # Databases left behind by a test that panicked before cleaning up.
  psql -h 127.0.0.1 -U postgres -d postgres -Atc \
    "SELECT datname FROM pg_database WHERE datname LIKE 'cs_test_%'" 2>/dev/null |
    while read -r db; do
      psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
}

ensure_node_peers() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    log "installing Node.js"
    apt_install nodejs npm
  fi
  log "installing openid-client and jose (tests/interop/openid-client)"
  (cd tests/interop/openid-client && npm ci --no-audit --no-fund --loglevel=error)
  log "installing oidc-provider (tests/interop/oidc-provider), the IdP for admin SSO tests"
  (cd tests/interop/oidc-provider && npm ci --no-audit --no-fund --loglevel=error)
}

ensure_schemathesis() {
  # A private virtualenv, so the test tools never touch the system's Python packages.
  local venv="$HOME/.cache/countersign-venv"
  if [ ! -x "$venv/bin/schemathesis" ] || ! "$venv/bin/schemathesis" --version | grep -q "$SCHEMATHESIS_VERSION"; then
    log "installing schemathesis $SCHEMATHESIS_VERSION"
    if ! python3 -m venv "$venv" 2>/dev/null; then
      apt_install python3-venv
      python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  export CS_SCHEMATHESIS="$venv/bin/schemathesis"
}

# The version of a package in the test virtualenv, or nothing. (Not `pip show | grep -q`:
# under pipefail, grep exiting early makes the pipeline fail and the package reinstall.)
installed_version() {
  "$HOME/.cache/countersign-venv/bin/pip" show "$1" 2>/dev/null | sed -n 's/^Version: //p'
}

ensure_scim2_tester() {
  # The SCIM compliance checker (tests/interop/scim2-tester), in the same virtualenv.
  local venv="$HOME/.cache/countersign-venv"
  if [ "$(installed_version scim2-tester)" != "$SCIM2_TESTER_VERSION" ]; then
    log "installing scim2-tester $SCIM2_TESTER_VERSION"
    "$venv/bin/pip" install -q --disable-pip-version-check \
      "scim2-tester==$SCIM2_TESTER_VERSION" "scim2-client[httpx2]==$SCIM2_CLIENT_VERSION"
  fi
  export CS_SCIM_PYTHON="$venv/bin/python"
}

ensure_mcp_peers() {
  # The MCP gateway's independent peers: the official Python SDK (`mcp`, PyPI: the test
  # upstream and the Python client; PyJWT comes with it) and the official TypeScript SDK
  # client (npm).
  local venv="$HOME/.cache/countersign-venv"
  if [ "$(installed_version mcp)" != "$MCP_PYTHON_VERSION" ]; then
    log "installing the Python MCP SDK $MCP_PYTHON_VERSION"
    "$venv/bin/pip" install -q --disable-pip-version-check "mcp==$MCP_PYTHON_VERSION"
  fi
  log "installing the TypeScript MCP SDK client (tests/interop/mcp)"
  (cd tests/interop/mcp && npm ci --no-audit --no-fund --loglevel=error)
}

ensure_browser() {
  # The console's browser test: Debian's Chromium, Playwright (PyPI) driving it through
  # its executable path (never a downloaded browser), and axe-core (npm) for the
  # accessibility checks.
  if ! command -v chromium >/dev/null; then
    log "installing Chromium"
    apt_install chromium
  fi
  local venv="$HOME/.cache/countersign-venv"
  if [ "$(installed_version playwright)" != "$PLAYWRIGHT_VERSION" ]; then
    log "installing Playwright $PLAYWRIGHT_VERSION"
    "$venv/bin/pip" install -q --disable-pip-version-check "playwright==$PLAYWRIGHT_VERSION"
  fi
  log "installing axe-core (tests/interop/axe)"
  (cd tests/interop/axe && npm ci --no-audit --no-fund --loglevel=error)
  export CS_CHROMIUM="$(command -v chromium)"
}

ensure_wallet_app() {
  # The wallet app (wallet-app/, its own Cargo workspace): WebKitGTK to build it, Debian's
  # WebKitWebDriver and Xvfb to drive it, tauri-driver (crates.io) in front of them. Its
  # front end is built from npm and unit-tested with Vitest first. The app builds into
  # its own cached target directory, so its GTK/WebKit crates never touch the server's.
  if ! dpkg -s libwebkit2gtk-4.1-dev webkit2gtk-driver xvfb libdbus-1-dev dbus-daemon dbus-bin libglib2.0-bin >/dev/null 2>&1; then
    log "installing WebKitGTK, WebKitWebDriver, Xvfb and D-Bus (the wallet app's build and test)"
    apt_install libwebkit2gtk-4.1-dev webkit2gtk-driver xvfb xauth libdbus-1-dev dbus-daemon dbus-bin libglib2.0-bin
  fi
  # The test's notification daemon speaks D-Bus through jeepney (pure Python, PyPI).
  local venv="$HOME/.cache/countersign-venv"
  if [ "$(installed_version jeepney)" != "$JEEPNEY_VERSION" ]; then
    log "installing jeepney $JEEPNEY_VERSION"
    "$venv/bin/pip" install -q --disable-pip-version-check "jeepney==$JEEPNEY_VERSION"
  fi
  local tools="$HOME/.cache/countersign-tools"
  # tauri-driver has no --version; cargo install records what it installed.
  if [ ! -x "$tools/bin/tauri-driver" ] ||
    ! grep -q "\"tauri-driver $TAURI_DRIVER_VERSION " "$tools/.crates.toml" 2>/dev/null; then
    log "installing tauri-driver $TAURI_DRIVER_VERSION"
    CARGO_TARGET_DIR="$tools/target" cargo install --quiet --locked --root "$tools" \
      tauri-driver --version "$TAURI_DRIVER_VERSION"
  fi
  export CS_TAURI_DRIVER="$tools/bin/tauri-driver"
  export CS_WEBKIT_DRIVER="$(command -v WebKitWebDriver)"
  log "wallet app front end: npm ci, vite build (wallet-app/ui)"
  (cd wallet-app/ui && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
  log "building the wallet app (desktop, debug) into $WALLET_APP_TARGET_DIR"
  CARGO_TARGET_DIR="$WALLET_APP_TARGET_DIR" cargo build --locked \
    --manifest-path wallet-app/Cargo.toml -p countersign-wallet-app
  export CS_WALLET_APP="$WALLET_APP_TARGET_DIR/debug/countersign-wallet-app"
  export CS_WALLET_SHOTS=1
}

# The quickstart's release build (the suite's largest single build) starts now, in the
# background, so it uses the cores while the installers below wait on the network. The
# main workspace's test build waits for it on cargo's target-directory lock, so it never
# competes with the tests while they run.
release_log="$(mktemp)"
log "building the README quickstart's release binaries in the background (log: $release_log)"
cargo build --release --locked --bin countersign --bin countersign-wallet >"$release_log" 2>&1 &
release_build=$!
trap 'kill "$release_build" 2>/dev/null || true; rm -f "$release_log"' EXIT

SCHEMATHESIS_VERSION=4.32.5
TAURI_DRIVER_VERSION=2.1.0
WALLET_APP_TARGET_DIR="${WALLET_APP_TARGET_DIR:-$HOME/.cache/countersign-wallet-app-target}"
wallet_app_output="$(mktemp)"
PLAYWRIGHT_VERSION=1.65.3
SCIM2_TESTER_VERSION=0.5.2
SCIM2_CLIENT_VERSION=0.13.2
JEEPNEY_VERSION=0.9.0
MCP_PYTHON_VERSION=2.3.0
ensure_postgres
drop_stale_test_databases
ensure_node_peers
ensure_schemathesis
ensure_scim2_tester
ensure_mcp_peers
ensure_browser
ensure_wallet_app

# The wallet's shared library: the Python binding test loads it and the bindings drift
# check reads its interface. Cargo builds only the rlib when the crate is a dependency.
log "cargo build -p countersign-wallet-core --lib (the cdylib the bindings load)"
cargo build -p countersign-wallet-core --lib --locked

log "cargo test --workspace (target dir $CARGO_TARGET_DIR)"
output="$(mktemp)"
trap 'kill "$release_build" 2>/dev/null || true; rm -f "$output" "$wallet_app_output" "$release_log"' EXIT
status=0
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$output" || status=$?
# The wallet app's own tests: its Rust crates (plugin, commands) and its front end
# (svelte-check and Vitest with Tauri's IPC mocks).
log "wallet app: cargo test (wallet-app workspace), svelte-check, Vitest"
CARGO_TARGET_DIR="$WALLET_APP_TARGET_DIR" cargo test --locked --no-fail-fast \
  --manifest-path wallet-app/Cargo.toml --workspace 2>&1 | tee "$wallet_app_output" || status=1
(cd wallet-app/ui && npm run --silent check && npm test) || { log "wallet app front-end tests FAILED"; status=1; }
# cargo's last line is often an empty doc-test run; close with the totals instead.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$output" "$wallet_app_output"

# The quickstart's commands use release builds (`cargo run --release`); the build started
# at the top keeps compilation out of the script's time limits.
log "README quickstart, run as written (scripts/readme-quickstart.py)"
quickstart=0
if wait "$release_build"; then
  python3 scripts/readme-quickstart.py || quickstart=$?
else
  quickstart=$?
  log "the quickstart's release build FAILED:"; cat "$release_log" >&2
fi
if [ "$quickstart" != 0 ]; then log "the README quickstart FAILED"; status=1; fi

# Every fuzz target, the verifier's and the server's, for a few seconds each from its seeds:
# a crash, a panic, a stack overflow, a hang or runaway memory fails the suite (findings in
# */fuzz/artifacts/). Longer runs: scripts/fuzz.sh [SECONDS].
log "fuzzing every target for ${FUZZ_SECONDS:-10}s (scripts/fuzz.sh)"
scripts/fuzz.sh "${FUZZ_SECONDS:-10}" || { log "fuzzing FAILED"; status=1; }
exit "$status"
