"""Launch Style Studio (the Space's app file; `style-studio serve` is the same)."""
from style_studio.cli.serve import clear_leftovers, main, parse_args  # noqa: F401

if __name__ == "__main__":
    main()
