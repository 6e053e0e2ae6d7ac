"""The `brickyard` command line: one front for the pipelines, the model and the trainer."""
