// A spawner written in Python, preferred when /usr/bin/python3 (≥ 3.8) is there: it starts
// builders with posix_spawn, which glibc does with vfork semantics, where Perl (and Node) can only
// fork. After a fork the parent and the child share every page copy-on-write until the child
// execs, and on two busy cores each page the still-running parent writes is copied and its TLB
// entry shot down on the other core: that was most of the Perl spawner's CPU (BENCHMARKS.md,
// "The spawner"). Same protocol and behaviour as spawner-perl.ts, whose header describes it.
//
// What posix_spawn cannot do is done around it: the working directory is changed in this
// (single-threaded) process for the call and changed back; a builder that cannot be started
// (no such directory, exec failing) gets a forked child that writes Nix's message to the log
// and exits 1, as under Nix and the other spawners. Without posix_spawn (Python < 3.8) every
// builder is started that way.

export const PYTHON_SPAWNER = String.raw`
import os, select, signal, sys, time, fcntl, errno
out_fd = 1
def say(line):
    view = memoryview(line)
    try:
        while view: view = view[os.write(out_fd, view):]  # a write may take less (an O line of 128 KiB)
    except OSError: pass  # Node gone: stdin's end stops us
def text(e): return (e.strerror or str(e)).encode()
FAST = hasattr(os, 'posix_spawn') and sys.version_info >= (3, 8)
DEVNULL = os.open('/dev/null', os.O_RDONLY | os.O_CLOEXEC)
# This process ignores SIGPIPE (Python's default) and SIGXFSZ; a builder starts with neither.
RESET = tuple(s for s in (getattr(signal, 'SIGPIPE', None), getattr(signal, 'SIGXFSZ', None)) if s)
# Ctrl-C ends this process at once, as it does the Perl one (no traceback across the terminal).
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.chdir('/')
b = {}
locks = {}
buf = b''

def stop_all():
    for x in list(b.values()):
        try: os.killpg(x['pid'], signal.SIGKILL)
        except OSError: pass
    os._exit(0)

def parse():
    global buf
    pos = 0
    def f():
        nonlocal pos
        i = buf.find(b'\0', pos)
        if i < 0: raise IndexError
        s = buf[pos:i]; pos = i + 1
        return s
    try:
        r = {'kind': f(), 'id': f()}
        if r['kind'] == b'L':
            r['paths'] = [f() for _ in range(int(f()))]
        elif r['kind'] == b'S':
            for k in ('cmd', 'cwd', 'log', 'max', 'silent', 'fd', 'fwd'): r[k] = f()
            r['args'] = [f() for _ in range(int(f()))]
            env = {}
            for _ in range(int(f())):
                kv = f(); i = kv.find(b'=')
                env[kv[:i]] = kv[i + 1:]
            r['env'] = env
    except IndexError:
        return None
    buf = buf[pos:]
    return r

def lock_one(path):
    for _ in range(100):
        try: fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e: return None, b"cannot open lock file '" + path + b"': " + text(e)
        try: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd); return None, None
        if os.fstat(fd).st_size == 0: return fd, None
        os.close(fd)
    return None, b"lock file '" + path + b"' keeps being deleted"

def exists(p):
    try: os.lstat(p); return b'1'
    except OSError as e: return b'0' if e.errno == errno.ENOENT else b'1'

def take_locks(r):
    held = []
    for p in r['paths']:
        fd, err = lock_one(p + b'.lock')
        if fd is None:
            for _, h in held: os.close(h)
            if err is None: say(b'L ' + r['id'] + b' 0\n')
            else: say(b'L ' + r['id'] + b' E ' + err.replace(b'\n', b' ') + b'\n')
            return
        held.append((p, fd))
    locks[r['id']] = held
    say(b'L ' + r['id'] + b' 1 ' + b''.join(exists(p) for p in r['paths']) + b'\n')

def drop_locks(r):
    for p, fd in locks.pop(r['id'], []):
        try: os.unlink(p + b'.lock')
        except OSError: pass
        try: os.write(fd, b'd')
        except OSError: pass
        os.close(fd)

def failed_child(fds, message):
    # A child that only tells why the builder could not start, in its log, and exits 1.
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            for src, dst in fds: os.dup2(src, dst)
            os.write(2, message)
        finally:
            os._exit(1)
    return pid

def start(r):
    rid, log = r['id'], r['log']
    d = os.path.dirname(log)
    if not os.path.isdir(d):
        try: os.makedirs(d)
        except OSError: pass
    try: fh = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    except OSError as e:
        say(b'E ' + rid + b" cannot open log '" + log + b"': " + text(e) + b'\n'); return
    try: rd, wr = os.pipe2(os.O_CLOEXEC)
    except OSError as e:
        say(b'E ' + rid + b' cannot create a pipe: ' + text(e) + b'\n'); os.close(fh); os.unlink(log); return
    fd3 = r['fd'] == b'3'
    fds = [(DEVNULL, 0), (fh, 1), (fh, 2), (wr, 3)] if fd3 else [(DEVNULL, 0), (wr, 1), (wr, 2)]
    pid = None
    try:
        try:
            os.chdir(r['cwd'])
        except OSError as e:
            pid = failed_child(fds, b"error: changing into '" + r['cwd'] + b"': " + text(e) + b'\n')
        if pid is None and FAST:
            try:
                pid = os.posix_spawn(r['cmd'], [r['cmd']] + r['args'], r['env'],
                    file_actions=[(os.POSIX_SPAWN_DUP2, s, t) for s, t in fds],
                    setsid=True, setsigdef=RESET, setsigmask=())
            except OSError as e:
                pid = failed_child(fds, b"error: executing '" + r['cmd'] + b"': " + text(e) + b'\n')
        if pid is None:
            pid = os.fork()
            if pid == 0:
                try:
                    os.setsid()
                    for s in RESET: signal.signal(s, signal.SIG_DFL)
                    for src, dst in fds: os.dup2(src, dst)
                    try: os.execve(r['cmd'], [r['cmd']] + r['args'], r['env'])
                    except OSError as e:
                        os.write(2, b"error: executing '" + r['cmd'] + b"': " + text(e) + b'\n')
                finally:
                    os._exit(1)
    except OSError as e:
        os.close(rd); os.close(fh)
        try: os.unlink(log)
        except OSError: pass
        say(b'E ' + rid + b' cannot fork: ' + text(e) + b'\n'); return
    finally:
        os.close(wr)
        os.chdir('/')
    b[rid] = {'id': rid, 'pid': pid, 'rd': rd, 'fh': fh, 'log': log, 'size': 0,
              'last': time.monotonic(), 'max': int(r['max'] or 0),
              'silent': int(r['silent'] or 0) / 1000, 'fd3': fd3, 'fwd': r['fwd'] == b'1',
              'ended': None}
    say(b'P ' + rid + b' ' + str(pid).encode() + b'\n')

def finish(x, why, st=None):
    del b[x['id']]
    for kill in (lambda: os.killpg(x['pid'], signal.SIGKILL), lambda: os.kill(x['pid'], signal.SIGKILL)):
        try: kill()
        except OSError: pass
    if x['ended'] is None: os.close(x['rd'])
    os.close(x['fh'])
    while st is None:
        try: st = os.waitpid(x['pid'], 0)[1]
        except InterruptedError: pass
        except OSError: st = 9
    code, sig = (-1, os.WTERMSIG(st)) if os.WIFSIGNALED(st) else (os.WEXITSTATUS(st) if os.WIFEXITED(st) else -1, 0)
    try: size = os.stat(x['log']).st_size
    except OSError: size = 0
    if size == 0:
        try: os.unlink(x['log'])
        except OSError: pass
    say(b'X %s %d %d %d %s\n' % (x['id'], code, sig, size, why))

while True:
    rin = [0]
    t = None
    t0 = time.monotonic()
    for x in b.values():
        if x['ended'] is not None: t = 0.01; continue
        rin.append(x['rd'])
        if not x['silent']: continue
        left = x['last'] + x['silent'] - t0
        if t is None or left < t: t = left
    if t is not None and t < 0: t = 0
    try: ready = select.select(rin, [], [], t)[0]
    except InterruptedError: ready = []
    if 0 in ready:
        try: got = os.read(0, 65536)
        except InterruptedError: got = None
        except OSError: got = b''
        if got == b'': stop_all()
        if got:
            buf += got
            while True:
                r = parse()
                if r is None: break
                if r['kind'] == b'S': start(r)
                elif r['kind'] == b'L': take_locks(r)
                else: drop_locks(r)
    for x in list(b.values()):
        if x['ended'] is not None or x['rd'] not in ready or x['id'] not in b: continue
        try: data = os.read(x['rd'], 65536)
        except (InterruptedError, BlockingIOError): continue
        except OSError: data = b''
        if not data and x['fd3']:
            # The sandbox's own process exits just after the builder: give it a moment to
            # report the builder's status before killing what is left.
            os.close(x['rd']); x['ended'] = time.monotonic(); continue
        if not data: finish(x, b'exit'); continue
        x['last'] = time.monotonic()
        if x['max'] and x['size'] + len(data) > x['max']: finish(x, b'log'); continue
        try: os.write(x['fh'], data)
        except OSError: pass  # as Perl's syswrite: the size limit still counts the bytes
        x['size'] += len(data)
        if x['fwd']: say(b'O ' + x['id'] + b' ' + data.hex().encode() + b'\n')
    t1 = time.monotonic()
    for x in list(b.values()):
        if x['ended'] is not None:
            w, st = os.waitpid(x['pid'], os.WNOHANG)
            if w == x['pid']: finish(x, b'exit', st)
            elif t1 - x['ended'] >= 0.5: finish(x, b'exit')
            continue
        if x['silent'] and t1 - x['last'] >= x['silent']: finish(x, b'silent')
`;
