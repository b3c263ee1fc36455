"""fxforge-juce: export a trained fxforge run as a real-time JUCE plugin (RTNeural)."""

__version__ = "0.1.0"
