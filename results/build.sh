#!/usr/bin/env bash
# Rebuild results/ from the committed run files alone: the ablation tables, the report
# (report.md + report.html + figures) and summary.json.
#   bash results/build.sh            # from the repository root
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
ablation=(results/runs/ablation_*)
main=()
for task in fooling openset oneclass rings2d; do
  [[ -d results/runs/$task ]] && main+=("results/runs/$task")
done
if (( ${#ablation[@]} )); then
  python -m overgen.report.ablation "${ablation[@]}" --out results/ablation.md \
    --summary results/ablation.json
fi
if (( ${#main[@]} )); then
  python -m overgen.report "${main[@]}" --out results
fi
python -m overgen.report.summary ${main[@]+"${main[@]}"} --ablation results/ablation.json \
  --out results/summary.json
python -m overgen.report.claims results/summary.json --out results/claims.md
