"""Every table brickyard writes, declared once: the one module every stage reads, so no stage
imports another for a table.

A `TableSpec` holds a table's columns with their comments, its COMMENT, the properties that govern
it (layer, owner, PII status, licences, producing job and version) and its constraints (NOT NULL,
CHECK). `delta.ensure_table` creates it or brings an existing one up to date, so the rules hold from
the first write on. Pure Python: importing this module starts no Spark.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

SCHEMAS = {
    "bronze": "Raw documents as read from their sources, and what could not be read (quarantine).",
    "silver": "Curated documents: normalized, PII-redacted, annotated with signals and keep/reject.",
    "gold": "What survives curation and deduplication, ready to tokenize and export.",
    "ops": "Operational tables: the lineage of every job run and the state jobs keep.",
}

PROP = "brickyard."  # prefix of the governance properties


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    comment: str
    nullable: bool = True


@dataclass(frozen=True)
class TableSpec:
    name: str  # schema.table
    comment: str
    columns: tuple[Column, ...]
    layer: str
    pii: str  # raw / redacted / none
    producer: str  # the job that writes it
    checks: dict[str, str] = field(default_factory=dict)  # constraint name -> SQL condition
    delta_properties: dict[str, str] = field(default_factory=dict)  # the table's own Delta settings

    @property
    def schema(self) -> str:
        return self.name.split(".")[0]

    def ddl_columns(self) -> str:
        def one(c: Column) -> str:
            null = "" if c.nullable else " NOT NULL"
            comment = c.comment.replace("'", "\\'")
            return f"`{c.name}` {c.type}{null} COMMENT '{comment}'"

        return ",\n  ".join(one(c) for c in self.columns)


# ---------------------------------------------------------------------------------------------
# bronze: ingest
# ---------------------------------------------------------------------------------------------

DOCUMENTS = TableSpec(
    name="bronze.documents",
    comment="Raw documents as read from their sources, one row per document (text as read, not yet "
    "normalized or redacted). Keyed by doc_id; written by `brickyard ingest`.",
    layer="bronze",
    pii="raw",
    producer="ingest",
    columns=(
        Column("doc_id", "STRING", "Stable id: sha256 of source name and locator (32 hex chars)", nullable=False),
        Column("source", "STRING", "Name of the declared source", nullable=False),
        Column("domain", "STRING", "Domain of the source: web, code, books, docs, legal, ...", nullable=False),
        Column("format", "STRING", "Reader: jsonl, parquet, text, code or warc", nullable=False),
        Column("path", "STRING", "File the document came from, relative to the source root", nullable=False),
        Column("locator", "STRING", "Where in the source: path, path:LINE, path@OFFSET, path#row=N or id:ID", nullable=False),
        Column("text", "STRING", "The document text as read (UTF-8)", nullable=False),
        Column("content_sha256", "STRING", "sha256 of the text as read (curate recomputes it on normalized text)", nullable=False),
        Column("n_bytes", "BIGINT", "Length of the text in UTF-8 bytes", nullable=False),
        Column("code_language", "STRING", "Code: language from extension or shebang"),
        Column("license", "STRING", "SPDX id of the licence from the tree's licence files (NOASSERTION when none)"),
        Column("is_vendored", "BOOLEAN", "Code: under a vendor / third_party / node_modules folder"),
        Column("is_generated", "BOOLEAN", "Code: marked as generated, or a generated file name"),
        Column("metadata", "MAP<STRING, STRING>", "The source's own metadata (other JSON fields; a file's mtime_ns and the encoding it was read in)"),
        Column("batch_id", "STRING", "Run id of the ingest that last wrote the row", nullable=False),
        Column("ingested_at", "TIMESTAMP", "When that run wrote it (UTC)", nullable=False),
    ),
    checks={
        "n_bytes_positive": "n_bytes > 0",
        "sha256_hex": "length(content_sha256) = 64",
        "format_known": "format IN ('jsonl', 'parquet', 'text', 'code', 'warc')",
    },
)

QUARANTINE = TableSpec(
    name="bronze.quarantine",
    comment="Records that could not be used as documents, with the reason. Nothing read is lost: "
    "every record is in bronze.documents or here.",
    layer="bronze",
    pii="raw",
    producer="ingest",
    columns=(
        Column("doc_id", "STRING", "The id the record would have had", nullable=False),
        Column("source", "STRING", "Name of the declared source", nullable=False),
        Column("domain", "STRING", "Domain of the source", nullable=False),
        Column("format", "STRING", "Reader: jsonl, parquet, text, code or warc", nullable=False),
        Column("path", "STRING", "File, relative to the source root", nullable=False),
        Column("locator", "STRING", "Where in the source", nullable=False),
        Column("reason", "STRING", "Reason code: malformed_json, undecodable, binary, too_large, ...", nullable=False),
        Column("detail", "STRING", "One sentence on what is wrong", nullable=False),
        Column("snippet", "STRING", "The first bytes of the record, escaped"),
        Column("n_bytes", "BIGINT", "Size of the record in bytes, where known"),
        Column("batch_id", "STRING", "Run id of the ingest that found it", nullable=False),
        Column("quarantined_at", "TIMESTAMP", "When (UTC)", nullable=False),
    ),
)

SOURCE_FILES = TableSpec(
    name="ops.source_files",
    comment="Files ingest has read, with their size and mtime when read: ingest skips a file whose "
    "size, mtime and declared encoding are unchanged.",
    layer="ops",
    pii="none",
    producer="ingest",
    columns=(
        Column("source", "STRING", "Name of the declared source", nullable=False),
        Column("path", "STRING", "File, relative to the source root", nullable=False),
        Column("size", "BIGINT", "Size in bytes when read", nullable=False),
        Column("mtime_ns", "BIGINT", "Modification time (ns) when read", nullable=False),
        Column("documents", "BIGINT", "Documents read from it"),
        Column("quarantined", "BIGINT", "Records of it quarantined"),
        Column("batch_id", "STRING", "Run id of the ingest that read it", nullable=False),
        Column("ingested_at", "TIMESTAMP", "When (UTC)", nullable=False),
        Column("declared_encoding", "STRING", "The source's `encoding:` when it was read (NULL: none); "
               "ingest reads the file again when that changes"),
    ),
)

INGEST_TABLES = (DOCUMENTS, QUARANTINE, SOURCE_FILES)


# ---------------------------------------------------------------------------------------------
# silver: curate and dedup; gold: dedup and tokenize
# ---------------------------------------------------------------------------------------------

SILVER = TableSpec(
    name="silver.documents",
    comment="Curated documents: normalized, PII-redacted, annotated with language, signals, a keep flag "
    "and the rule that rejected them. Rejected documents stay here (keep = false). Written by `brickyard curate`.",
    layer="silver",
    pii="redacted",
    producer="curate",
    columns=(
        Column("doc_id", "STRING", "Stable id, as in bronze", nullable=False),
        Column("source", "STRING", "Name of the declared source", nullable=False),
        Column("domain", "STRING", "Domain of the source", nullable=False),
        Column("kind", "STRING", "text or code (code is exempt from language ID and text heuristics)", nullable=False),
        Column("path", "STRING", "File, relative to the source root", nullable=False),
        Column("locator", "STRING", "Where in the source", nullable=False),
        Column("text", "STRING", "Normalized text with PII replaced by typed placeholders", nullable=False),
        Column("content_sha256", "STRING", "sha256 of this (normalized, redacted) text: exact-dedup key", nullable=False),
        Column("n_bytes", "BIGINT", "UTF-8 length of the text", nullable=False),
        Column("lang", "STRING", "Most likely language (fastText lid.176, ISO 639)", nullable=False),
        Column("lang_score", "DOUBLE", "Its probability", nullable=False),
        Column("code_language", "STRING", "Code: language from extension or shebang"),
        Column("license", "STRING", "Code: SPDX id of the licence"),
        Column("is_vendored", "BOOLEAN", "Code: vendored path"),
        Column("is_generated", "BOOLEAN", "Code: generated file"),
        Column("signals", "MAP<STRING, DOUBLE>", "Every curation signal by name (see pipelines/signals.py)"),
        Column("pii_counts", "MAP<STRING, INT>", "Placeholders inserted, by type"),
        Column("quality_score", "DOUBLE", "Quality classifier's P(high quality) in [0, 1]; null for kinds it does not score, or before one is trained"),
        Column("quality_tier", "STRING", "Tier of the quality score by the config's thresholds; 'unscored' without a score"),
        Column("quality_model", "STRING", "The registered classifier version that scored the row (name/version)"),
        Column("keep", "BOOLEAN", "Passes every rule", nullable=False),
        Column("reject_reason", "STRING", "The first failing rule, in the stated order; null when kept"),
        Column("failed_rules", "ARRAY<STRING>", "Every failing rule"),
        Column("bronze_sha256", "STRING", "content_sha256 of the bronze row curated (to spot changes)", nullable=False),
        Column("batch_id", "STRING", "Run id of the curate that wrote the row", nullable=False),
        Column("curated_at", "TIMESTAMP", "When (UTC)", nullable=False),
    ),
    checks={
        "reason_iff_rejected": "(keep AND reject_reason IS NULL) OR (NOT keep AND reject_reason IS NOT NULL)",
        "lang_score_range": "lang_score >= 0 AND lang_score <= 1",
        "kind_known": "kind IN ('text', 'code')",
    },
)

FILTER_STATS = TableSpec(
    name="ops.filter_stats",
    comment="Per curate run and domain: documents and bytes in, kept, and dropped per rule. The rows "
    "counted as first_failure add up to the run's rejected documents. Dedup runs with span dedup on add "
    "their own funnel (duplicates per method, rejected documents, bytes removed from the kept ones).",
    layer="ops",
    pii="none",
    producer="curate, dedup",
    columns=(
        Column("run_id", "STRING", "The curate (or dedup) run", nullable=False),
        Column("domain", "STRING", "Domain", nullable=False),
        Column("rule", "STRING", "Rule name; '*' for the input and kept rows", nullable=False),
        Column("counted_as", "STRING", "input, kept, first_failure (the reject_reason), any_failure, or removed "
               "(documents kept with part of their text cut by the rule, and the bytes cut)", nullable=False),
        Column("documents", "BIGINT", "Documents", nullable=False),
        Column("bytes", "BIGINT", "Bytes of normalized text", nullable=False),
    ),
    checks={"counted_as_known": "counted_as IN ('input', 'kept', 'first_failure', 'any_failure', 'removed')"},
)


SIGNATURES = TableSpec(
    name="silver.signatures",
    comment="MinHash signature of every kept silver document, reused by later dedup runs. Written by `brickyard dedup`.",
    layer="silver",
    pii="none",
    producer="dedup",
    columns=(
        Column("doc_id", "STRING", "The document (silver.documents.doc_id)", nullable=False),
        Column("domain", "STRING", "Its domain (picks the MinHash settings)", nullable=False),
        Column("content_sha256", "STRING", "sha256 of the text signed", nullable=False),
        Column("scheme", "STRING", "h{hash version}-w{ngram}-p{num_perm}-s{seed}: shingle hashing, word n-gram size, permutations, seed", nullable=False),
        Column("n_shingles", "INT", "Shingles in the text (0: no words, left out of near dedup)", nullable=False),
        Column("signature", "ARRAY<INT>", "MinHash values (uint32 stored as int32), datasketch affine32 scheme", nullable=False),
        Column("batch_id", "STRING", "Run id of the dedup that signed it", nullable=False),
        Column("signed_at", "TIMESTAMP", "When (UTC)", nullable=False),
    ),
)

DUPLICATES = TableSpec(
    name="silver.duplicates",
    comment="Every deduplicated document and its cluster: the keeper (in gold.documents) and its exact, near or "
    "containment duplicates, with the estimated similarity to the keeper and the verified score that placed "
    "each one; keepers that span dedup left too short (method spans). Singletons are clusters of one. "
    "Written by `brickyard dedup`.",
    layer="silver",
    pii="none",
    producer="dedup",
    columns=(
        Column("doc_id", "STRING", "The document", nullable=False),
        Column("domain", "STRING", "Its domain", nullable=False),
        Column("content_sha256", "STRING", "sha256 of its text when deduplicated", nullable=False),
        Column("cluster_id", "STRING", "The cluster: doc_id of its keeper", nullable=False),
        Column("is_keeper", "BOOLEAN", "This document represents the cluster in gold.documents", nullable=False),
        Column("method", "STRING", "Why it is not in gold: exact (same text as matched_with), near (a MinHash LSH pair "
               "with matched_with), containment (mostly inside matched_with), or spans (the keeper of its own cluster, "
               "left too short once repeated spans were cut); null for keepers"),
        Column("similarity", "DOUBLE", "Estimated Jaccard similarity to the keeper (share of equal signature slots); 1 "
               "with the keeper's text; null for keepers and spans"),
        Column("batch_id", "STRING", "Run id of the dedup that placed it", nullable=False),
        Column("deduped_at", "TIMESTAMP", "When (UTC)", nullable=False),
        Column("matched_with", "STRING", "The document of the verified pair that placed it: exact: the keeper or the "
               "representative with its text; near: its best verified pair, inside its cluster where it has one (in a "
               "chain, not necessarily the keeper); containment: the container, a keeper; null for keepers and spans"),
        Column("match_score", "DOUBLE", "The value that decided, for the pair with matched_with: exact 1; near: the "
               "Jaccard similarity as verified (exact shingle sets by default; the signatures' estimate with verify "
               "estimate or none); containment: the exact containment of its shingles in the container's"),
        Column("spans_removed_share", "DOUBLE", "Share of its characters cut as repeated spans (keepers and spans "
               "rejects, when span dedup ran on them; else null)"),
    ),
    checks={
        "method_iff_duplicate": "(is_keeper AND method IS NULL AND cluster_id = doc_id) OR "
        "(NOT is_keeper AND method IN ('exact', 'near', 'containment') AND cluster_id <> doc_id) OR "
        "(NOT is_keeper AND method = 'spans' AND cluster_id = doc_id)",
        "similarity_range": "similarity IS NULL OR (similarity >= 0 AND similarity <= 1)",
        "match_score_range": "match_score IS NULL OR (match_score >= 0 AND match_score <= 1)",
        "spans_share_range": "spans_removed_share IS NULL OR (spans_removed_share >= 0 AND spans_removed_share <= 1)",
    },
)

GOLD = TableSpec(
    name="gold.documents",
    comment="One row per unique curated document: the keeper of each duplicate cluster. What tokenize reads. "
    "Written by `brickyard dedup`.",
    layer="gold",
    pii="redacted",
    producer="dedup",
    columns=tuple(c for c in SILVER.columns if c.name in (
        "doc_id", "source", "domain", "kind", "path", "locator", "text", "content_sha256", "n_bytes", "lang",
        "code_language", "license", "quality_score", "quality_tier", "quality_model")) + (
        Column("cluster_id", "STRING", "Its cluster in silver.duplicates (its own doc_id)", nullable=False),
        Column("batch_id", "STRING", "Run id of the dedup that admitted it", nullable=False),
        Column("deduped_at", "TIMESTAMP", "When (UTC)", nullable=False),
        Column("spans_removed_share", "DOUBLE", "Share of the silver text's characters cut as spans repeated in "
               "documents before it in keeper order (0: none; null: span dedup was off); text, content_sha256 and "
               "n_bytes are those of what is left"),
    ),
    checks={"keeper_names_cluster": "cluster_id = doc_id"},
)

SPANS = TableSpec(
    name="silver.spans",
    comment="The span index of span dedup: each paragraph and line (of at least dedup.spans.min_chars) of the "
    "documents span dedup placed, with the document that keeps it, the first holder in keeper order; every "
    "other holder's gold text lacks it. Written by `brickyard dedup`.",
    layer="silver",
    pii="none",
    producer="dedup",
    columns=(
        Column("doc_id", "STRING", "A document that holds the span: a keeper in gold, or a keeper span dedup rejected", nullable=False),
        Column("span_kind", "STRING", "paragraph or line", nullable=False),
        Column("span_hash", "BIGINT", "64-bit hash of the normalized span (brickyard.pipelines.text.spans)", nullable=False),
        Column("owner_id", "STRING", "The document that keeps the span in gold (doc_id itself for the owner's own row)", nullable=False),
        Column("batch_id", "STRING", "Run id of the dedup that indexed it", nullable=False),
        Column("indexed_at", "TIMESTAMP", "When (UTC)", nullable=False),
    ),
    checks={"span_kind_known": "span_kind IN ('paragraph', 'line')"},
)


CONTAMINATION = TableSpec(
    name="silver.contamination",
    comment="Documents found to contain an item of an evaluation set: one row per document and item, with "
    "the n-grams they share and one span of the document that the item holds. curate rejects these documents "
    "(rule contaminated). Written by `brickyard decontaminate`.",
    layer="silver",
    pii="redacted",
    producer="decontaminate",
    columns=(
        Column("doc_id", "STRING", "The document (silver.documents.doc_id)", nullable=False),
        Column("content_sha256", "STRING", "sha256 of the document text checked (silver.documents.content_sha256)", nullable=False),
        Column("eval_set", "STRING", "The evaluation set, by its name in the config", nullable=False),
        Column("item_id", "STRING", "The item: its id_field, or FILE:LINE, FILE#row=N, FILE:LINE of a paragraph", nullable=False),
        Column("matched_ngrams", "INT", "The item's distinct n-grams found in the document, checked word for word", nullable=False),
        Column("item_ngrams", "INT", "The item's distinct n-grams (a segment shorter than n words counts as one, whole)", nullable=False),
        Column("containment", "DOUBLE", "matched_ngrams / item_ngrams", nullable=False),
        Column("span", "STRING", "The document's text over the longest stretch it shares with the item (at most 1,000 characters)", nullable=False),
        Column("batch_id", "STRING", "Run id of the decontaminate that found it", nullable=False),
        Column("checked_at", "TIMESTAMP", "When (UTC)", nullable=False),
    ),
    checks={
        "matched_within_item": "matched_ngrams >= 1 AND matched_ngrams <= item_ngrams",
        "containment_range": "containment > 0 AND containment <= 1",
    },
)

TOKENS = TableSpec(
    name="gold.tokens",
    comment="Token ids of every gold document, its end-of-text id appended: what export packs into "
    "MDS samples. Written by `brickyard tokenize`.",
    layer="gold",
    pii="redacted",
    producer="tokenize",
    columns=(
        Column("doc_id", "STRING", "The document (gold.documents.doc_id)", nullable=False),
        Column("source", "STRING", "Its source", nullable=False),
        Column("domain", "STRING", "Its domain (streams select by it)", nullable=False),
        Column("quality_tier", "STRING", "Its quality tier in gold (streams select by it)"),
        Column("content_sha256", "STRING", "sha256 of the text tokenized", nullable=False),
        Column("encoding", "STRING", "The tiktoken encoding, e.g. cl100k_base", nullable=False),
        Column("n_tokens", "INT", "Number of ids, the end-of-text id included", nullable=False),
        Column("tokens", "ARRAY<INT>", "The ids: encode_ordinary(text) followed by the end-of-text id", nullable=False),
        Column("batch_id", "STRING", "Run id of the tokenize that wrote it", nullable=False),
        Column("tokenized_at", "TIMESTAMP", "When (UTC)", nullable=False),
    ),
    checks={"n_tokens_matches": "n_tokens = size(tokens) AND n_tokens >= 1"},
)


def tokens_spec(reads: str) -> TableSpec:
    """gold.tokens as a tokenize that reads `reads` makes it: tokens of bronze are tokens of unredacted text."""
    return TOKENS if reads == GOLD.name else replace(TOKENS, pii="raw")


# ---------------------------------------------------------------------------------------------
# ops: exports and lineage
# ---------------------------------------------------------------------------------------------

EXPORTS = TableSpec(
    name="ops.exports",
    comment="Every export of MDS shards: where it is, what it was built from, and its manifest. Written by `brickyard export`.",
    layer="ops",
    pii="none",
    producer="export",
    columns=(
        Column("export_id", "STRING", "<curriculum>-v<gold.tokens version>-<spec hash>", nullable=False),
        Column("curriculum", "STRING", "Name of the curriculum spec", nullable=False),
        Column("spec_hash", "STRING", "Hash of the curriculum spec", nullable=False),
        Column("path", "STRING", "Folder of the export", nullable=False),
        Column("tokens_version", "BIGINT", "Version of gold.tokens read", nullable=False),
        Column("encoding", "STRING", "Tokenizer encoding of the ids"),
        Column("seq_len", "INT", "Trained tokens per sample (a sample holds seq_len + 1)", nullable=False),
        Column("samples", "BIGINT", "Samples written, over all streams", nullable=False),
        Column("tokens", "BIGINT", "Tokens written, over all streams", nullable=False),
        Column("status", "STRING", "current, or stale once documents it holds are forgotten", nullable=False),
        Column("manifest", "STRING", "The manifest (JSON)", nullable=False),
        Column("run_id", "STRING", "Run id of the export", nullable=False),
        Column("created_at", "TIMESTAMP", "When (UTC)", nullable=False),
    ),
    checks={"status_known": "status IN ('current', 'stale')"},
)


EVAL_SETS = TableSpec(
    name="ops.eval_sets",
    comment="The evaluation sets decontaminate checks documents against, as of its last run: digest, settings "
    "and item counts. Written by `brickyard decontaminate`.",
    layer="ops",
    pii="none",
    producer="decontaminate",
    columns=(
        Column("eval_set", "STRING", "Its name in the config", nullable=False),
        Column("digest", "STRING", "Hash of its items and the settings that decide a match: a new digest re-checks every document against it", nullable=False),
        Column("path", "STRING", "Where its items were read (as configured; sample: the file written for it)"),
        Column("format", "STRING", "jsonl, parquet, text, sample, or mixed (a folder of several)", nullable=False),
        Column("mode", "STRING", "ngram or containment", nullable=False),
        Column("ngram", "INT", "Words per n-gram", nullable=False),
        Column("containment", "DOUBLE", "The share of an item's n-grams a document must hold (containment mode)"),
        Column("items", "BIGINT", "Items read", nullable=False),
        Column("items_checked", "BIGINT", "Items with at least one n-gram: those checked", nullable=False),
        Column("items_too_short", "BIGINT", "Items whose every text is below min_words words: not checked", nullable=False),
        Column("items_empty", "BIGINT", "Items with no text in their fields: not checked", nullable=False),
        Column("ngrams", "BIGINT", "Distinct n-grams over its checked items", nullable=False),
        Column("batch_id", "STRING", "Run id of the decontaminate that recorded it", nullable=False),
        Column("updated_at", "TIMESTAMP", "When (UTC)", nullable=False),
    ),
    checks={"items_add_up": "items = items_checked + items_too_short + items_empty"},
)

CONTAMINATION_CHECKS = TableSpec(
    name="ops.contamination_checks",
    comment="Which evaluation sets (name@digest) each document's text was checked against, so that a later "
    "decontaminate checks only new or changed documents, and every document against a new or changed set. "
    "Written by `brickyard decontaminate`.",
    layer="ops",
    pii="none",
    producer="decontaminate",
    columns=(
        Column("doc_id", "STRING", "The document (silver.documents.doc_id)", nullable=False),
        Column("content_sha256", "STRING", "sha256 of the text checked", nullable=False),
        Column("eval_sets", "ARRAY<STRING>", "name@digest of every evaluation set this text was checked against", nullable=False),
        Column("batch_id", "STRING", "Run id of the decontaminate that last checked it", nullable=False),
        Column("checked_at", "TIMESTAMP", "When (UTC)", nullable=False),
    ),
)


_REF = "ARRAY<STRUCT<name: STRING, kind: STRING, version: BIGINT, detail: STRING>>"

LINEAGE = TableSpec(
    name="ops.lineage",
    comment="One row per job run: inputs and outputs with their Delta versions, row counts, "
    "config hash, code version, times and outcome. The audit trail and the lineage graph.",
    layer="ops",
    pii="none",
    producer="every job",
    columns=(
        Column("run_id", "STRING", "Unique id of the run", nullable=False),
        Column("job", "STRING", "The job: ingest, curate, dedup, tokenize, export, train, ...", nullable=False),
        Column("status", "STRING", "succeeded, noop (nothing new to do), failed or killed (a run in progress is a marker file, see lake.lineage)", nullable=False),
        Column("inputs", _REF, "What the run read: tables (kind table, with the Delta version read) or sources"),
        Column("outputs", _REF, "What the run wrote: tables with the Delta version it committed"),
        Column("rows_in", "BIGINT", "Records the run read"),
        Column("rows_out", "BIGINT", "Records that passed to the output"),
        Column("rows_rejected", "BIGINT", "Records rejected by a rule (kept queryable, with their reason)"),
        Column("rows_quarantined", "BIGINT", "Records that could not be used at all (see bronze.quarantine)"),
        Column("metrics", "MAP<STRING, STRING>", "Job-specific figures: inserted, updated, bytes, files, ..."),
        Column("config_hash", "STRING", "Hash of the resolved job config"),
        Column("config", "STRING", "The resolved job config as JSON"),
        Column("code_version", "STRING", "brickyard version and git commit"),
        Column("spark_master", "STRING", "Where the job ran"),
        Column("host", "STRING", "Host of the driver"),
        Column("pid", "INT", "Process id of the driver (to spot killed runs)"),
        Column("started_at", "TIMESTAMP", "When the run started (UTC)", nullable=False),
        Column("ended_at", "TIMESTAMP", "When the run ended (UTC); null while running"),
        Column("message", "STRING", "Why a run failed, or a note on a no-op"),
    ),
    # One small append per run of any job: Delta's default checkpoint every 10 commits made every
    # tenth run pay 1.1-1.6 s for it (on 2 cores), where an append takes 0.25 s. Every 100: the
    # appends between checkpoints kept their time (0.26 s on average against 0.32-0.43 with the
    # default, over 40 appends), and reading it from its files with 60 commits since the last
    # checkpoint took 19 ms instead of 4.
    delta_properties={"delta.checkpointInterval": "100"},
    checks={
        "status_known": "status IN ('succeeded', 'noop', 'failed', 'killed')",
        "counts_balance": "status NOT IN ('succeeded', 'noop') OR rows_in IS NULL OR "
        "rows_in = rows_out + rows_rejected + rows_quarantined",
    },
)
