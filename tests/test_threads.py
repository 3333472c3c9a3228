"""The thread policy (streamcodec/threads.py) and a command line that starts without torch."""

import json
import os
import subprocess
import sys

import pytest

from streamcodec import threads
from streamcodec.errors import StreamcodecError


def _python(code: str, env: dict | None = None) -> str:
    """Run `code` in a fresh interpreter without the thread settings this process made (a child
    inherits them), but with `env`."""
    full = {k: v for k, v in os.environ.items()
            if k not in ("STREAMCODEC_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                         "OMP_WAIT_POLICY")}
    full.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=full).stdout


def test_threads_follow_the_cpus_the_process_may_use():
    # One CPU in the affinity mask: one thread, whatever the machine has.
    out = _python("import os; os.sched_setaffinity(0, {0}); "
                  "from streamcodec import threads; import torch; "
                  "print(threads.available_cpus(), torch.get_num_threads(), os.environ['OMP_WAIT_POLICY'])")
    assert out.split() == ["1", "1", "PASSIVE"]


def test_job_caps_and_overrides(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    assert threads.choose("live") <= 2 and threads.choose("decode") == threads.available_cpus()
    assert threads.choose("live") == min(2, threads.available_cpus())
    assert threads.choose("file", requested=3) == 3
    monkeypatch.setenv(threads.ENV, "5")
    assert threads.choose("decode") == 5
    monkeypatch.setenv(threads.ENV, "many")
    with pytest.raises(StreamcodecError, match="STREAMCODEC_THREADS"):
        threads.choose()
    with pytest.raises(StreamcodecError, match="at least 1"):
        threads.choose(requested=0)


def test_the_environment_and_the_command_line_set_the_pools(tmp_path, speech):
    import soundfile as sf

    assert _python("import streamcodec.speech, torch; print(torch.get_num_threads())",
                   {"STREAMCODEC_THREADS": "1"}).strip() == "1"
    assert _python("import streamcodec.speech, torch; print(torch.get_num_threads())",
                   {"OMP_NUM_THREADS": "1"}).strip() == "1"  # a user's own setting is kept
    sf.write(tmp_path / "in.wav", speech[:8000], 16000)
    code = ("import sys, torch; from streamcodec.cli import main; "
            f"main(['vocode', r'{tmp_path / 'in.wav'}', r'{tmp_path / 'out.wav'}', '--threads', '1', "
            "'--griffin-lim', '0']); print(torch.get_num_threads())")
    assert _python(code).strip().splitlines()[-1] == "1"


def test_help_and_info_do_not_load_torch(tmp_path, speech, tiny_model):
    from streamcodec.speech import compress

    (tmp_path / "x.scf").write_bytes(compress(speech[:20000], 16000, iters=0, model=tiny_model))
    out = _python("import sys; from streamcodec.cli import build_parser, main; build_parser(); "
                  f"main(['info', r'{tmp_path / 'x.scf'}']); print('torch' in sys.modules, 'numpy' in sys.modules)")
    assert "duration: 1.25 s" in out and out.strip().splitlines()[-1] == "False False"


def test_speech_never_loads_torch_and_encoding_not_numba(tmp_path, speech, tiny_model):
    """The speech codec runs its networks in numpy (nets/runtime.py): neither an encode nor a
    decode loads torch. Only decoding needs numba (PGHI, mel inversion): an encode never loads it."""
    import soundfile as sf

    sf.write(tmp_path / "in.wav", speech[:20000], 16000)
    loaded = "print('numba' in sys.modules, 'torch' in sys.modules)"
    out = _python("import sys; from streamcodec.cli import main; "
                  f"main(['encode', r'{tmp_path / 'in.wav'}', r'{tmp_path / 'x.scf'}', '--iters', '1', "
                  f"'--model', r'{tiny_model.name}']); {loaded}")
    assert out.strip().splitlines()[-1] == "False False"
    out = _python("import sys; from streamcodec.cli import main; "
                  f"main(['decode', r'{tmp_path / 'x.scf'}', r'{tmp_path / 'y.wav'}', '--model', r'{tiny_model.name}']); "
                  f"{loaded}")
    assert out.strip().splitlines()[-1] == "True False"


def test_blas_runs_one_thread_and_the_speech_codec_its_own():
    """configure(n): torch and the speech codec's workers get n threads, OpenBLAS one (two for a
    live sender's single frames, when asked)."""
    code = ("import numpy, json; from threadpoolctl import threadpool_info; from streamcodec import threads; "
            "from streamcodec.speech import SpeechEncoder; "
            "blas = lambda: [p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas']; "
            "threads.configure(2); a = (blas(), threads.count(), SpeechEncoder(iters=0).workers); "
            "threads.configure(2, blas=2); print(json.dumps([a, blas()]))")
    (before, workers, encoder_workers), after = json.loads(_python(code))
    assert set(before) == {1} and workers == encoder_workers == 2 and set(after) == {2}
