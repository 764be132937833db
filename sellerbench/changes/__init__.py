"""Changes made in the notebook: ``mutations`` (checked, shown at once, queued), ``push``
(sent exactly once) and ``outcomes`` (what a push learns, written into the cache).
"""
