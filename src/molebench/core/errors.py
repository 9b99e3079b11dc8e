"""Errors the suite raises for bad input, each with a message that names the problem and the fix."""


class ConfigError(ValueError):
    """A config value the suite cannot run with; the message names the key at fault."""
