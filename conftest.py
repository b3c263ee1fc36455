# Small recurrent models run fastest on one thread; tests that run in-process match the CLI's default.
import torch

torch.set_num_threads(1)
