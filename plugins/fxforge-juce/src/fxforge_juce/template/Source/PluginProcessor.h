#pragma once

#include <JuceHeader.h>

#include <array>
#include <atomic>
#include <memory>

#include "FxforgeKnobs.h"
#include "FxforgeModel.h"

/** Runs the trained network (FxforgeModel.h, through its block API) on each channel.

    A run trained on knob settings (FxforgeKnobs.h) gets one parameter per knob, in the knob's
    own units, smoothed per sample (a linear ramp of kSmoothingSeconds); the model reads each
    smoothed value normalised to 0..1, sample by sample.

    Real-time safety: everything is allocated in the constructor; processBlock
    never allocates, locks, logs or touches files, and handles any block size
    by working in chunks of kChunk samples.
*/
class FxforgeAudioProcessor final : public juce::AudioProcessor
{
public:
    static constexpr int kMaxChannels = 2;
    static constexpr int kChunk = 256;

    FxforgeAudioProcessor();
    ~FxforgeAudioProcessor() override = default;

    void prepareToPlay (double sampleRate, int samplesPerBlock) override;
    void releaseResources() override {}
    void reset() override;
    bool isBusesLayoutSupported (const BusesLayout& layouts) const override;
    void processBlock (juce::AudioBuffer<float>&, juce::MidiBuffer&) override;
    using AudioProcessor::processBlock;

    juce::AudioProcessorEditor* createEditor() override;
    bool hasEditor() const override { return true; }

    const juce::String getName() const override { return JucePlugin_Name; }
    bool acceptsMidi() const override { return false; }
    bool producesMidi() const override { return false; }
    bool isMidiEffect() const override { return false; }
    double getTailLengthSeconds() const override { return 0.0; }

    int getNumPrograms() override { return 1; }
    int getCurrentProgram() override { return 0; }
    void setCurrentProgram (int) override {}
    const juce::String getProgramName (int) override { return {}; }
    void changeProgramName (int, const juce::String&) override {}

    void getStateInformation (juce::MemoryBlock& destData) override;
    void setStateInformation (const void* data, int sizeInBytes) override;

    juce::AudioProcessorParameter* getBypassParameter() const override { return bypassParam; }

    juce::AudioProcessorValueTreeState& getState() noexcept { return state; }

    /** Set in prepareToPlay when the host rate differs from the training rate. */
    bool hasSampleRateMismatch() const noexcept { return sampleRateMismatch.load(); }
    double getHostSampleRate() const noexcept { return hostSampleRate.load(); }

    static juce::AudioProcessorValueTreeState::ParameterLayout createLayout();

    static constexpr int kKnobs = fxforge::knobs::kCount;
    static constexpr double kSmoothingSeconds = 0.02; // every smoothed parameter's linear ramp

private:
    void resetModels() noexcept;

    juce::AudioProcessorValueTreeState state;
    std::atomic<float>* inputGainDb = nullptr;
    std::atomic<float>* outputGainDb = nullptr;
    std::atomic<float>* mixPercent = nullptr;
    std::atomic<float>* bypassValue = nullptr;
    juce::AudioProcessorParameter* bypassParam = nullptr;

    // One model per channel, each with its own state (recurrent state, conv and FIR histories).
    std::array<std::unique_ptr<fxforge::Model>, kMaxChannels> models;

    juce::SmoothedValue<float> inputGain, outputGain, mix, bypassMix;
    std::array<float, kChunk> inGainBuf {}, outGainBuf {}, mixBuf {}, bypassBuf {}, wetBuf {};

    // The model's knobs: each parameter's value, its smoother (of the normalised value, 0..1),
    // and the chunk's smoothed values, sample-major (knobBuf[i * kKnobs + j]), shared by the channels.
    static constexpr int kKnobSlots = kKnobs > 0 ? kKnobs : 1;
    std::array<std::atomic<float>*, kKnobSlots> knobValues {};
    std::array<juce::SmoothedValue<float, juce::ValueSmoothingTypes::Linear>, kKnobSlots> knobSmoothers;
    std::array<float, (size_t) kChunk * kKnobSlots> knobBuf {};
    float knobTarget (int knob) const noexcept;

    std::atomic<bool> sampleRateMismatch { false };
    std::atomic<double> hostSampleRate { 0.0 };
    double loggedSampleRate = 0.0; // message thread only (prepareToPlay)

    JUCE_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR (FxforgeAudioProcessor)
};
