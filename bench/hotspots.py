"""Where the time goes, from py-spy's collapsed stacks (`python -m bench --profile FOLDER`):

    python -m bench.hotspots FOLDER [--top 25] [--match order]

For each process: its samples, and the functions with the most samples inclusive (anywhere on the
stack) and exclusive (on top), as a share of that process's samples."""
import argparse
from collections import Counter
from pathlib import Path


IDLE = ("Hub.do_poll", "Hub.wait (eventlet")  # eventlet's hub waiting in epoll: no CPU spent


def load(path):
    """Collapsed stacks → samples, without the hub's idle waits."""
    stacks = Counter()
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit() and not stack.rsplit(";", 1)[-1].startswith(IDLE):
            stacks[stack] += int(count)
    return stacks


def report(stacks, top, match=None):
    total = sum(stacks.values()) or 1
    inclusive, exclusive = Counter(), Counter()
    for stack, count in stacks.items():
        frames = stack.split(";")
        for frame in set(frames):
            if match is None or match in frame:
                inclusive[frame] += count
        exclusive[frames[-1]] += count
    lines = [f"  {total} samples", "  inclusive:"]
    lines += [f"    {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    lines.append("  exclusive:")
    lines += [f"    {100 * n / total:5.1f}%  {frame}" for frame, n in exclusive.most_common(top)]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.hotspots")
    parser.add_argument("folder")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match")
    args = parser.parse_args(argv)
    for path in sorted(Path(args.folder).glob("*.txt")):
        print(f"{path.stem}:\n{report(load(path), args.top, args.match)}\n")


if __name__ == "__main__":
    main()
