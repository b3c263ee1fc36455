#include "PluginEditor.h"
#include "FxforgeInfo.h"

FxforgeAudioProcessorEditor::FxforgeAudioProcessorEditor (FxforgeAudioProcessor& p)
    : AudioProcessorEditor (&p), processor (p)
{
    title.setText (fxforge::info::kProductName, juce::dontSendNotification);
    title.setFont (juce::Font (22.0f, juce::Font::bold));
    addAndMakeVisible (title);

    info.setText (juce::String (fxforge::info::kArchitecture) + "\n"
                      + "Trained at " + juce::String (fxforge::info::kSampleRate) + " Hz   |   test ESR "
                      + fxforge::info::kTestEsr,
                  juce::dontSendNotification);
    info.setJustificationType (juce::Justification::topLeft);
    info.setColour (juce::Label::textColourId, juce::Colours::lightgrey);
    addAndMakeVisible (info);

    warning.setColour (juce::Label::textColourId, juce::Colours::orange);
    warning.setJustificationType (juce::Justification::centredLeft);
    addChildComponent (warning);

    setUpKnob (inputKnob, inputLabel, "Input");
    setUpKnob (outputKnob, outputLabel, "Output");
    setUpKnob (mixKnob, mixLabel, "Mix");
    addAndMakeVisible (bypassButton);

    auto& s = processor.getState();
    inputAttachment = std::make_unique<SliderAttachment> (s, "input_gain", inputKnob);
    outputAttachment = std::make_unique<SliderAttachment> (s, "output_gain", outputKnob);
    mixAttachment = std::make_unique<SliderAttachment> (s, "mix", mixKnob);
    bypassAttachment = std::make_unique<ButtonAttachment> (s, "bypass", bypassButton);

    for (const auto& k : fxforge::knobs::kKnobs)
    {
        modelKnobs.push_back (std::make_unique<juce::Slider>());
        modelLabels.push_back (std::make_unique<juce::Label>());
        setUpKnob (*modelKnobs.back(), *modelLabels.back(), k.name);
        modelAttachments.push_back (std::make_unique<SliderAttachment> (s, k.id, *modelKnobs.back()));
    }

    setSize (juce::jmax (520, 130 * (int) modelKnobs.size() + 28), modelKnobs.empty() ? 300 : 450);
    timerCallback();
    startTimerHz (4);
}

void FxforgeAudioProcessorEditor::setUpKnob (juce::Slider& knob, juce::Label& label, const juce::String& text)
{
    knob.setSliderStyle (juce::Slider::RotaryHorizontalVerticalDrag);
    knob.setTextBoxStyle (juce::Slider::TextBoxBelow, false, 80, 20);
    addAndMakeVisible (knob);
    label.setText (text, juce::dontSendNotification);
    label.setJustificationType (juce::Justification::centred);
    label.attachToComponent (&knob, false);
    addAndMakeVisible (label);
}

void FxforgeAudioProcessorEditor::timerCallback()
{
    const bool mismatch = processor.hasSampleRateMismatch();
    if (mismatch)
        warning.setText ("Host runs at " + juce::String (processor.getHostSampleRate(), 0) + " Hz but the model was trained at "
                             + juce::String (fxforge::info::kSampleRate) + " Hz: it will not sound as trained.",
                         juce::dontSendNotification);
    warning.setVisible (mismatch);
}

void FxforgeAudioProcessorEditor::paint (juce::Graphics& g)
{
    g.fillAll (juce::Colour (0xff1e1f24));
}

void FxforgeAudioProcessorEditor::resized()
{
    auto area = getLocalBounds().reduced (14);
    title.setBounds (area.removeFromTop (30));
    info.setBounds (area.removeFromTop (40));
    warning.setBounds (area.removeFromBottom (24));
    auto bottom = area.removeFromBottom (30);
    bypassButton.setBounds (bottom.removeFromLeft (120));
    if (! modelKnobs.empty())
    {
        auto row = area.removeFromTop (150);
        row.removeFromTop (24); // room for the knob labels
        const int kw = row.getWidth() / (int) modelKnobs.size();
        for (auto& knob : modelKnobs)
            knob->setBounds (row.removeFromLeft (kw).reduced (8));
    }
    area.removeFromTop (24); // room for the knob labels
    const int w = area.getWidth() / 3;
    inputKnob.setBounds (area.removeFromLeft (w).reduced (8));
    outputKnob.setBounds (area.removeFromLeft (w).reduced (8));
    mixKnob.setBounds (area.reduced (8));
}
