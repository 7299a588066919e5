"""Errors of the content store, below :class:`~pervasive.errors.UserError`.

```
UserError
└── ContentCorrupted      a stored file no longer hashes to its CID (changed or damaged)
```
A CID that cannot be parsed is an :class:`~pervasive.errors.InvalidInput`; content
that is not in the store is a :class:`~pervasive.errors.NotFound`.
"""

from __future__ import annotations

from pervasive.errors import UserError

__all__ = ["ContentCorrupted"]


class ContentCorrupted(UserError):
    """The bytes stored under a CID do not hash to it: the file was changed or damaged."""
