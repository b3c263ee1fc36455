#include "PluginProcessor.h"
#include "PluginEditor.h"
#include "FxforgeInfo.h"

#include <algorithm>
#include <cmath>

namespace
{
const juce::ParameterID kInputGain { "input_gain", 1 };
const juce::ParameterID kOutputGain { "output_gain", 1 };
const juce::ParameterID kMix { "mix", 1 };
const juce::ParameterID kBypass { "bypass", 1 };
} // namespace

juce::AudioProcessorValueTreeState::ParameterLayout FxforgeAudioProcessor::createLayout()
{
    // Defaults are neutral (0 dB, 100 % wet, not bypassed): the plugin's output
    // then equals the PyTorch model's, which `fxforge export juce --verify` checks.
    using namespace juce;
    AudioProcessorValueTreeState::ParameterLayout layout;
    // The model's knobs first, in the knob's own units, at the run's default; shown with enough
    // digits that a host setting a value by text (pedalboard does) lands on it.
    for (const auto& k : fxforge::knobs::kKnobs)
        layout.add (std::make_unique<AudioParameterFloat> (
            ParameterID { k.id, 1 }, k.name, NormalisableRange<float> (k.min, k.max), k.defaultValue,
            AudioParameterFloatAttributes().withStringFromValueFunction ([] (float v, int length)
            {
                auto text = String (v, 7);
                return length > 0 ? text.substring (0, length) : text;
            })));
    auto db = AudioParameterFloatAttributes().withLabel ("dB");
    layout.add (std::make_unique<AudioParameterFloat> (kInputGain, "Input", NormalisableRange<float> (-24.0f, 24.0f, 0.1f), 0.0f, db));
    layout.add (std::make_unique<AudioParameterFloat> (kOutputGain, "Output", NormalisableRange<float> (-24.0f, 24.0f, 0.1f), 0.0f, db));
    layout.add (std::make_unique<AudioParameterFloat> (kMix, "Mix", NormalisableRange<float> (0.0f, 100.0f, 0.1f), 100.0f,
                                                       AudioParameterFloatAttributes().withLabel ("%")));
    layout.add (std::make_unique<AudioParameterBool> (kBypass, "Bypass", false));
    return layout;
}

FxforgeAudioProcessor::FxforgeAudioProcessor()
    : AudioProcessor (BusesProperties()
                          .withInput ("Input", juce::AudioChannelSet::stereo(), true)
                          .withOutput ("Output", juce::AudioChannelSet::stereo(), true)),
      state (*this, nullptr, "FxforgeState", createLayout())
{
    inputGainDb = state.getRawParameterValue (kInputGain.getParamID());
    outputGainDb = state.getRawParameterValue (kOutputGain.getParamID());
    mixPercent = state.getRawParameterValue (kMix.getParamID());
    bypassValue = state.getRawParameterValue (kBypass.getParamID());
    bypassParam = state.getParameter (kBypass.getParamID());
    static_assert (fxforge::KnobCount<fxforge::Model>::value == kKnobs,
                   "FxforgeKnobs.h and FxforgeModel.h disagree on the knob count: re-run fxforge export juce");
    for (int j = 0; j < kKnobs; ++j)
        knobValues[(size_t) j] = state.getRawParameterValue (fxforge::knobs::kKnobs[(size_t) j].id);

    // Parse the embedded weights once; each channel gets its own model instance.
    const auto json = nlohmann::json::parse (BinaryData::model_weights_json,
                                             BinaryData::model_weights_json + BinaryData::model_weights_jsonSize);
    for (auto& m : models)
    {
        m = std::make_unique<fxforge::Model>();
        m->load (json);
    }
    resetModels();
}

float FxforgeAudioProcessor::knobTarget (int knob) const noexcept
{
    // (value - min) / (max - min): what the model was trained on (fxforge.knobs normalises so).
    const auto& k = fxforge::knobs::kKnobs[(size_t) knob];
    return (knobValues[(size_t) knob]->load() - k.min) / (k.max - k.min);
}

void FxforgeAudioProcessor::resetModels() noexcept
{
    for (auto& m : models)
        m->reset();
}

void FxforgeAudioProcessor::reset()
{
    resetModels();
    inputGain.setCurrentAndTargetValue (juce::Decibels::decibelsToGain (inputGainDb->load()));
    outputGain.setCurrentAndTargetValue (juce::Decibels::decibelsToGain (outputGainDb->load()));
    mix.setCurrentAndTargetValue (mixPercent->load() * 0.01f);
    bypassMix.setCurrentAndTargetValue (bypassValue->load() >= 0.5f ? 1.0f : 0.0f);
    for (int j = 0; j < kKnobs; ++j)
        knobSmoothers[(size_t) j].setCurrentAndTargetValue (knobTarget (j));
}

void FxforgeAudioProcessor::prepareToPlay (double sampleRate, int)
{
    for (auto* s : { &inputGain, &outputGain, &mix, &bypassMix })
        s->reset (sampleRate, kSmoothingSeconds);
    for (int j = 0; j < kKnobs; ++j)
        knobSmoothers[(size_t) j].reset (sampleRate, kSmoothingSeconds);
    reset();

    hostSampleRate.store (sampleRate);
    const bool mismatch = std::abs (sampleRate - (double) fxforge::info::kSampleRate) > 0.5;
    sampleRateMismatch.store (mismatch);
    // Log once per rate (hosts may call prepareToPlay many times); never from processBlock.
    if (mismatch && sampleRate != loggedSampleRate)
        juce::Logger::writeToLog (juce::String (fxforge::info::kProductName) + ": host sample rate "
                                  + juce::String (sampleRate, 0) + " Hz differs from the model's training rate "
                                  + juce::String (fxforge::info::kSampleRate) + " Hz; the model is rate-specific and will sound different.");
    loggedSampleRate = mismatch ? sampleRate : 0.0;
}

bool FxforgeAudioProcessor::isBusesLayoutSupported (const BusesLayout& layouts) const
{
    const auto& out = layouts.getMainOutputChannelSet();
    if (out != juce::AudioChannelSet::mono() && out != juce::AudioChannelSet::stereo())
        return false;
    return layouts.getMainInputChannelSet() == out;
}

void FxforgeAudioProcessor::processBlock (juce::AudioBuffer<float>& buffer, juce::MidiBuffer&)
{
    juce::ScopedNoDenormals noDenormals;

    const int numSamples = buffer.getNumSamples();
    const int numIn = getTotalNumInputChannels();
    const int numOut = getTotalNumOutputChannels();
    for (int ch = numIn; ch < numOut; ++ch)
        buffer.clear (ch, 0, numSamples);
    const int numChannels = juce::jmin (numIn, numOut, kMaxChannels, buffer.getNumChannels());

    inputGain.setTargetValue (juce::Decibels::decibelsToGain (inputGainDb->load()));
    outputGain.setTargetValue (juce::Decibels::decibelsToGain (outputGainDb->load()));
    mix.setTargetValue (mixPercent->load() * 0.01f);
    bypassMix.setTargetValue (bypassValue->load() >= 0.5f ? 1.0f : 0.0f);
    for (int j = 0; j < kKnobs; ++j)
        knobSmoothers[(size_t) j].setTargetValue (knobTarget (j));

    for (int start = 0; start < numSamples; start += kChunk)
    {
        const int n = juce::jmin (kChunk, numSamples - start);
        // The smoothed values are shared by all channels: compute them once per chunk.
        for (int i = 0; i < n; ++i)
        {
            inGainBuf[(size_t) i] = inputGain.getNextValue();
            outGainBuf[(size_t) i] = outputGain.getNextValue();
            mixBuf[(size_t) i] = mix.getNextValue();
            bypassBuf[(size_t) i] = bypassMix.getNextValue();
            for (int j = 0; j < kKnobs; ++j)
                knobBuf[(size_t) (i * kKnobs + j)] = knobSmoothers[(size_t) j].getNextValue();
        }

        for (int ch = 0; ch < numChannels; ++ch)
        {
            float* data = buffer.getWritePointer (ch, start);
            // A NaN/Inf from the host would poison the dry path and the model's state:
            // the chunk is muted and the model starts again from its reset state.
            if (! fxforge::allFinite (data, n))
            {
                models[(size_t) ch]->reset();
                std::fill (data, data + n, 0.0f);
                continue;
            }
            // The model runs on the whole chunk at once (WaveNet: matrix products over the block).
            for (int i = 0; i < n; ++i)
                wetBuf[(size_t) i] = data[i] * inGainBuf[(size_t) i];
            // Non-finite model output (or input gained past float range): muted, model reset.
            if (! fxforge::processGuarded (*models[(size_t) ch], wetBuf.data(), wetBuf.data(), n, knobBuf.data()))
            {
                std::fill (data, data + n, 0.0f);
                continue;
            }
            for (int i = 0; i < n; ++i)
            {
                const float dry = data[i];
                const float wet = wetBuf[(size_t) i];
                const float m = mixBuf[(size_t) i];
                const float fx = m * outGainBuf[(size_t) i] * wet + (1.0f - m) * dry;
                const float b = bypassBuf[(size_t) i];
                // The model keeps running while bypassed, so un-bypassing is click-free.
                data[i] = b * dry + (1.0f - b) * fx;
            }
        }
    }
}

void FxforgeAudioProcessor::getStateInformation (juce::MemoryBlock& destData)
{
    auto tree = state.copyState();
    tree.setProperty ("fxforge_model", fxforge::info::kProductName, nullptr);
    if (auto xml = tree.createXml())
        copyXmlToBinary (*xml, destData);
}

void FxforgeAudioProcessor::setStateInformation (const void* data, int sizeInBytes)
{
    if (auto xml = getXmlFromBinary (data, sizeInBytes))
        if (xml->hasTagName (state.state.getType()))
            state.replaceState (juce::ValueTree::fromXml (*xml));
}

juce::AudioProcessorEditor* FxforgeAudioProcessor::createEditor()
{
    return new FxforgeAudioProcessorEditor (*this);
}

juce::AudioProcessor* JUCE_CALLTYPE createPluginFilter()
{
    return new FxforgeAudioProcessor();
}
