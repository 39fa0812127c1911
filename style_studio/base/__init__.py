"""The foundation every other package stands on: the durable store, the job runner, the
workspace's paths and lock, atomic files, errors a person can act on, styles (projects),
the licence vocabulary and the one erasure mechanism.

Imports nothing above it (no services, no models) and never torch or gradio, so the
store and erasure stay light, fast to test and safe to run from any process.
"""
