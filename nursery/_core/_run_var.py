"""RunVar: a variable with one value per run, like a context variable whose
context is the whole run."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from ._state import current_runner

__all__ = ["RunVar", "RunVarToken"]

T = TypeVar("T")

_NO_DEFAULT: Any = object()


class RunVarToken(Generic[T]):
    """Returned by :meth:`RunVar.set`; pass it to :meth:`RunVar.reset`."""

    __slots__ = ("_var", "old_value", "_used")

    def __init__(self, var: RunVar[T], old_value: Any) -> None:
        self._var = var
        self.old_value = old_value
        self._used = False


class RunVar(Generic[T]):
    """A variable whose value is local to the current :func:`nursery.run`:
    every run starts with the default, and a value set in one run is never
    seen by another. Use it for per-run caches (a thread pool, a limiter)."""

    __slots__ = ("_name", "_default")

    def __init__(self, name: str, default: T = _NO_DEFAULT) -> None:
        self._name = name
        self._default = default

    @property
    def name(self) -> str:
        return self._name

    def get(self, default: T = _NO_DEFAULT) -> T:
        """The value in this run; else *default*, else the variable's
        default; else :exc:`LookupError`."""
        run_vars = current_runner(f"RunVar({self._name!r}).get()").run_vars
        try:
            return run_vars[self]
        except KeyError:
            if default is not _NO_DEFAULT:
                return default
            if self._default is not _NO_DEFAULT:
                return self._default
            raise LookupError(f"RunVar {self._name!r} has no value in this run and no default") from None

    def set(self, value: T) -> RunVarToken[T]:
        """Set the value for this run; returns a token for :meth:`reset`."""
        run_vars = current_runner(f"RunVar({self._name!r}).set()").run_vars
        token = RunVarToken(self, run_vars.get(self, _NO_DEFAULT))
        run_vars[self] = value
        return token

    def reset(self, token: RunVarToken[T]) -> None:
        """Restore the value the variable had before the ``set`` that made
        *token*. Each token can be used once."""
        if not isinstance(token, RunVarToken) or token._var is not self:
            raise ValueError(f"{token!r} was not created by this RunVar")
        if token._used:
            raise ValueError("this RunVarToken has already been used")
        run_vars = current_runner(f"RunVar({self._name!r}).reset()").run_vars
        if token.old_value is _NO_DEFAULT:
            run_vars.pop(self, None)
        else:
            run_vars[self] = token.old_value
        token._used = True

    def __repr__(self) -> str:
        return f"<RunVar name={self._name!r}>"
