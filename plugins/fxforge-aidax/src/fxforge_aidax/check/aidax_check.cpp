// Loads an AIDA-X model JSON with RTNeural's reference parser and renders raw float32 audio
// through it the way AIDA-X's applyModel() does, so fxforge can check an export against
// the code that plays it.
//
//   aidax_check model.json in.f32 out.f32 [prebuffer [knobs.f32]]
//
// - model selection: the checks of AIDA-X's model_variant.hpp (layers[0].type is lstm or
//   gru, layers[0].shape[-1] one of its compiled hidden sizes, in_shape[-1] 1, 2 or 3 (the
//   audio and up to two knobs, MAX_INPUT_SIZE), then a dense layer of 1 output); a file
//   AIDA-X would not load fails here too.
// - knobs (in_shape 2 or 3): knobs.f32 holds in_shape[-1] - 1 float32 values per sample,
//   sample-major, each the knob's 0..1 value; the model reads [x, knob...] per sample, as
//   AIDA-X's applyModel() feeds its parameters after the (gained) audio. The pre-roll holds
//   the first sample's knob values.
// - weights: RTNeural::json_parser::parseJson (the dynamic model). Its loadLSTM / loadGRU /
//   loadDense are the functions the static ModelT<...>::parseJson that AIDA-X calls uses.
// - in_skip, in_gain, out_gain: read and applied as AIDA-X's loadModelFromStream() and
//   applyModel() do (dB to gain with the same -90 dB floor).
// - prebuffer: AIDA-X runs 2048 samples of silence through a freshly loaded model before
//   playing it; pass 2048 to reproduce that, 0 to start from RTNeural's reset() state.
//
// Exit status: 0 rendered; 2 AIDA-X would refuse the file; 1 I/O error.
#include <RTNeural/RTNeural.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace
{
constexpr int kHiddenSizes[] = { 8, 12, 16, 20, 24, 32, 40, 64, 80 };

float dbToGain (float db) { return db > -90.f ? std::pow (10.f, db * 0.05f) : 0.f; }

bool aidaxWouldLoad (const nlohmann::json& j, std::string& why)
{
    const auto& layers = j.at ("layers");
    if (layers.size() != 2)
    {
        why = "AIDA-X models have exactly two layers (recurrent, dense)";
        return false;
    }
    const auto type = layers.at (0).at ("type").get<std::string>();
    const int hidden = layers.at (0).at ("shape").back().get<int>();
    const int inputs = j.at ("in_shape").back().get<int>();
    bool sizeOk = false;
    for (int h : kHiddenSizes)
        sizeOk = sizeOk || h == hidden;
    if ((type != "lstm" && type != "gru") || ! sizeOk || inputs < 1 || inputs > 3)
    {
        why = "no AIDA-X model for " + type + " " + std::to_string (hidden) + " with " + std::to_string (inputs) + " input(s)";
        return false;
    }
    if (layers.at (1).at ("type").get<std::string>() != "dense" || layers.at (1).at ("shape").back().get<int>() != 1)
    {
        why = "the second layer must be dense with 1 output";
        return false;
    }
    if (j.contains ("in_skip") && j["in_skip"].is_number() && j["in_skip"].get<int>() > 1)
    {
        why = "Values for in_skip > 1 are not supported";
        return false;
    }
    return true;
}
} // namespace

int main (int argc, char** argv)
{
    if (argc < 4)
    {
        std::cerr << "usage: aidax_check model.json in.f32 out.f32 [prebuffer [knobs.f32]]\n";
        return 1;
    }
    nlohmann::json j;
    {
        std::ifstream f (argv[1]);
        if (! f)
        {
            std::cerr << argv[1] << ": cannot read\n";
            return 1;
        }
        f >> j;
    }
    std::string why;
    if (! aidaxWouldLoad (j, why))
    {
        std::cerr << argv[1] << ": " << why << "\n";
        return 2;
    }
    const bool inSkip = j["in_skip"].is_number() && j["in_skip"].get<int>() != 0;
    const float inGain = j["in_gain"].is_number() ? dbToGain (j["in_gain"].get<float>()) : 1.0f;
    const float outGain = j["out_gain"].is_number() ? dbToGain (j["out_gain"].get<float>()) : 1.0f;

    const int inputs = j.at ("in_shape").back().get<int>();
    const int numKnobs = inputs - 1;
    auto model = RTNeural::json_parser::parseJson<float> (j, false);
    if (! model || model->getInSize() != inputs || model->getOutSize() != 1)
    {
        std::cerr << argv[1] << ": RTNeural's parseJson did not build a " << inputs << "-in, 1-out model\n";
        return 2;
    }
    model->reset();

    std::vector<float> x;
    {
        std::ifstream f (argv[2], std::ios::binary | std::ios::ate);
        if (! f)
        {
            std::cerr << argv[2] << ": cannot read\n";
            return 1;
        }
        x.resize ((size_t) f.tellg() / sizeof (float));
        f.seekg (0);
        f.read (reinterpret_cast<char*> (x.data()), (std::streamsize) (x.size() * sizeof (float)));
    }
    std::vector<float> knobs;
    if (numKnobs > 0)
    {
        if (argc < 6)
        {
            std::cerr << argv[1] << ": takes " << numKnobs << " knob(s): pass knobs.f32 after the prebuffer\n";
            return 1;
        }
        std::ifstream f (argv[5], std::ios::binary | std::ios::ate);
        if (! f)
        {
            std::cerr << argv[5] << ": cannot read\n";
            return 1;
        }
        knobs.resize ((size_t) f.tellg() / sizeof (float));
        f.seekg (0);
        f.read (reinterpret_cast<char*> (knobs.data()), (std::streamsize) (knobs.size() * sizeof (float)));
        if (knobs.size() != x.size() * (size_t) numKnobs || x.empty())
        {
            std::cerr << argv[5] << ": " << knobs.size() << " values for " << x.size() << " samples and "
                      << numKnobs << " knob(s)\n";
            return 1;
        }
    }

    // applyModel(), sample by sample as AIDA-X runs it: [x, knob...] for in_shape 2 and 3.
    // firstKnobRow: the pre-roll holds sample 0's knobs; else row i is sample i's.
    auto apply = [&] (std::vector<float>& out, bool firstKnobRow) {
        for (auto& v : out)
            if (inGain != 1.0f)
                v *= inGain;
        for (size_t i = 0; i < out.size(); ++i)
        {
            alignas (RTNEURAL_DEFAULT_ALIGNMENT) float in[4] = { out[i], 0.0f, 0.0f, 0.0f };
            for (int k = 0; k < numKnobs; ++k)
                in[1 + k] = knobs[(firstKnobRow ? 0 : i) * (size_t) numKnobs + (size_t) k];
            if (inSkip)
                out[i] += model->forward (in);
            else
                out[i] = model->forward (in) * outGain;
        }
        if (inSkip && outGain != 1.0f)
            for (auto& v : out)
                v *= outGain;
    };

    const int prebuffer = argc > 4 ? std::atoi (argv[4]) : 0;
    if (prebuffer > 0)
    {
        std::vector<float> silence ((size_t) prebuffer, 0.0f);
        apply (silence, true);
    }
    apply (x, false);

    std::ofstream o (argv[3], std::ios::binary);
    o.write (reinterpret_cast<const char*> (x.data()), (std::streamsize) (x.size() * sizeof (float)));
    if (! o)
    {
        std::cerr << argv[3] << ": cannot write\n";
        return 1;
    }
    std::cout << j.at ("layers").at (0).at ("type").get<std::string>() << " "
              << j.at ("layers").at (0).at ("shape").back().get<int>() << " in_skip " << inSkip
              << " in_gain " << inGain << " out_gain " << outGain << " prebuffer " << prebuffer
              << " knobs " << numKnobs << "\n";
    return 0;
}
