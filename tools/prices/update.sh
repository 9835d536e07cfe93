#!/bin/sh
# update.sh regenerates the price table embedded in the daemon
# (daemon/meter/prices/) from a release of the npm package @pydantic/genai-prices,
# then runs the pricing tests against it. Needs node and npm; no Go
# dependencies.
#
#   tools/prices/update.sh [VERSION]     # default: the latest release
#   make prices [GENAI_PRICES=VERSION]
#
# Review the diff before committing: prices that changed, and models that
# moved (the tests name the ones Claude Code and Codex use by default).
set -eu

pkg=@pydantic/genai-prices
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/daemon/meter/prices
version=$(npm view "$pkg@${1:-latest}" version)
published=$(npm view "$pkg" time --json | node -e '
  let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    const t = JSON.parse(s)[process.argv[1]];
    if (!t) { console.error("no publish time for " + process.argv[1]); process.exit(1); }
    console.log(t.slice(0, 10));
  });' "$version")
integrity=$(npm view "$pkg@$version" dist.integrity)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null && tar -xzf ./*.tgz)
grep -q '"license": "MIT"' "$tmp/package/package.json" ||
  { echo "update.sh: $pkg $version is no longer MIT-licensed; check its licence before shipping it" >&2; exit 1; }

node "$root/tools/prices/trim.mjs" "$tmp/package" "$out" "$version" "$published" "$integrity"
cp "$tmp/package/LICENSE" "$out/LICENSE"
cd "$root" && go test -count=1 -run 'Price|Pricing' ./daemon/ ./daemon/meter/
