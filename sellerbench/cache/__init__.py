"""The local cache: one DuckDB file in step with the API.

- ``store``: the file, its schema and migrations, connections and locks;
- ``sync``: pulling the feeds into it;
- ``filters``: the one seller filter, as SQL;
- ``frames``: reading it back as pandas frames and read-only SQL.
"""
