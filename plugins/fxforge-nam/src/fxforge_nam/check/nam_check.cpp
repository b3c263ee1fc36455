// Loads a .nam file with NeuralAmpModelerCore's own loader (nam::get_dsp, the code NAM's plugin
// and the hosts built on the core call) and renders raw float32 audio through it block by block,
// so fxforge can check an export against the C++ that plays it.
//
//   nam_check model.nam in.f32 out.f32 BLOCK PREWARM
//
// - BLOCK: the host's buffer size; the model is Reset() with it and process() is called on
//   blocks of that many samples (the last one shorter), as a plugin's audio callback does.
// - PREWARM 1: Reset() prewarms as NAM's plugin does on load (the core runs silence through the
//   model: half a second for an LSTM, the receptive field for a WaveNet); PREWARM 0 turns that
//   off, so the model starts from the state the file holds.
//
// On success it prints one JSON line to stdout: the architecture, the number of silent samples the
// prewarm ran (rounded up to whole blocks, as nam::DSP::prewarm runs them), the file's sample rate.
// Exit status: 0 rendered; 2 the core refused the file; 1 bad arguments or an I/O error.
#include <algorithm>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "NAM/dsp.h"
#include "NAM/get_dsp.h"

int main(int argc, char** argv)
{
  if (argc != 6)
  {
    std::cerr << "usage: nam_check model.nam in.f32 out.f32 BLOCK PREWARM\n";
    return 1;
  }
  const int block = std::atoi(argv[4]);
  const bool prewarm = std::atoi(argv[5]) != 0;
  if (block < 1)
  {
    std::cerr << "BLOCK must be a positive number of samples\n";
    return 1;
  }

  std::unique_ptr<nam::DSP> model;
  nam::dspData data;
  try
  {
    // Loading must not prewarm: the prewarm below is the one PREWARM asks for.
    nam::DspLoadOptions options;
    options.prewarm = false;
    model = nam::get_dsp(std::filesystem::path(argv[1]), data, options);
  }
  catch (const std::exception& e)
  {
    std::cerr << argv[1] << ": NeuralAmpModelerCore refused it: " << e.what() << "\n";
    return 2;
  }
  if (!model || model->NumInputChannels() != 1 || model->NumOutputChannels() != 1)
  {
    std::cerr << argv[1] << ": NeuralAmpModelerCore did not build a 1-in, 1-out model\n";
    return 2;
  }

  std::vector<float> x;
  {
    std::ifstream f(argv[2], std::ios::binary | std::ios::ate);
    if (!f)
    {
      std::cerr << argv[2] << ": cannot read\n";
      return 1;
    }
    x.resize((size_t)f.tellg() / sizeof(float));
    f.seekg(0);
    f.read(reinterpret_cast<char*>(x.data()), (std::streamsize)(x.size() * sizeof(float)));
  }

  const double rate = model->GetExpectedSampleRate() > 0 ? model->GetExpectedSampleRate() : 48000.0;
  int prewarmed = 0;
  try
  {
    model->SetPrewarmOnReset(prewarm);
    model->Reset(rate, block);
    if (prewarm)
    {
      const int n = model->GetPrewarmSamples();
      prewarmed = n <= 0 ? 0 : ((n + block - 1) / block) * block;
    }
  }
  catch (const std::exception& e)
  {
    std::cerr << argv[1] << ": NeuralAmpModelerCore failed to reset the model: " << e.what() << "\n";
    return 2;
  }

  std::vector<NAM_SAMPLE> in((size_t)block), out((size_t)block);
  NAM_SAMPLE* inPtr = in.data();
  NAM_SAMPLE* outPtr = out.data();
  std::vector<float> y(x.size());
  for (size_t pos = 0; pos < x.size(); pos += (size_t)block)
  {
    const int n = (int)std::min((size_t)block, x.size() - pos);
    for (int i = 0; i < n; i++)
      in[(size_t)i] = (NAM_SAMPLE)x[pos + (size_t)i];
    model->process(&inPtr, &outPtr, n);
    for (int i = 0; i < n; i++)
      y[pos + (size_t)i] = (float)out[(size_t)i];
  }

  std::ofstream o(argv[3], std::ios::binary);
  o.write(reinterpret_cast<const char*>(y.data()), (std::streamsize)(y.size() * sizeof(float)));
  if (!o)
  {
    std::cerr << argv[3] << ": cannot write\n";
    return 1;
  }
  std::cout << "{\"architecture\": \"" << data.architecture << "\", \"prewarm_samples\": " << prewarmed
            << ", \"sample_rate\": " << data.expected_sample_rate << ", \"block\": " << block << "}\n";
  return 0;
}
