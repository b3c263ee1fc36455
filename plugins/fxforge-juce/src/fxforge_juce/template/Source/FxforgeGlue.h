#pragma once
// Streaming glue that RTNeural's sequential ModelT cannot express: the learned
// cabinet FIR, which the fxforge-cabinet stage's JUCE fragment declares (the block-wise
// WaveNet is in FxforgeWaveNet.h). Header-only, no
// allocation after construction, one sample per call.

#include <RTNeural/RTNeural.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace fxforge
{
template <int N>
using Vec = Eigen::Matrix<float, N, 1>;

/** A causal FIR y[t] = sum_k ir[k] x[t-k], computed directly.

    The history lives twice in a 2N buffer so the last N samples are always one
    contiguous span and the dot product vectorises. (JUCE's convolution engine
    loads impulse responses on a background thread, so its first blocks after
    loading would not match the trained model; 2048 taps directly cost about
    4 GFLOP/s at 48 kHz, a small share of one core.)
*/
template <int N>
class Fir
{
public:
    /** ``ir`` newest-tap-first, as PyTorch stores it (cabinet.ir); ``dcPole`` the pole of the
        one-pole DC blocker in front of it (cabinet.dc_pole; fxforge_cabinet.fir.dc_block). */
    void load (const std::vector<float>& ir, float dcPole)
    {
        for (int j = 0; j < N; ++j)
            reversed[(size_t) j] = N - 1 - j < (int) ir.size() ? ir[(size_t) (N - 1 - j)] : 0.0f;
        pole = dcPole;
    }

    void reset() noexcept
    {
        history.fill (0.0f);
        pos = 0;
        dcIn = dcOut = 0.0f;
    }

    inline float process (float x) noexcept
    {
        dcOut = pole * dcOut + x - dcIn; // AC coupling, as the model was trained with
        dcIn = x;
        x = dcOut;
        history[(size_t) pos] = x;
        history[(size_t) (pos + N)] = x;
        // history[pos + 1 .. pos + N] is the last N samples, oldest first.
        const Eigen::Map<const Vec<N>> window (history.data() + pos + 1);
        const Eigen::Map<const Vec<N>> taps (reversed.data());
        pos = pos + 1 == N ? 0 : pos + 1;
        return window.dot (taps);
    }

private:
    std::array<float, N> reversed {};
    std::array<float, 2 * N> history {};
    int pos = 0;
    float pole = 0.0f, dcIn = 0.0f, dcOut = 0.0f;
};

/** True when no sample is NaN or Inf. A bit test (exponent all ones), so it still
    holds where a compiler assumes finite floats (-ffast-math would fold std::isfinite). */
inline bool allFinite (const float* x, int n) noexcept
{
    std::uint32_t all = 0;
    for (int i = 0; i < n; ++i)
    {
        std::uint32_t bits;
        std::memcpy (&bits, x + i, sizeof bits);
        all |= (~bits & 0x7f800000u) == 0 ? 1u : 0u;
    }
    return all == 0;
}

/** The model over n samples of in to out (in may equal out), never passing NaN/Inf on:
    where the input or the model's output holds one, the block's output is silence and
    the model's state is reset (a recurrent state that took a NaN keeps it forever).
    Returns false when it muted. */
template <typename Model>
inline bool processGuarded (Model& model, const float* in, float* out, int n) noexcept
{
    if (! allFinite (in, n))
    {
        model.reset();
        std::memset (out, 0, sizeof (float) * (size_t) n);
        return false;
    }
    model.process (in, out, n);
    if (! allFinite (out, n))
    {
        model.reset();
        std::memset (out, 0, sizeof (float) * (size_t) n);
        return false;
    }
    return true;
}

/** How many knob inputs a model takes: its kKnobs, 0 for a model without one. */
template <typename Model, typename = void>
struct KnobCount : std::integral_constant<int, 0>
{
};

template <typename Model>
struct KnobCount<Model, std::void_t<decltype (Model::kKnobs)>> : std::integral_constant<int, Model::kKnobs>
{
};

/** processGuarded with the knob values per sample (knobs[i * kKnobs + j], each 0..1) for a
    conditioned model; a model without knobs ignores them and runs exactly as above. */
template <typename Model>
inline bool processGuarded (Model& model, const float* in, float* out, int n, const float* knobs) noexcept
{
    if constexpr (KnobCount<Model>::value > 0)
    {
        if (! allFinite (in, n))
        {
            model.reset();
            std::memset (out, 0, sizeof (float) * (size_t) n);
            return false;
        }
        model.process (in, out, knobs, n);
        if (! allFinite (out, n))
        {
            model.reset();
            std::memset (out, 0, sizeof (float) * (size_t) n);
            return false;
        }
        return true;
    }
    else
    {
        (void) knobs;
        return processGuarded (model, in, out, n);
    }
}
} // namespace fxforge
