"""Consent: who made each image, under what licence and permission (`records.py`), the
service that saves, revokes and erases (`service.py`), the training gate with its licence
obligations (`gate.py`) and the ledger export (`ledger.py`).

May import `base` and `captions.records`; never torch, so the gate can be checked anywhere.
"""
