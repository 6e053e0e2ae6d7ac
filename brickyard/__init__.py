"""brickyard: curate text and code with Spark into a governed Delta Lake catalog, export curriculum-weighted
MDS shards, and train a DBRX-style MoE on them. One import name; `brickyard.pipelines`, `brickyard.model` and
`brickyard.training` are the top-level folders of the same names (mapped in pyproject.toml)."""

__version__ = "0.1.0"
