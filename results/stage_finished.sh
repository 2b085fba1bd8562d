#!/usr/bin/env bash
# Stage the small result files of every finished run under results/runs/ (a run is finished
# when its metrics.json exists); results/.gitignore keeps checkpoints and logs out.
#   bash results/stage_finished.sh && git commit -m "results: ..."
set -euo pipefail
cd "$(dirname "$0")/.."
find results/runs -name metrics.json -print0 | xargs -0 -r -n1 dirname | xargs -r git add --
# and each sweep's own record of its command (Hydra's multirun.yaml)
find results/runs -name multirun.yaml -print0 | xargs -0 -r git add --
