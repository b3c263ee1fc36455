#pragma once
// The block-wise WaveNet: each step is a matrix product over the whole block
// (channels x samples) instead of one matrix-vector product per sample, so Eigen
// runs its vectorised GEMM kernels and the per-call overhead is paid once per block.
// The family's wiring is the class template Net; the exporter writes only its type
// parameters (channels, each layer's kernel, dilation and gate) and the weights' JSON.
// Memory is allocated in the constructors; process() allocates nothing and takes no locks.

#include <RTNeural/RTNeural.h> // Eigen and nlohmann::json

#include "FxforgeGlue.h" // loadMatrix, loadVector

#include <cstring>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace fxforge::wavenet
{
/** The longest run of samples processed at once; longer blocks are split into chunks this long. */
constexpr int kMaxBlock = 1024;

/** R channels (compile-time, so Eigen vectorises down the columns) x samples. */
template <int R>
using Block = Eigen::Matrix<float, R, Eigen::Dynamic>;

/** Scratch of R x kMaxBlock, zeroed: allocated once, where the model is built. */
template <int R>
inline Block<R> scratch()
{
    return Block<R>::Zero (R, kMaxBlock);
}

// The state dict's readers (FxforgeGlue.h), also as wavenet::loadMatrix / wavenet::loadVector.
using fxforge::loadMatrix;
using fxforge::loadVector;

/** One layer: dilated conv (C -> W = 2C gated, else C; kernel K, dilation D), gate or tanh,
    the activation added to the skip sum and, unless it is the last layer, a 1x1 mix
    added back into the stack (h += mix z). With Knobs > 0 (a conditioned model: WaveNet's
    global conditioning) the pre-activation adds a 1x1 projection of the knob values at each
    sample, cond k, as PyTorch's ``layers.<i>.cond`` does.

    Past inputs live in a C x (history + 4 kMaxBlock) buffer written left to right;
    when it fills, the last `history` columns are moved to the front (as NAM does), so
    that copy is paid once per several thousand samples, and every tap of the conv is
    one contiguous span of columns. */
template <int C, int K, int D, bool Gated, int Knobs = 0>
class Layer
{
public:
    static constexpr int W = Gated ? 2 * C : C;
    static constexpr int kKnobs = Knobs;
    static constexpr int kHistory = (K - 1) * D;
    static constexpr int kColumns = kHistory + 4 * kMaxBlock;
    // Depth of each conv product: all taps at once, unless Eigen's packed copy of the weights
    // (up to depth x W floats) could pass its 128 KiB stack limit and go to the heap: then tap by tap.
    static constexpr int kDepth = K * C * W * (int) sizeof (float) <= 65536 ? K * C : C;

    Layer() : weights (Block<W>::Zero (W, K * C)), inputs (Block<C>::Zero (C, kColumns)) {}

    /** `prefix` is "layers.<i>." of the PyTorch state dict; conv.weight is (W, C, K). */
    void load (const nlohmann::json& json, const std::string& prefix, bool withMix)
    {
        const auto w = json.at (prefix + "conv.weight").get<std::vector<std::vector<std::vector<float>>>>();
        for (int k = 0; k < K; ++k)
            for (int o = 0; o < W; ++o)
                for (int i = 0; i < C; ++i)
                    weights (o, k * C + i) = w.at ((size_t) o).at ((size_t) i).at ((size_t) k);
        loadVector<W> (json, prefix + "conv.bias", bias);
        if constexpr (Knobs > 0)
            loadMatrix<W, Knobs> (json, prefix + "cond.weight", cond); // (W, Knobs): the 1x1 conv stored 2-D
        if constexpr (Gated)
        {
            // sigmoid(b) = (1 + tanh(b / 2)) / 2: halving the gate's rows (exact in float)
            // lets one tanh pass cover both halves, without exp.
            weights.template bottomRows<C>() *= 0.5f;
            bias.template bottomRows<C>() *= 0.5f;
            if constexpr (Knobs > 0)
                cond.template bottomRows<C>() *= 0.5f;
        }
        hasMix = withMix;
        if (withMix)
        {
            loadMatrix<C, C> (json, prefix + "mix.weight", mix);
            loadVector<C> (json, prefix + "mix.bias", mixBias);
        }
    }

    void reset() noexcept
    {
        inputs.setZero(); // PyTorch's streaming state starts as zeros
        pos = kHistory;
    }

    /** h: this layer's input (C x n), becomes the next layer's; skip += activation.
        a and z are scratch of at least n columns; n <= kMaxBlock. knobs: with Knobs > 0, the
        knob values at each of the n samples, sample-major (knobs[i * Knobs + j]). */
    void process (Block<C>& h, Block<C>& skip, Block<W>& a, Block<C>& z, int n, const float* knobs) noexcept
    {
        if (pos + n > kColumns)
        {
            // Columns are contiguous (column-major): move the last kHistory of them to the front.
            std::memmove (inputs.data(), inputs.data() + (Eigen::Index) (pos - kHistory) * C,
                          sizeof (float) * (size_t) kHistory * C);
            pos = kHistory;
        }
        inputs.middleCols (pos, n) = h.leftCols (n);

        // Tap k of PyTorch's kernel looks back (K - 1 - k) * D samples. The taps' inputs are
        // stacked (K C rows) so that the conv is one matrix product of depth K C.
        auto in = stacked.leftCols (n);
        for (int k = 0; k < K; ++k)
            in.template middleRows<C> (k * C) = inputs.middleCols (pos - (K - 1 - k) * D, n);
        pos += n;
        auto pre = a.leftCols (n);
        for (int j = 0; j < n; ++j) // column by column: fixed-size, unrolled (Eigen's colwise() was not)
            pre.col (j) = bias;
        for (int d = 0; d < K * C; d += kDepth)
            pre.noalias() += weights.middleCols (d, kDepth) * in.template middleRows<kDepth> (d);
        if constexpr (Knobs > 0) // sample-major knob values are column-major Knobs x n
            pre.noalias() += cond * Eigen::Map<const Eigen::Matrix<float, Knobs, Eigen::Dynamic>> (knobs, Knobs, n);

        auto act = z.leftCols (n);
        if constexpr (Gated)
        {
            pre = pre.array().tanh().matrix(); // the gate's rows hold tanh(b / 2)
            act = pre.template topRows<C>().cwiseProduct ((pre.template bottomRows<C>().array() * 0.5f + 0.5f).matrix());
        }
        else
            act = pre.array().tanh().matrix();
        skip.leftCols (n) += act;
        if (hasMix)
        {
            auto next = h.leftCols (n);
            next.noalias() += mix * act;
            for (int j = 0; j < n; ++j)
                next.col (j) += mixBias;
        }
    }

private:
    Block<W> weights; // W x K C: [tap 0 | tap 1 | ...]; on the heap, as it can pass Eigen's fixed-size limit
    Block<K * C> stacked = scratch<K * C>();
    Eigen::Matrix<float, W, 1> bias = Eigen::Matrix<float, W, 1>::Zero();
    Eigen::Matrix<float, W, (Knobs > 0 ? Knobs : 1)> cond = Eigen::Matrix<float, W, (Knobs > 0 ? Knobs : 1)>::Zero();
    Eigen::Matrix<float, C, C> mix = Eigen::Matrix<float, C, C>::Zero();
    Eigen::Matrix<float, C, 1> mixBias = Eigen::Matrix<float, C, 1>::Zero();
    bool hasMix = false;
    Block<C> inputs;
    int pos = kHistory;
};

/** A conditioned WaveNet's knob values for a chunk played at one setting (process without
    per-sample values): the model's own knob_defaults until set() is called, as PyTorch plays
    the audio alone; held sample-major over kMaxBlock samples, as Net::process reads them. */
template <int Knobs>
class HeldKnobs
{
public:
    void load (const nlohmann::json& json)
    {
        Eigen::Matrix<float, Knobs, 1> defaults;
        loadVector<Knobs> (json, "knob_defaults", defaults);
        set (defaults.data());
    }

    /** The knob values (each 0..1) the following samples play at. */
    void set (const float* k) noexcept
    {
        for (int j = 0; j < Knobs; ++j)
            held.row (j).setConstant (k[j]);
    }

    const float* values() const noexcept { return held.data(); }

private:
    Eigen::Matrix<float, Knobs, kMaxBlock> held = Eigen::Matrix<float, Knobs, kMaxBlock>::Zero();
};

/** The whole WaveNet: a 1x1 ``rechannel`` (1 -> C), the Layers in order (each a Layer<C, K, D,
    Gated>, its activation summed into the skip path, its 1x1 mix, except the last layer's,
    added back into the stack), then a 1x1 ``head`` of the skip sum (C -> 1) [+ x when
    InputResidual]. The exporter writes only the type: Net<C, InputResidual, Layer<...>...>;
    the weights are read by name from the PyTorch state dict ("rechannel.*", "layers.<i>.*",
    "head.*"; the 1x1 convs stored 2-D). */
template <int C, bool InputResidual, typename... Layers>
class Net
{
public:
    static constexpr int kLayers = (int) sizeof...(Layers);
    static_assert (kLayers > 0, "a WaveNet has at least one layer");
    static_assert (((Layers::W == C || Layers::W == 2 * C) && ...), "every layer works on the stack's C channels");
    /** Knob inputs (a conditioned model's; 0 for none): every layer takes the same ones. */
    static constexpr int kKnobs = std::tuple_element_t<0, std::tuple<Layers...>>::kKnobs;
    static_assert (((Layers::kKnobs == kKnobs) && ...), "every layer takes the same knobs");

    void load (const nlohmann::json& json)
    {
        loadMatrix<C, 1> (json, "rechannel.weight", rechannelW);
        loadVector<C> (json, "rechannel.bias", rechannelB);
        loadMatrix<1, C> (json, "head.weight", headW);
        headB = json.at ("head.bias").at (0).get<float>();
        loadLayers (json, std::index_sequence_for<Layers...> {});
    }

    void reset() noexcept
    {
        std::apply ([] (auto&... layer) { (layer.reset(), ...); }, layers);
    }

    /** n samples of in to out (in may equal out); n <= kMaxBlock. knobs: with kKnobs > 0, the
        knob values (each 0..1) at each sample, sample-major (knobs[i * kKnobs + j]). */
    void process (const float* in, float* out, int n, const float* knobs = nullptr) noexcept
    {
        auto x = xs.leftCols (n);
        x = Eigen::Map<const Eigen::RowVectorXf> (in, n); // copied first: in may equal out
        h.leftCols (n).noalias() = rechannelW * x;
        h.leftCols (n).colwise() += rechannelB;
        skip.leftCols (n).setZero();
        std::apply ([this, n, knobs] (auto&... layer)
                    { (layer.process (h, skip, preActivation<std::decay_t<decltype (layer)>::W>(), z, n, knobs), ...); },
                    layers); // in order: each layer's output is the next one's input
        auto y = ys.leftCols (n);
        y.noalias() = headW * skip.leftCols (n);
        y.array() += headB;
        if constexpr (InputResidual)
            y += x;
        Eigen::Map<Eigen::RowVectorXf> (out, n) = y;
    }

private:
    template <std::size_t... I>
    void loadLayers (const nlohmann::json& json, std::index_sequence<I...>)
    {
        (std::get<I> (layers).load (json, "layers." + std::to_string (I) + ".", (int) I + 1 < kLayers), ...);
    }

    static constexpr bool kAnyGated = ((Layers::W == 2 * C) || ...);
    static constexpr bool kAnyPlain = ((Layers::W == C) || ...);

    /** The pre-activation scratch for a layer W rows high (shared by the layers of that width). */
    template <int W>
    Block<W>& preActivation() noexcept
    {
        if constexpr (W == C)
            return a1;
        else
            return a2;
    }

    std::tuple<Layers...> layers;
    Eigen::Matrix<float, C, 1> rechannelW, rechannelB;
    Eigen::Matrix<float, 1, C> headW;
    float headB = 0.0f;
    // Scratch over a chunk: the stack h, the skip sum, the activation z, x and y; the
    // pre-activations of C rows (plain layers) and 2C rows (gated), each only where used.
    Block<C> h = scratch<C>(), skip = scratch<C>(), z = scratch<C>();
    Block<1> xs = scratch<1>(), ys = scratch<1>();
    Block<C> a1 = Block<C>::Zero (C, kAnyPlain ? kMaxBlock : 0);
    Block<2 * C> a2 = Block<2 * C>::Zero (2 * C, kAnyGated ? kMaxBlock : 0);
};
} // namespace fxforge::wavenet
