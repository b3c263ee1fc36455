"""fxforge exporter for AIDA-X / RTNeural model JSON."""
