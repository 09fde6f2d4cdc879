"""python -m nursery.compat: unmodified asyncio programs on the kernel."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROGRAM = textwrap.dedent(
    """
    import asyncio
    import sys

    async def main():
        loop = asyncio.get_running_loop()
        t = asyncio.create_task(asyncio.sleep(0.01, "slept"))
        print(type(loop).__module__, type(loop).__name__)
        print(await t, sys.argv[1:], __name__)
        return 7

    if __name__ == "__main__":
        print("result", asyncio.run(main()))
        loop = asyncio.new_event_loop()
        print("new loop", type(loop).__module__)
        loop.close()
    """
)


def _python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("PYTHONASYNCIODEBUG", None)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "prog.py"
    path.write_text(PROGRAM)
    return path


def test_a_script_runs_on_the_kernel(program: Path, tmp_path: Path) -> None:
    # the same program, once with stock asyncio, once on the kernel
    stock = _python(str(program), "a", "--b", cwd=tmp_path)
    ours = _python("-m", "nursery.compat", str(program), "a", "--b", cwd=tmp_path)
    assert stock.returncode == ours.returncode == 0, ours.stderr
    assert ours.stdout.splitlines() == [
        "nursery.compat EventLoop",
        "slept ['a', '--b'] __main__",
        "result 7",
        "new loop nursery.compat",
    ]
    # everything but the loop's type is what stock asyncio prints
    assert stock.stdout.splitlines()[1:3] == ours.stdout.splitlines()[1:3]
    assert ours.stderr == ""


def test_the_scripts_directory_is_on_the_path(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "helper_mod.py").write_text("VALUE = 'from the helper'\n")
    (sub / "main.py").write_text(
        "import asyncio, sys, helper_mod\n"
        "async def main():\n"
        "    print(helper_mod.VALUE, sys.argv[0])\n"
        "asyncio.run(main())\n"
    )
    ours = _python("-m", "nursery.compat", "sub/main.py", cwd=tmp_path)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == "from the helper sub/main.py\n"


def test_module_form(program: Path, tmp_path: Path) -> None:
    ours = _python("-m", "nursery.compat", "-m", "prog", "x", cwd=tmp_path)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout.splitlines()[:2] == ["nursery.compat EventLoop", "slept ['x'] __main__"]


def test_errors_and_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "fails.py").write_text(
        "import asyncio\nasync def main():\n    raise ValueError('bad')\nasyncio.run(main())\n"
    )
    (tmp_path / "exits.py").write_text("import asyncio, sys\nasync def main():\n    sys.exit(3)\nasyncio.run(main())\n")
    fails = _python("-m", "nursery.compat", "fails.py", cwd=tmp_path)
    assert fails.returncode == 1
    assert fails.stderr.rstrip().endswith("ValueError: bad")
    assert _python("-m", "nursery.compat", "exits.py", cwd=tmp_path).returncode == 3

    missing = _python("-m", "nursery.compat", "no_such_file.py", cwd=tmp_path)
    assert missing.returncode == 1
    assert "no_such_file.py" in missing.stderr



def test_usage(capsys: pytest.CaptureFixture[str]) -> None:
    from nursery.compat.__main__ import main

    for argv, message in (([], ""), (["-m"], "-m needs a module name"), (["--bogus"], "unknown option --bogus")):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("usage: python -m nursery.compat script.py")
        assert err.rstrip().endswith(message)
    main(["--help"])
    assert capsys.readouterr().out.startswith("usage:")


def test_ctrl_c_reaches_the_program(tmp_path: Path) -> None:
    (tmp_path / "ctrl_c.py").write_text(
        textwrap.dedent(
            """
            import asyncio, os, signal

            async def main():
                asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGINT)
                try:
                    await asyncio.sleep(30)
                except asyncio.CancelledError:
                    print("cancelled by Ctrl-C", flush=True)
                    raise

            asyncio.run(main())
            """
        )
    )
    ours = _python("-m", "nursery.compat", "ctrl_c.py", cwd=tmp_path)
    assert ours.stdout == "cancelled by Ctrl-C\n"
    assert "KeyboardInterrupt" in ours.stderr
    assert ours.returncode != 0
