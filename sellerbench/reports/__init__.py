"""What leaves the workbench as files: ``exports`` (DuckDB ``COPY`` to CSV, JSON, Parquet)
and ``report`` (the packaged ``report.ipynb`` run headless into HTML).
"""
