// Package proc is the project's one layer for local processes: the
// PostgreSQL and Redis servers of service/devenv and the service instances
// of harness/env are all started, signalled, measured and logged through it,
// and all take their TCP ports from its one registry. It lives at the module
// root so that the service's tests and the harness can both import it.
//
// # Processes
//
// [Start] runs a [Command]: a program, its arguments and its whole
// environment, with its output appended to a log file, optionally as the
// leader of a process group of its own ([Command.Group]) and optionally as
// the root of a tree whose members leave that group ([Command.Tree]:
// PostgreSQL's backends call setsid). A goroutine waits for the process, so
// it is always reaped; [Process.Done] is closed then. The controls are
//
//	Signal, SignalGroup  one signal to the leader, or to its group
//	Pause                SIGSTOP to everything; returns once every thread
//	                     of every process reached is stopped
//	Resume               SIGCONT to everything
//	Kill                 SIGKILL to everything; returns once reaped
//	Terminate            a stop signal to everything, then at most a drain
//	                     limit before Kill (a service instance)
//	Shutdown             resume, a stop signal to the leader alone (a server
//	                     that stops its own children), wait for the exit
//
// "Everything" is the leader, its group when it has one, and for a tree
// each child of the leader, listed from /proc while the leader is stopped
// (so that it cannot fork new ones, and their pids cannot be reused).
//
// kill(2) only queues SIGSTOP: a thread running on another CPU can still
// answer a request after it returns (CI once saw /health answer from such a
// thread). Pause therefore waits, with [WaitStopped], until the kernel shows
// every thread stopped before it calls the process paused.
//
// # Resource usage
//
// [ReadUsage] reads one process's CPU time and resident set from /proc;
// [ReadTreeUsage] reads a process and all its live descendants, and adds the
// CPU time of the descendants already reaped (cutime and cstime, which the
// kernel adds to a parent when it waits for a child). The walk reads each
// process before it lists that process's children, so a child reaped during
// the walk is counted at most once (at worst it is missed by that one
// reading). A descendant whose parent dies is re-parented outside the tree,
// and its CPU time from then on is lost to the tree: the processes measured
// here (PostgreSQL, Redis, the service) reap their own children.
// [Process.Usage] is ReadTreeUsage while the process runs and the kernel's
// account of the wait (its own time and that of every descendant it waited
// for) once it has been reaped; its CPU time never decreases between calls.
//
// # Ports
//
// [ReservePorts] hands out free TCP ports that no other user of this
// package in the process holds, until [ReleasePorts]: a service instance
// that is down keeps its port, so a server started meanwhile (a restarted
// PostgreSQL, another Redis) cannot be given it. A program outside this
// process may still bind a port before its holder does; the callers retry
// a first start on another port when binding fails.
//
// # Logs
//
// A [Log] is the part of a log file that one lifetime of a process wrote
// (the file from the offset where the lifetime began): [Log.Tail] for error
// messages, [Log.Contains] and [Log.ContainsFold] to recognise a failure.
package proc
