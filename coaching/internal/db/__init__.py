"""Database plumbing under the ingest pipeline: prepared queries, bulk writes, JSON to and from
the database, and telling an unavailable database from other errors. Hand-written SQL and
Django's internals live here only, so that the domain's modules read as the domain."""
