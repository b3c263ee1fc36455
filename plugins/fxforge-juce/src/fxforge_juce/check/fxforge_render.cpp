// Runs a generated project's model over raw float32 audio, JUCE-free: a quick parity
// check of its FxforgeModel.h against PyTorch without building the plugin. It is not
// part of the project: compile it with the project's Source/ and RTNeural on the include
// path (fxforge_juce.build.RENDER_SOURCE; tests/conftest.py's compile_render_tool). The audio
// goes through the block API in place, in blocks cycling through the given sizes
// (default 1, 17, 64, 512, 4096), so the parity covers block boundaries and the
// chunking of long blocks. It runs the model through processGuarded, as the plugin
// does: a block holding NaN/Inf comes out silent and resets the model. With
// FXFORGE_RENDER_KNOBS=KNOBS.f32 (a conditioned model: kKnobs float32 values per sample,
// sample-major, each 0..1) the knobs move as that file says, as the plugin feeds its
// smoothed knobs; without it the model plays its own default knobs.
//   fxforge_render WEIGHTS.json IN.f32 OUT.f32 [block ...]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <vector>

#include "FxforgeModel.h"

int main (int argc, char** argv)
{
    if (argc < 4)
    {
        std::fprintf (stderr, "usage: %s WEIGHTS.json IN.f32 OUT.f32 [block ...]\n", argv[0]);
        return 2;
    }
    std::vector<int> sizes;
    for (int i = 4; i < argc; ++i)
        sizes.push_back (std::max (1, std::atoi (argv[i])));
    if (sizes.empty())
        sizes = { 1, 17, 64, 512, 4096 };
    std::ifstream weights (argv[1]);
    std::stringstream text;
    text << weights.rdbuf();
    auto model = std::make_unique<fxforge::Model>();
    model->load (nlohmann::json::parse (text.str()));
    model->reset();

    std::ifstream in (argv[2], std::ios::binary);
    std::vector<char> bytes ((std::istreambuf_iterator<char> (in)), std::istreambuf_iterator<char>());
    std::vector<float> audio (bytes.size() / sizeof (float));
    std::memcpy (audio.data(), bytes.data(), audio.size() * sizeof (float));
    constexpr int kKnobs = fxforge::KnobCount<fxforge::Model>::value;
    std::vector<float> knobs;
    if (const char* knobFile = std::getenv ("FXFORGE_RENDER_KNOBS"))
    {
        std::ifstream kf (knobFile, std::ios::binary);
        std::vector<char> kbytes ((std::istreambuf_iterator<char> (kf)), std::istreambuf_iterator<char>());
        knobs.resize (kbytes.size() / sizeof (float));
        std::memcpy (knobs.data(), kbytes.data(), knobs.size() * sizeof (float));
        if (kKnobs == 0 || knobs.size() != audio.size() * (size_t) kKnobs)
        {
            std::fprintf (stderr, "FXFORGE_RENDER_KNOBS: %zu values for %zu samples of a model with %d knobs\n",
                          knobs.size(), audio.size(), kKnobs);
            return 2;
        }
    }
#ifdef EIGEN_RUNTIME_NO_MALLOC
    Eigen::internal::set_is_malloc_allowed (false); // with assertions on, Eigen aborts on a heap allocation
#endif
    for (size_t start = 0, b = 0; start < audio.size(); ++b)
    {
        const size_t n = std::min ((size_t) sizes[b % sizes.size()], audio.size() - start);
        if (knobs.empty())
            fxforge::processGuarded (*model, audio.data() + start, audio.data() + start, (int) n); // as the plugin runs it
        else
            fxforge::processGuarded (*model, audio.data() + start, audio.data() + start, (int) n,
                                     knobs.data() + start * (size_t) kKnobs);
        start += n;
    }
#ifdef EIGEN_RUNTIME_NO_MALLOC
    Eigen::internal::set_is_malloc_allowed (true);
#endif
    std::ofstream out (argv[3], std::ios::binary);
    out.write (reinterpret_cast<const char*> (audio.data()), (std::streamsize) (audio.size() * sizeof (float)));
    return out ? 0 : 1;
}
