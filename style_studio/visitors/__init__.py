"""Visitors of a public demo (Space mode): a studio per visitor, made on the first visit
and deleted, through the erasure mechanism, when the visitor has been away long enough.

Sits between the UI and the facade: it builds `Studio`s and may import `studio` and
`base`; the UI asks it for the studio of the request in hand.
"""
