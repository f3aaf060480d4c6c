"""Entry point for ``python -m embed``."""

from embed.cli import main

if __name__ == "__main__":
    main()
