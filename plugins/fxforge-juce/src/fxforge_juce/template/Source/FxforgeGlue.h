#pragma once
// Streaming glue that RTNeural's sequential ModelT cannot express: the knob conditioning of
// the recurrent models (ConcatKnobs, FilmKnobs: the exporter writes their type parameters),
// the learned cabinet FIR, which the fxforge-cabinet stage's JUCE fragment declares, and the
// NaN/Inf guard (the block-wise WaveNet is in FxforgeWaveNet.h). Header-only, no
// allocation after load.

#include <RTNeural/RTNeural.h>
#include <RTNeural/torch_helpers.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

namespace fxforge
{
template <int N>
using Vec = Eigen::Matrix<float, N, 1>;

/** A 2-D tensor of the state dict (nested lists, PyTorch's row-major order). */
template <int R, int C>
inline void loadMatrix (const nlohmann::json& json, const std::string& key, Eigen::Matrix<float, R, C>& m)
{
    const auto w = json.at (key).get<std::vector<std::vector<float>>>();
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c)
            m (r, c) = w.at ((size_t) r).at ((size_t) c);
}

template <int R>
inline void loadVector (const nlohmann::json& json, const std::string& key, Eigen::Matrix<float, R, 1>& v)
{
    const auto w = json.at (key).get<std::vector<float>>();
    for (int r = 0; r < R; ++r)
        v (r) = w.at ((size_t) r);
}

/** Concat conditioning of K knobs: the recurrent network reads [x, knobs] (1 + K inputs),
    as the model does in PyTorch. */
template <int K>
class ConcatKnobs
{
public:
    /** The model's own knob values (knob_defaults), which it plays at until set() is called. */
    void load (const nlohmann::json& json)
    {
        loadVector<K> (json, "knob_defaults", defaults);
        set (defaults.data()); // the model's own default, as PyTorch plays audio alone
    }

    /** The knob values (each 0..1) the following samples play at. */
    inline void set (const float* k) noexcept
    {
        for (int j = 0; j < K; ++j)
            xin[1 + j] = k[j];
    }

    /** The network's input for sample x. */
    inline const float* input (float x) noexcept
    {
        xin[0] = x;
        return xin;
    }

private:
    alignas (RTNEURAL_DEFAULT_ALIGNMENT) float xin[1 + K] = {}; // [x, knobs (0..1)]
    Vec<K> defaults = Vec<K>::Zero();
};

/** Gain conditioning of K knobs: as ConcatKnobs, the audio first scaled by the knobs' gain,
    per knob a + (b - a) c k / (c + 1 - k) (a = exp (log_min), b = exp (log_max),
    c = softplus (taper): a pot's law), their product; recomputed only in set(). */
template <int K>
class GainKnobs
{
public:
    void load (const nlohmann::json& json)
    {
        loadVector<K> (json, "knob_gain.log_min", logMin);
        loadVector<K> (json, "knob_gain.log_max", logMax);
        loadVector<K> (json, "knob_gain.taper", taper);
        loadVector<K> (json, "knob_defaults", defaults);
        set (defaults.data()); // the model's own default, as PyTorch plays audio alone
    }

    inline void set (const float* k) noexcept
    {
        float g = 1.0f;
        for (int j = 0; j < K; ++j)
        {
            xin[1 + j] = k[j];
            const float t = taper (j);
            const float c = t > 20.0f ? t : std::log1p (std::exp (t)); // softplus, as torch's
            const float v = std::min (1.0f, std::max (0.0f, k[j]));
            const float a = std::exp (logMin (j)), b = std::exp (logMax (j));
            g *= a + (b - a) * (c * v / (c + 1.0f - v));
        }
        gain = g;
    }

    inline const float* input (float x) noexcept
    {
        xin[0] = gain * x;
        return xin;
    }

private:
    alignas (RTNEURAL_DEFAULT_ALIGNMENT) float xin[1 + K] = {}; // [g (knobs) x, knobs (0..1)]
    Vec<K> logMin = Vec<K>::Zero(), logMax = Vec<K>::Zero(), taper = Vec<K>::Zero(), defaults = Vec<K>::Zero();
    float gain = 1.0f;
};

/** FiLM conditioning of K knobs: phi = tanh (L2 tanh (L1 k)) (L1 W wide, F features); the
    recurrent network (H hidden) reads [x, x * phi, phi] (1 + 2F inputs), and its last
    layer's output h becomes h * (1 + gamma) + beta before the Dense head (H -> 1),
    (gamma, beta) = film_head (phi). Loads film.*, film_head.*, head.* and knob_defaults;
    phi, gamma and beta are recomputed in set() only when a knob value changes (while the
    plugin's smoothing ramps, every sample). */
template <int K, int W, int F, int H, bool HeadBias>
class FilmKnobs
{
public:
    void load (const nlohmann::json& json)
    {
        RTNeural::torch_helpers::loadDense<float> (json, "head.", head, HeadBias);
        loadMatrix<W, K> (json, "film.0.weight", film0W);
        loadVector<W> (json, "film.0.bias", film0B);
        loadMatrix<F, W> (json, "film.2.weight", film2W);
        loadVector<F> (json, "film.2.bias", film2B);
        loadMatrix<2 * H, F> (json, "film_head.weight", filmHeadW);
        loadVector<2 * H> (json, "film_head.bias", filmHeadB);
        loadVector<K> (json, "knob_defaults", defaults);
        knobNow.setConstant (-1.0f); // recompute the FiLM below
        set (defaults.data()); // the model's own default, as PyTorch plays audio alone
    }

    /** The knob values (each 0..1) the following samples play at. */
    inline void set (const float* k) noexcept
    {
        bool same = true;
        for (int j = 0; j < K; ++j)
            same = same && knobNow (j) == k[j];
        if (same)
            return; // FiLM of these values already computed
        for (int j = 0; j < K; ++j)
            knobNow (j) = k[j];
        // std::tanh per element, as torch.tanh (Eigen's vectorised tanh is an approximation).
        film0Out.noalias() = film0W * knobNow;
        for (int j = 0; j < W; ++j)
            film0Out (j) = std::tanh (film0Out (j) + film0B (j));
        phi.noalias() = film2W * film0Out;
        for (int j = 0; j < F; ++j)
            phi (j) = std::tanh (phi (j) + film2B (j));
        film.noalias() = filmHeadW * phi;
        film += filmHeadB;
        gain = film.template head<H>().array() + 1.0f;
        shift = film.template tail<H>();
        for (int j = 0; j < F; ++j)
            xin[1 + F + j] = phi (j);
    }

    /** The network's input for sample x. */
    inline const float* input (float x) noexcept
    {
        xin[0] = x;
        for (int j = 0; j < F; ++j)
            xin[1 + j] = x * phi (j);
        return xin;
    }

    /** The model's output from the network's last layer's output (H values). */
    inline float output (const float* hidden) noexcept
    {
        filmed = Eigen::Map<const Eigen::Matrix<float, H, 1>> (hidden).cwiseProduct (gain) + shift;
        head.forward (filmed);
        return head.outs (0);
    }

private:
    alignas (RTNEURAL_DEFAULT_ALIGNMENT) float xin[1 + 2 * F] = {}; // [x, x * phi, phi]
    Eigen::Matrix<float, W, K> film0W;
    Eigen::Matrix<float, W, 1> film0B, film0Out;
    Eigen::Matrix<float, F, W> film2W;
    Eigen::Matrix<float, F, 1> film2B, phi;
    Eigen::Matrix<float, 2 * H, F> filmHeadW;
    Eigen::Matrix<float, 2 * H, 1> filmHeadB, film;
    Eigen::Matrix<float, H, 1> gain, shift, filmed; // 1 + gamma, beta
    Vec<K> knobNow = Vec<K>::Constant (-1.0f);
    Vec<K> defaults = Vec<K>::Zero();
    RTNeural::DenseT<float, H, 1, HeadBias> head;
};

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
