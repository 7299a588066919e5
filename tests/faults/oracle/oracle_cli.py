"""``pervasive`` with the ``oracle`` commands mounted, for the process tests.

Until ``cli/app.py`` mounts ``pervasive.cli.oracle.app`` as ``pervasive oracle`` this
script does it; once mounted, it is the plain ``pervasive`` command.
"""

from pervasive.cli import oracle
from pervasive.cli.app import app, main

if not any(group.name == "oracle" for group in app.registered_groups):
    app.add_typer(oracle.app, name="oracle")
main()
