"""Point the I/O modules of CPython's asyncio suite at compat's loop.

Used by ``run_asyncio_suite.py`` (in the child interpreter that runs one
module). Three kinds of test class are met:

* **through the policy**: the class calls ``asyncio.new_event_loop()``,
  ``asyncio.run()`` or uses ``IsolatedAsyncioTestCase`` (test_streams,
  test_ssl, test_server's TestServer2, test_unix_events' TestFunctional,
  ...). The runner's policy already makes these compat loops: nothing to do.
* **generic over the loop**: a mixin takes its loop from a factory method
  (``create_event_loop`` or ``new_loop``) and the module subclasses it once
  per stock selector (``SelectEventLoopTests``, ``EPollEventLoopTests``, ...).
  As in uvloop's own test suite, a ``Compat...`` class is made from the same
  bases with a factory returning ``nursery.compat.new_event_loop()``, and the
  stock-selector twins are dropped from the run: they test stock asyncio's
  loop with every selector, which says nothing about compat, and would
  double the run time.
* **bound to stock internals**: the class drives stock transports or child
  watchers over the suite's fake ``TestLoop`` (fake file descriptors, mocked
  ``os.read``, ``TestLoop.assert_reader``), or tests stock
  ``SelectorEventLoop`` privates with a mocked ``signal`` module. These keep
  the stock ``TestLoop`` / ``SelectorEventLoop`` and are not counted.
"""

from __future__ import annotations

from typing import Any, Callable

#: Classes made to run on stock asyncio's loop whatever the runner does:
#: module -> {class: why}. Reported as "not compat".
STOCK_ONLY: dict[str, dict[str, str]] = {
    "test_unix_events": {
        "SelectorEventLoopSignalTests": "stock SelectorEventLoop's signal privates "
        "(_check_signal, _handle_signal, _signal_handlers) with asyncio.unix_events.signal mocked",
        "UnixReadPipeTransportTests": "stock _UnixReadPipeTransport over a fake TestLoop and fake fd 5",
        "UnixWritePipeTransportTests": "stock _UnixWritePipeTransport over a fake TestLoop and fake fd 5",
        "SafeChildWatcherTests": "stock child watchers over a fake TestLoop with os.waitpid mocked",
        "FastChildWatcherTests": "stock child watchers over a fake TestLoop with os.waitpid mocked",
    },
}


def _make_class(module: Any, name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> None:
    attrs = dict(attrs, __module__=module.__name__, __qualname__=name)
    setattr(module, name, type(name, bases, attrs))




#: The stock-selector twins of a generic class.
_SELECTOR_TWINS = (
    "SelectEventLoopTests",
    "EPollEventLoopTests",
    "PollEventLoopTests",
    "KqueueEventLoopTests",
    "ProactorEventLoopTests",
)


def patch_io_module(name: str, module: Any, *, new_loop: Callable[[], Any], stock_new_test_loop: Any) -> set[str]:
    """Re-point the generic classes of ``module`` at ``new_loop`` (compat's
    loop factory) and keep the stock-only ones on the stock ``TestLoop``.

    Returns the names of the classes not to run (the stock-selector twins).
    They stay in the module: tests refer to them (``isinstance(self,
    SubprocessFastWatcherTests)``)."""
    from test.test_asyncio import utils as test_utils

    dropped: set[str] = set()

    def _drop(*names: str) -> None:
        dropped.update(names)

    def factory(self: Any) -> Any:
        return new_loop()

    if name == "test_events":
        # Built from the mixins, not from EPollEventLoopTests: that one's
        # UnixEventLoopTestsMixin installs a stock SafeChildWatcher on the
        # loop (SIGCHLD handler), which compat's subprocesses don't use.
        _make_class(
            module,
            "CompatEventLoopTests",
            (module.EventLoopTestsMixin, module.SubprocessTestsMixin, test_utils.TestCase),
            {"create_event_loop": factory},
        )
        _drop(*_SELECTOR_TWINS)
    elif name == "test_sock_lowlevel":
        _make_class(
            module,
            "CompatEventLoopTests",
            (module.BaseSockTestsMixin, test_utils.TestCase),
            {"create_event_loop": factory},
        )
        _drop(*_SELECTOR_TWINS)
    elif name == "test_sendfile":
        _make_class(
            module,
            "CompatEventLoopTests",
            (module.SendfileTestsBase, test_utils.TestCase),
            {"create_event_loop": factory},
        )
        _drop(*_SELECTOR_TWINS)
    elif name in ("test_server", "test_buffered_proto", "test_sslproto"):
        # The selector class carries tests of its own (test_server's unix
        # server test): subclass it, swapping the loop factory.
        stock = {
            "test_server": "SelectorStartServerTests",
            "test_buffered_proto": "BufferedProtocolSelectorTests",
            "test_sslproto": "SelectorStartTLSTests",
        }[name]
        _make_class(module, "Compat" + stock.removeprefix("Selector"), (getattr(module, stock),), {"new_loop": factory})
        _drop(stock)
    elif name == "test_subprocess":
        # SubprocessMixin is generic (its tests use self.loop and the
        # policy). Stock runs it once per child watcher; compat's loop does
        # not use child watchers, so those variants would run the same
        # tests several times on it: one compat class instead.
        def setUp(self: Any) -> None:
            test_utils.TestCase.setUp(self)
            self.loop = new_loop()
            self.set_event_loop(self.loop)

        _make_class(
            module,
            "CompatSubprocessTests",
            (module.SubprocessMixin, test_utils.TestCase),
            {"setUp": setUp},
        )
        _drop(
            "SubprocessThreadedWatcherTests",
            "SubprocessMultiLoopWatcherTests",
            "SubprocessSafeWatcherTests",
            "SubprocessFastWatcherTests",
            "SubprocessPidfdWatcherTests",
            "SubprocessProactorTests",
        )
    elif name == "test_unix_events":
        # Generic create_unix_server/create_unix_connection tests that build
        # a SelectorEventLoop in setUp: build compat's instead.
        stock_cls = module.SelectorEventLoopUnixSocketTests

        def setUp(self: Any) -> None:
            test_utils.TestCase.setUp(self)
            self.loop = new_loop()
            self.set_event_loop(self.loop)

        _make_class(module, "CompatUnixSocketTests", (stock_cls,), {"setUp": setUp})
        _drop("SelectorEventLoopUnixSocketTests")

    for cls_name in STOCK_ONLY.get(name, {}):
        cls = getattr(module, cls_name, None)
        if cls is not None:
            cls.new_test_loop = stock_new_test_loop
    return dropped
