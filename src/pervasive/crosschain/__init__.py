"""Fast cross-chain IoT data exchange (paper 003): the threshold-BLS notary committee.

See ``README.md`` in this folder for the roles, the control flow and what this
subsystem may import.
"""

__all__: list[str] = []
