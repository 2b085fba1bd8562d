"""Which digits are 'known': the seeded open-set subsets shared by every model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from overgen.errors import ConfigError

NUM_DIGITS = 10
SUBSETS_PER_K = 10
SUBSET_SEED = 2017  # fixed: the same subsets for every model, run and machine


def openset_classes(known: int, subset: int) -> list[int]:
    """Digits of subset ``subset`` (0..9; only 0 for ``known = 10``) of size ``known`` (1..10).

    Subsets are drawn once from a fixed seed, distinct within each K (sorted lists).
    """
    if isinstance(known, bool) or not isinstance(known, int) or not 1 <= known <= NUM_DIGITS:
        raise ConfigError("known", known, "the number of known digits, an integer in 1..10")
    n_subsets = 1 if known == NUM_DIGITS else SUBSETS_PER_K
    if isinstance(subset, bool) or not isinstance(subset, int) or not 0 <= subset < n_subsets:
        allowed = "0 (one subset when all 10 digits are known)" if n_subsets == 1 else "0..9"
        raise ConfigError("data.subset", subset, f"an integer in {allowed}")
    return _subset_table(known)[subset]


def _subset_table(known: int) -> list[list[int]]:
    rng = np.random.default_rng(SUBSET_SEED + known)
    n_subsets = 1 if known == NUM_DIGITS else SUBSETS_PER_K
    table: list[list[int]] = []
    while len(table) < n_subsets:
        digits = sorted(rng.choice(NUM_DIGITS, size=known, replace=False).tolist())
        if digits not in table:  # C(10, K) >= 10 for every K < 10, so this ends
            table.append(digits)
    return table


def check_digits(key: str, digits: Sequence[int]) -> list[int]:
    """Validate an explicit list of distinct digits in 0..9."""
    values = list(digits)
    ok = (
        len(values) > 0
        and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < NUM_DIGITS
                for d in values)
        and len(set(values)) == len(values)
    )
    if not ok:
        raise ConfigError(key, values, "a non-empty list of distinct digits in 0..9")
    return sorted(values)
