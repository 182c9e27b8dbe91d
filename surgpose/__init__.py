"""Shared logic of the surgical-instrument pose toolkit: schema, label formats, geometry, drawing, IO."""
