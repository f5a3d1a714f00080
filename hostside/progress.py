"""Progress bars (rich) that fall back to silence when disabled or not on a terminal."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator


@contextmanager
def progress_bar(description: str, total: int, enabled: bool = True) -> Iterator[Callable[..., None]]:
    if not enabled:
        yield lambda n=1, **kw: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False) as prog:
        task = prog.add_task(description, total=total, info="")

        def advance(n: int = 1, info: str | None = None) -> None:
            prog.update(task, advance=n, **({"info": info} if info is not None else {}))
        yield advance
