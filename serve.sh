#!/usr/bin/env bash
# Serves the built web page (dist/, made by ./setup.sh or `trunk build --release`) on
# http://127.0.0.1:PORT/ (default 8080). Any static web server works as well: the page makes no
# request outside its own folder. dist/kaifuku.html also works on its own, opened from disk.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -f dist/index.html ]; then
  echo "serve: dist/ is missing; run ./setup.sh first" >&2
  exit 1
fi
exec node web/serve.mjs dist "${1:-8080}" /
