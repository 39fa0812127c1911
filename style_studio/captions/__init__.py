"""Captions: one record per image (draft → approved, with the model that wrote it),
automatic captioners (BLIP, Florence-2, any image-to-text model, and tiny offline ones),
bulk edits with undo, sidecar files, and wording review against the family's token limit.

`records.py` holds the caption records and is what other packages read. May import `base`
and `models`.
"""
