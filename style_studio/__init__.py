"""Style Studio core: train a personal style LoRA with traceable provenance.

A package per noun; `studio.py` is the one facade that the UI (and tests, and a CLI)
use. The layers and the rules between them are contracts in pyproject.toml, checked by
`lint-imports` (docs/architecture.md draws them). Only `style_studio.ui` imports gradio.
"""

__version__ = "0.1.0"
