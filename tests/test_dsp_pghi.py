import numpy as np

from streamcodec.dsp import RtPghi, istft, pghi, rtpghi, stft


def _chirp(seconds=1.0):
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.5 * np.sin(2 * np.pi * (300 * t + 1500 * t**2))).astype(np.float32)


def _consistency(x, frames):
    mag = np.abs(stft(x))
    return np.linalg.norm(np.abs(stft(istft(frames, len(x)))) - mag) / np.linalg.norm(mag)


def test_pghi_rebuilds_a_chirp():
    x = _chirp()
    mag = np.abs(stft(x))
    assert _consistency(x, pghi(mag)) < 0.05
    assert _consistency(x, rtpghi(mag)) < 0.05
    assert _consistency(x, mag.astype(np.complex64)) > 0.3  # zero phase is far from it


def test_rtpghi_frame_by_frame_equals_one_call():
    mag = np.abs(stft(_chirp(0.5)))
    rt = RtPghi()
    frames = [rt.push(m[None]) for m in mag] + [rt.flush()]
    np.testing.assert_array_equal(np.concatenate(frames), rtpghi(mag))


def test_silence_and_a_lone_frame():
    assert np.all(pghi(np.zeros((5, 257))) == 0)
    assert rtpghi(np.ones((1, 257))).shape == (1, 257)
    assert rtpghi(np.zeros((0, 257))).shape == (0, 257)
