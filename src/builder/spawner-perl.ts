// A spawner written in Perl (perl-base is part of every Debian system): forking from a process of
// a few MB costs a third of what it costs from Node, and this runs once per builder. Same job as
// spawner-process.ts, with a simpler protocol, since core Perl has no JSON:
//   requests:  "S", id, cmd, cwd, log, maxLogSize, maxSilentMs, outputFd, forward (0|1), argc,
//              args…, envc, env (KEY=VALUE)… — each field NUL-terminated
//              or "L", id, n, paths… (take Nix's output locks, see take_locks), or "U", id
//              (release them, deleting the lock files)
//   replies:   "P id pid" (started), "X id code signal logSize why" (ended; code -1 if
//              signalled; why is exit, log or silent), "E id message" (could not start),
//              "L id 1 flags|0|E message" (locked, with a 1 or 0 a path
//              for whether it exists; busy; failed), "O id hex" (a chunk of the
//              builder's output, hex-encoded, only when forward is 1), one per line. A builder that cannot be executed writes Nix's "executing" error to its
//              log and exits 1, as under Nix.
// A builder's stdout and stderr are one pipe that this process copies into the log, as Nix's
// worker does: the end of the log is the end of the build (a builder that closes its output and
// keeps running is killed, "signal 9", as by Nix), and the log-size and silence limits are
// checked on the bytes as they arrive. One select loop serves requests and every pipe; a
// builder's status is collected once its pipe has ended and its group has been killed, so no
// SIGCHLD handler is needed (one racing the wait for input once lost exits under load).

export const PERL_SPAWNER = String.raw`
use strict; use warnings; use POSIX ();
my $now = eval { require Time::HiRes; \&Time::HiRes::time } || sub { time };
$| = 1;
# Node gone: its stdin closes too, and that ends the builders (a SIGPIPE would kill us alone).
$SIG{PIPE} = 'IGNORE';
my %b;
my $buf = '';
sub stop_all { kill 'KILL', map { -$_->{pid} } values %b; exit 0; }
sub mkdirs { my ($d) = @_; my $p = ''; for my $part (grep { length } split m{/}, $d) { $p .= "/$part"; mkdir $p; } }
sub parse {
  my $pos = 0;
  my $f = sub {
    my $i = index($buf, "\0", $pos); die "more\n" if $i < 0;
    my $s = substr($buf, $pos, $i - $pos); $pos = $i + 1; $s;
  };
  my $r = eval {
    my %r = (kind => $f->(), id => $f->());
    if ($r{kind} eq 'L') { my $n = $f->(); $r{paths} = [map { $f->() } 1 .. $n]; return \%r }
    return \%r if $r{kind} eq 'U';
    @r{qw(cmd cwd log max silent fd fwd)} = map { $f->() } 1 .. 7;
    my $argc = $f->(); $r{args} = [map { $f->() } 1 .. $argc];
    my $envc = $f->();
    $r{env} = {map { my $kv = $f->(); my $i = index($kv, '='); (substr($kv, 0, $i), substr($kv, $i + 1)) } 1 .. $envc};
    \%r;
  };
  return undef unless $r;
  substr($buf, 0, $pos, '');
  return $r;
}
# Nix's output locks (PathLocks): flock on <path>.lock, never waiting (the caller polls, as Nix's
# goals do). A lock file with contents was deleted by its last holder: open it anew.
my %locks;
sub lock_one {
  my ($path) = @_;
  for (1 .. 100) {
    sysopen(my $fh, $path, POSIX::O_RDWR() | POSIX::O_CREAT(), 0600) or return (undef, "cannot open lock file '$path': $!");
    return (undef, undef) unless flock($fh, 2 | 4);
    return ($fh) if (stat $fh)[7] == 0;
    close $fh;
  }
  return (undef, "lock file '$path' keeps being deleted");
}
sub take_locks {
  my ($r) = @_;
  my @held;
  for my $p (@{ $r->{paths} }) {
    my ($fh, $err) = lock_one("$p.lock");
    if (!$fh) {
      close $_->[1] for @held;
      if (defined $err) { $err =~ s/\n/ /g; print "L $r->{id} E $err\n" } else { print "L $r->{id} 0\n" }
      return;
    }
    push @held, [$p, $fh];
  }
  $locks{$r->{id}} = \@held;
  # Which paths exist, looked up here under the locks: the caller then needs no lookup of its own
  # to find what a crashed build left.
  # A path that cannot be looked up counts as there: removing it then says what is wrong.
  my $on_disk = join '', map { (lstat($_) || !$!{ENOENT}) ? '1' : '0' } @{ $r->{paths} };
  print "L $r->{id} 1 $on_disk\n";
}
sub drop_locks {
  my ($r) = @_;
  for my $l (@{ delete $locks{$r->{id}} // [] }) {
    # Deleted, and marked so that a waiter holding the old file opens it anew.
    unlink "$l->[0].lock"; syswrite($l->[1], 'd'); close $l->[1];
  }
}
sub start {
  my ($r) = @_;
  (my $dir = $r->{log}) =~ s{/[^/]*$}{};
  mkdirs($dir) unless -d $dir;
  my ($fh, $rd, $wr);
  unless (open($fh, '>', $r->{log})) { print "E $r->{id} cannot open log '$r->{log}': $!\n"; return; }
  binmode $fh;
  unless (pipe($rd, $wr)) { print "E $r->{id} cannot create a pipe: $!\n"; close $fh; unlink $r->{log}; return; }
  my $pid = fork();
  if (defined $pid && $pid == 0) {
    POSIX::setsid();
    # Ignored here, and an ignored signal would stay ignored in the builder.
    $SIG{PIPE} = 'DEFAULT';
    open(STDIN, '<', '/dev/null');
    if ($r->{fd} == 3) {
      # The builder's output is fd 3; the process started writes its own messages to the log.
      POSIX::dup2(fileno($fh), 1); POSIX::dup2(fileno($fh), 2);
      my $t = POSIX::dup(fileno($wr)); POSIX::dup2($t, 3); POSIX::close($t);
    } else {
      POSIX::dup2(fileno($wr), 1); POSIX::dup2(fileno($wr), 2);
    }
    chdir $r->{cwd} or do { print STDERR "error: changing into '$r->{cwd}': $!\n"; POSIX::_exit(1) };
    %ENV = %{ $r->{env} };
    { no warnings; exec { $r->{cmd} } $r->{cmd}, @{ $r->{args} }; }
    print STDERR "error: executing '$r->{cmd}': $!\n";
    POSIX::_exit(1);
  }
  close $wr;
  unless (defined $pid) { print "E $r->{id} cannot fork: $!\n"; close $rd; close $fh; unlink $r->{log}; return; }
  $b{$r->{id}} = { id => $r->{id}, pid => $pid, rd => $rd, fh => $fh, log => $r->{log}, size => 0,
                   last => $now->(), max => $r->{max} + 0, silent => $r->{silent} / 1000,
                   fd => $r->{fd}, fwd => $r->{fwd} };
  print "P $r->{id} $pid\n";
}
sub finish {
  my ($x, $why, $st) = @_;
  delete $b{$x->{id}};
  # Whatever still runs in the builder's group dies with it, as in Nix; a leader that is exiting
  # already keeps its status.
  kill 'KILL', -$x->{pid}; kill 'KILL', $x->{pid};
  close $x->{rd} unless $x->{ended}; close $x->{fh};
  while (!defined $st) {
    my $w = waitpid($x->{pid}, 0);
    if ($w == $x->{pid}) { $st = $? } elsif (!$!{EINTR}) { $st = 9 }
  }
  my ($code, $sig) = ($st & 127) ? (-1, $st & 127) : ($st >> 8, 0);
  # The started process may have written to the log itself (fd 3 mode): its size is the file's.
  my $size = -s $x->{log} // 0;
  unlink $x->{log} if $size == 0;
  print "X $x->{id} $code $sig $size $why\n";
}
while (1) {
  my $rin = '';
  vec($rin, fileno(STDIN), 1) = 1;
  my $t;
  my $t0 = $now->();
  for my $x (values %b) {
    if ($x->{ended}) { $t = 0.01; next }
    vec($rin, fileno($x->{rd}), 1) = 1;
    next unless $x->{silent};
    my $left = $x->{last} + $x->{silent} - $t0;
    $t = $left if !defined $t || $left < $t;
  }
  $t = 0 if defined $t && $t < 0;
  my $n = select(my $rout = $rin, undef, undef, $t);
  if (defined $n && $n > 0) {
    if (vec($rout, fileno(STDIN), 1)) {
      my $got = sysread(STDIN, $buf, 65536, length $buf);
      stop_all() if defined $got ? $got == 0 : !$!{EINTR};
      while (my $r = parse()) {
        if ($r->{kind} eq 'S') { start($r) } elsif ($r->{kind} eq 'L') { take_locks($r) } else { drop_locks($r) }
      }
    }
    for my $x (values %b) {
      next if $x->{ended} || !vec($rout, fileno($x->{rd}), 1);
      my $got = sysread($x->{rd}, my $data, 65536);
      next if !defined $got && ($!{EINTR} || $!{EAGAIN});
      if (!$got && $x->{fd} == 3) {
        # The sandbox's own process exits just after the builder: give it a moment to report
        # the builder's status before killing what is left.
        close $x->{rd}; $x->{ended} = $now->(); next;
      }
      if (!$got) { finish($x, 'exit'); next }
      $x->{last} = $now->();
      if ($x->{max} && $x->{size} + $got > $x->{max}) { finish($x, 'log'); next }
      syswrite($x->{fh}, $data);
      $x->{size} += $got;
      print "O $x->{id} ", unpack('H*', $data), "\n" if $x->{fwd};
    }
  }
  my $t1 = $now->();
  for my $x (values %b) {
    if ($x->{ended}) {
      if (waitpid($x->{pid}, POSIX::WNOHANG()) == $x->{pid}) { finish($x, 'exit', $?) }
      elsif ($t1 - $x->{ended} >= 0.5) { finish($x, 'exit') }
      next;
    }
    finish($x, 'silent') if $x->{silent} && $t1 - $x->{last} >= $x->{silent};
  }
}
`;
