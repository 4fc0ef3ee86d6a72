"""Errors a user can fix: caught once at the command-line edge and printed as one line."""


class ImgsweepError(Exception):
    """Bad input (config, data, storage): the message names the key or file and what to do."""


class ConfigError(ImgsweepError):
    """A config value is missing, of the wrong type or out of range."""


class DataError(ImgsweepError):
    """The image folders are missing, empty or laid out wrongly."""
