"""Base models: finding and loading them (hub cache, local folder, single `.safetensors`),
the device and precision to run on, what a checkpoint file holds, pickled weights
converted to safetensors, the tiny random models and the trained toy model used offline,
the procedural images the toy learned from, and the objective (ε or v target, min-SNR
weights) read from a model's scheduler.

May import `base`. Knows nothing of styles' images, captions, consent or runs.
"""
