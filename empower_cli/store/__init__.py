"""The only layer with SQL: the Store API, schema and migrations, the hash chain, bulk writes."""
