"""Modelling inputs, pure: features, labels, the time split and the dataset of a market."""
