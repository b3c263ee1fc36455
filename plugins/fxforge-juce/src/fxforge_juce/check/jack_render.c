/* Plays raw float32 audio into a JACK client (the LV2 host jalv, running the built plugin) and
 * records what it sends back, aligned to the sample, so fxforge can compare an LV2 as a real
 * host runs it with the model.
 *
 *   jack_render HOST_CLIENT CHANNELS PREROLL in.f32 out.f32
 *
 * in.f32 holds CHANNELS interleaved channels. Two clients are opened, a player feeding
 * HOST_CLIENT's audio inputs and a recorder fed by its audio outputs, so that the graph has no
 * loop and JACK runs player, host, recorder in that order within each cycle. The player sends
 * PREROLL frames of silence after the connections are made (the plugin has run on silence since
 * the host activated it), then the signal, and notes for each cycle the signal position it
 * sent; the recorder, later in the same cycle, places what came back exactly (and fails on a
 * gap or an overlap).
 *
 * Exit status: 0 rendered; 1 bad arguments, no server, the host's ports missing, a timeout.
 */
#define _DEFAULT_SOURCE /* usleep */
#include <jack/jack.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_CH 8

static jack_client_t *player, *recorder;
static jack_port_t *outs[MAX_CH], *ins[MAX_CH];
static int channels;
static long frames, preroll;
static float *signal, *result;
static _Atomic long play_pos = -1;   /* signal position of that cycle's first frame (-1: not yet) */
static _Atomic long recorded = 0;    /* frames of the result filled, in order; -1: out of order */
static _Atomic int connected = 0;
static long silence_sent = 0, pos = -1;

/* Positions are counted by the player, not read off the frame time: where a loaded machine
 * makes the dummy backend skip a cycle, no client runs in it and the frame time jumps, but the
 * plugin still gets the signal without a gap. */
static int play(jack_nframes_t n, void *arg)
{
    (void) arg;
    float *buf[MAX_CH];
    for (int c = 0; c < channels; c++)
        buf[c] = jack_port_get_buffer(outs[c], n);
    if (pos < 0 && atomic_load(&connected))
    {
        if (silence_sent >= preroll)
            pos = 0;
        else
            silence_sent += n;
    }
    for (jack_nframes_t i = 0; i < n; i++)
    {
        const long k = pos < 0 ? -1 : pos + (long) i;
        for (int c = 0; c < channels; c++)
            buf[c][i] = (k >= 0 && k < frames) ? signal[k * channels + c] : 0.0f;
    }
    atomic_store(&play_pos, pos);
    if (pos >= 0)
        pos += n;
    return 0;
}

static int record(jack_nframes_t n, void *arg)
{
    (void) arg;
    long done = atomic_load(&recorded);
    if (done < 0)
        return 0;
    /* The player ran before the host, and the host before us, in this same cycle (jackd -S: the
     * next cycle waits for this one), so the position it last sent is this block's. */
    const long start = atomic_load(&play_pos);
    if (start < 0)
        return 0;
    const float *buf[MAX_CH];
    for (int c = 0; c < channels; c++)
        buf[c] = jack_port_get_buffer(ins[c], n);
    for (jack_nframes_t i = 0; i < n; i++)
    {
        const long k = start + (long) i;
        if (k >= frames)
            break;
        if (k != done)
        {
            fprintf(stderr, "frame %ld came back after frame %ld\n", k, done - 1);
            atomic_store(&recorded, -1);
            return 0;
        }
        for (int c = 0; c < channels; c++)
            result[k * channels + c] = buf[c][i];
        done = k + 1;
    }
    atomic_store(&recorded, done);
    return 0;
}

static int host_ports(const char *host, unsigned long flags, const char **names, int want)
{
    char pattern[256];
    snprintf(pattern, sizeof pattern, "^%s:", host);
    const char **found = jack_get_ports(player, pattern, JACK_DEFAULT_AUDIO_TYPE, flags);
    int n = 0;
    for (; found && found[n] && n < want; n++)
        names[n] = found[n]; /* JACK lists a client's ports in registration order */
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 6)
    {
        fprintf(stderr, "usage: jack_render HOST_CLIENT CHANNELS PREROLL in.f32 out.f32\n");
        return 1;
    }
    const char *host = argv[1];
    channels = atoi(argv[2]);
    preroll = atol(argv[3]);
    if (channels < 1 || channels > MAX_CH || preroll < 0)
    {
        fprintf(stderr, "CHANNELS must be 1..%d and PREROLL >= 0\n", MAX_CH);
        return 1;
    }
    FILE *f = fopen(argv[4], "rb");
    if (!f)
    {
        fprintf(stderr, "%s: cannot read\n", argv[4]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    frames = ftell(f) / (long) (sizeof(float) * channels);
    fseek(f, 0, SEEK_SET);
    signal = calloc((size_t) (frames * channels), sizeof(float));
    result = calloc((size_t) (frames * channels), sizeof(float));
    if (fread(signal, sizeof(float), (size_t) (frames * channels), f) != (size_t) (frames * channels))
    {
        fprintf(stderr, "%s: short read\n", argv[4]);
        return 1;
    }
    fclose(f);

    jack_status_t status;
    player = jack_client_open("fxforge-play", JackNoStartServer, &status);
    recorder = jack_client_open("fxforge-record", JackNoStartServer, &status);
    if (!player || !recorder)
    {
        fprintf(stderr, "no JACK server to connect to (status 0x%x)\n", (unsigned) status);
        return 1;
    }
    for (int c = 0; c < channels; c++)
    {
        char name[32];
        snprintf(name, sizeof name, "out_%d", c + 1);
        outs[c] = jack_port_register(player, name, JACK_DEFAULT_AUDIO_TYPE, JackPortIsOutput, 0);
        snprintf(name, sizeof name, "in_%d", c + 1);
        ins[c] = jack_port_register(recorder, name, JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput, 0);
    }
    jack_set_process_callback(player, play, NULL);
    jack_set_process_callback(recorder, record, NULL);
    if (jack_activate(player) || jack_activate(recorder))
    {
        fprintf(stderr, "cannot activate the JACK clients\n");
        return 1;
    }
    const char *host_in[MAX_CH], *host_out[MAX_CH];
    if (host_ports(host, JackPortIsInput, host_in, channels) != channels
        || host_ports(host, JackPortIsOutput, host_out, channels) != channels)
    {
        fprintf(stderr, "JACK client %s does not have %d audio inputs and outputs\n", host, channels);
        return 1;
    }
    for (int c = 0; c < channels; c++)
    {
        if (jack_connect(player, jack_port_name(outs[c]), host_in[c])
            || jack_connect(recorder, host_out[c], jack_port_name(ins[c])))
        {
            fprintf(stderr, "cannot connect to %s's ports\n", host);
            return 1;
        }
    }
    atomic_store(&connected, 1);

    const double seconds = (double) (frames + preroll) / jack_get_sample_rate(player);
    for (long waited = 0; waited < (long) (seconds * 1000) * 20 + 20000; waited += 10)
    {
        const long done = atomic_load(&recorded);
        if (done < 0)
            return 1;
        if (done >= frames)
            break;
        usleep(10000);
    }
    const unsigned rate = jack_get_sample_rate(player), period = jack_get_buffer_size(player);
    jack_client_close(player);
    jack_client_close(recorder);
    if (atomic_load(&recorded) < frames)
    {
        fprintf(stderr, "timed out: %ld of %ld frames came back from %s\n", atomic_load(&recorded), frames, host);
        return 1;
    }
    FILE *o = fopen(argv[5], "wb");
    if (!o || fwrite(result, sizeof(float), (size_t) (frames * channels), o) != (size_t) (frames * channels))
    {
        fprintf(stderr, "%s: cannot write\n", argv[5]);
        return 1;
    }
    fclose(o);
    printf("{\"frames\": %ld, \"channels\": %d, \"preroll\": %ld, \"sample_rate\": %u, \"period\": %u}\n", frames,
           channels, preroll, rate, period);
    return 0;
}
