"""The reference seller-collection API server (``sellerbench serve``, ``sb.demo()``).

Three folders and two entry points:

- ``http/``       the FastAPI app (``app``) and its routes, one module per part of the API
  (``sellers``, ``sync``, ``collection``, ``activity``, ``export``), with what they share:
  ``auth`` (tokens and permissions), ``deps``, ``models`` (request and response bodies),
  ``problems`` (the one error shape), ``faults`` (misbehaviour on purpose);
- ``storage/``    where the data lives: ``core`` (the interface, SQLite, opening either),
  ``postgres``, ``records`` (timestamps, name rules, row -> JSON), ``sellers`` (writes),
  ``feed`` (the sync feeds), ``idempotency`` (the key ledger), ``catalog`` (categories);
- ``simulator/``  ``engine`` (runs that advance over time) and ``demo`` (demo data, tokens);
- ``embedded``    the server in a background thread (``sb.demo()``, test fixtures);
- ``main``        ``sellerbench serve``.
"""
