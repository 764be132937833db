"""Collection runs: ``control`` (history, start/pause/resume/cancel, the plot) and ``watch``
(live progress from the activity stream).
"""
