"""The one exception family users see.

Every error caused by user input (a file, a folder, an option) is a
``ShipcamError`` whose message names the offending value; the CLI prints it on
one line instead of a traceback.
"""


class ShipcamError(Exception):
    """A problem with user input that the user can fix."""


class DatasetError(ShipcamError):
    """A data folder or file that cannot be used for training or evaluation."""


class ModelFileError(ShipcamError):
    """A model file that is missing, truncated, or lacks what shipcam needs."""


class ImageError(ShipcamError):
    """An image that cannot be decoded or has an unsupported format."""
