"""ChangeVG VLM side."""
