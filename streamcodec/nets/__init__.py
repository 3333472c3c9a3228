"""Network definitions: encoders, generators, discriminators in torch (training, the image codec),
the speech networks again in numpy (runtime.py, what the speech codec runs), and the model files
(assets.py). No training logic."""
