"""``python -m mesc3d <command> ...`` — same as the ``mesc3d`` console script."""

from mesc3d.cli import main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
