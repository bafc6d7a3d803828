"""The papers' tables and figures from finished runs (see `pipelines.reproduce`)."""
