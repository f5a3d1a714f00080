"""The project's error types. Every error a user can cause is a PqlrError with a message that says
what went wrong and what to do; the CLI prints it on one line, without a traceback."""


class PqlrError(Exception):
    """Base class: a clear, user-facing error."""


class BoardError(PqlrError):
    """Unknown board or malformed board file."""


class ToolchainMissing(PqlrError):
    """A compiler, emulator or tool is not installed."""


class ArtifactError(PqlrError):
    """model.bin is corrupt, truncated, or of an unknown version."""


class BudgetError(PqlrError):
    """The model does not fit the board's flash or RAM budget."""


class BuildError(PqlrError):
    """The firmware failed to compile or link."""


class TelemetryError(PqlrError):
    """The device said something that is not valid telemetry, or stopped talking."""


class ModelHashMismatch(TelemetryError):
    """The firmware runs another model than the one the host just built."""


class DeviceError(PqlrError):
    """The device reported an error record, reset, or vanished. `partial` holds the results so far."""

    def __init__(self, message: str, partial=None):
        super().__init__(message)
        self.partial = partial


class DeviceReset(DeviceError):
    """The board restarted (a BOOT or HELLO record arrived unasked)."""
