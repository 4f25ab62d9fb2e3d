"""Deterministic assignment of users to experiment variants.

The rule, reproducible by any service in any language:

1. ``h = MD5("{experiment_id}:{user_id}")`` (UTF-8, ids in decimal), as 32 hex digits.
2. ``enrol = int(h[0:8], 16) / 2**32`` and ``split = int(h[8:16], 16) / 2**32``,
   two independent uniform numbers in [0, 1).
3. The user is in the experiment when ``enrol < traffic_fraction``.
4. An enrolled user gets variant ``B`` (treatment) when ``split < treatment_share``,
   otherwise ``A`` (control).

Separate numbers for enrolment and split mean ramping the traffic fraction up never moves
an already-enrolled user to the other variant. The experiment id in the key makes the
assignment independent between experiments.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

CONTROL = "A"
TREATMENT = "B"
_SCALE = float(2**32)


def hash_numbers(experiment_id: int, user_id: int) -> tuple[float, float]:
    """The (enrol, split) numbers of a user in an experiment, each uniform in [0, 1)."""
    digest = hashlib.md5(f"{experiment_id}:{user_id}".encode(), usedforsecurity=False).hexdigest()
    return int(digest[0:8], 16) / _SCALE, int(digest[8:16], 16) / _SCALE


def assign_variant(
    experiment_id: int, user_id: int, traffic_fraction: float = 1.0, treatment_share: float = 0.5
) -> str | None:
    """``"A"``, ``"B"``, or ``None`` when the user falls outside the traffic fraction."""
    enrol, split = hash_numbers(experiment_id, user_id)
    if enrol >= traffic_fraction:
        return None
    return TREATMENT if split < treatment_share else CONTROL


def assign_many(
    experiment_id: int,
    user_ids: Iterable[int],
    traffic_fraction: float = 1.0,
    treatment_share: float = 0.5,
) -> list[str | None]:
    """``assign_variant`` for many users (same rule, one call)."""
    return [
        assign_variant(experiment_id, uid, traffic_fraction, treatment_share) for uid in user_ids
    ]
