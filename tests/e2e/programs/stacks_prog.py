"""Stack capture (test_stacks.py): build_cycles allocates the cyclic
garbage whose allocations trigger the collections, some of it kept long
enough to reach the oldest generation; idle_work only allocates objects
the collector does not track (ints, bytes, str). argv: rounds [fork]."""
import os
import sys

KEEP = []


def build_cycles(n):
    for i in range(n):
        a = [i]
        b = [a]
        a.append(b)
        if i % 2:
            KEEP.append(a)      # lives long enough to reach generation 2
        if len(KEEP) > 60000:
            # Broken by hand, so that no garbage waits in generation 2 for
            # the interpreter's own collection at exit (no Python frame).
            for old in KEEP[:30000]:
                old.pop()
            del KEEP[:30000]
    # The collection a 3.12+ allocation asks for runs at the next check of
    # the eval breaker: a backward jump here, not in the caller's next call.
    for _ in range(200):
        pass


def idle_work(n):
    total = 0
    for i in range(n):
        total += len(bytes(8)) + len(str(i)) + i * 3
    return total


def drop_all():
    # Cycles broken by hand: the interpreter's own collection at exit
    # (no Python frame) then has next to nothing to traverse.
    for a in KEEP:
        a.pop()
    KEEP.clear()


def main():
    rounds = int(sys.argv[1])
    for _ in range(rounds):
        idle_work(20000)
        build_cycles(40000)
    if len(sys.argv) > 2 and sys.argv[2] == "fork":
        pid = os.fork()
        if pid == 0:
            KEEP.clear()
            for _ in range(rounds):
                build_cycles(40000)
            drop_all()
            os._exit(0)
        os.waitpid(pid, 0)
    drop_all()


if __name__ == "__main__":
    main()
