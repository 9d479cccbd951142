"""Configuration: the typed schemas (dataclasses and Enums) and loading them from Hydra."""
