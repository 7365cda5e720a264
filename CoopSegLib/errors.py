"""Errors a user can act on: the command line prints their message as one line, without a traceback."""


class CoopSegError(Exception):
    """A problem with the user's input, configuration or files, stated so they can fix it."""


class ConfigError(CoopSegError, ValueError):
    """A configuration value is invalid; the message names the key."""
