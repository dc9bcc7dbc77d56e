//go:build !linux

package web

func signalNumber(name string) int { return 0 }
