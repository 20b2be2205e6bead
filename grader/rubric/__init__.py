"""Rubrics: weighted key points built from reference answers, stored as YAML files."""
