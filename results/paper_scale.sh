#!/usr/bin/env bash
# The paper's full protocol on GPUs (100 epochs, exact curvature, 10 subsets per K), through
# SLURM: one SLURM job per sweep job, one GPU each (the models are small: a job does not gain
# from several GPUs; for that, add trainer=ddp trainer.devices=N). Resumable: a preempted job
# that SLURM requeues continues from its checkpoint, and re-running this script skips finished
# jobs. Without SLURM, on one machine with G GPUs, replace LAUNCH by
#   LAUNCH="hydra/launcher=joblib hydra.launcher.n_jobs=G"   and run each job on its own GPU
# (CUDA_VISIBLE_DEVICES per worker is not set by joblib: prefer SLURM, or G=1).
#   PARTITION=gpu bash results/paper_scale.sh fig5|fig4|table1|fig2|all   (DRY=1: print the commands)
# Expected time (an estimate, not measured: no GPU was lent to this project's sessions):
# about 5-10 GPU-minutes per MNIST training of 100 epochs on the full training set, less for
# subsets; the full grid is ~400 jobs, i.e. a few hundred GPU-hours at most.
set -uo pipefail
cd "$(dirname "$0")/.."
export OVERGEN_LOG_DIR=${OVERGEN_LOG_DIR:-results/paper_scale}
LAUNCH=${LAUNCH:-"hydra/launcher=slurm hydra.launcher.partition=${PARTITION:-gpu} trainer.devices=1"}
COMMON="logger=wandb seed=12345 resume=true trainer.max_epochs=100"
run() { ${DRY:+echo} python train.py -m "$@" $COMMON $LAUNCH; }
DAE="model.curvature=exact"
part=${1:-all}

if [[ $part == fig5 || $part == all ]]; then
  run experiment=oneclass model=ocsvm,cool "data.digit=range(0,10)"
  run experiment=oneclass model=dae_oneclass $DAE "data.digit=range(0,10)"
fi
if [[ $part == fig4 || $part == all ]]; then
  run experiment=openset model=cnn,cool "+known=range(1,10)" "data.subset=range(0,10)"
  run experiment=openset model=cnn,cool +known=10 data.subset=0
  run experiment=openset model=dae_sym $DAE "+known=range(1,10)" "data.subset=range(0,10)"
  run experiment=openset model=dae_sym $DAE +known=10 data.subset=0
fi
if [[ $part == table1 || $part == all ]]; then
  run experiment=fooling model=cnn,cool
  # one line per dAE: Hydra composes a sweep's own config without its sweep values, so
  # model=dae_sym,dae_asym would meet $DAE's model.* keys on the default model (cnn)
  run experiment=fooling model=dae_sym $DAE
  run experiment=fooling model=dae_asym $DAE
  run experiment=fooling model=cnn,cool callbacks.fooling.lr=0.001
  run experiment=fooling model=dae_sym $DAE callbacks.fooling.lr=0.001
fi
if [[ $part == fig2 || $part == all ]]; then
  ${DRY:+echo} python train.py experiment=rings2d logger=wandb seed=12345 resume=true
fi
