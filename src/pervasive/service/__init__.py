"""The pervasive-contract runtime (paper 001): one service per contract.

See README.md in this folder. Sub-packages: ``triggers`` (context triggers).
"""

__all__: list[str] = []
