"""fxforge-stft-lstm: the STFT-domain LSTM and its `frames` provider."""
