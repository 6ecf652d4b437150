"""Two tellers move money between the same two accounts in opposite directions.

Each takes the source account's lock, then the destination's: teller-1 goes
checking -> savings while teller-2 goes savings -> checking, so each ends up holding
the lock the other needs. A barrier makes the interleaving certain.

    python examples/bank_transfer.py &   gridlock dump $!
"""
import sys
import threading


class Account:
    def __init__(self, name, balance):
        self.name = name
        self.balance = balance
        self.lock = threading.Lock()


both_hold_their_first_lock = threading.Barrier(2)


def transfer(src, dst, amount):
    with src.lock:
        both_hold_their_first_lock.wait()
        with dst.lock:
            src.balance -= amount
            dst.balance += amount


def teller(src, dst):
    transfer(src, dst, 10)


def main():
    checking = Account("checking", 100)
    savings = Account("savings", 100)
    tellers = [
        threading.Thread(target=teller, args=(checking, savings), name="teller-1"),
        threading.Thread(target=teller, args=(savings, checking), name="teller-2"),
    ]
    for t in tellers:
        t.start()
    print("READY", flush=True)
    for t in tellers:
        t.join()


if __name__ == "__main__":
    sys.exit(main())
