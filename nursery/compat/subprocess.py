"""``asyncio.subprocess`` on the kernel: what ``asyncio.subprocess.PIPE``
and friends are in a program that uses ``from nursery import compat as
asyncio``."""

from ._subprocess import (
    DEVNULL,
    PIPE,
    STDOUT,
    Process,
    SubprocessStreamProtocol,
    create_subprocess_exec,
    create_subprocess_shell,
)

# As asyncio.subprocess's __all__: the constants and classes are reached as
# attributes (asyncio.subprocess.PIPE), not star-imported.
__all__ = ["create_subprocess_exec", "create_subprocess_shell"]

# Named after this module in reprs and the reference (as asyncio's are).
for _cls in (Process, SubprocessStreamProtocol):
    _cls.__module__ = __name__
del _cls
