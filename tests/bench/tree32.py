# Benchmark fixture: 32 worker processes (fork); workers 7 and 23 deadlock on two
# multiprocessing.Lock in opposite order, the other 30 wait on a multiprocessing.Event.
import multiprocessing as mp
import time


def worker(i, a, b, ev, ready):
    if i in (7, 23):
        first, second = (a, b) if i == 7 else (b, a)
        with first:
            ready.release()
            time.sleep(0.5)
            with second:
                pass
    else:
        ready.release()
        ev.wait()


if __name__ == "__main__":
    ctx = mp.get_context("fork")
    a, b, ev, ready = ctx.Lock(), ctx.Lock(), ctx.Event(), ctx.Semaphore(0)
    ps = [ctx.Process(target=worker, args=(i, a, b, ev, ready)) for i in range(32)]
    for p in ps:
        p.start()
    for _ in ps:
        ready.acquire()
    time.sleep(1.0)
    print("READY", ps[7].pid, ps[23].pid, flush=True)
    for p in ps:
        p.join()
