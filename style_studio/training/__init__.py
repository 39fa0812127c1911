"""Training LoRA runs: the service and its run records (`service.py`), presets and
settings (`config.py`), the data the gate clears (`data.py`: buckets, latent and text
caches), conditioning, LoRA setup, the loop with its guards (`trainer.py`), checkpoints and
exact resume, samples scored against the style, export in diffusers and kohya formats,
provenance (manifest, model card, report), energy, time left and the run page's data.

May import `base`, `models`, `captions`, `images` and `consent` (the trainer asks the gate
itself). Receives its collaborators from the facade; never imports `studio`.
"""
