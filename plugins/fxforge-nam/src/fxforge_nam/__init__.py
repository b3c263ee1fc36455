"""fxforge exporter for Neural Amp Modeler: ``fxforge export nam RUN -o model.nam``."""
