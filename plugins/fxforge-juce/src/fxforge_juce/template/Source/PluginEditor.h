#pragma once

#include <JuceHeader.h>

#include "PluginProcessor.h"

#include <memory>
#include <vector>

/** Knobs for input gain, output gain and mix; a bypass switch; what the model is; and a row
    with the model's own knobs (FxforgeKnobs.h) for a run trained on knob settings. */
class FxforgeAudioProcessorEditor final : public juce::AudioProcessorEditor,
                                          private juce::Timer
{
public:
    explicit FxforgeAudioProcessorEditor (FxforgeAudioProcessor&);
    ~FxforgeAudioProcessorEditor() override = default;

    void paint (juce::Graphics&) override;
    void resized() override;

private:
    void timerCallback() override;
    void setUpKnob (juce::Slider&, juce::Label&, const juce::String& text);

    using SliderAttachment = juce::AudioProcessorValueTreeState::SliderAttachment;
    using ButtonAttachment = juce::AudioProcessorValueTreeState::ButtonAttachment;

    FxforgeAudioProcessor& processor;

    juce::Label title, info, warning;
    juce::Slider inputKnob, outputKnob, mixKnob;
    juce::Label inputLabel, outputLabel, mixLabel;
    juce::ToggleButton bypassButton { "Bypass" };

    std::unique_ptr<SliderAttachment> inputAttachment, outputAttachment, mixAttachment;
    std::unique_ptr<ButtonAttachment> bypassAttachment;

    // The model's knobs (none for a run without knobs).
    std::vector<std::unique_ptr<juce::Slider>> modelKnobs;
    std::vector<std::unique_ptr<juce::Label>> modelLabels;
    std::vector<std::unique_ptr<SliderAttachment>> modelAttachments;

    JUCE_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR (FxforgeAudioProcessorEditor)
};
