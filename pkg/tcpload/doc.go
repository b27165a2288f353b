// Package tcpload moves bytes over TCP the way the seed's test programs do: one epoll loop per
// process on one thread (a goroutine whose system calls bypass the Go scheduler; see runLoop),
// level-triggered events, a fixed application buffer per read/write; as in the seed, the
// writer's sockets are non-blocking and the reader's reads block once the session runs (bounded;
// see blockingReads). A Server accepts a session of connections from one Client; by default the
// server writes and the client reads (the seed's "server push"); the client may push instead.
// Two departures from the seed by default: every socket's written but unsent bytes are bounded
// (TCP_NOTSENT_LOWAT, Options.NotSentLowat), which keeps a saturated session out of the state in
// which every queue is full and every copy misses the cache; and the reader, when nothing is
// readable, naps briefly and then reads what came in one turn (Config.ReadBatch) instead of
// being woken by every readable socket, which spares both sides a wake-up per read.
//
// The measurement window opens only after every connection is up and a warm-up has passed, and
// closes when the client's duration ends; per-interval and per-connection byte counts, set-up
// time and TCP_INFO retransmits are reported. CPU and interface accounting are left to a Probe,
// called at window and interval edges only.
//
// The engine is Linux only (epoll, TCP_INFO, MSG_ZEROCOPY, the thread CPU clock). Its files carry
// a linux build tag; on other systems the configuration, header and result types still build and
// Listen and RunClient return ErrLinuxOnly.
//
// Files by concern: config.go and pace.go (what a session is asked to do, validated field by
// field), header.go (the session protocol), phase.go (the session's phases), loop.go (the epoll
// loop and its thread), conn.go (per-connection state), transfer.go (reads and writes),
// pacer.go (paced sending), window.go (window and interval accounting), session.go (phase
// transitions and the end of a session), server.go and client.go (set-up of each side),
// burn.go (the self-test CPU burner), sockopt.go (socket options and raw syscalls).
package tcpload

import "errors"

// ErrLinuxOnly is returned by Listen and RunClient on systems other than Linux.
var ErrLinuxOnly = errors.New("tcpload: the engine is Linux only (epoll); build and run it on Linux")
