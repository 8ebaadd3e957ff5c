"""Errors of the models package: one class per thing a user (or the policy) must act on."""

from __future__ import annotations


class ModelError(Exception):
    """A model set cannot be used; the policy fails closed on any subclass."""


class ModelMissingError(ModelError):
    """A model file or its card is not there."""


class ModelStaleError(ModelError):
    """The model is past its `valid_until`."""


class ModelMismatchError(ModelError):
    """The card does not match the feature set (or the other models of its set)."""


class ModelCorruptError(ModelError):
    """A model file or card cannot be read, or its bytes do not match the card's hash."""


class TrainConfigError(ValueError):
    """A training parameter is unknown or out of range."""


class TrainDataError(ValueError):
    """The data cannot train the models (too short, no symbols left, nothing before --train-end)."""


class UniverseConfigError(ValueError):
    """The universe setting (count or "auto" bounds) is invalid."""


class CompareError(ValueError):
    """The comparison cannot be out of sample (symbols trained on, no bars after training)."""


class ClusterError(TrainConfigError):
    """`--dask`: Dask is not installed, or the scheduler cannot be reached."""
