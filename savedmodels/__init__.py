"""Trained keras-lnca presets (`<name>.keras` + `<name>.json`), shipped as package data.

Installed as the `keras_lnca.savedmodels` package; see `keras_lnca.models.presets`.
"""
