"""Composition shift: a category's share of a key's reports moves while the total is normal.

Per (service, region key) that is busy enough (``MIN_EXPECTED`` reports expected in the
window), each category's expected share is learned (EWMA, weighted by reports; a key is
judged only once it has learned ``WARM_REPORTS``; shares learn over an hour at least,
``MAX_RATE``: slower than the 10-window evidence). Each closed window every category's count
is scored against ``n * share`` given the key's total ``n``, on the window, two leaky sums and
a CUSUM; two qualifying windows in a row (one at twice the score) open a member, members of
one service make one incident. State per key is bounded: at most ``MAX_CATEGORIES``
categories, five floats each.

The modules, one concept each: :mod:`.shares` (the learned shares as numpy rows),
:mod:`.tails` (scores and the qualifying rule), :mod:`.members` (members, incidents and
their events), :mod:`.detector` (one window's steps, and the state as plain data), :mod:`.fused`
(those steps in the compiled closing loops).
"""

from spikedetect.core.composition.detector import CompositionDetector, KeyState
from spikedetect.core.composition.members import Group, Member
from spikedetect.core.composition.shares import MAX_CATEGORIES
from spikedetect.core.expand import LeafCounts

__all__ = ["MAX_CATEGORIES", "CompositionDetector", "Group", "KeyState", "LeafCounts", "Member"]
