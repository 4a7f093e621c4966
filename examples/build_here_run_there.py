"""build_here_run_there.py: the Python program of examples/build_here_run_there.rs.

Its output is the Rust example's, line for line, on CPython 3.10 to 3.15:
    diff <(cargo run -q --example build_here_run_there) <(python3 examples/build_here_run_there.py)
The timer waits 0.05 s of real time where the Rust example's virtual clock
skips 5 s.
"""
import asyncio, threading
def in_thread(name, f):
    out=[]
    t=threading.Thread(target=lambda: out.append(f()), name=name); t.start(); t.join(); return out[0] if out else None
me=lambda: threading.current_thread().name
def one_iteration(lp):
    lp.call_soon(lp.stop); lp.run_forever()
lp=asyncio.new_event_loop(); log=[]
lp.call_soon(lambda: log.append(f"cb in {me()}"))
async def t1():
    log.append(f"task in {me()}"); return 42
task=lp.create_task(t1()); lp.call_soon(lp.stop)
in_thread("worker", lp.run_forever)
for l in log: print("1:", l)
log.clear(); print("1: task result", task.result())
fut=lp.create_future()
async def w():
    v=await fut; log.append(f"task got {v} in {me()}"); return v
waiter=lp.create_task(w())
lp.call_later(0.05, lambda: log.append(f"timer in {me()}"))
in_thread("first", lambda: one_iteration(lp))
print("2: first exited; task done:", str(waiter.done()).lower())
fut.set_result(7)
def second():
    v=lp.run_until_complete(waiter); lp.run_until_complete(asyncio.sleep(0.05)); return v
got=in_thread("second", second)
for l in log: print("2:", l)
print("2: run_until_complete returned", got)
async def b():
    await asyncio.sleep(3600); return "woke"
blocked=lp.create_task(b()); one_iteration(lp)
c=in_thread("canceller", blocked.cancel)
print("3: cancel() from another thread returned", str(c).lower())
try: lp.run_until_complete(blocked); e=None
except BaseException as ex: e=type(ex).__name__
print(f"3: the task is cancelled: {str(blocked.cancelled()).lower()}; awaiting it raises {e}")
lp.close(); print("closed:", str(lp.is_closed()).lower())
