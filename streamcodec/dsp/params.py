"""The fixed numbers of the speech signal path. They are part of the format: changing one breaks
every shipped model and every packet already sent."""

SAMPLE_RATE = 16_000
WIN_LENGTH = 512  # periodic Hann window; also the FFT size
HOP = 128  # redundancy 4, which PGHI needs
N_BINS = WIN_LENGTH // 2 + 1
N_MELS = 128
BLOCK_FRAMES = 128  # one codec frame: 128 STFT frames = 16384 samples = 1.024 s
BLOCK_SAMPLES = BLOCK_FRAMES * HOP

# Log-mel range. Magnitudes are scaled so that a full-scale sine has magnitude 1 (0 dB) in its bin;
# speech at a normal level peaks around -20 dB. Values outside [DB_MIN, DB_MAX] are clipped, then
# the range maps linearly onto [-1, 1].
DB_MIN = -100.0
DB_MAX = 0.0
