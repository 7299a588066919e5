"""Errors of the interop layer, below :class:`~pervasive.errors.InvalidInput`.

```
InvalidInput
├── MappingError          an event mapping does not fit its ABI or its schema file
└── SchemaViolation
    └── EventRefused      one event cannot become a valid CloudEvent (its data fails the schema)
```

Example::

    try:
        compiled = compile_mappings(abi, spec.events, base=spec.root)
    except MappingError as exc:
        print(exc)   # one line: which mapping, what is wrong, what to do
"""

from __future__ import annotations

from pervasive.errors import InvalidInput, SchemaViolation

__all__ = ["EventRefused", "MappingError"]


class MappingError(InvalidInput):
    """A declared event mapping does not fit the contract's ABI or its schema file."""


class EventRefused(SchemaViolation):
    """One event cannot be published: its data fails the declared JSON Schema.

    ``reason`` is the short key it is counted under (``schema``, ``undecodable``, ...).
    """

    def __init__(self, message: str, *, reason: str = "schema") -> None:
        super().__init__(message)
        self.reason = reason
