#!/usr/bin/env bash
# The ablation of the choices the paper leaves open (results/README.md, "Ablation").
# Resumable (resume=true): run it again and finished jobs are skipped (their metrics.json is under
# results/runs/<task>/). Every job: 3 epochs unless named, Hutchinson curvature with 4 probes,
# CSV logger, seed 12345. Two jobs at a time with one thread each (2 cores).
#   bash results/ablation.sh            # from the repository root; DRY=1 prints the commands
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OVERGEN_LOG_DIR=${OVERGEN_LOG_DIR:-results/runs}
JOBS=${JOBS:-2}
run() { ${DRY:+echo} nice -n 10 python train.py -m "$@" logger=csv resume=true \
          hydra/launcher=joblib hydra.launcher.n_jobs="$JOBS"; }
S=seed=12345
DAE="model.curvature=hutchinson model.probes=4"
E3="trainer.max_epochs=3"
LOSS="model.lambda_rec=1,0.0012755"                 # per-sample sum | per-pixel mean (1/784)

# 1. 1-class (Fig. 5 panel: digits 0, 1, 8): loss scale x L2 scale, then unpooling, classifier input
OC="experiment=oneclass task_name=ablation_oneclass data.digit=0,1,8 $S"
run $OC model=dae_oneclass $DAE $E3 $LOSS model.lambda_l2=0,1e-4,1e-2,10
run $OC model=dae_oneclass $DAE $E3 model.network.unpool=nearest
run $OC model=dae_oneclass $DAE $E3 model.classifier_input=clean
run $OC model=cool,ocsvm $E3
# 2. open set (Fig. 4 panel: K=3 and K=6, subsets 0 and 1)
OS="experiment=openset task_name=ablation_openset +known=3,6 data.subset=0,1 $S"
run $OS model=dae_sym $DAE $E3 $LOSS
run $OS model=dae_sym $DAE $E3 model.network.unpool=nearest
run $OS model=dae_sym $DAE $E3 model.classifier_input=clean
run $OS model=cnn,cool $E3
# 3. all ten digits (Table I's acc, acc@0.90, acc@0.99, test MSE)
MN="task_name=ablation_mnist data=mnist $S"
run $MN model=dae_sym $DAE $E3 $LOSS
run $MN model=dae_sym $DAE $E3 model.network.unpool=nearest
run $MN model=dae_sym $DAE $E3 model.classifier_input=clean
# 4. (decided after the 1-class rows of 1-3, before it started: nearest unpooling with the paper's
# L2 ranked digits 0 and 1 at AUROC 0.99 where switches gave 0.77 and 0.98, and it took the
# open-set F at K=3 from 0.82 to 0.03). Epochs for both unpooling modes, open set first (does
# longer training bring nearest's reconstructions under the 0.99 threshold?), then seeds, then
# the L2 and loss scale under nearest unpooling. (Reordered after its first two jobs, before any
# result of it was seen: 1-class 10 epochs, seeds and L2 before the slower 30-epoch runs, the
# 10-epoch baselines last.)
OC2="experiment=oneclass task_name=ablation_oneclass data.digit=0,1,8 model=dae_oneclass $DAE"
PAPER_L2="model.lambda_rec=1 model.lambda_l2=10"
run $OS model=dae_sym $DAE trainer.max_epochs=10 model.network.unpool=switches,nearest
run $OC2 $S trainer.max_epochs=10 model.network.unpool=switches,nearest $PAPER_L2
run $OC2 seed=1,2 $E3 model.network.unpool=switches,nearest $PAPER_L2
run $OC2 $S $E3 model.network.unpool=nearest model.lambda_rec=1 model.lambda_l2=0,1e-4,1e-2
run $OC2 $S $E3 model.network.unpool=nearest model.lambda_rec=0.0012755 model.lambda_l2=1e-2
# 5. (added after Fig. 5 at the chosen setting was in: the dAE's mean AUROC 0.731 against the
# paper's 0.964, with the baselines within 0.02 of theirs) the other unpooling on all ten
# digits at the main runs' scale: how much of the 1-class gap is the unpooling the paper does
# not state. A sensitivity row beside Fig. 5, not a new choice: the one-setting rule stays.
# Digits 0, 1 and 8 are phase 4's 10-epoch runs (skipped).
run experiment=oneclass task_name=ablation_oneclass "data.digit=range(0,10)" model=dae_oneclass \
  $DAE $S trainer.max_epochs=10 model.network.unpool=nearest $PAPER_L2
run $OC2 $S trainer.max_epochs=30 model.network.unpool=switches,nearest $PAPER_L2
run $OS model=cnn,cool trainer.max_epochs=10
# 6. (added after Fig. 4 and Table I at 10 epochs were in, before any run of it: the dAE loses
# Fig. 4 at K = 8-10 by recall, and thresholding costs it 10 points at 0.99; both come from its
# known digits' scores at the threshold, which rose from 3 to 10 epochs) the chosen setting at
# 30 epochs on the ten-digit and open-set panel: the epoch trend of acc@0.99 and of F. A
# sensitivity row, not a new choice: the main runs stay at 10 epochs.
run $MN model=dae_sym $DAE trainer.max_epochs=30
run $OS model=dae_sym $DAE trainer.max_epochs=30
