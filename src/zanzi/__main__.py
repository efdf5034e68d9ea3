"""``python -m zanzi``: the ``zanzi`` command."""

from zanzi.cli.main import main

if __name__ == "__main__":
    main()
