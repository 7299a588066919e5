"""Reference applications: the papers' case studies, composed from the lower layers."""
