"""The workflow engine: definitions, expressions and the pure step function."""
