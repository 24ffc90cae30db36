"""toolauth._loop: HomeLoop, the one bridge between event loops (no sleeps: events and futures)."""

import asyncio
import concurrent.futures
import contextlib
import gc
import threading
import warnings
from collections.abc import AsyncIterator, Iterator

import pytest

from toolauth._loop import HomeLoop, LoopClosedError, on_home_loop

THREAD = "toolauth-test-home"


@pytest.fixture
def home() -> Iterator[HomeLoop]:
    home = HomeLoop.in_thread(THREAD)
    yield home
    home.stop()


async def where() -> tuple[str, asyncio.AbstractEventLoop]:
    return threading.current_thread().name, asyncio.get_running_loop()


async def running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


async def add(a: int, *, b: int) -> int:
    return a + b


async def fail(exc: BaseException) -> None:
    raise exc


def in_other_loop_in_another_thread(fn):
    """``asyncio.run(fn())`` in a fresh thread: a second event loop, as LangChain's is."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, fn()).result(timeout=10)


# in_thread + call --------------------------------------------------------------------------
def test_in_thread_runs_a_loop_in_a_named_daemon_thread(home):
    loop = home.loop
    assert loop is not None and loop.is_running()
    [thread] = [t for t in threading.enumerate() if t.name == THREAD]
    assert thread.daemon


def test_call_from_sync_code_runs_on_the_home_loop(home):
    name, loop = home.call(where)
    assert name == THREAD
    assert loop is home.loop


def test_call_passes_arguments_and_returns_the_result(home):
    assert home.call(add, 2, b=3) == 5


def test_call_propagates_exceptions(home):
    with pytest.raises(KeyError, match="boom"):
        home.call(fail, KeyError("boom"))
    assert home.call(add, 1, b=1) == 2  # the loop survives


# run from other loops ----------------------------------------------------------------------
def test_run_from_another_asyncio_run_lands_on_the_home_loop(home):
    async def main() -> tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop, str]:
        caller = asyncio.get_running_loop()
        name, ran_on = await home.run(where)
        return caller, ran_on, name

    caller, ran_on, name = in_other_loop_in_another_thread(main)
    assert ran_on is home.loop
    assert caller is not home.loop
    assert name == THREAD


async def test_run_from_the_test_loop_lands_on_the_home_loop(home):
    assert await home.run(running_loop) is home.loop
    assert asyncio.get_running_loop() is not home.loop
    assert await home.run(add, 4, b=5) == 9


async def test_run_does_not_block_the_calling_loop(home):
    """The caller's loop keeps running while the home loop works: the home coroutine waits
    for a gate that only the caller's loop opens (and times out, failing the test, if the
    caller's loop were blocked)."""
    caller = asyncio.get_running_loop()
    started = asyncio.Event()  # used on the caller's loop only
    gate = asyncio.Event()  # used on the home loop only

    async def wait_for_gate() -> str:
        caller.call_soon_threadsafe(started.set)
        await asyncio.wait_for(gate.wait(), timeout=5)
        return "through"

    waiting = asyncio.ensure_future(home.run(wait_for_gate))
    await asyncio.wait_for(started.wait(), timeout=5)
    assert home.loop is not None
    home.loop.call_soon_threadsafe(gate.set)
    assert await asyncio.wait_for(waiting, timeout=5) == "through"


async def test_run_propagates_exceptions(home):
    with pytest.raises(ValueError, match="nope"):
        await home.run(fail, ValueError("nope"))


def test_run_propagates_exceptions_to_another_asyncio_run(home):
    async def main() -> None:
        await home.run(fail, LookupError("far"))

    with pytest.raises(LookupError, match="far"):
        in_other_loop_in_another_thread(main)


# enter -------------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def recorded(log: list[tuple[str, object, object]]) -> AsyncIterator[str]:
    log.append(("enter", asyncio.current_task(), asyncio.get_running_loop()))
    try:
        yield "value"
    except BaseException as exc:
        log.append(("error", type(exc), None))
        raise
    finally:
        log.append(("exit", asyncio.current_task(), asyncio.get_running_loop()))


def test_enter_enters_and_exits_in_one_task_on_the_home_loop(home):
    log: list[tuple[str, object, object]] = []
    with home.enter(recorded(log)) as value:
        assert value == "value"
        assert [event for event, _, _ in log] == ["enter"]  # entered, still open
        assert home.call(add, 1, b=2) == 3  # the home loop keeps serving meanwhile
    (enter, enter_task, enter_loop), (leave, exit_task, exit_loop) = log
    assert (enter, leave) == ("enter", "exit")
    assert enter_task is exit_task and enter_task is not None
    assert enter_loop is home.loop and exit_loop is home.loop


def test_enter_propagates_an_error_from_entering(home):
    entered_body = threading.Event()

    @contextlib.asynccontextmanager
    async def broken() -> AsyncIterator[None]:
        raise ConnectionError("cannot start")
        yield  # pragma: no cover

    with pytest.raises(ConnectionError, match="cannot start"), home.enter(broken()):
        entered_body.set()
    assert not entered_body.is_set()


def test_enter_propagates_an_error_from_the_body_through_the_manager(home):
    log: list[tuple[str, object, object]] = []
    with pytest.raises(KeyError, match="in body"), home.enter(recorded(log)):
        raise KeyError("in body")
    assert [event for event, _, _ in log] == ["enter", "error", "exit"]
    assert log[1][1] is KeyError  # the manager saw the body's error


def test_enter_propagates_an_error_from_exiting(home):
    @contextlib.asynccontextmanager
    async def bad_exit() -> AsyncIterator[int]:
        yield 1
        raise OSError("cannot stop")

    with pytest.raises(OSError, match="cannot stop"), home.enter(bad_exit()) as value:
        assert value == 1


def test_enter_honours_a_manager_that_suppresses_the_error(home):
    @contextlib.asynccontextmanager
    async def suppressing() -> AsyncIterator[None]:
        with contextlib.suppress(KeyError):
            yield

    with home.enter(suppressing()):
        raise KeyError("suppressed")


def test_enter_does_not_lose_an_exit_error_raised_while_handling_the_body_error(home):
    @contextlib.asynccontextmanager
    async def bad_exit() -> AsyncIterator[None]:
        try:
            yield
        finally:
            raise OSError("cannot stop")

    with pytest.raises(OSError, match="cannot stop"), home.enter(bad_exit()):
        raise KeyError("in body")


# stop --------------------------------------------------------------------------------------
def test_after_stop_call_raises_loop_closed(home):
    loop = home.loop
    home.stop()
    assert home.loop is None
    assert loop is not None and loop.is_closed()
    assert not [t for t in threading.enumerate() if t.name == THREAD]
    with pytest.raises(LoopClosedError, match="This ToolAuth client is closed."):
        home.call(add, 1, b=2)
    home.stop()  # a second stop is harmless


def test_after_stop_enter_raises_loop_closed_and_leaks_no_coroutine(home):
    home.stop()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(LoopClosedError), home.enter(recorded([])):
            pass  # pragma: no cover
        gc.collect()
    assert [str(w.message) for w in caught] == []


async def test_after_stop_run_raises_loop_closed(home):
    home.stop()
    with pytest.raises(LoopClosedError, match="This ToolAuth client is closed."):
        await home.run(add, 1, b=2)


def test_stop_cancels_work_still_running_on_the_loop(home):
    started = threading.Event()
    cancelled = threading.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    assert home.loop is not None
    future = asyncio.run_coroutine_threadsafe(forever(), home.loop)
    assert started.wait(timeout=5)
    home.stop()
    assert cancelled.is_set()
    with pytest.raises(concurrent.futures.CancelledError):
        future.result(timeout=5)


# on_home_loop ------------------------------------------------------------------------------
class Resource:
    def __init__(self, home: HomeLoop) -> None:
        self._home = home

    @on_home_loop
    async def where(self, a: int, *, b: int) -> tuple[asyncio.AbstractEventLoop, object, int]:
        """Where it ran."""
        return asyncio.get_running_loop(), asyncio.current_task(), a + b


async def test_on_home_loop_methods_called_from_another_loop_run_on_the_home_loop(home):
    loop, task, total = await Resource(home).where(1, b=2)
    assert loop is home.loop
    assert task is not asyncio.current_task()
    assert total == 3


def test_on_home_loop_methods_called_from_another_asyncio_run(home):
    resource = Resource(home)

    async def main() -> asyncio.AbstractEventLoop:
        loop, _, _ = await resource.where(0, b=0)
        return loop

    assert in_other_loop_in_another_thread(main) is home.loop


def test_on_home_loop_methods_on_the_home_loop_run_directly(home):
    resource = Resource(home)

    async def on_home() -> tuple[object, object]:
        _, task, _ = await resource.where(1, b=1)
        return task, asyncio.current_task()

    inner, outer = home.call(on_home)
    assert inner is outer  # no hop: same task


def test_on_home_loop_keeps_the_method_name_and_docstring():
    assert Resource.where.__name__ == "where"
    assert Resource.where.__doc__ == "Where it ran."


# misuse ------------------------------------------------------------------------------------
def test_a_sync_call_on_the_home_loop_itself_raises_runtime_error(home):
    async def sync_call_from_home() -> None:
        home.call(add, 1, b=2)  # would deadlock: refused

    with pytest.raises(RuntimeError, match="on the client's own event loop") as info:
        home.call(sync_call_from_home)
    assert type(info.value) is RuntimeError
    assert home.call(add, 1, b=2) == 3  # the loop is still fine


# a HomeLoop without a thread of its own ----------------------------------------------------
def test_without_any_loop_call_runs_on_a_fresh_asyncio_run():
    home = HomeLoop()
    assert home.loop is None
    first = home.call(running_loop)
    assert first is not None and first.is_closed()
    assert home.call(add, 1, b=1) == 2


async def test_a_home_made_on_a_running_loop_serves_worker_threads():
    """``AsyncToolAuth``: the home is the loop it was made on; a sync call from a worker
    thread hops onto it."""
    home = HomeLoop()
    assert home.loop is asyncio.get_running_loop()
    assert await asyncio.to_thread(home.call, running_loop) is asyncio.get_running_loop()
    assert await home.run(running_loop) is asyncio.get_running_loop()  # direct
    with pytest.raises(RuntimeError, match="own event loop"):
        home.call(add, 1, b=2)


async def test_cancel_and_wait_ends_a_task_that_swallowed_a_cancellation() -> None:
    """What ``asyncio.wait_for`` does on Python < 3.12 when the cancellation lands as its
    inner future completes (gh-86296): the task goes on. Stopping it still ends it."""
    import asyncio

    from toolauth._loop import cancel_and_wait

    swallowed = asyncio.Event()

    async def background() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            swallowed.set()  # swallowed once, as the bug does; then waits forever again
        await asyncio.Event().wait()

    task = asyncio.create_task(background())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task), 5)
    assert swallowed.is_set() and task.cancelled()
    await cancel_and_wait(None)  # nothing to stop
