"""Style Studio core: train a personal style LoRA with traceable provenance.

The core is plain Python and never imports gradio; `style_studio.ui` is the only UI.
"""

__version__ = "0.1.0"
