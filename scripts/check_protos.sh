#!/usr/bin/env bash
# Proto hygiene: `buf lint` (STANDARD + COMMENTS, protos/buf.yaml) and `buf breaking` (FILE
# rules) of protos/ against the previous version of the protos on main.
#
#   scripts/check_protos.sh                 lint, then breaking against the previous version
#   BUF_AGAINST=<buf input> scripts/check_protos.sh   breaking against that instead, e.g.
#       BUF_AGAINST='.git#branch=main,subdir=protos'  or  BUF_AGAINST=path/to/image.binpb
#
# "The previous version": when protos/ has uncommitted changes, HEAD's protos (what main has
# now); otherwise HEAD~1's (the commit before the one being checked, as in CI's clone of the
# submitted main). Without a previous commit (first commit, or a depth-1 clone) the breaking
# check is skipped with a message. buf comes from $BUF, scripts/buf/node_modules (install with
# `npm ci --prefix scripts/buf`), or PATH. Runs offline (buf.yaml has no remote deps).
set -euo pipefail
cd "$(dirname "$0")/.."

BUF="${BUF:-}"
if [ -z "$BUF" ]; then
  for candidate in scripts/buf/node_modules/.bin/buf .cache/buf/node_modules/.bin/buf; do
    if [ -x "$candidate" ]; then BUF="$candidate"; break; fi
  done
fi
if [ -z "$BUF" ] && command -v buf >/dev/null 2>&1; then BUF="$(command -v buf)"; fi
if [ -z "$BUF" ]; then
  echo "check_protos: buf not found; run: npm ci --prefix scripts/buf" >&2
  exit 2
fi

echo "buf lint protos"
"$BUF" lint protos

against="${BUF_AGAINST:-}"
if [ -z "$against" ]; then
  if ! git rev-parse --git-dir >/dev/null 2>&1; then
    echo "buf breaking: skipped (not a git checkout)"
    exit 0
  fi
  if ! git diff --quiet HEAD -- protos 2>/dev/null || [ -n "$(git ls-files --others --exclude-standard protos)" ]; then
    ref=HEAD
  elif git rev-parse --verify --quiet 'HEAD~1^{commit}' >/dev/null; then
    ref=HEAD~1
  else
    echo "buf breaking: skipped (no previous commit to compare with; shallow clone?)"
    exit 0
  fi
  if ! git cat-file -e "$ref:protos/buf.yaml" 2>/dev/null; then
    echo "buf breaking: skipped ($ref has no protos/buf.yaml: nothing to compare with)"
    exit 0
  fi
  against=".git#ref=$(git rev-parse "$ref"),subdir=protos"
  echo "buf breaking protos --against $ref ($against)"
else
  echo "buf breaking protos --against $against"
fi
"$BUF" breaking protos --against "$against"
echo "protos: lint clean, no breaking changes"
