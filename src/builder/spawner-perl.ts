// A spawner written in Perl (perl-base is part of every Debian system): forking from a process of
// a few MB costs a third of what it costs from Node, and this runs once per builder. Same job as
// spawner-process.ts, with a simpler protocol, since core Perl has no JSON:
//   requests:  id, cmd, cwd, log, argc, args…, envc, env (KEY=VALUE)… — each field NUL-terminated
//   replies:   "P id pid" (started), "X id code signal logSize" (ended; code -1 if signalled),
//              one per line. A builder that cannot be executed writes Nix's "executing" error to
//              its log and exits 1, as under Nix.
// Children are reaped by the SIGCHLD handler and after every wait for input: Perl runs handlers
// between ops, so a signal that lands just before a blocking read would otherwise wait for the
// next request, which never comes while every build slot waits for an exit (a deadlock seen
// under load). The wait is a select with a 0.1 s timeout over our own buffer, and a child reaped
// before it was registered is remembered.

export const PERL_SPAWNER = String.raw`
use strict; use warnings; use POSIX ();
$| = 1;
my %running;
my $chld = POSIX::SigSet->new(POSIX::SIGCHLD());
my %early;
sub ended {
  my ($pid, $st) = @_;
  my ($id, $log) = @{ delete $running{$pid} };
  my ($code, $sig) = ($st & 127) ? (-1, $st & 127) : ($st >> 8, 0);
  my $size = -s $log;
  $size = 0 unless defined $size;
  unlink $log if $size == 0;
  print "X $id $code $sig $size\n";
}
our $reaping = 0;
sub reap {
  # Called by the handler and directly; Perl may run the handler between any two ops, also
  # inside a direct call, where it would reset $? under us: one reaper at a time.
  return if $reaping;
  local $reaping = 1;
  while ((my $pid = waitpid(-1, POSIX::WNOHANG())) > 0) {
    my $st = $?;
    if ($running{$pid}) { ended($pid, $st) } else { $early{$pid} = $st }
  }
}
$SIG{CHLD} = \&reap;
sub stop_all { kill 'KILL', map { -$_ } keys %running; exit 0; }
my $buf = '';
sub field {
  while (1) {
    my $i = index($buf, "\0");
    if ($i >= 0) { my $f = substr($buf, 0, $i); substr($buf, 0, $i + 1, ''); return $f; }
    my $rin = ''; vec($rin, fileno(STDIN), 1) = 1;
    my $n = select(my $rout = $rin, undef, undef, 0.1);
    reap();
    next unless defined $n && $n > 0;
    my $got = sysread(STDIN, $buf, 65536, length $buf);
    next if !defined $got && $!{EINTR};
    stop_all() unless $got;
  }
}
sub mkdirs { my ($d) = @_; my $p = ''; for my $part (grep { length } split m{/}, $d) { $p .= "/$part"; mkdir $p; } }
while (1) {
  my $id = field(); my $cmd = field(); my $cwd = field(); my $log = field();
  my @args = map { field() } 1 .. field();
  my %env = map { my $kv = field(); my $i = index($kv, '='); (substr($kv, 0, $i), substr($kv, $i + 1)) } 1 .. field();
  POSIX::sigprocmask(POSIX::SIG_BLOCK(), $chld);
  my $pid = fork();
  if (defined $pid && $pid == 0) {
    POSIX::sigprocmask(POSIX::SIG_UNBLOCK(), $chld);
    $SIG{CHLD} = 'DEFAULT';
    POSIX::setsid();
    (my $dir = $log) =~ s{/[^/]*$}{};
    mkdirs($dir) unless -d $dir;
    open(my $out, '>', $log) or POSIX::_exit(126);
    open(STDIN, '<', '/dev/null');
    POSIX::dup2(fileno($out), 1); POSIX::dup2(fileno($out), 2);
    chdir $cwd or do { print STDERR "error: changing into '$cwd': $!\n"; POSIX::_exit(1) };
    %ENV = %env;
    { no warnings; exec { $cmd } $cmd, @args; }
    print STDERR "error: executing '$cmd': $!\n";
    POSIX::_exit(1);
  }
  if (defined $pid) {
    $running{$pid} = [$id, $log];
    print "P $id $pid\n";
    ended($pid, delete $early{$pid}) if exists $early{$pid};
  }
  else { print "X $id 1 0 0\n"; }
  POSIX::sigprocmask(POSIX::SIG_UNBLOCK(), $chld);
}
`;
