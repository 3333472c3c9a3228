"""Shipped model assets (safetensors weights, configs, model cards). Installed as the package
streamcodec.models so that importlib.resources finds them in a wheel as in a checkout."""
