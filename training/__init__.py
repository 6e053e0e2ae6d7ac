"""The trainer: data loading from exports, parallelism applied from outside the model, the loop."""
