"""Learned codecs."""
