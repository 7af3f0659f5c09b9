# Sourced by bench/*/run.sh: takes --baseline-rev REV out of the arguments and,
# when given, builds revision REV in a temporary tree (git archive, this
# checkout's node_modules and native addon) and adds --baseline-root TREE for
# the driver, which then measures that build too, in the same run.
# In: "$@". Out: the array `args` (the remaining arguments, plus --baseline-root).
args=()
baseline=""
while [ $# -gt 0 ]; do
  if [ "$1" = "--baseline-rev" ]; then baseline="$2"; shift 2; else args+=("$1"); shift; fi
done
if [ -n "$baseline" ]; then
  baseline_tree=$(mktemp -d /tmp/lunkit-bench-baseline-XXXXXX)
  trap 'rm -rf "$baseline_tree"' EXIT
  git archive "$baseline" | tar -x -C "$baseline_tree"
  ln -s "$PWD/node_modules" "$baseline_tree/node_modules"
  mkdir -p "$baseline_tree/native" && rm -rf "$baseline_tree/native/build" && ln -s "$PWD/native/build" "$baseline_tree/native/build"
  (cd "$baseline_tree" && npx tsc -p tsconfig.build.json >&2)
  args+=(--baseline-root "$baseline_tree")
fi
