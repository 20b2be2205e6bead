"""Question banks: read questions with reference answers from Markdown, JSON, JSONL, YAML or CSV."""
