"""Train a model, test it with the evaluation callbacks, write metrics.json.

    python train.py model=dae_sym data=mnist_openset +known=3
    python train.py experiment=rings2d
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    # imported here: --help and bad overrides answer without loading torch and Lightning
    from overgen.tasks import train
    from overgen.utils.entry import run_task

    return run_task(train, cfg)


if __name__ == "__main__":
    main()
