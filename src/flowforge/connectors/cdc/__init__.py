"""Change data capture: the normalized change-event batch every CDC source emits.

See ``events.py`` for the Arrow schema; ``debezium/`` decodes Debezium JSON envelopes.
"""
