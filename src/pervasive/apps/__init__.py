"""Reference applications: the papers' case studies, composed from the lower layers."""

__all__: list[str] = []
