#!/usr/bin/env bash
# Everything the tests need on a fresh machine (the README's test command runs this, then pytest):
# - Graphviz's programs, for the tests that render SVG (`convplan draw`), from Debian's packages;
# - VS Code's TextMate engine under node, for tests/test_textmate.py: the exact versions in
#   editors/test/package.json (no dependencies of their own), into its node_modules/ (not committed);
# - convplan with its test extra, and torch 2.13.0 (pinned: pip takes the CPU build on this machine's disk).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v dot >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq graphviz >/dev/null
fi
npm install --prefix editors/test --no-package-lock --no-audit --no-fund --silent
python -m pip install --quiet torch==2.13.0 -e '.[test]'
