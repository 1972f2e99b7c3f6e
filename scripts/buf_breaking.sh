#!/usr/bin/env bash
# `buf breaking` for protos/ (rules: buf.yaml's breaking section, WIRE_JSON) against a
# baseline: the last release tag matching v* if there is one, else HEAD~1, else nothing
# (a first commit, a shallow clone, no git): then it says why it skipped and exits 0.
# The baseline is read from git history (buf's git input), so uncommitted files count
# on the new side only. BUF overrides the buf binary (default: node_modules/.bin/buf).
set -euo pipefail
cd "$(dirname "$0")/.."
BUF=${BUF:-node_modules/.bin/buf}

if ! git rev-parse --git-dir >/dev/null 2>&1; then
    echo "buf breaking: skipped: not a git checkout, so there is no baseline to compare with"
    exit 0
fi
if tag=$(git describe --tags --abbrev=0 --match 'v*' 2>/dev/null); then
    ref=$tag
    what="the last release tag $tag"
elif git rev-parse --verify --quiet 'HEAD~1^{commit}' >/dev/null; then
    ref=HEAD~1
    what="HEAD~1 (no v* tag yet)"
else
    echo "buf breaking: skipped: no v* tag and no HEAD~1 (a first commit or a shallow clone)"
    exit 0
fi
sha=$(git rev-parse --verify "$ref^{commit}")
# The repository's object store, absolute (also right in a worktree, where .git is a file).
gitdir=$(cd "$(git rev-parse --git-common-dir)" && pwd)

echo "buf breaking: protos/ against $what, ${sha:0:12}"
# subdir=protos: the module root at that commit, whether or not it has buf.yaml yet (a
# commit from before buf.yaml read as the repository root would not build).
status=0
findings=$("$BUF" breaking --against "$gitdir#format=git,ref=$sha,subdir=protos") || status=$?
if [ "$status" -eq 0 ]; then
    echo "buf breaking: no breaking change"
    exit 0
fi
if [ "$status" -ne 100 ]; then  # 100: findings; anything else: buf itself failed
    [ -n "$findings" ] && printf '%s\n' "$findings"
    exit "$status"
fi
printf '%s\n' "$findings"
echo "buf breaking: breaking change(s) against $what (rules: buf.yaml, WIRE_JSON)" >&2
exit 1
