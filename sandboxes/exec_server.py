"""The exec server: a process kept inside each docker sandbox that runs the commands the host sends it.

It is not imported by Shipyard: its source is run in the container as `python3 -c SOURCE` by one
`docker exec` with its stdin attached, started with the sandbox. Nothing but the standard library,
no network, no files: it speaks over its stdin and stdout only.

Requests, one a line (JSON): {"argv": [...], "cwd": "/workspace"}. The argv is the full supervised
command (`env -i ... sh -c SUPERVISOR SECONDS cmd...`), so the in-container timeout, the environment
and the killing of what a command leaves behind are the same as with a `docker exec`.

Replies are frames: one byte of kind, four bytes of length (big-endian), the payload.
    h  hello: this server's pid (sent once, at start)
    o  a chunk of the command's stdout          e  a chunk of its stderr
    x  its exit code (as text), after all of its output
"""

import json
import os
import selectors
import struct
import subprocess
import sys

CHUNK = 65536


def send(kind: bytes, payload: bytes) -> None:
    frame = kind + struct.pack(">I", len(payload)) + payload
    while frame:
        frame = frame[os.write(1, frame):]


def run(request: dict) -> int:
    try:
        proc = subprocess.Popen(request["argv"], cwd=request["cwd"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:  # what a shell says of a command it cannot run
        send(b"e", f"{request['argv'][0]}: {exc.strerror}\n".encode())
        return 127
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ, b"o")
    selector.register(proc.stderr, selectors.EVENT_READ, b"e")
    open_streams = 2
    while open_streams:
        for key, _ in selector.select():
            data = os.read(key.fd, CHUNK)
            if data:
                send(key.data, data)
            else:
                selector.unregister(key.fileobj)
                open_streams -= 1
    code = proc.wait()
    return 128 - code if code < 0 else code  # killed by a signal: as a shell (and docker exec) says it


def main() -> None:
    send(b"h", str(os.getpid()).encode())
    for line in sys.stdin.buffer:
        send(b"x", str(run(json.loads(line))).encode())


main()
