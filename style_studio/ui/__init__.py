"""The Gradio UI: the only package that imports gradio."""
