"""The codecs' default settings, in a module that imports nothing: the command line shows them
without loading torch (so `streamcodec --help` is instant), and the codecs take them from here."""

SPEECH_MODEL = "speech-2k"
SPEECH_ITERS = 18  # latent search iterations per frame (what encoder RTF <= 0.25 on 2 threads allows: docs/benchmarks.md, speech speed)
SPEECH_GRIFFIN_LIM = 16  # phase refinement iterations of the decoder
SPEECH_POSTFILTER = 0.2  # the decoder's spectral-contrast post-filter (dsp/postfilter.py; 0 is off)
SPEECH_KBPS = 2.0
MAX_KBPS = 2.0  # above 2.0 a whole frame would not fit the format's 2,048-bit packet

IMAGE_MODEL = "image-photo"
IMAGE_BPP = 0.3
IMAGE_ITERS = 24
IMAGE_RD_ITERS = 1  # image-rd's search: its first iterate is its best (benchmarks/results/image_rd_search.md)
IMAGE_RD_MODEL = "image-rd"  # the rate-distortion model, numpy only (image/rd_model.py)
