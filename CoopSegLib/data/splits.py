"""Subject-level splits (frames of one subject never straddle training and validation).

The paper: 10 training subjects drawn by seed from a pool, 5 validation subjects, and 20 fixed ACDC test subjects
(007-010, 027-030, 047-050, 067-070, 087-090), which are kept out of every pool here. Runs on every subject hold
out a few at random (``all_subjects_split``) or a few of each ACDC group (``stratified_split``); a run that starts
from trained weights keeps their split (``inherited_split``) and never validates on what they were trained on
(``check_unseen``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterable, List, Mapping, Sequence, Tuple

from CoopSegLib.data.case import Case
from CoopSegLib.errors import CoopSegError

ACDC_TEST_SUBJECTS: Tuple[str, ...] = tuple(
    f"patient{number:03d}" for start in (7, 27, 47, 67, 87) for number in range(start, start + 4)
)


@dataclass(frozen=True)
class Split:
    """Subject names for training and validation (disjoint)."""

    train: Tuple[str, ...]
    validation: Tuple[str, ...]

    def select(self, cases: Sequence[Case], part: str) -> List[Case]:
        """Cases whose subject is in ``part`` ("train" or "validation")."""
        names = set(getattr(self, part))
        return [case for case in cases if case.subject in names]


def subjects_of(cases: Iterable[Case]) -> List[str]:
    """Distinct subject names in order of first appearance."""
    return list(dict.fromkeys(case.subject for case in cases))


def all_subjects_split(subjects: Sequence[str], n_validation: int = 0, seed: int = 0) -> Split:
    """Train on every available subject, optionally holding ``n_validation`` out (drawn by ``seed``)."""
    pool = sorted(set(subjects))
    if n_validation >= len(pool) and n_validation > 0:
        raise CoopSegError(f"cannot hold out {n_validation} validation subjects from {len(pool)}")
    held = set(random.Random(seed).sample(pool, n_validation)) if n_validation else set()
    return Split(tuple(s for s in pool if s not in held), tuple(s for s in pool if s in held))


def paper_split(
    subjects: Sequence[str],
    seed: int,
    n_train: int = 10,
    n_validation: int = 5,
    pool_size: int = 40,
    exclude: Sequence[str] = ACDC_TEST_SUBJECTS,
) -> Split:
    """The paper's low-data protocol: ``n_train`` subjects drawn by ``seed`` from a pool, plus validation.

    The pool is the first ``pool_size`` available subjects (sorted, test subjects excluded) so that every seed
    draws from the same population; validation subjects come from outside the pool, so they never change with
    the training draw. With fewer subjects than ``pool_size + n_validation``, the pool shrinks to leave room for
    validation.
    """
    available = sorted(set(subjects) - set(exclude))
    if len(available) < n_train + n_validation:
        raise CoopSegError(
            f"the paper split needs {n_train + n_validation} subjects ({n_train} training, {n_validation} "
            f"validation); only {len(available)} available"
        )
    pool = available[: min(pool_size, len(available) - n_validation)]
    rest = available[len(pool):]
    validation = sorted(random.Random(f"validation-{seed}").sample(rest, n_validation))
    train = sorted(random.Random(seed).sample(pool, n_train))
    return Split(tuple(train), tuple(validation))


def stratified_split(groups: Mapping[str, str], per_group: int, seed: int = 0) -> Split:
    """Hold out ``per_group`` subjects of every group (drawn by ``seed``, each group on its own) and train on the
    rest, so that validation sees each group (ACDC: NOR, MINF, DCM, HCM, RV) equally.

    >>> groups = {f"s{i}": ("A" if i < 4 else "B") for i in range(8)}
    >>> split = stratified_split(groups, 1, seed=0)
    >>> len(split.train), sorted(groups[s] for s in split.validation)
    (6, ['A', 'B'])
    """
    if per_group < 1:
        raise CoopSegError(f"a stratified split holds out at least 1 subject per group, not {per_group}")
    members = {}
    for subject in sorted(groups):
        members.setdefault(groups[subject], []).append(subject)
    small = [f"{group} ({len(names)})" for group, names in sorted(members.items()) if len(names) <= per_group]
    if small:
        raise CoopSegError(f"a stratified split of {per_group} validation subject(s) per group needs more subjects "
                           f"than that in every group; too few in {', '.join(small)}")
    held = {name for group, names in sorted(members.items())
            for name in random.Random(f"stratified-{seed}-{group}").sample(names, per_group)}
    pool = sorted(groups)
    return Split(tuple(s for s in pool if s not in held), tuple(s for s in pool if s in held))


def inherited_split(train: Sequence[str], validation: Sequence[str], available: Sequence[str],
                    source: str) -> Split:
    """The split that trained weights recorded (``source`` names them), for a run that continues from them."""
    if not train:
        raise CoopSegError(f"{source}: records no training subjects, so there is no split to keep; "
                           "choose data.split all, paper or stratified")
    missing = sorted(set(train) - set(available)) + sorted(set(validation) - set(available))
    if missing:
        raise CoopSegError(f"{source}: its split names subject(s) not in the data: {', '.join(missing)}")
    return Split(tuple(sorted(train)), tuple(sorted(validation)))


def check_unseen(validation: Iterable[str], seen: Iterable[str], source: str, hint: str = "") -> None:
    """A run must never validate on subjects its starting weights were trained on: an error naming them."""
    overlap = sorted(set(validation) & set(seen))
    if overlap:
        raise CoopSegError(f"{source} was trained on validation subject(s) {', '.join(overlap)}; a run must "
                           f"validate on subjects its starting weights never saw{hint}")
