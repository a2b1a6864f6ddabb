"""Shipped examples, datasets and icons (package data)."""
