package cgroup

import (
	"errors"
	"testing"
	"time"
)

func TestKeyedValue(t *testing.T) {
	const cpuStat = "usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\nnice_usec 0\n" +
		"nr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n"
	const memoryEvents = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 1\n"
	const oomControl = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"
	const cgroupEvents = "populated 1\nfrozen 0\n"
	const pidsEvents = "max 7\n"
	for _, tc := range []struct {
		file, data, key string
		want            int64
		err             error
	}{
		{"cpu.stat", cpuStat, "usage_usec", 1234567, nil},
		{"cpu.stat", cpuStat, "user_usec", 1000000, nil},
		{"cpu.stat", cpuStat, "system_usec", 234567, nil},
		{"cpu.stat", cpuStat, "usage", 0, errNoKey}, // a prefix of a key is not the key
		{"cpu.stat", "usage_usec 1", "usage_usec", 1, nil},
		{"memory.events", memoryEvents, "oom_kill", 1, nil},
		{"memory.events", memoryEvents, "oom", 2, nil},
		{"memory.events", memoryEvents, "oom_group_kill", 1, nil},
		{"memory.oom_control", oomControl, "oom_kill", 3, nil},
		{"memory.oom_control (old kernel)", "oom_kill_disable 0\nunder_oom 0\n", "oom_kill", 0, errNoKey},
		{"cgroup.events", cgroupEvents, "populated", 1, nil},
		{"pids.events", pidsEvents, "max", 7, nil},
		{"garbled", "usage_usec twelve\n", "usage_usec", 0, errBadValue},
		{"empty", "", "usage_usec", 0, errNoKey},
	} {
		got, err := keyedValue([]byte(tc.data), tc.key)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("%s: keyedValue(%q) = %d, %v; want %d, %v", tc.file, tc.key, got, err, tc.want, tc.err)
		}
	}
}

func TestParseCount(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"123456789\n", 123456789, true}, // cpuacct.usage
		{"0\n", 0, true},
		{"33554432\n", 33554432, true}, // memory.max_usage_in_bytes
		{" 7 ", 7, true},
		{"9223372036854775807", 1<<63 - 1, true},
		{"9223372036854775808", 0, false},
		{"max\n", 0, false},
		{"-1", 0, false},
		{"", 0, false},
		{"1 2", 0, false},
	} {
		got, err := parseCount([]byte(tc.in))
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("parseCount(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	data := []byte("usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\n")
	n := testing.AllocsPerRun(100, func() {
		if _, err := keyedValue(data, "system_usec"); err != nil {
			t.Fatal(err)
		}
		if _, err := parseCount(data[11:18]); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("parsing allocates %v times per run", n)
	}
}

func TestSplitCPU(t *testing.T) {
	for _, tc := range []struct {
		total, user, sys int64
		wantU, wantS     time.Duration
	}{
		{1000, 300, 100, 750, 250},
		{302824942, 304000000, 0, 302824942, 0}, // ticks ran ahead of the total
		{1000, 0, 0, 1000, 0},                   // no tick yet: all user, as the kernel does
		{0, 0, 0, 0, 0},
	} {
		u, s := splitCPU(tc.total, tc.user, tc.sys)
		if u != tc.wantU || s != tc.wantS {
			t.Errorf("splitCPU(%d, %d, %d) = %v, %v; want %v, %v", tc.total, tc.user, tc.sys, u, s, tc.wantU, tc.wantS)
		}
	}
}
