// Measures a generated project's model through its block API the way processBlock calls it
// (one thread): audio seconds processed per CPU second, at the given block sizes. JUCE-free
// and not part of the project: bench/bench_plugin.py and bench/bench_plugin_models.py compile
// it with the project's Source/ and RTNeural on the include path.
//   fxforge_bench WEIGHTS.json [sample_rate] [seconds] [block ...]
// Prints one JSON object.
#include <algorithm>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <vector>

#include "FxforgeModel.h"

int main (int argc, char** argv)
{
    if (argc < 2)
    {
        std::fprintf (stderr, "usage: %s WEIGHTS.json [sample_rate] [seconds] [block ...]\n", argv[0]);
        return 2;
    }
    std::ifstream file (argv[1]);
    std::stringstream text;
    text << file.rdbuf();
    const auto json = nlohmann::json::parse (text.str());

    const double sr = argc > 2 ? std::atof (argv[2]) : 48000.0;
    const double seconds = argc > 3 ? std::atof (argv[3]) : 10.0;
    std::vector<int> blocks;
    for (int i = 4; i < argc; ++i)
        blocks.push_back (std::atoi (argv[i]));
    if (blocks.empty())
        blocks = { 64, 512 };

    auto model = std::make_unique<fxforge::Model>();
    model->load (json);

    const auto n = (size_t) (sr * seconds);
    std::vector<float> audio (n);
    std::mt19937 rng (0);
    std::normal_distribution<float> noise (0.0f, 0.1f);
    for (size_t i = 0; i < n; ++i)
        audio[i] = 0.4f * std::sin (2.0f * 3.14159265f * 220.0f * (float) i / (float) sr) + noise (rng);

    std::printf ("{\"sample_rate\": %g, \"seconds\": %g, \"rtf\": {", sr, seconds);
    for (size_t b = 0; b < blocks.size(); ++b)
    {
        const size_t block = (size_t) blocks[b];
        std::vector<float> buf (block);
        model->reset();
        double sink = 0.0;
        const std::clock_t c0 = std::clock(); // CPU time: RTF = audio seconds per CPU second
        for (size_t start = 0; start < n; start += block)
        {
            const size_t len = std::min (block, n - start);
            std::copy (audio.begin() + (long) start, audio.begin() + (long) (start + len), buf.begin());
            model->process (buf.data(), buf.data(), (int) len);
            sink += buf[0];
        }
        const double elapsed = (double) (std::clock() - c0) / (double) CLOCKS_PER_SEC;
        std::printf ("%s\"%zu\": %.2f", b ? ", " : "", block, seconds / elapsed);
        if (! std::isfinite (sink))
            std::fprintf (stderr, "non-finite output\n");
    }
    std::printf ("}}\n");
    return 0;
}
