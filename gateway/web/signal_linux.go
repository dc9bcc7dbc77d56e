package web

import "golang.org/x/sys/unix"

// signalNumber is the number of a signal named as the daemon names it
// ("SIGKILL"); 0 when unknown.
func signalNumber(name string) int { return int(unix.SignalNum(name)) }
