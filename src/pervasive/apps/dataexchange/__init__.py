"""Paper 003's case study: fast cross-chain IoT data exchange with a notary committee.

See ``README.md`` in this folder.
"""

from pervasive.apps.dataexchange.committee import LocalCommittee, start_committee
from pervasive.apps.dataexchange.world import ExchangeWorld, exchange_world

__all__ = ["ExchangeWorld", "LocalCommittee", "exchange_world", "start_committee"]
