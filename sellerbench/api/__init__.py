"""The API client (``client``: one method per endpoint) and the sync pages on the wire
(``pages``: strict page parsing into Arrow).
"""
