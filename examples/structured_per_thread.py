"""structured_per_thread.py: the Python program of examples/structured_per_thread.rs.

The two classic programs written with asyncio.TaskGroup and asyncio.timeout
(3.11+). Its output is the Rust example's, line for line, on CPython 3.11 to
3.15:
    diff <(cargo run -q --example structured_per_thread) <(python3 examples/structured_per_thread.py)
"""
import asyncio
import concurrent.futures
import threading

DELAYS = [0.3, 0.1, 0.2, 0.4]


def me():
    return threading.current_thread().name


async def do_some_work(i, x, show_thread):
    where = f" in {me()}" if show_thread else ""
    print(f"Waiting {i} {x}{where}")
    try:
        await asyncio.sleep(x)
    except asyncio.CancelledError:
        print(f"job {i} cancelled{where}")
        raise
    print(f"Done {i} after {x}s")
    return "haha"


async def wrapped(cf):
    return await asyncio.wrap_future(cf)


async def until(cf):
    await asyncio.wrap_future(cf)


async def slow_job(cancel_seen):
    print(f"Waiting 4 100 in {me()}")
    try:
        await asyncio.sleep(100)
    except asyncio.CancelledError:
        print(f"job 4 cancelled in {me()}")
        cancel_seen.set_result(None)
        raise


async def failing_work(i, x):
    print(f"Waiting {i} {x}")
    await asyncio.sleep(x)
    print(f"job {i} fails after {x}s")
    raise ValueError(f"job {i} failed")


def main_and_sub_loop():
    """Part 1: the main thread's runner gathers, with a TaskGroup and a
    timeout, four jobs it submits to the runner of a sub-thread."""
    finish = concurrent.futures.Future()
    handed_over = concurrent.futures.Future()

    def sub():
        with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
            handed_over.set_result(runner.get_loop())
            runner.run(until(finish))  # the runner closes its loop on leaving

    sub_thread = threading.Thread(target=sub, name="Thread-1 (sub)")
    sub_thread.start()
    sub_loop = handed_over.result()

    async def all_jobs():
        async with asyncio.timeout(10):
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(wrapped(asyncio.run_coroutine_threadsafe(do_some_work(i, d, True), sub_loop)))
                    for i, d in enumerate(DELAYS)
                ]
        return [t.result() for t in tasks]

    async def too_slow():
        cancel_seen = concurrent.futures.Future()
        job = asyncio.run_coroutine_threadsafe(slow_job(cancel_seen), sub_loop)
        try:
            async with asyncio.timeout(0.5):
                await asyncio.wrap_future(job)
        except TimeoutError:
            await asyncio.wrap_future(cancel_seen)
            print(f"job 4: TimeoutError after 0.5s; its future is cancelled: {job.cancelled()}")

    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as main_runner:
        print(f"results: {main_runner.run(all_jobs())}")
        main_runner.run(too_slow())
    finish.set_result(None)
    sub_thread.join()
    print(f"{me()} joined Thread-1 (sub); its loop is closed: {sub_loop.is_closed()}")


def nested_threads():
    """Part 2: a thread inside a thread runs four tasks in a TaskGroup; one
    fails, the group cancels the others and raises an ExceptionGroup."""

    def innermost():
        async def group():
            async with asyncio.TaskGroup() as tg:
                for i, d in enumerate(DELAYS):
                    if i == 0:
                        tg.create_task(failing_work(i, d))
                    else:
                        tg.create_task(do_some_work(i, d, False))

        with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
            try:
                runner.run(group())
            except ExceptionGroup as eg:
                print(f"{type(eg).__name__}: {eg}")
                print(f"  {[e for e in eg.exceptions]}")

    def middle():
        t = threading.Thread(target=innermost, name="Thread-3 (innermost)")
        t.start()
        t.join()

    t = threading.Thread(target=middle, name="Thread-2 (middle)")
    t.start()
    t.join()


print(f"delays: {DELAYS}")
print("-- main thread and a sub-thread, a runner each, a TaskGroup and a timeout")
main_and_sub_loop()
print("-- a thread inside a thread, a TaskGroup whose child fails")
nested_threads()
