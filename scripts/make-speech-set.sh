#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Makes the set of speech clips the cut policy is held to: voices that differ
# (two espeak-ng voices at news and commentary speed, Spanish, and flite, a
# second synthesizer), each over three backgrounds (pink noise, a babble of
# four other voices, a synthesized chord progression) at 0, 6 and 12 dB under
# the voice, and each voice's clean speech as the ground truth.
#   make-speech-set.sh DIR [SECONDS]
# DIR/VOICE.clean.wav         the speech alone, 48 kHz mono
# DIR/VOICE-BACKGROUND-DB.m4a AAC-LC 48 kHz stereo: speech + background
# DIR/done                    written last: the set is complete
set -euo pipefail
dir=$1
seconds=${2:-30}
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

news="Good evening, and welcome to the late bulletin. The government has announced a new plan \
for the railways, with twelve stations to be rebuilt over the next five years. Opposition leaders \
say the money is not enough. Abroad, talks on the fishing agreement resumed this morning in Brussels, \
after a week of delays. At home, hospital waiting lists fell for the third month in a row. \
And the weather: a cold night in the north, with frost on the hills, and a bright start tomorrow."
sport="And he picks it up on the halfway line, looks up, plays it wide to the winger, \
who cuts inside, one defender beaten, two, he shoots, and it is saved! What a stop by the keeper! \
Corner kick now, the big centre half comes forward, the ball is swung in, headed clear, \
back in again, and it falls to the captain, he volleys, goal! Unbelievable scenes here tonight, \
the crowd is on its feet, three minutes to play and the home side lead for the first time."
spanish="Buenas noches. Estas son las noticias de las nueve. El ayuntamiento ha aprobado hoy \
el nuevo presupuesto, con más dinero para los parques y las bibliotecas. En el norte, la lluvia \
ha cortado dos carreteras, y los servicios de emergencia piden precaución. En deportes, \
el equipo local ganó la final por dos goles a uno. Y el tiempo: mañana habrá sol por la mañana, \
con nubes por la tarde."
weather="Here is the forecast for the coming days. Tonight will be mostly dry, with a few showers \
near the coast. Temperatures will fall to around four degrees in towns, lower in the countryside. \
Tomorrow, a band of rain will move in from the west during the morning, clearing by the evening. \
The weekend looks settled, with sunshine on Saturday, and light winds. Next week, turning colder again."

# Each voice as a 48 kHz mono WAV, looped to length.
to_clean() { # IN OUT
  ffmpeg -v error -y -stream_loop -1 -i "$1" -t "$seconds" -ar 48000 -ac 1 -c:a pcm_s16le "$2"
}
espeak-ng -v en-us -s 160 -p 45 -w "$work/news.wav" "$news"
espeak-ng -v en-gb+m3 -s 190 -p 60 -w "$work/sport.wav" "$sport"
espeak-ng -v es -s 165 -w "$work/spanish.wav" "$spanish"
flite -voice slt -t "$weather" -o "$work/flite.wav"
voices=(news sport spanish flite)
for voice in "${voices[@]}"; do
  to_clean "$work/$voice.wav" "$dir/$voice.clean.wav"
done

# The backgrounds, 48 kHz mono, each as long as the clips.
ffmpeg -v error -y -f lavfi -i "anoisesrc=color=pink:amplitude=0.5:seed=11:sample_rate=48000:duration=$seconds" \
  -ac 1 "$work/pink.wav"
# Crowd babble: four other voices reading other texts at once, never pausing together.
espeak-ng -v en-us+f2 -s 170 -w "$work/b1.wav" "$weather $news"
espeak-ng -v en-gb+m7 -s 150 -w "$work/b2.wav" "$sport $weather"
espeak-ng -v es+f4 -s 175 -w "$work/b3.wav" "$spanish $spanish"
espeak-ng -v de -s 160 -w "$work/b4.wav" \
  "Guten Abend, meine Damen und Herren. Hier sind die Nachrichten. Der Verkehr in der Stadt war heute \
   ruhig, aber am Wochenende wird viel los sein, weil das große Fest auf dem Marktplatz beginnt."
for i in 1 2 3 4; do
  ffmpeg -v error -y -stream_loop -1 -i "$work/b$i.wav" -ss "0.$((i * 2))" -t "$seconds" -ar 48000 -ac 1 "$work/bb$i.wav"
done
ffmpeg -v error -y -i "$work/bb1.wav" -i "$work/bb2.wav" -i "$work/bb3.wav" -i "$work/bb4.wav" \
  -filter_complex "amix=inputs=4:normalize=0" -ac 1 "$work/babble.wav"
# Music: C, A minor, F, G, two seconds each, a chord of three sines over a bass.
chord() { # ROOT THIRD FIFTH at time t, by the chord index
  echo "(eq(mod(floor(t/2),4),0)*$1 + eq(mod(floor(t/2),4),1)*$2 + eq(mod(floor(t/2),4),2)*$3 + eq(mod(floor(t/2),4),3)*$4)"
}
root=$(chord 261.63 220.00 174.61 196.00)
third=$(chord 329.63 261.63 220.00 246.94)
fifth=$(chord 392.00 329.63 261.63 293.66)
ffmpeg -v error -y -f lavfi \
  -i "aevalsrc='0.2*sin(2*PI*$root*t)+0.15*sin(2*PI*$third*t)+0.15*sin(2*PI*$fifth*t)+0.2*sin(PI*$root*t/2)':s=48000:d=$seconds" \
  -ac 1 "$work/music.wav"

mean_db() { # the mean level of a WAV's non-silent part
  ffmpeg -hide_banner -nostats -i "$1" \
    -af "silenceremove=stop_periods=-1:stop_duration=0.02:stop_threshold=-60dB,volumedetect" \
    -f null - 2>&1 | sed -n 's/.*mean_volume: \(-\?[0-9.]*\) dB/\1/p'
}
for voice in "${voices[@]}"; do
  voice_db=$(mean_db "$dir/$voice.clean.wav")
  for background in pink babble music; do
    background_db=$(mean_db "$work/$background.wav")
    for under in 0 6 12; do
      gain=$(awk -v v="$voice_db" -v b="$background_db" -v u="$under" 'BEGIN { print v - u - b }')
      ffmpeg -v error -y -i "$dir/$voice.clean.wav" -i "$work/$background.wav" \
        -filter_complex "[1:a]volume=${gain}dB[bed];[0:a][bed]amix=inputs=2:normalize=0,volume=-8dB,aformat=channel_layouts=stereo[a]" \
        -map "[a]" -t "$seconds" -c:a aac -b:a 128k -ar 48000 "$work/clip.m4a"
      mv "$work/clip.m4a" "$dir/$voice-$background-$under.m4a"
    done
  done
done
touch "$dir/done"
