#!/usr/bin/env bash
# `buf breaking` for protos/ (rules: buf.yaml's breaking section, WIRE_JSON) against a
# baseline: the last release tag matching v* if there is one, else HEAD~1, else nothing
# (a first commit, a shallow clone, no git): then it says why it skipped and exits 0.
# The baseline is read from git history (buf's git input), so uncommitted files count
# on the new side only. BUF overrides the buf binary (default: node_modules/.bin/buf).
set -euo pipefail
cd "$(dirname "$0")/.."
BUF=${BUF:-node_modules/.bin/buf}

# Wire- and JSON-identical renames made when buf was adopted: the new messages have the
# same fields and numbers as the ones they replace, but buf cannot tell a renamed message
# from a different one, so RPC_SAME_REQUEST_TYPE / RPC_SAME_RESPONSE_TYPE report them for
# as long as the baseline still has the old names. Exactly these findings are accepted;
# any other fails. The list can go once the baseline (the first v* tag) has the new names.
ACCEPTED=(
    'RPC "Heartbeat" on service "RegistryService" changed request type from "agentmesh.v1.AgentHeartbeatRequest" to "agentmesh.v1.HeartbeatRequest".'
    'RPC "Heartbeat" on service "RegistryService" changed response type from "agentmesh.v1.AgentHeartbeatResponse" to "agentmesh.v1.HeartbeatResponse".'
    'RPC "FindAgentsByCapability" on service "RegistryService" changed response type from "agentmesh.v1.ListAgentsResponse" to "agentmesh.v1.FindAgentsByCapabilityResponse".'
    'RPC "FailTask" on service "TaskService" changed response type from "agentmesh.v1.CompleteTaskResponse" to "agentmesh.v1.FailTaskResponse".'
)

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
left=0
while IFS= read -r line; do
    ok=
    for msg in "${ACCEPTED[@]}"; do
        if [[ $line == *":$msg" ]]; then ok=1; fi
    done
    if [ -n "$ok" ]; then
        echo "accepted (a documented wire-identical rename): $line"
    else
        echo "$line"
        left=$((left + 1))
    fi
done <<<"$findings"
if [ "$left" -ne 0 ]; then
    echo "buf breaking: $left breaking change(s) against $what" >&2
    exit 1
fi
echo "buf breaking: no breaking change beyond the accepted renames"
