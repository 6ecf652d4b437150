"""300 threads, each blocked in a C mutex (glibc pthread_mutex_lock through ctypes.CDLL) that
the main thread holds while it waits on an Event: for timing `gridlock dump` on threads whose
waits are read below Python (tests/bench/README.md)."""
import ctypes
import sys
import threading
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 300
libc = ctypes.CDLL("libc.so.6")
mutex = ctypes.create_string_buffer(64)
libc.pthread_mutex_lock(mutex)
for i in range(N):
    threading.Thread(target=libc.pthread_mutex_lock, args=(mutex,), name=f"c-waiter-{i}", daemon=True).start()
time.sleep(0.5)
print("READY", flush=True)
threading.Event().wait()
