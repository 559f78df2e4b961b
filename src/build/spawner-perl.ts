// A spawner written in Perl (perl-base is part of every Debian system): forking from a process of
// a few MB costs a third of what it costs from Node, and this runs once per builder. Same job as
// spawner-process.ts, with a simpler protocol, since core Perl has no JSON:
//   requests:  id, cmd, cwd, log, argc, args…, envc, env (KEY=VALUE)… — each field NUL-terminated
//   replies:   "P id pid" (started), "X id code signal logSize" (ended; code -1 if signalled),
//              one per line. A builder that cannot be executed writes Nix's "executing" error to
//              its log and exits 1, as under Nix.

export const PERL_SPAWNER = String.raw`
use strict; use warnings; use POSIX ();
$| = 1;
my %running;
my $chld = POSIX::SigSet->new(POSIX::SIGCHLD());
sub reap {
  while ((my $pid = waitpid(-1, POSIX::WNOHANG())) > 0) {
    my $job = delete $running{$pid} or next;
    my ($id, $log) = @$job;
    my $st = $?;
    my ($code, $sig) = ($st & 127) ? (-1, $st & 127) : ($st >> 8, 0);
    my $size = -s $log;
    $size = 0 unless defined $size;
    unlink $log if $size == 0;
    print "X $id $code $sig $size\n";
  }
}
$SIG{CHLD} = \&reap;
sub stop_all { kill 'KILL', map { -$_ } keys %running; exit 0; }
$/ = "\0";
sub field { my $f = <STDIN>; stop_all() unless defined $f; chomp $f; return $f; }
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
  if (defined $pid) { $running{$pid} = [$id, $log]; print "P $id $pid\n"; }
  else { print "X $id 1 0 0\n"; }
  POSIX::sigprocmask(POSIX::SIG_UNBLOCK(), $chld);
}
`;
