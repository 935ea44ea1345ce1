"""Test-only code the CLI can reach from a subprocess (``model._target_=tests.helpers....``)."""
