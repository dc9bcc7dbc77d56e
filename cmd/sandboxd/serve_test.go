package main

import "testing"

func TestDaemonProcs(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 1, 3: 1, 4: 2, 16: 8} {
		if got := daemonProcs(n); got != want {
			t.Errorf("daemonProcs(%d) = %d, want %d", n, got, want)
		}
	}
}
