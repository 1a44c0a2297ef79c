# sealchat for irssi: end-to-end encrypted sealchat rooms in your usual client.
#
# A pure adapter. Every PRIVMSG, NOTICE and TOPIC irssi sends, and every PRIVMSG, NOTICE, JOIN,
# PART, KICK and QUIT it receives, on a sealchat server is handed as it is to the local
# `sealchat agent` (JSON lines over a unix socket, agent protocol 3), which holds your key, does
# all the crypto and decides; this script applies its answer: pass the line, hide it, process
# another line instead, send other lines instead, or drop it (refused, or held for the room's
# next key). What the agent wants shown or sent by itself comes with its answers.
#
# When the agent cannot answer, the script FAILS CLOSED by the one rule in the sealchat
# repository's docs/PROTOCOL.md ("Faults", "Targets"), which the WeeChat script follows too:
# nothing goes to an encrypted room (#sc-*, or any room the agent gave a key for), sealchat
# ciphertext is hidden, and it says so.
#
# Install: copy to ~/.irssi/scripts/autorun/ (or /script load /path/to/sealchat.pl); run
# `sealchat agent --account NICK` first; and BEFORE connecting: /set cmd_queue_speed 0 (irssi
# otherwise holds every line after a long one for seconds, and ciphertext lines are long).
# See docs/COMPANIONS.md ("Plugins") in the sealchat repository.
#
# Settings (/set sealchat_...):
#   sealchat_socket   agent socket; "" = $SEALCHAT_HOME or ~/.sealchat, then agent-<nick>.sock
#   sealchat_servers  space/comma-separated server tags to protect; "*" = all (default)
#   sealchat_timeout  seconds to wait for the agent (default 3)
#   sealchat_marker   shown before verified messages (default a check mark; from the next connection)
#
# Perl core modules only.

use strict;
use warnings;
use Irssi;
use IO::Socket::UNIX;
use IO::Select;
use Socket qw(SOCK_STREAM);
use JSON::PP;
use Encode ();
use Time::HiRes ();

our $VERSION = '0.3.0';
our %IRSSI = (
    authors     => 'sealchat',
    contact     => 'https://github.com/sealchat',
    name        => 'sealchat',
    description => 'End-to-end encrypted sealchat rooms through the local sealchat agent',
    license     => 'MIT',
);

my $AGENT_PROTOCOL = 3;
my $LABEL_PREFIX   = 'irssi/';
my $json           = JSON::PP->new->utf8->canonical;

my %conns;             # socket path => { sock, buf, next_id, down_until, error }
my %encrypted;         # server tag => { casefolded room the agent named in a `key` event => 1 }
my @pending_sends;     # [tag, line]: raw lines the agent asked us to send
my %last_down_notice;  # server tag => when we last said a received line was hidden without the agent

sub to_chars { my $b = shift; return defined $b ? Encode::decode('UTF-8', $b) : '' }
sub to_bytes { my $c = shift; return defined $c ? Encode::encode('UTF-8', $c) : '' }

# ---- without the agent: docs/PROTOCOL.md "Targets", the same in sealchat.py ---------------------

my $LINE_RE            = qr/^ *(?:@[^ ]* +)?(?::([^ ]*) +)?([^ ]+) *([^ ]*) *(.*)$/;
my $ROOM_PREFIX        = '#sc-';
my $STATUSMSG_PREFIXES = qr/^[\@%+~&]+/;
my $SEALED_PREFIX      = 'SC1';
my $NOT_SEALED         = '[NOT ENCRYPTED, NOT VERIFIED] ';

sub casefold { my $s = shift; $s =~ tr/A-Z/a-z/; return $s }

sub sealed {
    my ($server, $target) = @_;
    return 1 if $target eq '' || index($target, ':') == 0;
    for my $part (split /,/, $target, -1) {
        (my $t = casefold($part)) =~ s/$STATUSMSG_PREFIXES//;
        return 1 if $t eq '' || index($t, $ROOM_PREFIX) == 0 || $encrypted{ $server->{tag} }{$t};
    }
    return 0;
}

# The line (bytes) to use instead of $line when the agent cannot answer ('' drops it).
sub without_agent {
    my ($server, $direction, $line, $why) = @_;
    return $line unless $line =~ $LINE_RE;
    my ($source, $command, $target, $rest) = ($1 // '', uc $2, $3, $4);
    (my $text = $rest) =~ s/^://;
    if ($direction eq 'out') {
        if (($command eq 'PRIVMSG' || $command eq 'NOTICE' || ($command eq 'TOPIC' && $text ne '')) && sealed($server, $target)) {
            say($server, $target, "NOT SENT to $target: $why", 'error');
            return '';
        }
        return $line;
    }
    return $line unless $command eq 'PRIVMSG' || $command eq 'NOTICE';
    if (index($text, $SEALED_PREFIX) == 0) {
        if (Time::HiRes::time() - ($last_down_notice{ $server->{tag} } // 0) > 5) {
            $last_down_notice{ $server->{tag} } = Time::HiRes::time();
            say($server, $target, 'cannot decrypt a message from ' . (split /!/, $source)[0] . ": $why", 'error');
        }
        return '';
    }
    if (sealed($server, $target)) {
        my $head = substr($line, 0, length($line) - length($text));
        if (index($text, "\x01ACTION ") == 0) {
            $head .= "\x01ACTION ";
            $text = substr($text, 8);
        }
        return $head . $NOT_SEALED . $text;
    }
    return $line;
}

# ---- the agent connection ---------------------------------------------------------------------

sub timeout_s {
    my $t = Irssi::settings_get_str('sealchat_timeout');
    return ($t =~ /^\d+(?:\.\d+)?$/ && $t > 0.2) ? $t : 3;
}

sub socket_path {
    my ($server) = @_;
    my $configured = Irssi::settings_get_str('sealchat_socket');
    if ($configured ne '') {
        $configured =~ s{^~(?=/|$)}{$ENV{HOME}};
        return $configured;
    }
    my $home = $ENV{SEALCHAT_HOME} || (($ENV{HOME} || '') . '/.sealchat');
    return "$home/agent-$server->{nick}.sock";
}

sub conn_for {
    my ($server) = @_;
    my $path = socket_path($server);
    $conns{$path} ||= { path => $path, sock => undef, buf => '', next_id => 1, down_until => 0, error => '' };
    return $conns{$path};
}

sub conn_close {
    my ($c) = @_;
    close($c->{sock}) if $c->{sock};
    $c->{sock} = undef;
    $c->{buf}  = '';
}

# One request, one reply (a hash), or undef when the agent cannot be reached in time.
sub conn_call {
    my ($c, $req) = @_;
    return undef if Time::HiRes::time() < $c->{down_until};
    my $timeout = timeout_s();
    my $reply = eval {
        local $SIG{PIPE} = 'IGNORE';
        if (!$c->{sock}) {
            my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $c->{path})
                or die "cannot connect: $!\n";
            $c->{sock} = $s;
            $c->{buf}  = '';
        }
        my $id = $c->{next_id}++;
        my $line = $json->encode({ %$req, id => $id }) . "\n";
        my $off = 0;
        while ($off < length $line) {
            my $n = syswrite($c->{sock}, $line, length($line) - $off, $off);
            die "write failed: $!\n" unless defined $n;
            $off += $n;
        }
        my $deadline = Time::HiRes::time() + $timeout;
        my $sel = IO::Select->new($c->{sock});
        while (1) {
            my $nl = index($c->{buf}, "\n");
            if ($nl >= 0) {
                my $l = substr($c->{buf}, 0, $nl);
                $c->{buf} = substr($c->{buf}, $nl + 1);
                my $r = $json->decode($l);
                return $r if ref $r eq 'HASH' && defined $r->{id} && $r->{id} eq $id;
                next;    # a late reply to an earlier request
            }
            my $left = $deadline - Time::HiRes::time();
            die "timeout\n" if $left <= 0;
            die "timeout\n" unless $sel->can_read($left);
            my $n = sysread($c->{sock}, my $chunk, 65536);
            die "read failed: $!\n" unless defined $n;
            die "the agent closed the connection\n" if $n == 0;
            $c->{buf} .= $chunk;
        }
    };
    if (!$reply) {
        my $err = $@ || 'no reply';
        chomp $err;
        $c->{error} = $err;
        # A hung agent would freeze irssi on every line: back off for a while.
        $c->{down_until} = Time::HiRes::time() + ($err eq 'timeout' ? 5 : 0.5);
        conn_close($c);
        return undef;
    }
    $c->{error} = '';
    return $reply;
}

sub protected {
    my ($server) = @_;
    return 0 unless $server && $server->{chat_type} && $server->{chat_type} eq 'IRC';
    my @tags = grep { $_ ne '' } split /[\s,]+/, Irssi::settings_get_str('sealchat_servers');
    return 1 if !@tags || grep { $_ eq '*' } @tags;
    return scalar grep { casefold($_) eq casefold($server->{tag}) } @tags;
}

sub label { return $LABEL_PREFIX . $_[0]->{tag} }

sub server_of_label {
    my ($l) = @_;
    return undef unless defined $l && index($l, $LABEL_PREFIX) == 0;
    return Irssi::server_find_tag(to_bytes(substr($l, length $LABEL_PREFIX)));
}

sub connected_request {
    my ($server, $fresh) = @_;
    my %req = (op => 'connected', server => to_chars(label($server)), nick => to_chars($server->{nick}),
               host => to_chars($server->{address}), port => ($server->{port} || 0) + 0,
               fresh => $fresh ? JSON::PP::true : JSON::PP::false, protocol => $AGENT_PROTOCOL,
               marker => to_chars(Irssi::settings_get_str('sealchat_marker')));
    $req{rooms} = [ map { to_chars($_->{name}) } $server->channels() ] unless $fresh;
    return \%req;
}

# One request about $server: ($reply) or (undef, $why) when the agent cannot answer. A restarted
# agent does not know the connection: it is told again (keys kept), then asked.
sub ask {
    my ($server, $req) = @_;
    my $c = conn_for($server);
    my $reply = conn_call($c, $req);
    if ($reply && !$reply->{ok} && ($reply->{code} || '') eq 'unknown-server') {
        my $again = conn_call($c, connected_request($server, 0));
        if ($again) {
            effects($again);
            $reply = conn_call($c, $req) if $again->{ok};
        }
    }
    return (undef, sprintf('the sealchat agent at %s is not reachable (%s). Start it with: sealchat agent --account %s',
        $c->{path}, $c->{error} || 'not running', to_chars($server->{nick}))) unless $reply;
    effects($reply);
    return (undef, $reply->{error} // 'the agent refused') unless $reply->{ok};
    return ($reply);
}

# The line (bytes) irssi goes on with: the agent's answer applied, or the rule without it.
sub apply_line {
    my ($server, $direction, $line) = @_;
    my ($reply, $why) = ask($server, { op => 'line', server => to_chars(label($server)), dir => $direction, line => to_chars($line) });
    return without_agent($server, $direction, $line, to_bytes($why)) unless $reply;
    my $action = $reply->{action} // '';
    return $line if $action eq 'pass';
    return to_bytes($reply->{line} // '') if $action eq 'show' && $direction eq 'in';
    return join "\r\n", map { to_bytes($_) } @{ $reply->{lines} || [] } if $action eq 'send' && $direction eq 'out';
    return '';    # hide, refuse, hold, and anything this script does not know
}

# ---- showing what the agent says ----------------------------------------------------------------

sub say {
    my ($server, $target, $text, $level) = @_;
    my $msglevel = ($level && $level ne 'info') ? MSGLEVEL_CLIENTERROR : MSGLEVEL_CLIENTNOTICE;
    (my $safe = $text) =~ s/%/%%/g;    # irssi expands %-codes in printed text
    my $item = ($target ne '') ? $server->window_item_find($target) : undef;
    if ($item) {
        $item->print("sealchat: $safe", $msglevel);
    } else {
        $server->print('', "sealchat: $safe", $msglevel);
    }
}

# A room message the agent released (its text marked already), as irssi shows one received.
sub show_message {
    my ($server, $ev) = @_;
    my ($text, $nick, $target) = map { to_bytes($_ // '') } @$ev{qw(text from target)};
    if ($text =~ /^\x01ACTION (.*?)\x01?$/s) {
        Irssi::signal_emit('message irc action', $server, $1, $nick, '', $target);
    } else {
        Irssi::signal_emit('message public', $server, $text, $nick, '', $target);
    }
}

# Show the events of a reply; queue its sends (sent from a timer, outside any signal handler).
sub effects {
    my ($reply) = @_;
    for my $ev (@{ $reply->{events} || [] }) {
        my $server = server_of_label($ev->{server});
        next unless $server;
        if (($ev->{type} // '') eq 'message') {
            show_message($server, $ev);
            next;
        }
        if (($ev->{type} // '') eq 'key' && defined $ev->{room}) {
            $encrypted{ $server->{tag} }{ casefold(to_bytes($ev->{room})) } = 1;
        }
        say($server, to_bytes($ev->{target} // ''), to_bytes($ev->{text} // ''), $ev->{level});
    }
    my @sends = grep { defined $_->{server} && index($_->{server}, $LABEL_PREFIX) == 0 && defined $_->{line} } @{ $reply->{send} || [] };
    Irssi::timeout_add_once(10, \&flush_sends, undef) if @sends && !@pending_sends;
    push @pending_sends, map { [ to_bytes(substr($_->{server}, length $LABEL_PREFIX)), to_bytes($_->{line}) ] } @sends;
}

sub flush_sends {
    my @items = @pending_sends;
    @pending_sends = ();
    for my $it (@items) {
        my $server = Irssi::server_find_tag($it->[0]);
        $server->send_raw($it->[1]) if $server && $server->{connected};
    }
}

# ---- irssi's signals ----------------------------------------------------------------------------

# server outgoing modify: every raw line; PRIVMSG, NOTICE and TOPIC go through the agent.
sub on_outgoing {
    my ($server, $dataref) = @_;
    return unless protected($server) && ref $dataref && $$dataref =~ $LINE_RE && uc($2) =~ /^(?:PRIVMSG|NOTICE|TOPIC)$/;
    my $line = apply_line($server, 'out', $$dataref);
    $$dataref = $line if $line ne $$dataref;
}

# server incoming: every raw line, before irssi reads it (so a decrypted /me is handled as one);
# PRIVMSG, NOTICE, JOIN, PART, KICK, QUIT and INVITE go through the agent (on an ordinary IRC
# network it joins keybot's rooms on keybot's INVITE), and CAP, BATCH, FAIL and 005 for its
# history catch-up (it asks for the capabilities, and hides their answer and the batch).
sub on_incoming {
    my ($server, $raw) = @_;
    return unless protected($server) && $raw =~ $LINE_RE && uc($2) =~ /^(?:PRIVMSG|NOTICE|JOIN|PART|KICK|QUIT|INVITE|CAP|BATCH|FAIL|005)$/;
    my $line = apply_line($server, 'in', $raw);
    if ($line eq '') {
        Irssi::signal_stop();
    } elsif ($line ne $raw) {
        Irssi::signal_continue($server, $line);
    }
}

# True (the user is told why) if text for $target would not be sent: asked before irssi sends and echoes it.
sub refused_before_echo {
    my ($server, $target) = @_;
    return 0 unless $server && protected($server) && defined $target && $target ne '';
    my ($reply, $why) = ask($server, { op => 'check', server => to_chars(label($server)), target => to_chars($target) });
    return without_agent($server, 'out', "PRIVMSG $target :", to_bytes($why)) eq '' unless $reply;
    return ($reply->{action} // '') eq 'refuse';
}

# send text: text typed into a channel window.
sub on_send_text {
    my ($text, $server, $item) = @_;
    return unless $item && $item->{type} && $item->{type} eq 'CHANNEL';
    Irssi::signal_stop() if refused_before_echo($server, $item->{name});
}

# /msg [-tag] [-channel|-nick] TARGET TEXT
sub on_command_msg {
    my ($args, $server, $item) = @_;
    my @w = split / /, $args;
    while (@w && $w[0] =~ /^-(\S+)$/) {
        my $o = $1;
        shift @w;
        $server = Irssi::server_find_tag($o) || $server unless $o =~ /^(?:channel|nick)$/i;
    }
    return unless @w >= 2;
    my $target = $w[0];
    $target = $item->{name} if $target eq '*' && $item;
    Irssi::signal_stop() if refused_before_echo($server, $target);
}

sub announce {
    my ($server, $fresh) = @_;
    $encrypted{ $server->{tag} } ||= {};
    my ($reply, $why) = ask($server, connected_request($server, $fresh));
    say($server, '', 'encrypted rooms are refused: ' . to_bytes($why), 'error') unless $reply;
}

sub on_connected {
    my ($server) = @_;
    return unless protected($server);
    $encrypted{ $server->{tag} } = {};
    announce($server, 1);
}

sub on_disconnected {
    my ($server) = @_;
    return unless protected($server) && $server->{nick};
    conn_call(conn_for($server), { op => 'disconnected', server => to_chars(label($server)) });
}

# About once a second: collect what the agent wants shown or sent (keys, late messages).
sub poll {
    my %seen;
    for my $server (Irssi::servers()) {
        next unless $server->{connected} && protected($server);
        my $c = conn_for($server);
        next if $seen{ $c->{path} }++;
        my $reply = conn_call($c, { op => 'poll' });
        effects($reply) if $reply;
    }
}

sub cmd_status {
    my ($args, $server) = @_;
    unless ($server && protected($server)) {
        Irssi::print('sealchat: run /sealchat in a window of a sealchat server');
        return;
    }
    my ($reply, $why) = ask($server, { op => 'status', server => to_chars(label($server)) });
    return say($server, '', 'status unknown: ' . to_bytes($why), 'error') unless $reply;
    for my $s (@{ $reply->{servers} || [] }) {
        my $kb = $s->{keybot} || {};
        say($server, '', to_bytes(sprintf('agent for %s; keybot key: %s %s', $reply->{account} // '?', $kb->{status} // '?', $kb->{fingerprint} // '')));
        for my $r (@{ $s->{rooms} || [] }) {
            say($server, '', to_bytes(sprintf('  %s: %s (epoch %s) members: %s', $r->{room}, $r->{hasKey} ? 'key held' : 'no key',
                $r->{epoch} // '-', join(', ', @{ $r->{members} || [] }))));
        }
    }
}

Irssi::settings_add_str('sealchat', 'sealchat_socket', '');
Irssi::settings_add_str('sealchat', 'sealchat_servers', '*');
Irssi::settings_add_str('sealchat', 'sealchat_timeout', '3');
Irssi::settings_add_str('sealchat', 'sealchat_marker', "\xe2\x9c\x93");

Irssi::signal_add_first('server outgoing modify', \&on_outgoing);
Irssi::signal_add_first('server incoming', \&on_incoming);
Irssi::signal_add_first('send text', \&on_send_text);
Irssi::signal_add_first('command msg', \&on_command_msg);
Irssi::signal_add_last('event 001', \&on_connected);
Irssi::signal_add('server disconnected', \&on_disconnected);
Irssi::timeout_add(1000, \&poll, undef);
Irssi::command_bind('sealchat', \&cmd_status);

# Loaded while already connected: re-attach to the agent's sessions (keys kept).
for my $server (Irssi::servers()) {
    announce($server, 0) if $server->{connected} && protected($server);
}

if (Irssi::settings_get_time('cmd_queue_speed') > 0) {
    Irssi::print('sealchat: set /set cmd_queue_speed 0 BEFORE connecting: irssi otherwise delays every line after a long '
        . '(ciphertext) one by seconds', MSGLEVEL_CLIENTERROR);
}
