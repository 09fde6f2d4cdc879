"""``python -m nursery.compat script.py [args]`` (or ``-m module [args]``):
run an unmodified asyncio program on the nursery kernel.

compat's event loop policy is installed first (:func:`nursery.compat.install`),
so the program's ``asyncio.run()``, ``asyncio.Runner()`` and
``asyncio.new_event_loop()`` make loops that run on the kernel. The program
then runs as ``__main__`` with ``sys.argv`` and ``sys.path[0]`` as
``python script.py [args]`` (or ``python -m module [args]``) would set them.
"""

from __future__ import annotations

import os
import runpy
import sys

from . import install

USAGE = """\
usage: python -m nursery.compat script.py [args...]
       python -m nursery.compat -m module [args...]

Run an asyncio program on the nursery kernel: asyncio.run(), asyncio.Runner()
and asyncio.new_event_loop() in it make nursery.compat event loops.
"""


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return
    if not args or (args[0] == "-m" and len(args) < 2) or (args[0].startswith("-") and args[0] != "-m"):
        sys.stderr.write(USAGE)
        if args and args[0] != "-m":
            sys.stderr.write(f"error: unknown option {args[0]}\n")
        elif args:
            sys.stderr.write("error: -m needs a module name\n")
        raise SystemExit(2)

    install()
    if args[0] == "-m":
        # As `python -m module`: sys.path[0] stays the current directory,
        # and runpy sets sys.argv[0] to the module's file.
        sys.argv = args[1:]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        # As `python script.py`: the script's directory comes first on the path.
        script = args[0]
        sys.argv = args
        sys.path[0] = os.path.dirname(os.path.abspath(script))
        runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
