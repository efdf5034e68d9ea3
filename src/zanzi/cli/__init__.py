"""The ``zanzi`` command line."""
