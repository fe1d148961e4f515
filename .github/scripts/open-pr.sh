#!/usr/bin/env bash
# Open a pull request with the working-tree changes of the named files, and of nothing else.
#
#   .github/scripts/open-pr.sh BRANCH TITLE BODY_FILE FILE...
#
# Every change in the checkout must be one of FILE...; the changed ones are committed to BRANCH, made
# from HEAD, through the GitHub API: the runner needs no git credentials (every checkout keeps
# persist-credentials: false) and GitHub signs the commits. Needs GH_TOKEN (contents: write,
# pull-requests: write), GITHUB_REPOSITORY, and the base branch in GITHUB_REF_NAME. Nothing changed:
# no pull request. Run again for the same branch: it finds the open pull request and changes nothing.
set -euo pipefail

die() {
  printf 'open-pr.sh: %s\n' "$*" >&2
  exit 1
}

(($# >= 4)) || die "usage: open-pr.sh BRANCH TITLE BODY_FILE FILE..."
branch="$1"
title="$2"
body_file="$3"
shift 3
[[ -n "${GH_TOKEN:-}" ]] || die "GH_TOKEN is not set"
repo="${GITHUB_REPOSITORY:?open-pr.sh: GITHUB_REPOSITORY is not set}"
base="${GITHUB_REF_NAME:?open-pr.sh: GITHUB_REF_NAME (the base branch) is not set}"
[[ -f "$body_file" ]] || die "no body file $body_file"

declare -A allowed=()
for file in "$@"; do
  allowed["$file"]=1
done

changed=()
while IFS= read -r path; do
  [[ -n "${allowed[$path]:-}" ]] || die "$path changed too: a release pull request changes only $*"
  changed+=("$path")
done < <(git status --porcelain --untracked-files=all | cut -c4-)

if ((${#changed[@]} == 0)); then
  echo "open-pr.sh: nothing changed, no pull request"
  exit 0
fi

existing="$(gh pr list --repo "$repo" --head "$branch" --state open --json url --jq '.[0].url // ""')"
if [[ -n "$existing" ]]; then
  echo "open-pr.sh: $existing already proposes this change"
  exit 0
fi
if gh api "repos/$repo/git/ref/heads/$branch" --silent 2>/dev/null; then
  die "branch $branch exists without an open pull request: delete the branch, then run again"
fi

gh api --method POST "repos/$repo/git/refs" -f "ref=refs/heads/$branch" -f "sha=$(git rev-parse HEAD)" --silent
for path in "${changed[@]}"; do
  update=(-f "message=$title" -f "branch=$branch" -f "content=$(base64 -w0 <"$path")")
  if blob="$(git rev-parse --verify --quiet "HEAD:$path")"; then
    update+=(-f "sha=$blob")
  fi
  gh api --method PUT "repos/$repo/contents/$path" "${update[@]}" --silent
done
gh pr create --repo "$repo" --base "$base" --head "$branch" --title "$title" --body-file "$body_file"
