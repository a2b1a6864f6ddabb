"""Tools that are not part of the running app (screenshots for the docs)."""
