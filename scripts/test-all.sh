#!/usr/bin/env bash
# The test command (README, and what .ci/run calls): on a fresh Debian bookworm
# machine with Node 20, Go and Python 3, install whatever is missing, then run
# every test. A missing tool fails the run; nothing is skipped.
#   1. Debian packages: PostgreSQL, Redis and RabbitMQ servers (integration tests, npm run stack),
#      jq (the README's examples, run by the tests), h2load and wrk (npm run bench),
#      python3-venv (the tools' venvs), openssl (the stack's local CA and certificate),
#      chromium (headless, driven by playwright-core: the /docs/ page tests, test/docs).
#   2. npm ci.
#   3. npm run tools: the pinned Envoy, envoyproxy/ratelimit, Jaeger, Mailpit, grpcurl, Python
#      grpcio and Go client modules (scripts/tools/versions.json), into .cache/tools; it prints the
#      version of each, so the log shows what the tests ran against.
#   4. npm test: checks, then every mocha suite; the last line is "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(redis-server postgresql rabbitmq-server jq nghttp2-client wrk python3-venv openssl chromium)
need=()
for p in "${packages[@]}"; do
  case "$p" in
    # The server binaries are enough (some images ship them without the package).
    postgresql) command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=("$p") ;;
    # Any python3 that can make a venv will do (the machine's own, or Debian's).
    python3-venv) python3 -c "import venv, ensurepip" >/dev/null 2>&1 || need+=("$p") ;;
    *) dpkg -s "$p" >/dev/null 2>&1 || need+=("$p") ;;
  esac
done
if [ ${#need[@]} -gt 0 ]; then
  echo "test-all: installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "test-all: npm ci"
npm ci --no-audit --no-fund
echo "test-all: npm run tools"
npm run --silent tools
echo "test-all: npm test"
npm test
