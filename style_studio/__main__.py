"""`python -m style_studio …` is the `style-studio` command."""

import sys

from style_studio.cli import main

if __name__ == "__main__":
    sys.exit(main())
