"""Content Credentials (C2PA): a signing identity per workspace (`identity.py`), signed
outputs and LoRA sidecar manifests (`sign.py`), verification in plain words
(`verify.py`), the IPTC XMP packet every output carries (`xmp.py`) and the
training-and-data-mining signals read from uploaded files (`signals.py`).

Sits beside `captions`, above `base`: it may import `base` only, never torch or gradio,
so an image import can read a file's signals and the Playground, the trainer and the UI
can sign and verify without loading a model. Every function takes the folder, identity
or workspace facts it uses as parameters; nothing is kept in module state.
"""
