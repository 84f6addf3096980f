"""``python -m pseudoinverse``: the same command line as the ``pseudoinverse`` script."""

from ._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
