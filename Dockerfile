# fxforge with every built-in plugin.
#   docker build -t fxforge .
#   docker run --rm -v "$PWD:/work" -w /work fxforge run configs/wave_lstm.toml
FROM python:3.11-slim

# libsndfile for soundfile; cmake, a compiler and JUCE so `fxforge export juce --build` works inside.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libsndfile1 build-essential cmake git juce-modules-source \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/fxforge
COPY pyproject.toml README.md ./
COPY fxforge ./fxforge
COPY plugins ./plugins
COPY configs ./configs

# The pinned torch/torchaudio pair from PyPI (the pair the tests run on; it also runs on CUDA GPUs,
# at the cost of a large image). PyTorch's smaller CPU-only wheel broke torchaudio's extension
# in our checks, so it is not used.
RUN pip install --no-cache-dir . ./plugins/*

ENTRYPOINT ["fxforge"]
CMD ["--help"]
