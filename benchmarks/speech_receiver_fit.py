"""Why a receiver decoder that wins on its development pairs loses PESQ-WB (issue 32): the same
log-mel measures, on the packets the codec really sends for the development segments.

    .venv/bin/python -m benchmarks.speech_receiver_fit --models speech-2k runs/model-a

Each clean segment is coded once by the first model's encoder; every model's decoder (its large
one where it ships one) makes log-mel of those packets, post-filter off, at the frames' own
levels; the L1 and the L1 weighted as the search weights its loss (exp(3 x)) are against the
log-mel of the clean input, over the coded frames. If a decoder is better here but worse on
PESQ-WB (speech_decoders.py), the measure is wrong; if it is worse here, its training pairs are
not what the codec sends. It also gives the share of those packets' level indices that the way
train/decoder.py and train/receiver.py make pairs (the corpus's log-mel of the same audio,
levelled per frame, searched) reproduces.
"""

import argparse
from pathlib import Path

import numpy as np

from benchmarks import write_result
from benchmarks.speech_quality import dev_segments
from streamcodec import threads
from streamcodec.bitstream.speech import read_speech_file
from streamcodec.core.search import LOUDNESS_WEIGHT
from streamcodec.defaults import SPEECH_ITERS
from streamcodec.dsp import logmel
from streamcodec.dsp.level import apply_gain, gain_for, measure_level
from streamcodec.dsp.params import BLOCK_FRAMES, BLOCK_SAMPLES, SAMPLE_RATE
from streamcodec.speech import SpeechDecoder, compress, load_model
from streamcodec.train.debian import cache_dir
from streamcodec.train.decoder import search_indices


def pairs_path_match(model, packets, x: np.ndarray) -> float:
    """The share of the whole frames' level indices that the training pairs' path reproduces."""
    whole = [p for p in packets if p.samples == BLOCK_SAMPLES]
    dec = SpeechDecoder(model)
    sent = np.stack([dec.latent(p) for p in whole])
    mel = logmel(x[: len(whole) * BLOCK_SAMPLES]).reshape(len(whole), BLOCK_FRAMES, -1)
    mel = apply_gain(mel, gain_for(measure_level(mel), model.level_target_db))
    found = search_indices(model, np.ascontiguousarray(mel.transpose(0, 2, 1), np.float32), SPEECH_ITERS, 2)
    return float((found == sent).mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["speech-2k"], help="models with one id: the first encodes")
    parser.add_argument("--corpus", type=Path, default=cache_dir() / "corpus")
    parser.add_argument("--per-speaker", type=int, default=5)
    parser.add_argument("--out", default="speech_receiver_fit")
    args = parser.parse_args()
    threads.configure(2)
    models = [load_model(m) for m in args.models]
    segments = dev_segments(args.corpus, args.per_speaker)
    coded = [read_speech_file(compress(x, SAMPLE_RATE, model=models[0], dtx=False)).packets for _, x in segments]
    rows = []
    for name, model in zip(args.models, models):
        l1, loud = [], []
        for packets, (_, x) in zip(coded, segments):
            target = logmel(np.concatenate([x, np.zeros(-len(x) % BLOCK_SAMPLES, np.float32)]))
            dec = SpeechDecoder(model, postfilter=0.0)
            for k, p in enumerate(packets):
                if p.samples < BLOCK_SAMPLES:
                    continue  # a short last frame: padding, not speech
                y = dec.frame_mel(p)
                t = target[k * BLOCK_FRAMES : (k + 1) * BLOCK_FRAMES]
                err = np.abs(y - t)
                w = np.exp(LOUDNESS_WEIGHT * t)
                l1.append(err.mean())
                loud.append((w * err).sum() / w.sum())
        rows.append((Path(name).name, dec.last_decoder, float(np.mean(l1)), float(np.mean(loud)), len(l1)))
        print(rows[-1], flush=True)
    same = [pairs_path_match(models[0], packets, x) for packets, (_, x) in zip(coded, segments)]
    lines = [f"{len(segments)} clean development segments of 10 s, coded once by {args.models[0]}'s encoder; "
             "log-mel of each decoder (post-filter off) against the clean input's, over the whole frames.", "",
             "| model | decoder | L1 | L1 weighted exp(3 x) | frames |", "|---|---|---|---|---|"]
    lines += [f"| {m} | {d} | {a:.4f} | {b:.4f} | {n} |" for m, d, a, b, n in rows]
    lines += ["", f"Level indices of these packets that the training pairs' way of coding the same audio gives too: "
              f"{np.mean(same):.1%} (segments {min(same):.1%} to {max(same):.1%})."]
    write_result(f"{args.out}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
