"""The domain: pure Python, standard library only.

Model, consent ledger fold, suppression, the gate, jurisdiction rule packs and errors. Nothing here
performs I/O; persistence and channels adapt the world to these types.
"""
