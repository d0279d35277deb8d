"""Unit tests of the coordinator's logic: literal cluster states in, replica maps, transfers and decisions out."""
