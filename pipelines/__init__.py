"""brickyard's data side: Spark jobs that build the governed Delta Lake catalog.

Stages (each a Spark job that reads catalog tables or sources, writes with an atomic Delta commit
and records itself in `ops.lineage`): ingest -> curate -> dedup -> tokenize -> export.
"""
