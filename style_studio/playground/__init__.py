"""The Playground: generation with a trained LoRA, A/B against the base, grids, one cached
pipeline per base model, and provenance written into every output PNG.

May import everything below it, `training` included (it reads runs and checkpoints);
receives its collaborators from the facade; never imports `studio`.
"""
