"""The schema language: source text to tokens, AST, compiled IR, validation and printing."""
