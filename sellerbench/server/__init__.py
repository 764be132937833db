"""The reference seller-collection API server (``sellerbench serve``, ``sb.demo()``).

Modules, one per noun:

- ``storage``   SQLite storage behind a small interface: schema, transactions, ``rev``
- ``records``   timestamps, seller-name rules, row -> JSON record
- ``feed``      the sync feeds (base keyset pages and the ``since_rev`` feed)
- ``sellers``   seller mutations (create, rename, flag, delete, restore)
- ``collection`` categories and collection-run reads and creation
- ``idempotency`` the Idempotency-Key ledger
- ``auth``      bearer tokens and permissions
- ``demo``      deterministic demo data and the three demo tokens
- ``faults``    the misbehaviour middleware (rate limit, 503s, dropped connections)
- ``app``       the FastAPI app factory; ``api_*`` modules hold its routes
- ``embedded``  the server in a background thread (``sb.demo()``, test fixtures)
- ``main``      ``sellerbench serve``
"""
