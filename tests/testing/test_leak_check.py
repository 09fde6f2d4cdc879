"""The suite's leak check (tests/conftest.py), run on small test files in a
separate pytest process so that what they leak dies with it."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent.parent / "conftest.py").read_text()


@pytest.fixture
def leaky(pytester: pytest.Pytester) -> pytest.Pytester:
    # The suite's conftest with a short grace period, so that the leaks
    # below are reported quickly.
    assert "\nGRACE_PERIOD = 2.0\n" in CONFTEST
    pytester.makeconftest(CONFTEST.replace("\nGRACE_PERIOD = 2.0\n", "\nGRACE_PERIOD = 0.3\n"))
    pytester.makeini("[pytest]\nnursery_mode = auto\n")
    return pytester


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:hypothesispytest", *args)


def test_clean_tests_pass(leaky):
    leaky.makepyfile(
        """
        import gc
        import os
        import socket
        import subprocess
        import sys
        import threading
        import time

        import nursery

        def test_nothing():
            pass

        async def test_async(autojump_clock):
            await nursery.sleep(10)

        def test_short_lived_thread_within_the_grace_period():
            threading.Thread(target=time.sleep, args=(0.05,)).start()

        def test_closed_pipe_and_reaped_child():
            r, w = os.pipe()
            os.close(r)
            os.close(w)
            subprocess.run([sys.executable, "-c", "pass"], check=True)

        def test_socket_freed_only_by_the_cycle_collector():
            class Holder:
                pass
            holder = Holder()
            holder.me = holder
            holder.sock = socket.socket()
            del holder

        def test_capfd(capfd):
            os.write(1, b"out")
            assert capfd.readouterr().out == "out"

        def test_tmp_path(tmp_path):
            (tmp_path / "f").write_text("x")
        """
    )
    result = _run(leaky)
    result.assert_outcomes(passed=7)


def test_leaked_thread_is_reported(leaky):
    leaky.makepyfile(
        """
        import threading

        STOP = threading.Event()

        def lingering_worker():
            STOP.wait(30)

        def test_leaks_a_thread():
            threading.Thread(target=lingering_worker, name="the-leak").start()

        def test_next_test_is_not_blamed():
            STOP.set()
        """
    )
    result = _run(leaky, "-v")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks_a_thread*",
            "*the test left resources behind (mark it @pytest.mark.allow_leaks(...) if that is intended):",
            "*thread 'the-leak' (ident *, daemon=False, at *threading.py:* in wait)",
        ]
    )
    result.stdout.fnmatch_lines(["*test_next_test_is_not_blamed PASSED*"])


def test_leaked_fd_is_reported(leaky):
    leaky.makepyfile(
        """
        import os

        KEEP = []

        def test_leaks_a_pipe():
            KEEP.extend(os.pipe())
        """
    )
    result = _run(leaky)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*file descriptor * -> pipe:[[]*[]]", "*file descriptor * -> pipe:[[]*[]]"])


def test_reused_fd_number_is_reported(leaky):
    # A descriptor that existed before the test (a module fixture's file)
    # now points to something else: the test replaced it, and what it points
    # to now is leaked.
    leaky.makepyfile(
        """
        import os
        import pytest

        @pytest.fixture(scope="module")
        def module_fd(tmp_path_factory):
            path = tmp_path_factory.mktemp("d") / "file"
            path.write_text("x")
            return os.open(path, os.O_RDONLY)

        def test_replaces_it(module_fd):
            r, w = os.pipe()
            os.dup2(r, module_fd)
            os.close(r)
            os.close(w)
        """
    )
    result = _run(leaky)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["the test left resources behind*", "  file descriptor * -> pipe:[[]*[]]", "=*short test summary*"],
        consecutive=True,
    )


def test_leaked_child_process_is_reported(leaky):
    leaky.makepyfile(
        """
        import atexit
        import subprocess
        import sys

        KEEP = []

        def test_leaks_a_running_child():
            proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
            KEEP.append(proc)
            atexit.register(lambda: (proc.kill(), proc.wait()))

        def test_leaks_a_zombie():
            proc = subprocess.Popen([sys.executable, "-c", "pass"])
            KEEP.append(proc)
            atexit.register(proc.wait)
        """
    )
    result = _run(leaky)
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*child process * (state *): *python* -c import time; time.sleep(30)",
            "*child process * (zombie: exited but never waited for)",
        ]
    )


def test_allow_leaks_marker(leaky):
    leaky.makepyfile(
        """
        import os
        import threading
        import pytest

        STOP = threading.Event()
        KEEP = []

        @pytest.mark.allow_leaks("fds")
        def test_fd_allowed():
            KEEP.extend(os.pipe())

        @pytest.mark.allow_leaks("threads")
        def test_fd_not_allowed():
            KEEP.extend(os.pipe())

        @pytest.mark.allow_leaks()
        def test_all_allowed():
            KEEP.extend(os.pipe())
            threading.Thread(target=STOP.wait, args=(30,)).start()

        def test_stop():
            STOP.set()

        @pytest.mark.allow_leaks("sockets")
        def test_bad_kind():
            pass
        """
    )
    result = _run(leaky, "-v")
    result.stdout.fnmatch_lines(
        [
            "*test_fd_allowed PASSED*",
            "*test_fd_not_allowed ERROR*",
            "*test_all_allowed PASSED*",
            "*test_stop PASSED*",
            "*test_bad_kind ERROR*",
        ]
    )
    result.stdout.fnmatch_lines(["*allow_leaks() got unknown kinds [[]'sockets'[]]; the kinds are threads, fds, processes*"])


def test_active_run_after_the_test_is_reported(leaky):
    # A test cannot normally leave a run active (run() always resets it);
    # simulate the broken state to see the check fire.
    leaky.makepyfile(
        """
        from nursery._core._state import STATE

        def test_leaves_run_marked_active():
            STATE.runner = object()

        def test_cleanup():
            STATE.runner = None
        """
    )
    result = _run(leaky)
    result.stdout.fnmatch_lines(["*a nursery run is still active in the test's thread*"])
