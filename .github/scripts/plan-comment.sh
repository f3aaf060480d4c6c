#!/usr/bin/env bash
# Usage: plan-comment.sh BUILD_DIR OUTCOME > comment.md
#
# The pull-request comment for a `make plan` run: the review (BUILD_DIR/plan.md) and the
# full plan (BUILD_DIR/plan.txt) in a collapsible block when the plan worked (OUTCOME
# "success"); otherwise what failed, with the end of the run's log (BUILD_DIR/plan.log).
set -euo pipefail
build=${1:?usage: plan-comment.sh BUILD_DIR OUTCOME}
outcome=${2:?usage: plan-comment.sh BUILD_DIR OUTCOME}
limit=50000  # characters of plan or log: GitHub refuses comments over 65,536

block() {  # block TITLE FILE: the file, without colour codes, in a collapsible code block
  printf '<details><summary>%s</summary>\n\n```\n' "$1"
  if [ "$(wc -c < "$2")" -gt "$limit" ]; then
    printf '... (the first %s characters are cut; the workflow run has all of it)\n' "$(( $(wc -c < "$2") - limit ))"
  fi
  tail -c "$limit" "$2" | sed 's/\x1b\[[0-9;]*m//g'
  printf '```\n\n</details>\n'
}

if [ "$outcome" = "success" ] && [ -s "$build/plan.md" ]; then
  cat "$build/plan.md"
  if [ -s "$build/plan.txt" ]; then
    echo
    block "Full plan" "$build/plan.txt"
  fi
else
  printf '## Terraform plan failed\n\n'
  printf '`make plan` did not finish (%s), so there is no review for this commit. The end of its output:\n\n' "$outcome"
  if [ -s "$build/plan.log" ]; then
    block "make plan output" "$build/plan.log"
  else
    printf '_No output was captured; see the workflow run._\n'
  fi
fi
