"""Evaluate a checkpoint with the evaluation callbacks, write metrics.json.

    python evaluate.py ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> float | None:
    # imported here: --help and bad overrides answer without loading torch and Lightning
    from overgen.tasks import evaluate, evaluated_checkpoint
    from overgen.utils.entry import run_task

    return run_task(evaluate, cfg, job_also=evaluated_checkpoint)


if __name__ == "__main__":
    main()
