# sealchat for irssi: end-to-end encrypted sealchat rooms in your usual client.
#
# A thin adapter. Every PRIVMSG/NOTICE irssi sends or receives on a sealchat server is handed to
# the local `sealchat agent` (JSON lines over a unix socket), which holds your key and does all the
# crypto; this script only does what the agent answers: pass a line, hide it, show decrypted text,
# send ciphertext instead, or refuse. It FAILS CLOSED: when the agent cannot be reached, nothing is
# sent to an encrypted room (#sc-*, or any room the agent gave a key for), and it says so.
# It also tells the agent who joins, leaves, is kicked from or quits those rooms: once a member
# has left, text typed there is held until keybot's next key and then sent under it (never under
# the key the departed member holds), with a "held" line in the window saying why.
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
#   sealchat_marker   shown before verified messages (default a check mark)
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

our $VERSION = '0.2.0';
our %IRSSI = (
    authors     => 'sealchat',
    contact     => 'https://github.com/sealchat',
    name        => 'sealchat',
    description => 'End-to-end encrypted sealchat rooms through the local sealchat agent',
    license     => 'MIT',
);

my $ROOM_PREFIX  = '#sc-';
my $LABEL_PREFIX = 'irssi/';
# Agent protocol 2: `membership` requests, and the `hold` answer to `outgoing`.
my $AGENT_PROTOCOL = 2;
my $json         = JSON::PP->new->utf8->canonical;

my %conns;          # socket path => { sock, buf, next_id, down_until, error }
my %encrypted;      # server tag => { folded room => 1 }
my @pending_sends;  # [tag, line]
# "tag\0COMMAND\0folded target\0text" => count: lines the agent asked us to send, which our own
# outgoing hook passes as they are (they are ciphertext already, or a keybot command)
my %agent_lines;
my %last_down_notice;  # server tag => when we last said the agent is unreachable

sub casefold { my $s = shift; $s =~ tr/A-Z/a-z/; return $s }
sub to_chars { my $b = shift; return defined $b ? Encode::decode('UTF-8', $b) : '' }
sub to_bytes { my $c = shift; return defined $c ? Encode::encode('UTF-8', $c) : '' }

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

# True if text to $target could reach an encrypted room: the rule for an unreachable agent
# (docs/PROTOCOL.md "Faults"). A target that is none (a line we could not parse), any part of a
# comma list, and a STATUSMSG target (@#room) count, so nothing gets past as plaintext.
sub is_encrypted {
    my ($server, $target) = @_;
    return 1 if !defined $target || $target eq '' || $target =~ /\s/;
    for my $part (split /,/, $target, -1) {
        (my $t = casefold($part)) =~ s/^[\@%+~&]+//;
        return 1 if $t eq '' || index($t, $ROOM_PREFIX) == 0 || $encrypted{$server->{tag}}{$t};
    }
    return 0;
}

sub connected_request {
    my ($server, $fresh) = @_;
    my %req = (op => 'connected', server => to_chars(label($server)), nick => to_chars($server->{nick}),
               host => to_chars($server->{address}), port => ($server->{port} || 0) + 0,
               fresh => $fresh ? JSON::PP::true : JSON::PP::false, protocol => $AGENT_PROTOCOL);
    $req{rooms} = [ map { to_chars($_->{name}) } $server->channels() ] unless $fresh;
    return \%req;
}

# Ask the agent about $server; re-announce the connection once if the agent lost it.
sub request {
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
    effects($reply) if $reply;
    return $reply;
}

# ---- showing things ---------------------------------------------------------------------------

sub say {
    my ($server, $target, $text, $level) = @_;
    my $msglevel = ($level && $level ne 'info') ? MSGLEVEL_CLIENTERROR : MSGLEVEL_CLIENTNOTICE;
    (my $safe = to_bytes($text)) =~ s/%/%%/g;    # irssi expands %-codes in printed text
    my $item = ($target ne '') ? $server->window_item_find($target) : undef;
    if ($item) {
        $item->print("sealchat: $safe", $msglevel);
    } else {
        $server->print('', "sealchat: $safe", $msglevel);
    }
}

sub agent_down {
    my ($server, $target, $what) = @_;
    my $c = conn_for($server);
    $last_down_notice{ $server->{tag} } = Time::HiRes::time();
    say($server, $target, sprintf('%s: the sealchat agent at %s is not reachable (%s). Start it with: sealchat agent --account %s',
        $what, $c->{path}, $c->{error} || 'not running', to_chars($server->{nick})), 'error');
}

sub server_of_label {
    my ($l) = @_;
    return undef unless defined $l && index($l, $LABEL_PREFIX) == 0;
    return Irssi::server_find_tag(to_bytes(substr($l, length $LABEL_PREFIX)));
}

# Text (characters) with the verified marker or a warning, kept inside a /me.
sub with_marker {
    my ($text, $verified, $warning) = @_;
    my $tag = $verified ? to_chars(Irssi::settings_get_str('sealchat_marker')) : ($warning ? "[$warning]" : '');
    return $text if $tag eq '';
    return "\x01ACTION $tag " . substr($text, 8) if index($text, "\x01ACTION ") == 0;
    return "$tag $text";
}

sub show_message {
    my ($server, $ev) = @_;
    my $text = with_marker($ev->{text} // '', $ev->{verified}, undef);
    my ($nick, $target) = (to_bytes($ev->{from} // ''), to_bytes($ev->{target} // ''));
    if ($text =~ /^\x01ACTION (.*?)\x01?$/s) {
        Irssi::signal_emit('message irc action', $server, to_bytes($1), $nick, '', $target);
    } else {
        Irssi::signal_emit('message public', $server, to_bytes($text), $nick, '', $target);
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
            $encrypted{$server->{tag}}{ casefold(to_bytes($ev->{room})) } = 1;
        }
        say($server, to_bytes($ev->{target} // ''), $ev->{text} // '', $ev->{level});
    }
    my @sends = @{ $reply->{send} || [] };
    if (@sends) {
        Irssi::timeout_add_once(10, \&flush_sends, undef) unless @pending_sends;
        %agent_lines = () if keys %agent_lines > 1000;    # bounded, should a hook never see its line
        for my $s (@sends) {
            next unless defined $s->{server} && index($s->{server}, $LABEL_PREFIX) == 0 && defined $s->{line};
            my ($tag, $line) = (to_bytes(substr($s->{server}, length $LABEL_PREFIX)), to_bytes($s->{line}));
            push @pending_sends, [ $tag, $line ];
            $agent_lines{ agent_line_key($tag, $1, $2, $3) }++ if $line =~ /^(PRIVMSG|NOTICE) (\S+) :?(.*)$/si;
        }
    }
}

sub flush_sends {
    my @items = @pending_sends;
    @pending_sends = ();
    for my $it (@items) {
        my $server = Irssi::server_find_tag($it->[0]);
        $server->send_raw($it->[1]) if $server && $server->{connected};
    }
}

# ---- IRC lines ----------------------------------------------------------------------------------

sub agent_line_key {
    my ($tag, $command, $target, $text) = @_;
    return join "\0", $tag, uc $command, casefold($target), $text;
}

# True once for each line the agent asked us to send: it goes out as it is.
sub take_agent_line {
    my $key = agent_line_key(@_);
    return 0 unless $agent_lines{$key};
    delete $agent_lines{$key} unless --$agent_lines{$key};
    return 1;
}

# server outgoing modify: every raw line; PRIVMSG/NOTICE are encrypted, refused or passed.
sub on_outgoing {
    my ($server, $dataref) = @_;
    return unless protected($server) && ref $dataref;
    my $line = $$dataref;
    if ($line =~ /^(?:\@\S+ )?TOPIC (\S+) :?(.+)$/si) {
        # A topic is plaintext to the server, so none is set on an encrypted room.
        my $target = $1;
        my $reply = request($server, { op => 'check', server => to_chars(label($server)), target => to_chars($target) });
        my $sealed = ($reply && $reply->{ok}) ? $reply->{encrypted} : is_encrypted($server, $target);
        if ($sealed) {
            say($server, $target, "NOT SENT: the topic of $target would not be encrypted", 'error');
            $$dataref = '';
        }
        return;
    }
    # Parameters may be separated by more than one space, and the server reads them so.
    if ($line =~ /^(?:\@\S+ +)?(?:PRIVMSG|NOTICE)(?: |$)/i && $line !~ /^(?:\@\S+ +)?(?:PRIVMSG|NOTICE) +\S+ +\S/i) {
        # A PRIVMSG or NOTICE we cannot read is never passed on: it might be for a room.
        say($server, '', "NOT SENT: a PRIVMSG/NOTICE line sealchat cannot parse", 'error');
        $$dataref = '';
        return;
    }
    return unless $line =~ /^((?:\@\S+ +)?(PRIVMSG|NOTICE) +(\S+)) +:?(.*)$/si;
    my ($head, $command, $target, $text) = ($1, uc $2, $3, $4);
    return if take_agent_line($server->{tag}, $command, $target, $text);
    my $reply = request($server, { op => 'outgoing', server => to_chars(label($server)), target => to_chars($target),
                                   command => $command, text => to_chars($text) });
    if (!$reply || !$reply->{ok}) {
        return unless is_encrypted($server, $target);
        if ($reply) {
            say($server, $target, "NOT SENT to $target: " . ($reply->{error} // 'the agent refused'), 'error');
        } else {
            agent_down($server, $target, "NOT SENT to $target");
        }
        $$dataref = '';
        return;
    }
    my $action = $reply->{action} // 'pass';
    if ($action eq 'send') {
        $$dataref = join "\r\n", map { "$head :" . to_bytes($_) } @{ $reply->{lines} || [] };
    } elsif ($action eq 'refuse') {
        say($server, $target, 'NOT SENT: ' . ($reply->{reason} // 'refused'), 'error');
        $$dataref = '';
    } elsif ($action eq 'hold') {
        # Not sent now: the agent sends it under the room's next key (or says NOT SENT).
        say($server, $target, 'held: ' . ($reply->{reason} // "waiting for the room's new key"), 'warn');
        $$dataref = '';
    }
}

# event privmsg / event notice: ($server, "target :text", $nick, $address).
sub on_incoming {
    my ($command, $server, $data, $nick, $address) = @_;
    return unless protected($server) && defined $nick && $nick ne '' && defined $address && $address ne '';
    return unless $data =~ /^(\S+) :?(.*)$/s;
    my ($target, $text) = ($1, $2);
    my $reply = request($server, { op => 'incoming', server => to_chars(label($server)), from => to_chars($nick),
                                   target => to_chars($target), command => $command, text => to_chars($text) });
    if (!$reply || !$reply->{ok}) {
        # Fail closed: never show sealchat traffic as if it were text, flag plaintext in a room.
        if ($text =~ /^SC1/) {
            if ($text =~ /^SC1M / || $text =~ /^SC1[EP] \S+ 1\//) {
                if ($reply) { say($server, $target, "cannot decrypt a message from $nick: " . ($reply->{error} // ''), 'error') }
                # One note per few seconds: a busy room would otherwise flood the window.
                elsif (Time::HiRes::time() - ($last_down_notice{ $server->{tag} } // 0) > 5) {
                    agent_down($server, $target, "cannot decrypt a message from $nick");
                }
            }
            Irssi::signal_stop();
            return;
        }
        if (is_encrypted($server, $target)) {
            Irssi::signal_continue($server, "$target :" . to_bytes(with_marker(to_chars($text), 0, 'NOT ENCRYPTED, NOT VERIFIED')), $nick, $address);
        }
        return;
    }
    my $action = $reply->{action} // 'pass';
    if ($action eq 'hide') {
        Irssi::signal_stop();
    } elsif ($action eq 'show') {
        my $shown = with_marker($reply->{text} // '', $reply->{verified}, $reply->{warning});
        Irssi::signal_continue($server, "$target :" . to_bytes($shown), $nick, $address);
    }
}

# True (and says why) if text for $target would not be sent: checked before irssi sends and echoes it.
sub refused_before_echo {
    my ($server, $target) = @_;
    return 0 unless $server && protected($server) && defined $target && $target ne '';
    my $reply = request($server, { op => 'check', server => to_chars(label($server)), target => to_chars($target) });
    if (!$reply) {
        return 0 unless is_encrypted($server, $target);
        agent_down($server, $target, "NOT SENT to $target");
        return 1;
    }
    if ($reply->{ok} && $reply->{encrypted} && !$reply->{canSend}) {
        say($server, $target, 'NOT SENT: ' . ($reply->{reason} // 'no key'), 'error');
        return 1;
    }
    return 0;
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

# message join / part / kick / quit: who came or went, for the agent's keys (ours are wiped when
# we leave). Rooms only; a QUIT concerns every room the quitter was in.
sub membership {
    my ($server, $kind, $room, $nick) = @_;
    return unless protected($server) && defined $nick && $nick ne '';
    return if defined $room && !is_encrypted($server, $room);
    my %req = (op => 'membership', server => to_chars(label($server)), kind => $kind, nick => to_chars($nick),
               me => to_chars($server->{nick}));
    $req{room} = to_chars($room) if defined $room;
    request($server, \%req);
}

sub on_join { my ($server, $channel, $nick) = @_; membership($server, 'join', $channel, $nick) }
sub on_part { my ($server, $channel, $nick) = @_; membership($server, 'part', $channel, $nick) }
sub on_kick { my ($server, $channel, $nick) = @_; membership($server, 'kick', $channel, $nick) }
sub on_quit { my ($server, $nick) = @_; membership($server, 'quit', undef, $nick) }

sub on_connected {
    my ($server) = @_;
    return unless protected($server);
    $encrypted{$server->{tag}} = {};
    my $reply = request($server, connected_request($server, 1));
    if (!$reply) {
        agent_down($server, '', 'encrypted rooms are refused');
    } elsif (!$reply->{ok}) {
        say($server, '', 'the agent refused this connection: ' . ($reply->{error} // ''), 'error');
    }
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
    my $reply = request($server, { op => 'status', server => to_chars(label($server)) });
    return agent_down($server, '', 'status unknown') unless $reply;
    for my $s (@{ $reply->{servers} || [] }) {
        my $kb = $s->{keybot} || {};
        say($server, '', sprintf('agent for %s; keybot key: %s %s', $reply->{account} // '?', $kb->{status} // '?', $kb->{fingerprint} // ''));
        for my $r (@{ $s->{rooms} || [] }) {
            say($server, '', sprintf('  %s: %s (epoch %s) members: %s', $r->{room}, $r->{hasKey} ? 'key held' : 'no key',
                $r->{epoch} // '-', join(', ', @{ $r->{members} || [] })));
        }
    }
}

Irssi::settings_add_str('sealchat', 'sealchat_socket', '');
Irssi::settings_add_str('sealchat', 'sealchat_servers', '*');
Irssi::settings_add_str('sealchat', 'sealchat_timeout', '3');
Irssi::settings_add_str('sealchat', 'sealchat_marker', "\xe2\x9c\x93");

Irssi::signal_add_first('server outgoing modify', \&on_outgoing);
# Before irssi's own CTCP handling (which is also "first"), so a decrypted /me is seen as one.
Irssi::signal_add_priority('event privmsg', sub { on_incoming('PRIVMSG', @_) }, Irssi::SIGNAL_PRIORITY_HIGH() - 1);
Irssi::signal_add_priority('event notice', sub { on_incoming('NOTICE', @_) }, Irssi::SIGNAL_PRIORITY_HIGH() - 1);
Irssi::signal_add_first('send text', \&on_send_text);
Irssi::signal_add_first('command msg', \&on_command_msg);
Irssi::signal_add('message join', \&on_join);
Irssi::signal_add('message part', \&on_part);
Irssi::signal_add('message kick', \&on_kick);
Irssi::signal_add('message quit', \&on_quit);
Irssi::signal_add_last('event 001', \&on_connected);
Irssi::signal_add('server disconnected', \&on_disconnected);
Irssi::timeout_add(1000, \&poll, undef);
Irssi::command_bind('sealchat', \&cmd_status);

# Loaded while already connected: re-attach to the agent's sessions (keys kept).
for my $server (Irssi::servers()) {
    next unless $server->{connected} && protected($server);
    agent_down($server, '', 'encrypted rooms are refused') unless request($server, connected_request($server, 0));
}

if (Irssi::settings_get_time('cmd_queue_speed') > 0) {
    Irssi::print('sealchat: set /set cmd_queue_speed 0 BEFORE connecting: irssi otherwise delays every line after a long '
        . '(ciphertext) one by seconds', MSGLEVEL_CLIENTERROR);
}
