"""Configuration read once per process: the Settings (from the environment), the model
card (the sidecar JSON every model travels with), and the msgspec records both are built
from. ``settings_doc`` generates docs/settings.md from Settings."""
