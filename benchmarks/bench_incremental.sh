#!/usr/bin/env bash
# Full pipeline vs the re-run after `dvc exp run -S schemes.iew.beta=0.999`, side by side in
# one run, in a temporary copy of the project (the default params: the make repro pipeline).
# Prints both times, the ratio (goal: <= 0.40) and the stages each run executed.
#
#   bash benchmarks/bench_incremental.sh            # uses .venv/bin if present, else PATH
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$root/.venv/bin/dvc" ] && export PATH="$root/.venv/bin:$PATH"
export DVC_NO_ANALYTICS=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cp -r "$root/dvc.yaml" "$root/params.yaml" "$root/.dvcignore" "$root/stages" "$root/src" "$work/"
cd "$work"
git init -q -b main
dvc init -q
dvc config core.analytics false
cp -r "$root/.dvc/plots" .dvc/plots
git add -A
git -c user.name=bench -c user.email=bench@example.com commit -qm "pipeline"

ran() { grep -o "^Running stage '[^']*'" "$1" | cut -d"'" -f2 | tr '\n' ' '; }
now() { date +%s.%N; }

t0=$(now)
dvc repro > full.log 2>&1
t1=$(now)
git add -A
git -c user.name=bench -c user.email=bench@example.com commit -qm "results"
t2=$(now)
dvc exp run -S schemes.iew.beta=0.999 > incremental.log 2>&1
t3=$(now)

python - "$t0" "$t1" "$t2" "$t3" <<'PY'
import sys
t0, t1, t2, t3 = map(float, sys.argv[1:])
full, incremental = t1 - t0, t3 - t2
print(f"full pipeline (dvc repro):             {full:7.1f} s")
print(f"after beta change (dvc exp run -S ...): {incremental:7.1f} s")
print(f"ratio incremental / full:               {incremental / full:7.3f}  (goal <= 0.40)")
PY
echo "full run stages:        $(ran full.log)"
echo "incremental run stages: $(ran incremental.log)"
