"""Consent: who made each image, under what licence and permission (`records.py`), the
service that saves, revokes and erases (`service.py`), the training gate with its licence
obligations (`gate.py`), the ledger export (`ledger.py`) and the export of the cleared
images as a Hugging Face image folder (`dataset.py`).

May import `base` and `captions.records`; never torch, so the gate can be checked anywhere.
"""
