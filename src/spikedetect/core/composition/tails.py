"""Scoring a window's category counts against the learned shares: tails, leaky sums, CUSUM.

Every category's count is scored against ``n * share`` given the key's total ``n``: ``-log10``
of the Poisson upper tail (conservative against the binomial), on this window and on two
leaky sums (decay 0.6 and 0.9: about 2.5 and 10 windows), and a CUSUM of the log-likelihood
ratio of a share ``CUSUM_RATIO`` times the expected one (in log10 units). A category
*qualifies* when a score reaches ``OPEN_SCORE`` with at least ``MIN_EXCESS`` reports over
expectation, ``MIN_RATIO`` times the expected count and a share ``MIN_SHARE_RISE`` above its
expected one (the CUSUM qualifies with a leaky sum's excess); it is still *shifting* while a
score reaches ``CLOSE_SCORE`` at ``CLOSE_RATIO`` times expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from spikedetect.core.negbin import log_sf

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

P_FLOOR = 0.005  # the smallest expected share (a new category is not infinitely surprising)
DECAY = (0.6, 0.9)  # leaky sums: ~2.5 and ~10 windows
OPEN_SCORE = 7.0
CLOSE_SCORE = 3.0
CLOSE_RATIO = 1.5
CUSUM_RATIO = 3.0  # the CUSUM looks for a share this many times the expected one
_LN_RATIO = math.log(CUSUM_RATIO)
MIN_EXCESS = 8.0
MIN_RATIO = 2.0
MIN_SHARE_RISE = 0.05
_LN10 = math.log(10.0)


@dataclass
class Tails:
    """One window's scores per key (row) and category (column), shape (m, C)."""

    used: BoolArray  # categories the key has a share of, or reports in
    score: FloatArray  # the best of the three tails
    qual: BoolArray  # qualifies: evidence to open a member
    shifting: BoolArray  # still raised: the window must not teach the shares


def score_tails(x: FloatArray, n: FloatArray, shares: FloatArray, acc: FloatArray) -> Tails:
    """Move the leaky sums and CUSUM ``acc`` (m, C, 5; in place) by this window's counts ``x``
    (m, C) of totals ``n`` and score every category against its ``shares`` (the numpy reference
    of the compiled window, :mod:`.fused`: the same bits)."""
    p = np.maximum(shares, P_FLOOR)
    e1 = n[:, None] * p
    move_sums(acc, x, e1)
    cusum = acc[:, :, 4] / _LN10
    used = (shares > 0) | (x > 0)
    obs = np.stack([x, acc[:, :, 0], acc[:, :, 2]])
    mean = np.stack([e1, acc[:, :, 1], acc[:, :, 3]])
    total = np.stack([n[:, None] * np.ones_like(p), acc[:, :, 1] / p, acc[:, :, 3] / p])
    raw = poisson_scores(obs, mean, used)
    score = raw.max(axis=0) * used  # (m, C)
    excess = obs - mean
    horizon_ok = ((raw >= OPEN_SCORE) & (excess >= MIN_EXCESS) & (obs >= MIN_RATIO * mean)
                  & (excess >= MIN_SHARE_RISE * np.maximum(total, 1e-9)))
    long_ok = ((excess[1:] >= MIN_EXCESS) & (obs[1:] >= CLOSE_RATIO * mean[1:])
               & (excess[1:] >= MIN_SHARE_RISE * np.maximum(total[1:], 1e-9))).any(axis=0)
    qual = (horizon_ok.any(axis=0) | ((cusum >= OPEN_SCORE) & long_ok)) & used  # (m, C)
    shifting = ((raw >= CLOSE_SCORE) & (obs >= CLOSE_RATIO * mean) & (excess >= MIN_EXCESS / 2)).any(axis=0) \
        | (cusum >= CLOSE_SCORE)
    return Tails(used, score, qual, shifting)


def move_sums(acc: FloatArray, x: FloatArray, e1: FloatArray) -> None:
    """The leaky sums of counts and expectations move by this window; the CUSUM of the
    log-likelihood ratio "share x CUSUM_RATIO" vs "share" accumulates a step from its first
    window on, without the old windows a leaky sum still holds."""
    acc[:, :, 0] = DECAY[0] * acc[:, :, 0] + x
    acc[:, :, 1] = DECAY[0] * acc[:, :, 1] + e1
    acc[:, :, 2] = DECAY[1] * acc[:, :, 2] + x
    acc[:, :, 3] = DECAY[1] * acc[:, :, 3] + e1
    acc[:, :, 4] = np.maximum(0.0, acc[:, :, 4] + x * _LN_RATIO - e1 * (CUSUM_RATIO - 1.0))


def poisson_scores(obs: FloatArray, mean: FloatArray, used: BoolArray) -> FloatArray:
    """``-log10`` of the Poisson upper tail of each count (H, m, C) of a ``used`` category;
    only clear excesses are scored (below them no score would matter), the rest score 0."""
    raw = np.zeros(obs.shape)
    cand = used[None] & (obs >= mean + 1.5) & (obs >= 1.2 * mean)
    if cand.any():
        raw[cand] = -log_sf(obs[cand], mean[cand], np.ones(int(cand.sum()))) / _LN10
    return raw


def forget_evidence(acc: FloatArray, rows: BoolArray | int) -> None:
    """Leaky sums back to their expectations and the CUSUM to 0 for ``rows``: their evidence
    never carries over (an outage's mix is the outage's; a closed member starts afresh)."""
    acc[rows, :, 0], acc[rows, :, 2], acc[rows, :, 4] = acc[rows, :, 1], acc[rows, :, 3], 0.0
