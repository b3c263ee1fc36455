"""The model contract and what runs a model: losses, block-wise streaming, the stability stream, the stress probes."""
